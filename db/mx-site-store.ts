/**
 * Live state of the receiving sites, shared by every worker process: budget reservations (GCRA, one statement per
 * message of a rate-limited site), connection leases, the adaptive state with its recorded changes, and the counts the
 * API shows. Adaptive times are on the engine clock the caller gives; pacing times on the database clock (or the engine
 * clock when it is ahead: a time-skipping test server moves it).
 */
import type { Pool } from 'pg';
import { inTransaction } from './transaction';
import type { AdaptiveSite, SiteChange, SiteStateName } from '../domain/mx-rules/adaptive';

export interface Reservation {
  /** Epoch ms at which the message may go (database clock). */
  slotMs: number;
  /** The database clock when the reservation was made (epoch ms): slotMs - dbNowMs is the wait. */
  dbNowMs: number;
  /** The site's epoch: a reservation of an older epoch is void (the rate went down since). */
  epoch: number;
  /** False when the slot was after `latest` and was not taken. */
  reserved: boolean;
}

export interface SiteRow extends AdaptiveSite {
  site: string;
  ruleId: string;
  epoch: number;
}

export interface SiteEvent {
  id: number;
  site: string;
  at: string;
  kind: string;
  causeRule: string | null;
  causeReply: string | null;
  fromState: string;
  toState: string;
  fromPerSecond: number | null;
  toPerSecond: number | null;
  fromConnections: number | null;
  toConnections: number | null;
  suspendedUntil: string | null;
}

export interface SiteOverviewRow extends SiteRow {
  createdAt: string;
  leases: number;
  inFlight: number;
  waiting: number;
  /** Replies of the last hour by code ("0": no reply at all). */
  replies: Record<string, number>;
  lastEvent: SiteEvent | null;
}

interface StateRow {
  site: string;
  rule_id: string;
  state: SiteStateName;
  per_second_limit: number | null;
  max_connections_limit: number | null;
  baseline_per_second: number | null;
  suspended_until: Date | null;
  last_change_at: Date | null;
  last_signal_at: Date | null;
  epoch: number;
  created_at?: Date;
}

const ms = (d: Date | null): number | null => (d === null ? null : d.getTime());
const ts = (m: number | null): Date | null => (m === null ? null : new Date(m));

function toSite(r: StateRow): SiteRow {
  return {
    site: r.site,
    ruleId: r.rule_id,
    state: r.state,
    perSecondLimit: r.per_second_limit,
    maxConnectionsLimit: r.max_connections_limit,
    baselinePerSecond: r.baseline_per_second,
    suspendedUntilMs: ms(r.suspended_until),
    lastChangeAtMs: ms(r.last_change_at),
    lastSignalAtMs: ms(r.last_signal_at),
    epoch: r.epoch,
  };
}

const STATE_COLUMNS = `site, rule_id, state, per_second_limit, max_connections_limit, baseline_per_second, suspended_until,
  last_change_at, last_signal_at, epoch`;

const EVENT_COLUMNS = `id::int AS id, site, at, kind, cause_rule AS "causeRule", cause_reply AS "causeReply", from_state AS "fromState",
  to_state AS "toState", from_per_second AS "fromPerSecond", to_per_second AS "toPerSecond", from_connections AS "fromConnections",
  to_connections AS "toConnections", suspended_until AS "suspendedUntil"`;

function toEvent(r: Record<string, unknown>): SiteEvent {
  const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : (v as string | null));
  return { ...(r as unknown as SiteEvent), at: iso(r.at)!, suspendedUntil: iso(r.suspendedUntil) };
}

export class MxSiteStore {
  constructor(private readonly pool: Pool) {}

  /**
   * Reserves one message of the site's budget (db/migrations/033_mx_sites.sql, mx_reserve): the slot is the earliest
   * time one more message keeps the site within its intervals; a slot after `latestMs` is reported, not taken.
   */
  async reserve(
    site: string,
    ruleId: string,
    budget: { intervalSecondMs: number | null; intervalHourMs: number | null; hourBurstMs: number },
    engineNowMs: number,
    latestMs: number | null,
  ): Promise<Reservation> {
    const r = await this.pool.query<{ slot: number; db_now: number; site_epoch: number; reserved: boolean }>(
      'SELECT slot, db_now, site_epoch, reserved FROM mx_reserve($1, $2, $3, $4, $5, $6, $7)',
      [
        site,
        ruleId,
        budget.intervalSecondMs === null ? null : budget.intervalSecondMs / 1000,
        budget.intervalHourMs === null ? null : budget.intervalHourMs / 1000,
        budget.hourBurstMs / 1000,
        latestMs === null ? null : latestMs / 1000,
        engineNowMs / 1000,
      ],
    );
    const row = r.rows[0];
    return { slotMs: row.slot * 1000, dbNowMs: row.db_now * 1000, epoch: row.site_epoch, reserved: row.reserved };
  }

  /** The site's row (created, or its rule id updated, when needed) and the database clock. */
  async state(site: string, ruleId: string): Promise<{ row: SiteRow; dbNowMs: number }> {
    // Writes only when the row is new or its rule changed; otherwise a plain read.
    const r = await this.pool.query<StateRow & { db_now: number }>(
      `WITH up AS (
         INSERT INTO mx_sites (site, rule_id) VALUES ($1, $2)
         ON CONFLICT (site) DO UPDATE SET rule_id = EXCLUDED.rule_id WHERE mx_sites.rule_id IS DISTINCT FROM EXCLUDED.rule_id
         RETURNING ${STATE_COLUMNS}
       )
       SELECT *, extract(epoch FROM clock_timestamp()) * 1000 AS db_now FROM up
       UNION ALL
       SELECT ${STATE_COLUMNS}, extract(epoch FROM clock_timestamp()) * 1000 FROM mx_sites WHERE site = $1 AND NOT EXISTS (SELECT 1 FROM up)`,
      [site, ruleId],
    );
    // Two processes creating the row at once: the one that waited for the other's insert sees neither its own write
    // nor, in its statement's snapshot, the other's row. A new statement does.
    const row =
      r.rows[0] ??
      (
        await this.pool.query<StateRow & { db_now: number }>(
          `SELECT ${STATE_COLUMNS}, extract(epoch FROM clock_timestamp()) * 1000 AS db_now FROM mx_sites WHERE site = $1`,
          [site],
        )
      ).rows[0];
    return { row: toSite(row), dbNowMs: Number(row.db_now) };
  }

  /**
   * Applies an adaptive decision under the site's row lock: `decide` sees the current state and returns the change (or
   * null, and optionally a state to store anyway, such as a moved signal time). A change is recorded as an event with
   * its cause; a lowered rate bumps the epoch (reservations at the old rate are void) and restarts the pacing from now.
   */
  async adapt(
    site: string,
    ruleId: string,
    decide: (current: SiteRow) => { change: SiteChange | null; store?: AdaptiveSite },
    cause: { rule: string | null; reply: string | null },
  ): Promise<{ row: SiteRow; change: SiteChange | null }> {
    return inTransaction(this.pool, async (c) => {
      await c.query('INSERT INTO mx_sites (site, rule_id) VALUES ($1, $2) ON CONFLICT (site) DO NOTHING', [site, ruleId]);
      const cur = toSite((await c.query<StateRow>(`SELECT ${STATE_COLUMNS} FROM mx_sites WHERE site = $1 FOR UPDATE`, [site])).rows[0]);
      const { change, store } = decide(cur);
      const next = change?.after ?? store;
      if (!next) return { row: cur, change: null };
      const bump = change?.rateLowered ?? false;
      const r = await c.query<StateRow>(
        `UPDATE mx_sites SET rule_id = $2, state = $3, per_second_limit = $4, max_connections_limit = $5, baseline_per_second = $6,
           suspended_until = $7, last_change_at = $8, last_signal_at = $9,
           epoch = epoch + CASE WHEN $10::boolean THEN 1 ELSE 0 END,
           tat_second = CASE WHEN $10::boolean THEN extract(epoch FROM clock_timestamp()) ELSE tat_second END
         WHERE site = $1 RETURNING ${STATE_COLUMNS}`,
        [site, ruleId, next.state, next.perSecondLimit, next.maxConnectionsLimit, next.baselinePerSecond, ts(next.suspendedUntilMs), ts(next.lastChangeAtMs), ts(next.lastSignalAtMs), bump],
      );
      if (change) {
        await c.query(
          `INSERT INTO mx_site_events (site, at, kind, cause_rule, cause_reply, from_state, to_state, from_per_second, to_per_second,
             from_connections, to_connections, suspended_until)
           VALUES ($1, COALESCE($2, now()), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
          [
            site,
            ts(change.after.lastChangeAtMs),
            change.kind,
            cause.rule,
            cause.reply?.slice(0, 500) ?? null,
            change.before.state,
            change.after.state,
            change.from.perSecond,
            change.to.perSecond,
            change.from.maxConnections,
            change.to.maxConnections,
            ts(change.after.suspendedUntilMs),
          ],
        );
      }
      return { row: toSite(r.rows[0]), change };
    });
  }

  /** A connection lease (slot number), or null when the site's connections are all taken. */
  async acquireLease(site: string, holder: string, limit: number, ttlMs: number): Promise<number | null> {
    const r = await this.pool.query<{ slot: number | null }>('SELECT mx_acquire_lease($1, $2, $3, $4) AS slot', [site, holder, limit, ttlMs / 1000]);
    return r.rows[0].slot;
  }

  /** Extends every lease of the holder (one statement per process, whatever it holds); returns how many it still has. */
  async renewLeases(holder: string, ttlMs: number): Promise<number> {
    const r = await this.pool.query('UPDATE mx_site_leases SET expires_at = clock_timestamp() + make_interval(secs => $2) WHERE holder = $1', [holder, ttlMs / 1000]);
    return r.rowCount ?? 0;
  }

  async releaseLease(site: string, slot: number, holder: string): Promise<void> {
    await this.pool.query('DELETE FROM mx_site_leases WHERE site = $1 AND slot = $2 AND holder = $3', [site, slot, holder]);
  }

  async releaseAll(holder: string): Promise<void> {
    await this.pool.query('DELETE FROM mx_site_leases WHERE holder = $1', [holder]);
    await this.pool.query('DELETE FROM mx_site_workers WHERE holder = $1', [holder]);
  }

  /**
   * One worker's periodic report: reply counts since its last one (added to the per-minute rows) and what it has in
   * flight and waiting per site. One round trip.
   */
  async report(holder: string, counts: { site: string; minuteMs: number; code: number; n: number }[], load: { site: string; inFlight: number; waiting: number }[]): Promise<void> {
    if (counts.length === 0 && load.length === 0) return;
    await this.pool.query(
      `WITH c AS (
         INSERT INTO mx_site_reply_counts AS x (site, minute, code, n)
         SELECT site, to_timestamp(minute_ms / 1000.0), code, n FROM jsonb_to_recordset($2::jsonb) AS r(site text, minute_ms double precision, code integer, n integer)
         ON CONFLICT (site, minute, code) DO UPDATE SET n = x.n + EXCLUDED.n
       )
       INSERT INTO mx_site_workers AS w (site, holder, in_flight, waiting, updated_at)
       SELECT site, $1, in_flight, waiting, now() FROM jsonb_to_recordset($3::jsonb) AS r(site text, in_flight integer, waiting integer)
       ON CONFLICT (site, holder) DO UPDATE SET in_flight = EXCLUDED.in_flight, waiting = EXCLUDED.waiting, updated_at = now()`,
      [
        holder,
        JSON.stringify(counts.map((c) => ({ site: c.site, minute_ms: c.minuteMs, code: c.code, n: c.n }))),
        JSON.stringify(load.map((l) => ({ site: l.site, in_flight: l.inFlight, waiting: l.waiting }))),
      ],
    );
  }

  /** Messages per second the site was sent at over the last `windowMs` (all workers, from their reports). */
  async observedPerSecond(site: string, windowMs: number): Promise<number | null> {
    const r = await this.pool.query<{ n: number | null }>(
      `SELECT sum(n)::int AS n FROM mx_site_reply_counts WHERE site = $1 AND minute >= date_trunc('minute', now() - make_interval(secs => $2))`,
      [site, windowMs / 1000],
    );
    const n = r.rows[0].n;
    return n ? n / Math.max(60, windowMs / 1000) : null;
  }

  /** Old counts and reports (kept two hours: the API shows one). */
  async prune(): Promise<void> {
    await this.pool.query(`DELETE FROM mx_site_reply_counts WHERE minute < now() - interval '2 hours'`);
    await this.pool.query(`DELETE FROM mx_site_workers WHERE updated_at < now() - interval '10 minutes'`);
  }

  /** Every site seen, with its live figures (GET /api/mx-sites). */
  async overview(site?: string): Promise<SiteOverviewRow[]> {
    const r = await this.pool.query<StateRow & { leases: number; in_flight: number; waiting: number; replies: Record<string, number> | null; last_event: Record<string, unknown> | null }>(
      `SELECT ${STATE_COLUMNS}, s.created_at,
         (SELECT count(*)::int FROM mx_site_leases l WHERE l.site = s.site AND l.expires_at > clock_timestamp()) AS leases,
         (SELECT COALESCE(sum(in_flight), 0)::int FROM mx_site_workers w WHERE w.site = s.site AND w.updated_at > now() - interval '30 seconds') AS in_flight,
         (SELECT COALESCE(sum(waiting), 0)::int FROM mx_site_workers w WHERE w.site = s.site AND w.updated_at > now() - interval '30 seconds') AS waiting,
         (SELECT jsonb_object_agg(code::text, n) FROM (SELECT code, sum(n)::int AS n FROM mx_site_reply_counts c
            WHERE c.site = s.site AND c.minute >= date_trunc('minute', now() - interval '1 hour') GROUP BY code) x) AS replies,
         (SELECT to_jsonb(e) FROM (SELECT ${EVENT_COLUMNS} FROM mx_site_events e WHERE e.site = s.site ORDER BY id DESC LIMIT 1) e) AS last_event
       FROM mx_sites s WHERE $1::text IS NULL OR s.site = $1 ORDER BY s.site`,
      [site ?? null],
    );
    return r.rows.map((row) => ({
      ...toSite(row),
      createdAt: row.created_at!.toISOString(),
      leases: row.leases,
      inFlight: row.in_flight,
      waiting: row.waiting,
      replies: row.replies ?? {},
      lastEvent: row.last_event ? toEvent(row.last_event) : null,
    }));
  }

  /** A site's recorded changes, newest first. */
  async events(site: string, limit: number): Promise<SiteEvent[]> {
    const r = await this.pool.query(`SELECT ${EVENT_COLUMNS} FROM mx_site_events WHERE site = $1 ORDER BY id DESC LIMIT $2`, [site, limit]);
    return r.rows.map(toEvent);
  }
}
