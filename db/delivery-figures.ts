/**
 * A delivery's figures for its dashboard page: EFS statuses over time, per recipient domain, per (domain, MX host) for
 * the per-site table. Each is one aggregate statement over the delivery's recipients, read by an index-only scan of
 * delivery_recipients_domain_figures_idx (migration 042): the cost grows with the delivery's size, never with the
 * number of deliveries, and callers cache the answers (api/delivery-figures.ts).
 */
import type { Pool } from 'pg';

/** Counts of one group of recipients (a domain, an MX host); `softWaiting`: attempted, still taken into account. */
export interface FigureCounts {
  recipients: number;
  excluded: number;
  cancelled: number;
  pending: number;
  takenIntoAccount: number;
  softWaiting: number;
  sent: number;
  failed: number;
}

/** One bucket of the timeline: the counts as they stood at its end (`at`). */
export interface TimelinePoint {
  at: Date;
  /** Handed over, not sent nor failed (soft bounces waiting included). */
  takenIntoAccount: number;
  /** The part of takenIntoAccount whose last attempt deferred it (a soft bounce waiting for its retry). */
  softWaiting: number;
  sent: number;
  failed: number;
}

const COUNTS = `count(*)::int AS recipients,
  count(*) FILTER (WHERE status = 'excluded')::int AS excluded,
  count(*) FILTER (WHERE status = 'cancelled')::int AS cancelled,
  count(*) FILTER (WHERE status = 'pending')::int AS pending,
  count(*) FILTER (WHERE status = 'taken_into_account')::int AS "takenIntoAccount",
  count(*) FILTER (WHERE status = 'taken_into_account' AND attempts > 0)::int AS "softWaiting",
  count(*) FILTER (WHERE status = 'sent')::int AS sent,
  count(*) FILTER (WHERE status = 'failed')::int AS failed`;

export class DeliveryFigures {
  constructor(private readonly pool: Pool) {}

  /**
   * Cumulative counts at the end of each of `buckets` buckets of `widthMs` from `from`. What happened before `from`
   * counts in the first bucket, after the last one in the last, so that the last point is the delivery log as it is
   * now (the KPIs). Per recipient: handed over at handed_over_at, sent or failed at final_at, waiting for a retry from
   * its first transition back to taken_into_account after an attempt (efs_transitions_deferred_idx) until final_at.
   * A late bounce (sent, then failed) counts as failed from the bounce on and as taken into account before it: the
   * recipient row keeps the last status and when it was reached, not the way there.
   *
   * One statement: the recipients grouped by (hand-over bucket, final bucket, status, waited), the first deferrals by
   * bucket, both small (a few groups per bucket), then summed per bucket and cumulated. A waiting recipient is one with
   * an attempt behind it that left it taken into account: the dashboard's "Soft bounces waiting" tile.
   */
  async timeline(deliveryId: string, o: { from: Date; widthMs: number; buckets: number }): Promise<TimelinePoint[]> {
    const r = await this.pool.query<{ at: Date; entered: number; sent: number; failed: number; waiting: number }>(
      // $2 the first bucket's start, $3 the width, $4 the number of buckets. Written without a CTE for the parameters
      // and with each part read once, so that the planner may run the big grouping in parallel workers.
      `WITH main AS (
         -- waited: the recipient went back to taken_into_account after an attempt at least once (a soft bounce, a relay's
         -- acceptance): it waits from its first such transition (deferred, below) until final_at.
         SELECT date_bin($3::interval, COALESCE(r.handed_over_at, r.final_at, $2::timestamptz), $2::timestamptz) AS hb,
           date_bin($3::interval, r.final_at, $2::timestamptz) AS fb, r.status,
           (r.attempts > 1 OR r.relayed_at IS NOT NULL OR (r.status = 'taken_into_account' AND r.attempts > 0)) AS waited,
           count(*)::int AS n
         FROM delivery_recipients r
         WHERE r.delivery_id = $1 AND r.status IN ('taken_into_account', 'sent', 'failed')
         GROUP BY 1, 2, 3, 4
       ), deferred AS (
         -- Read from efs_transitions_deferred_idx alone: no join back to the recipients (a few per cent of them, but a
         -- lookup each would cost more than the whole scan above).
         SELECT date_bin($3::interval, min(at), $2::timestamptz) AS wb FROM efs_transitions
         WHERE delivery_id = $1 AND to_status = 'taken_into_account' AND source <> 'handover'
         GROUP BY recipient_id
       ), events AS (
         SELECT e.* FROM main m, LATERAL (VALUES
           (m.hb, m.n, 0, 0, 0),
           (m.fb, 0, CASE WHEN m.status = 'sent' THEN m.n ELSE 0 END, CASE WHEN m.status = 'failed' THEN m.n ELSE 0 END, CASE WHEN m.waited THEN -m.n ELSE 0 END)
         ) AS e(b, entered, sent, failed, waiting)
         WHERE e.b IS NOT NULL
         UNION ALL
         SELECT wb, 0, 0, 0, 1 FROM deferred
       ), per_bucket AS (
         -- Bucket number, clamped into [0, n - 1].
         SELECT LEAST(GREATEST(floor(extract(epoch FROM (b - $2::timestamptz)) / extract(epoch FROM $3::interval))::int, 0), $4::int - 1) AS i,
           sum(entered)::int AS entered, sum(sent)::int AS sent, sum(failed)::int AS failed, sum(waiting)::int AS waiting
         FROM events GROUP BY 1
       )
       SELECT $2::timestamptz + (g.i + 1) * $3::interval AS at,
         (sum(COALESCE(b.entered, 0)) OVER w)::int AS entered, (sum(COALESCE(b.sent, 0)) OVER w)::int AS sent,
         (sum(COALESCE(b.failed, 0)) OVER w)::int AS failed, (sum(COALESCE(b.waiting, 0)) OVER w)::int AS waiting
       FROM generate_series(0, $4::int - 1) AS g(i) LEFT JOIN per_bucket b ON b.i = g.i
       WINDOW w AS (ORDER BY g.i)
       ORDER BY g.i`,
      [deliveryId, o.from, `${o.widthMs} milliseconds`, o.buckets],
    );
    return r.rows.map((row) => ({
      at: row.at,
      takenIntoAccount: row.entered - row.sent - row.failed,
      softWaiting: row.waiting,
      sent: row.sent,
      failed: row.failed,
    }));
  }

  /**
   * The `limit` domains with the most recipients (ties by name), and the other domains added up, so that the rows and
   * `others` together are the whole delivery. '' is the domain of addresses that are not valid.
   */
  async domains(deliveryId: string, limit: number): Promise<{ domains: ({ domain: string } & FigureCounts)[]; others: { domains: number } & FigureCounts }> {
    const r = await this.pool.query<{ domain: string | null; top: boolean; domains: number } & FigureCounts>(
      `WITH per_domain AS (
         SELECT domain, ${COUNTS} FROM delivery_recipients WHERE delivery_id = $1 GROUP BY domain
       ), ranked AS (
         SELECT *, row_number() OVER (ORDER BY recipients DESC, domain) <= $2 AS top FROM per_domain
       )
       SELECT domain, true AS top, 1 AS domains, recipients, excluded, cancelled, pending, "takenIntoAccount", "softWaiting", sent, failed
       FROM ranked WHERE top
       UNION ALL
       SELECT NULL, false, count(*)::int, COALESCE(sum(recipients), 0)::int, COALESCE(sum(excluded), 0)::int, COALESCE(sum(cancelled), 0)::int,
         COALESCE(sum(pending), 0)::int, COALESCE(sum("takenIntoAccount"), 0)::int, COALESCE(sum("softWaiting"), 0)::int,
         COALESCE(sum(sent), 0)::int, COALESCE(sum(failed), 0)::int
       FROM ranked WHERE NOT top
       ORDER BY top DESC, recipients DESC, domain`,
      [deliveryId, limit],
    );
    const counts = (row: FigureCounts): FigureCounts => ({
      recipients: row.recipients,
      excluded: row.excluded,
      cancelled: row.cancelled,
      pending: row.pending,
      takenIntoAccount: row.takenIntoAccount,
      softWaiting: row.softWaiting,
      sent: row.sent,
      failed: row.failed,
    });
    const rest = r.rows.find((row) => !row.top)!;
    return {
      domains: r.rows.filter((row) => row.top).map((row) => ({ domain: row.domain ?? '', ...counts(row) })),
      others: { domains: rest.domains, ...counts(rest) },
    };
  }

  /**
   * Recipients per (domain, MX host of their last attempt), null host for those not attempted yet: what the per-site
   * figures are folded from (the site of a recipient depends on both, as mail/mx/site-resolver.ts decides it).
   */
  async byDomainAndMxHost(deliveryId: string): Promise<({ domain: string; mxHost: string | null } & FigureCounts)[]> {
    const r = await this.pool.query<{ domain: string; mxHost: string | null } & FigureCounts>(
      `SELECT domain, last_mx_host AS "mxHost", ${COUNTS} FROM delivery_recipients WHERE delivery_id = $1 GROUP BY domain, last_mx_host`,
      [deliveryId],
    );
    return r.rows;
  }
}
