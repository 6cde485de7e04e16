/**
 * API keys: random 256-bit secrets shown once at creation, stored as their SHA-256 (never in clear), with a name,
 * scopes, a last-used time and a revocation time. `createApiKey` is the one way a key comes to exist (API, command,
 * `npm start`, tests).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { API_SCOPES, type ApiScope } from '../domain/api-scopes';
import { audited, insertAuditEntry, type AuditActor } from './audit-log-store';
import { inTransaction } from './transaction';

/** Every key starts with this, so that a key pasted somewhere is recognisable (and secret scanners can match it). */
export const API_KEY_PREFIX = 'ede_';
/** "ede_" and 43 base64url characters: 32 random bytes. */
const KEY_FORMAT = /^ede_[A-Za-z0-9_-]{43}$/;
/** How much of the key is kept for display: the marker and 8 characters (48 bits: tells keys apart, opens nothing). */
const DISPLAY_PREFIX_LENGTH = API_KEY_PREFIX.length + 8;

export interface ApiKeyRecord {
  id: string;
  name: string;
  /** The key's first characters, for people to recognise it ("ede_AbCd1234"). */
  prefix: string;
  scopes: ApiScope[];
  createdAt: Date;
  createdBy: { keyId: string | null; name: string };
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export interface CreatedApiKey {
  key: ApiKeyRecord;
  /** The key itself: shown once, stored nowhere. */
  secret: string;
}

export interface NewApiKey {
  name: string;
  scopes: readonly ApiScope[];
  /** Who creates it (audited); default: the command line. */
  createdBy?: AuditActor;
}

/** The SHA-256 a key is stored and looked up by. */
export function hashApiKey(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/** Whether a string has the shape of a key (checked before any lookup: anything else cannot be one). */
export function looksLikeApiKey(s: string): boolean {
  return KEY_FORMAT.test(s);
}

interface ApiKeyRow {
  id: string;
  name: string;
  key_prefix: string;
  scopes: ApiScope[];
  created_at: Date;
  created_by_key_id: string | null;
  created_by: string;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

const COLUMNS = 'id, name, key_prefix, scopes, created_at, created_by_key_id, created_by, last_used_at, revoked_at';

function toRecord(r: ApiKeyRow): ApiKeyRecord {
  return {
    id: r.id,
    name: r.name,
    prefix: r.key_prefix,
    // Kept in the order read < send < admin whatever order they were given in.
    scopes: API_SCOPES.filter((s) => r.scopes.includes(s)),
    createdAt: r.created_at,
    createdBy: { keyId: r.created_by_key_id, name: r.created_by },
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at,
  };
}

export const COMMAND_LINE_ACTOR: AuditActor = { keyId: null, name: 'command line (npm run api-key)' };

/**
 * Creates a key and returns it with its secret, the only time the secret exists outside the caller. The creation is
 * audited in the same transaction (actor: `createdBy`).
 */
export async function createApiKey(pool: Pool, input: NewApiKey): Promise<CreatedApiKey> {
  const name = input.name.trim();
  if (!name || name.length > 200) throw new Error('an API key needs a name of 1 to 200 characters');
  const scopes = API_SCOPES.filter((s) => input.scopes.includes(s));
  if (scopes.length === 0) throw new Error(`an API key needs at least one scope of ${API_SCOPES.join(', ')}`);
  const actor = input.createdBy ?? COMMAND_LINE_ACTOR;
  const secret = API_KEY_PREFIX + randomBytes(32).toString('base64url');
  const id = randomUUID();
  return inTransaction(pool, async (c) => {
    const r = await c.query<ApiKeyRow>(
      `INSERT INTO api_keys (id, name, key_prefix, secret_sha256, scopes, created_by_key_id, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
      [id, name, secret.slice(0, DISPLAY_PREFIX_LENGTH), hashApiKey(secret), scopes, actor.keyId, actor.name],
    );
    const key = toRecord(r.rows[0]);
    await insertAuditEntry(c, { actor, action: 'api_key.create', targetType: 'api_key', targetId: id, details: { name, scopes, prefix: key.prefix } });
    return { key, secret };
  });
}

export class ApiKeyStore {
  constructor(private readonly pool: Pool) {}

  create(input: NewApiKey): Promise<CreatedApiKey> {
    return createApiKey(this.pool, input);
  }

  /** Keys newest first; revoked ones only when asked. */
  async list(opts: { includeRevoked?: boolean } = {}): Promise<ApiKeyRecord[]> {
    const r = await this.pool.query<ApiKeyRow>(
      `SELECT ${COLUMNS} FROM api_keys WHERE $1::boolean OR revoked_at IS NULL ORDER BY created_at DESC, id`,
      [opts.includeRevoked ?? false],
    );
    return r.rows.map(toRecord);
  }

  async get(id: string): Promise<ApiKeyRecord | null> {
    const r = await this.pool.query<ApiKeyRow>(`SELECT ${COLUMNS} FROM api_keys WHERE id = $1`, [id]);
    return r.rows[0] ? toRecord(r.rows[0]) : null;
  }

  /** The key (revoked or not) whose secret has this SHA-256; null when none does. */
  async findBySecret(secret: string): Promise<ApiKeyRecord | null> {
    const r = await this.pool.query<ApiKeyRow>(`SELECT ${COLUMNS} FROM api_keys WHERE secret_sha256 = $1`, [hashApiKey(secret)]);
    return r.rows[0] ? toRecord(r.rows[0]) : null;
  }

  /**
   * Revokes a key, audited in the same transaction. `revoked` is false when it was revoked already (nothing written);
   * null when there is no such key.
   */
  async revoke(id: string, actor: AuditActor): Promise<{ key: ApiKeyRecord; revoked: boolean } | null> {
    const revoked = await audited<ApiKeyRecord | null>(
      this.pool,
      (key) => ({ actor, action: 'api_key.revoke', targetType: 'api_key', targetId: id, details: { name: key!.name, prefix: key!.prefix } }),
      async (db) => {
        const r = await db.query<ApiKeyRow>(`UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING ${COLUMNS}`, [id]);
        return r.rows[0] ? toRecord(r.rows[0]) : null;
      },
    );
    if (revoked) return { key: revoked, revoked: true };
    const existing = await this.get(id);
    return existing ? { key: existing, revoked: false } : null;
  }

  /**
   * Records that a key was used. The condition skips the write when another process recorded it within the minute:
   * callers already call this at most once a minute per key, so it stays one cheap indexed update per minute per key.
   */
  async touch(id: string): Promise<void> {
    await this.pool.query(`UPDATE api_keys SET last_used_at = now() WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`, [id]);
  }
}
