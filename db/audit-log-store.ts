/**
 * The audit log: who created, confirmed, paused, resumed, cancelled, released, changed rules or keys. Stores that
 * change Postgres write their entry in the change's own transaction (`audited`); changes made in Temporal (workflow
 * updates) are recorded right after they succeeded (`record`).
 */
import type { Pool, PoolClient } from 'pg';
import { inTransaction } from './transaction';

/** Who made a change: an API key, or a named local tool (the api-key command, `npm start`) with no key. */
export interface AuditActor {
  keyId: string | null;
  name: string;
}

export interface AuditEntryInput {
  actor: AuditActor;
  /** `<target type>.<verb>`, e.g. delivery.confirm, api_key.revoke (docs/access-control.md lists them). */
  action: string;
  targetType: string;
  targetId: string;
  details?: Record<string, unknown>;
}

export interface AuditEntry {
  id: number;
  at: Date;
  actor: AuditActor;
  action: string;
  target: { type: string; id: string };
  details: Record<string, unknown>;
}

export interface AuditQuery {
  action?: string;
  targetType?: string;
  targetId?: string;
  /** Entries at or after this time. */
  since?: Date;
  /** Keyset paging, newest first: entries with an id below this one. */
  beforeId?: number;
  limit: number;
}

type Queryable = Pool | PoolClient;

/** Writes one entry through `db`: a transaction's client keeps it atomic with the change. */
export async function insertAuditEntry(db: Queryable, e: AuditEntryInput): Promise<void> {
  await db.query(
    `INSERT INTO audit_log (actor_key_id, actor_name, action, target_type, target_id, details) VALUES ($1, $2, $3, $4, $5, $6)`,
    [e.actor.keyId, e.actor.name, e.action, e.targetType, e.targetId, JSON.stringify(e.details ?? {})],
  );
}

/**
 * Runs a store's change and its audit entry in one transaction: `work` gets the transaction's client, and the entry is
 * written only when `changed(result)` says the change happened (a release of an unknown address records nothing).
 * Without an entry (internal callers), `work` runs on the pool as before.
 */
export async function audited<T>(
  pool: Pool,
  entry: AuditEntryInput | ((result: T) => AuditEntryInput) | undefined,
  work: (db: Queryable) => Promise<T>,
  changed: (result: T) => boolean = (r) => Boolean(r),
): Promise<T> {
  if (!entry) return work(pool);
  return inTransaction(pool, async (c) => {
    const result = await work(c);
    if (changed(result)) await insertAuditEntry(c, typeof entry === 'function' ? entry(result) : entry);
    return result;
  });
}

interface AuditRow {
  id: number;
  at: Date;
  actor_key_id: string | null;
  actor_name: string;
  action: string;
  target_type: string;
  target_id: string;
  details: Record<string, unknown>;
}

export class AuditLogStore {
  constructor(private readonly pool: Pool) {}

  /** Records a change made outside Postgres (a workflow update), once it succeeded. */
  record(e: AuditEntryInput): Promise<void> {
    return insertAuditEntry(this.pool, e);
  }

  /** Entries newest first, filtered, after the keyset cursor. */
  async list(q: AuditQuery): Promise<AuditEntry[]> {
    const r = await this.pool.query<AuditRow>(
      `SELECT id, at, actor_key_id, actor_name, action, target_type, target_id, details FROM audit_log
       WHERE ($1::text IS NULL OR action = $1)
         AND ($2::text IS NULL OR target_type = $2)
         AND ($3::text IS NULL OR target_id = $3)
         AND ($4::timestamptz IS NULL OR at >= $4)
         AND ($5::bigint IS NULL OR id < $5)
       ORDER BY id DESC LIMIT $6`,
      [q.action ?? null, q.targetType ?? null, q.targetId ?? null, q.since ?? null, q.beforeId ?? null, q.limit],
    );
    return r.rows.map((row) => ({
      id: Number(row.id),
      at: row.at,
      actor: { keyId: row.actor_key_id, name: row.actor_name },
      action: row.action,
      target: { type: row.target_type, id: row.target_id },
      details: row.details,
    }));
  }
}
