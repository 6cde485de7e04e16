/** Idempotency keys of the API: claim a key for a request, extend its lease, record or drop its answer. */
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';

export interface IdempotencyRecord {
  owner: string;
  key: string;
  requestHash: string | null;
  method: string;
  path: string;
  resourceId: string;
  state: 'in_progress' | 'completed';
  lockedUntil: Date | null;
  responseStatus: number | null;
  responseBody: unknown;
  createdAt: Date;
  expiresAt: Date;
}

/** What claiming a key found: the request runs (new, or taken over from a process that died), or a previous one decides. */
export type IdempotencyClaim = { outcome: 'run'; record: IdempotencyRecord; takenOver: boolean } | { outcome: 'existing'; record: IdempotencyRecord };

interface Row {
  owner: string;
  idempotency_key: string;
  request_hash: string | null;
  method: string;
  path: string;
  resource_id: string;
  state: 'in_progress' | 'completed';
  locked_until: Date | null;
  response_status: number | null;
  response_body: unknown;
  created_at: Date;
  expires_at: Date;
}

const toRecord = (r: Row): IdempotencyRecord => ({
  owner: r.owner,
  key: r.idempotency_key,
  requestHash: r.request_hash,
  method: r.method,
  path: r.path,
  resourceId: r.resource_id,
  state: r.state,
  lockedUntil: r.locked_until,
  responseStatus: r.response_status,
  responseBody: r.response_body,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
});

export class IdempotencyStore {
  /** Expired keys are removed at most this often, by whichever request comes by. */
  private lastPurgeMs = 0;

  constructor(
    private readonly pool: Pool,
    private readonly o: { ttlSeconds: number; leaseSeconds: number },
  ) {}

  /**
   * Claims `key` for a request. A new key (or one whose record expired) is inserted in progress under a lease; a key
   * in progress whose lease has lapsed (its process died mid-request) is taken over, keeping its resource id; any
   * other record is returned for the caller to compare and replay.
   */
  async claim(c: { owner: string; key: string; requestHash: string | null; method: string; path: string }): Promise<IdempotencyClaim> {
    await this.purgeExpired();
    for (let tries = 0; tries < 3; tries++) {
      const inserted = await this.pool.query<Row>(
        `INSERT INTO idempotency_keys (owner, idempotency_key, request_hash, method, path, resource_id, state, locked_until, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'in_progress', now() + make_interval(secs => $7), now() + make_interval(secs => $8))
         ON CONFLICT (owner, idempotency_key) DO NOTHING
         RETURNING *`,
        [c.owner, c.key, c.requestHash, c.method, c.path, randomUUID(), this.o.leaseSeconds, this.o.ttlSeconds],
      );
      if (inserted.rows[0]) return { outcome: 'run', record: toRecord(inserted.rows[0]), takenOver: false };

      // An expired record is as good as none: remove it and insert again.
      const expired = await this.pool.query(`DELETE FROM idempotency_keys WHERE owner = $1 AND idempotency_key = $2 AND expires_at <= now()`, [c.owner, c.key]);
      if ((expired.rowCount ?? 0) > 0) continue;

      // Take over a request whose process stopped extending its lease (same fingerprint only: a different request
      // with this key is refused by the caller, whatever state the first one is in).
      const taken = await this.pool.query<Row>(
        `UPDATE idempotency_keys SET locked_until = now() + make_interval(secs => $3)
         WHERE owner = $1 AND idempotency_key = $2 AND state = 'in_progress' AND locked_until < now()
           AND method = $4 AND path = $5 AND request_hash IS NOT DISTINCT FROM $6
         RETURNING *`,
        [c.owner, c.key, this.o.leaseSeconds, c.method, c.path, c.requestHash],
      );
      if (taken.rows[0]) return { outcome: 'run', record: toRecord(taken.rows[0]), takenOver: true };

      const existing = await this.pool.query<Row>(`SELECT * FROM idempotency_keys WHERE owner = $1 AND idempotency_key = $2`, [c.owner, c.key]);
      if (existing.rows[0]) return { outcome: 'existing', record: toRecord(existing.rows[0]) };
      // Deleted between our statements (expired or dropped after a 5xx): try again.
    }
    throw new Error(`idempotency key ${JSON.stringify(c.key)} kept changing while it was claimed`);
  }

  /** Extends the lease of a request still running; false when the record is no longer this request's. */
  async extendLease(owner: string, key: string, resourceId: string): Promise<boolean> {
    const r = await this.pool.query(
      `UPDATE idempotency_keys SET locked_until = now() + make_interval(secs => $4)
       WHERE owner = $1 AND idempotency_key = $2 AND resource_id = $3 AND state = 'in_progress'`,
      [owner, key, resourceId, this.o.leaseSeconds],
    );
    return (r.rowCount ?? 0) > 0;
  }

  /** Records the answer (and, for a streamed body, the fingerprint known only now). */
  async complete(owner: string, key: string, resourceId: string, a: { status: number; body: unknown; requestHash: string | null }): Promise<void> {
    await this.pool.query(
      `UPDATE idempotency_keys
       SET state = 'completed', locked_until = NULL, response_status = $4, response_body = $5::jsonb,
           request_hash = COALESCE(request_hash, $6), completed_at = now()
       WHERE owner = $1 AND idempotency_key = $2 AND resource_id = $3`,
      [owner, key, resourceId, a.status, JSON.stringify(a.body ?? null), a.requestHash],
    );
  }

  /** Forgets a request that failed on the server's side (5xx): a retry with the key runs it again. */
  async release(owner: string, key: string, resourceId: string): Promise<void> {
    await this.pool.query(`DELETE FROM idempotency_keys WHERE owner = $1 AND idempotency_key = $2 AND resource_id = $3 AND state = 'in_progress'`, [owner, key, resourceId]);
  }

  private async purgeExpired(): Promise<void> {
    const now = Date.now();
    if (now - this.lastPurgeMs < 60_000) return;
    this.lastPurgeMs = now;
    // Bounded, so that a backlog never makes one request slow.
    await this.pool.query(
      `DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM idempotency_keys WHERE expires_at <= now() LIMIT 10000)`,
    );
  }
}
