/** dkim_keys table: per signing domain and selector, private keys encrypted at rest. */
import type { Pool } from 'pg';
import { dkimTxtRecord, generateDkimKey, type DkimAlgorithm, type SigningKey } from '../mail/dkim/keys';
import type { KeyCipher } from '../mail/dkim/key-cipher';
import { audited, type AuditActor } from './audit-log-store';

/** The audit log's name for a key: its DNS record's name. */
const keyTarget = (domain: string, selector: string) => `${selector}._domainkey.${domain}`;

export interface PublishedKey {
  domain: string;
  selector: string;
  algorithm: DkimAlgorithm;
  active: boolean;
  createdAt: Date;
  dnsRecord: { name: string; type: 'TXT'; value: string };
}

export class DkimKeyExistsError extends Error {
  readonly status = 409;
}

export class DkimKeyStore {
  constructor(
    private readonly pool: Pool,
    private readonly cipher: KeyCipher,
  ) {}

  /**
   * Gives a domain its first key (first delivery from it). A domain that already has keys, even inactive ones,
   * is left alone: its owner manages them. Concurrent callers end up with one key.
   */
  async ensureKey(domain: string, selector: string, algorithm: DkimAlgorithm): Promise<void> {
    const exists = await this.pool.query('SELECT 1 FROM dkim_keys WHERE domain = $1 LIMIT 1', [domain]);
    if (exists.rowCount) return;
    await this.addKey(domain, selector, algorithm, false);
  }

  /** Generates a key under a new selector (rotation: the newest active key per algorithm signs). */
  async addKey(domain: string, selector: string, algorithm: DkimAlgorithm, failIfExists = true, actor?: AuditActor): Promise<boolean> {
    const key = generateDkimKey(algorithm);
    const added = await audited(
      this.pool,
      actor && { actor, action: 'dkim_key.add', targetType: 'dkim_key', targetId: keyTarget(domain, selector), details: { algorithm, generated: true } },
      async (db) => {
        const r = await db.query(
          `INSERT INTO dkim_keys (domain, selector, algorithm, private_key_enc, public_key_b64) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (domain, selector) DO NOTHING`,
          [domain, selector, algorithm, this.cipher.encrypt(key.privateKeyPem), key.publicKeyB64],
        );
        return (r.rowCount ?? 0) > 0;
      },
    );
    if (!added && failIfExists) throw new DkimKeyExistsError(`${selector}._domainkey.${domain} already exists; rotate by adding a new selector`);
    return added;
  }

  /** Adds a key from an existing PEM (keys read from files, rotation by a new selector). */
  async importKey(domain: string, selector: string, algorithm: DkimAlgorithm, privateKeyPem: string, publicKeyB64: string, actor?: AuditActor): Promise<void> {
    await audited(
      this.pool,
      actor && { actor, action: 'dkim_key.add', targetType: 'dkim_key', targetId: keyTarget(domain, selector), details: { algorithm, imported: true } },
      async (db) => {
        await db.query(
          `INSERT INTO dkim_keys (domain, selector, algorithm, private_key_enc, public_key_b64) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (domain, selector) DO UPDATE SET algorithm = $3, private_key_enc = $4, public_key_b64 = $5, active = true`,
          [domain, selector, algorithm, this.cipher.encrypt(privateKeyPem), publicKeyB64],
        );
        return true;
      },
    );
  }

  /** Turns a key on or off (keys are never deleted: deactivating is how one is removed from signing). */
  async setActive(domain: string, selector: string, active: boolean, actor?: AuditActor): Promise<boolean> {
    return audited(
      this.pool,
      actor && { actor, action: active ? 'dkim_key.activate' : 'dkim_key.deactivate', targetType: 'dkim_key', targetId: keyTarget(domain, selector) },
      async (db) => {
        const r = await db.query('UPDATE dkim_keys SET active = $3 WHERE domain = $1 AND selector = $2', [domain, selector, active]);
        return (r.rowCount ?? 0) > 0;
      },
    );
  }

  /** Active keys of a domain, newest first: with one RSA and one Ed25519 key the message is dual-signed. */
  async signingKeys(domain: string): Promise<SigningKey[]> {
    const r = await this.pool.query<{ domain: string; selector: string; algorithm: DkimAlgorithm; private_key_enc: Buffer }>(
      `SELECT domain, selector, algorithm, private_key_enc FROM dkim_keys WHERE domain = $1 AND active ORDER BY created_at DESC`,
      [domain],
    );
    // One key per algorithm: the newest selector wins, which is how rotation by a new selector takes effect.
    const seen = new Set<string>();
    const keys: SigningKey[] = [];
    for (const row of r.rows) {
      if (seen.has(row.algorithm)) continue;
      seen.add(row.algorithm);
      keys.push({ domain: row.domain, selector: row.selector, algorithm: row.algorithm, privateKeyPem: this.cipher.decrypt(row.private_key_enc) });
    }
    return keys;
  }

  async published(domain?: string): Promise<PublishedKey[]> {
    const r = await this.pool.query(
      `SELECT domain, selector, algorithm, public_key_b64, active, created_at FROM dkim_keys
       WHERE ($1::text IS NULL OR domain = $1) ORDER BY domain, created_at`,
      [domain ?? null],
    );
    return r.rows.map((row) => ({
      domain: row.domain,
      selector: row.selector,
      algorithm: row.algorithm,
      active: row.active,
      createdAt: row.created_at,
      dnsRecord: dkimTxtRecord(row.domain, row.selector, row.algorithm, row.public_key_b64),
    }));
  }
}
