/** Quarantined addresses (listing, release) and the denylist (listing, manual entries): what analysis excludes. */
import type { Pool } from 'pg';
import { audited, type AuditActor } from './audit-log-store';

export interface QuarantineEntry {
  address: string;
  reason: string;
  errorCount: number;
  quarantined: boolean;
  source: string;
  firstFailureAt: Date;
  lastFailureAt: Date;
  quarantinedAt: Date | null;
  expiresAt: Date | null;
}

export interface DenylistEntry {
  address: string;
  reason: string;
  source: string;
  deliveryId: string | null;
  recipientId: number | null;
  feedbackType: string | null;
  note: string | null;
  createdAt: Date;
}

/** A quarantine that still keeps its address out of deliveries (an expired one does not; analysis uses the same test). */
const LIVE_QUARANTINE = '(quarantined AND (expires_at IS NULL OR expires_at > now()))';

const QUARANTINE_COLUMNS = `address_key AS address, reason, error_count AS "errorCount", ${LIVE_QUARANTINE} AS quarantined, source,
  first_failure_at AS "firstFailureAt", last_failure_at AS "lastFailureAt", quarantined_at AS "quarantinedAt", expires_at AS "expiresAt"`;

export class QuarantineStore {
  constructor(private readonly pool: Pool) {}

  /**
   * Addresses in live quarantine (or, with `counting`, addresses with failures counted but not quarantined), in
   * address order after `after` (keyset paging), optionally those containing `search` or with one reason.
   */
  async list(opts: { after?: string; limit: number; search?: string; reason?: string; counting?: boolean }): Promise<QuarantineEntry[]> {
    const r = await this.pool.query<QuarantineEntry>(
      `SELECT ${QUARANTINE_COLUMNS} FROM address_quarantine
       WHERE ($1::text IS NULL OR address_key > $1)
         AND ($3::text IS NULL OR strpos(address_key, lower($3)) > 0)
         AND ($4::text IS NULL OR reason = $4)
         AND CASE WHEN $5::boolean THEN NOT ${LIVE_QUARANTINE} AND error_count > 0 ELSE ${LIVE_QUARANTINE} END
       ORDER BY address_key LIMIT $2`,
      [opts.after ?? null, opts.limit, opts.search ?? null, opts.reason ?? null, opts.counting ?? false],
    );
    return r.rows;
  }

  async get(addressKey: string): Promise<QuarantineEntry | null> {
    const one = await this.pool.query<QuarantineEntry>(
      `SELECT ${QUARANTINE_COLUMNS} FROM address_quarantine WHERE address_key = $1`,
      [addressKey],
    );
    return one.rows[0] ?? null;
  }

  /** Lifts a quarantine and forgets the address's failure count; false when the address had no record. */
  async release(addressKey: string, actor?: AuditActor): Promise<boolean> {
    return audited(this.pool, actor && { actor, action: 'quarantine.release', targetType: 'address', targetId: addressKey }, async (db) => {
      const r = await db.query(`DELETE FROM address_quarantine WHERE address_key = $1`, [addressKey]);
      return (r.rowCount ?? 0) > 0;
    });
  }

  async listDenylist(opts: { after?: string; limit: number; search?: string; source?: string }): Promise<DenylistEntry[]> {
    const r = await this.pool.query<DenylistEntry>(
      `SELECT address_key AS address, reason, source, delivery_id AS "deliveryId", recipient_id AS "recipientId",
         feedback_type AS "feedbackType", note, created_at AS "createdAt"
       FROM address_denylist
       WHERE ($1::text IS NULL OR address_key > $1) AND ($3::text IS NULL OR strpos(address_key, lower($3)) > 0)
         AND ($4::text IS NULL OR source = $4)
       ORDER BY address_key LIMIT $2`,
      [opts.after ?? null, opts.limit, opts.search ?? null, opts.source ?? null],
    );
    return r.rows;
  }

  /** Adds a manual entry; `added` is false when the address was already denylisted (the first entry is kept). */
  async addToDenylist(addressKey: string, reason: string, note: string | null, actor?: AuditActor): Promise<{ added: boolean }> {
    return audited(
      this.pool,
      actor && { actor, action: 'denylist.add', targetType: 'address', targetId: addressKey, details: { reason } },
      async (db) => {
        const r = await db.query(
          `INSERT INTO address_denylist (address_key, reason, source, note) VALUES ($1, $2, 'api', $3) ON CONFLICT (address_key) DO NOTHING`,
          [addressKey, reason, note],
        );
        return { added: (r.rowCount ?? 0) > 0 };
      },
      (r) => r.added,
    );
  }

  async removeFromDenylist(addressKey: string, actor?: AuditActor): Promise<boolean> {
    return audited(this.pool, actor && { actor, action: 'denylist.remove', targetType: 'address', targetId: addressKey }, async (db) => {
      const r = await db.query(`DELETE FROM address_denylist WHERE address_key = $1`, [addressKey]);
      return (r.rowCount ?? 0) > 0;
    });
  }
}
