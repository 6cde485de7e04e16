/** The delivery log: one EFS status row per address, every transition, every SMTP attempt, and the KPIs they add up to. */
import type { Pool } from 'pg';
import { kpisFromCounts, type AttemptOutcome, type DeliveryKpis, type EfsStatus } from '../domain/efs-status';
import type { FailureReason, FailureType, RetryClass } from '../domain/failure';
import type { SmtpReply } from '../domain/smtp-reply';
import { DEFAULT_QUARANTINE_POLICY, type QuarantineEffect, type QuarantinePolicy } from '../domain/quarantine-policy';
import { likeLiteral, SqlConditions } from './sql-conditions';
import { prepared } from './prepared-statements';

export interface ClaimedRecipient {
  recipientId: number;
  domain: string;
  /** The recipient's time-zone field, when the claim asked for one (local-time sending). */
  zone?: string | null;
}

export interface RecordedAttempt {
  attempt: number;
  outcome: AttemptOutcome | 'in_progress';
  reply: SmtpReply | null;
  failureReason: FailureReason | null;
  retryClass: RetryClass | null;
  ruleId: string | null;
}

export interface AttemptResult {
  deliveryId: string;
  recipientId: number;
  attempt: number;
  outcome: AttemptOutcome;
  reply: SmtpReply;
  ruleId: string | null;
  retryClass: RetryClass | null;
  /** The recipient's status after this attempt, and the failure qualification it carries. */
  status: EfsStatus;
  failureType: FailureType | null;
  failureReason: FailureReason | null;
  nextRetryAt: Date | null;
  /** What the quarantine policy decided about the address for this result (domain/quarantine-policy.ts). */
  quarantine: QuarantineEffect;
  /** Relay mode: the smart host accepted; the status stays taken_into_account until a report or the window's end. */
  relayed?: boolean;
}

export interface RecipientRow {
  recipientId: number;
  address: string;
  domain: string;
  status: EfsStatus;
  exclusionReason: string | null;
  failureType: FailureType | null;
  failureReason: FailureReason | null;
  attempts: number;
  lastSmtpCode: number | null;
  lastEnhancedCode: string | null;
  lastReply: string | null;
  lastMxHost: string | null;
  handedOverAt: Date | null;
  /** Relay mode: when the smart host accepted the message. */
  relayedAt: Date | null;
  nextRetryAt: Date | null;
  finalAt: Date | null;
  updatedAt: Date;
}

/** A recipient, its status history and its attempts (timestamps as ISO strings in the last two: they go out as JSON). */
export interface RecipientDetail {
  recipient: RecipientRow;
  transitions: Record<string, unknown>[];
  attempts: Record<string, unknown>[];
}

/** A recipient as its message needs it: where it goes, its personalisation fields, and its Date header. */
export interface MessageRecipient {
  address: string;
  domain: string;
  fields: Record<string, unknown>;
  /** The hand-over instant, used as the message's Date so every rebuild gives the same bytes; null before hand-over. */
  handedOverAt: Date | null;
}

/** What the delivery log can be narrowed to (the API's filters, api/delivery-input.ts); every filter given applies. */
export interface RecipientFilter {
  status?: EfsStatus;
  /** The start of the address, case-insensitive. */
  address?: string;
  /** The domain as stored: lower-case ASCII. */
  domain?: string;
  failureType?: FailureType;
  failureReason?: FailureReason;
}

/**
 * The SQL conditions of `f` (each starting with AND), appending their values to `params`. The address prefix is
 * written as LIKE 'prefix%' on lower(address) so that the planner turns it into a range of
 * delivery_recipients_address_prefix_idx (lower() on both sides: the same case folding, whatever the collation).
 */
function filterConditions(f: RecipientFilter, params: unknown[]): string {
  const c = new SqlConditions(params);
  if (f.status) c.add((p) => `status = ${p}`, f.status);
  if (f.address) c.add((p) => `lower(address) LIKE lower(${p})`, `${likeLiteral(f.address)}%`);
  if (f.domain) c.add((p) => `domain = ${p}`, f.domain);
  if (f.failureType) c.add((p) => `failure_type = ${p}`, f.failureType);
  if (f.failureReason) c.add((p) => `failure_reason = ${p}`, f.failureReason);
  return c.conditions.map((w) => ` AND ${w}`).join('');
}

const RECIPIENT_COLUMNS = `recipient_id AS "recipientId", address, domain, status, exclusion_reason AS "exclusionReason",
  failure_type AS "failureType", failure_reason AS "failureReason", attempts, last_smtp_code AS "lastSmtpCode",
  last_enhanced_code AS "lastEnhancedCode", last_reply AS "lastReply", last_mx_host AS "lastMxHost",
  handed_over_at AS "handedOverAt", relayed_at AS "relayedAt", next_retry_at AS "nextRetryAt", final_at AS "finalAt", updated_at AS "updatedAt"`;

export class DeliveryLog {
  constructor(
    private readonly pool: Pool,
    private readonly quarantinePolicy: QuarantinePolicy = DEFAULT_QUARANTINE_POLICY,
  ) {}

  /**
   * Hands the next page of deliverable recipients to the sending stage (pending → taken_into_account, logged).
   * Idempotent: a retry returns the same page, since rows already handed over are still in it.
   */
  async claimPage(deliveryId: string, afterRecipientId: number, limit: number, wave: number, zoneField: string | null = null): Promise<ClaimedRecipient[]> {
    const r = await this.pool.query<ClaimedRecipient>(
      `WITH page AS (
         SELECT recipient_id, domain, status, CASE WHEN $5::text IS NULL THEN NULL ELSE fields->>$5 END AS zone
         FROM delivery_recipients
         WHERE delivery_id = $1 AND recipient_id > $2 AND status NOT IN ('excluded', 'cancelled')
         ORDER BY recipient_id LIMIT $3
       ), handed AS (
         UPDATE delivery_recipients r SET status = 'taken_into_account', handed_over_at = now(), wave = $4, updated_at = now()
         FROM page WHERE r.delivery_id = $1 AND r.recipient_id = page.recipient_id AND r.status = 'pending'
         RETURNING r.recipient_id
       ), logged AS (
         INSERT INTO efs_transitions (delivery_id, recipient_id, from_status, to_status, source)
         SELECT $1, recipient_id, 'pending', 'taken_into_account', 'handover' FROM handed
       )
       SELECT recipient_id AS "recipientId", domain, zone FROM page ORDER BY recipient_id`,
      [deliveryId, afterRecipientId, limit, wave, zoneField],
    );
    return r.rows;
  }

  /** Records when each handed-over recipient's message may be sent (local-time sending). */
  async setSendTimes(deliveryId: string, recipientIds: number[], sendAt: Date[]): Promise<void> {
    await this.pool.query(
      `UPDATE delivery_recipients r SET send_at = t.send_at FROM unnest($2::int[], $3::timestamptz[]) AS t(recipient_id, send_at)
       WHERE r.delivery_id = $1 AND r.recipient_id = t.recipient_id`,
      [deliveryId, recipientIds, sendAt],
    );
  }

  /**
   * Marks an attempt as started, unless the outcome is already known: returns the accepted attempt of this
   * recipient (any attempt number) or this attempt's recorded outcome, so a retried activity never sends twice.
   */
  async beginAttempt(deliveryId: string, recipientId: number, attempt: number, messageId: string): Promise<RecordedAttempt | null> {
    // One round trip: read a known outcome, and mark the attempt started only when there is none. Prepared, as the
    // other two statements of every send (messageRecipient, completeAttempt): they run once per message.
    const r = await this.pool.query(
      prepared(
        `WITH known AS (
         SELECT attempt, outcome, smtp_code, enhanced_code, reply_text, mx_host, failure_reason, retry_class, rule_id
         FROM send_attempts
         WHERE delivery_id = $1 AND recipient_id = $2 AND (outcome = 'accepted' OR (attempt = $3 AND outcome <> 'in_progress'))
         ORDER BY (outcome = 'accepted') DESC LIMIT 1
       ), started AS (
         INSERT INTO send_attempts (delivery_id, recipient_id, attempt, message_id)
         SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM known)
         ON CONFLICT (delivery_id, recipient_id, attempt) DO UPDATE SET started_at = now()
       )
       SELECT * FROM known`,
        [deliveryId, recipientId, attempt, messageId],
      ),
    );
    const k = r.rows[0];
    if (!k) return null;
    return {
      attempt: k.attempt,
      outcome: k.outcome,
      reply: { code: k.smtp_code ?? 0, enhancedCode: k.enhanced_code, text: k.reply_text ?? '', mxHost: k.mx_host },
      failureReason: k.failure_reason,
      retryClass: k.retry_class,
      ruleId: k.rule_id,
    };
  }

  /**
   * Records an attempt's outcome and the recipient's resulting status in one statement (attempt row, status row,
   * transition), and applies the quarantine effect to the address's record in the same statement
   * (record_address_failure / clear_address_failures, migration 031: the one SQL form of the quarantine policy, shared
   * with asynchronous bounces), so that two workers failing one address at once both count.
   */
  async completeAttempt(a: AttemptResult): Promise<void> {
    const q = a.quarantine;
    const counted = q.kind === 'count_failure' ? q : null;
    const p = this.quarantinePolicy;
    await this.pool.query(
      prepared(
        `WITH attempt AS (
         UPDATE send_attempts SET finished_at = now(), outcome = $4, smtp_code = $5, enhanced_code = $6, reply_text = $7,
           mx_host = $8, failure_reason = $9, retry_class = $10, rule_id = $11
         WHERE delivery_id = $1 AND recipient_id = $2 AND attempt = $3 AND outcome = 'in_progress'
         RETURNING attempt
       ), previous AS (
         SELECT status FROM delivery_recipients WHERE delivery_id = $1 AND recipient_id = $2
       ), updated AS (
         UPDATE delivery_recipients SET status = $12, failure_type = $13, failure_reason = $9,
           attempts = GREATEST(attempts, $3), last_smtp_code = $5, last_enhanced_code = $6, last_reply = $7, last_mx_host = $8,
           next_retry_at = $14, final_at = CASE WHEN $12 IN ('sent', 'failed') THEN now() ELSE NULL END, updated_at = now(),
           relayed_at = CASE WHEN $20::boolean THEN now() ELSE relayed_at END
         WHERE delivery_id = $1 AND recipient_id = $2 AND status IN ('taken_into_account', 'pending')
           -- Only with the attempt it completes: the same outcome recorded again (a retry after a commit whose answer
           -- was lost) changes nothing, no second transition, no second failure counted.
           AND EXISTS (SELECT 1 FROM attempt)
         RETURNING recipient_id, address_key
       ), quarantine AS (
         -- count_failure: $15 the reason, $16 hard; $17 threshold, $18 span, $19 period (the policy).
         SELECT record_address_failure(address_key, $15::text, $16::boolean, $17::int, $18::interval, $19::interval, 'smtp') AS q
         FROM updated WHERE $15::text IS NOT NULL
         UNION ALL
         SELECT clear_address_failures(address_key) IS NULL FROM updated WHERE $21::boolean
       )
       INSERT INTO efs_transitions (delivery_id, recipient_id, from_status, to_status, failure_type, failure_reason,
         smtp_code, enhanced_code, reply_text, mx_host, source)
       SELECT $1, $2, (SELECT status FROM previous), $12, $13, $9, $5, $6, $7, $8, CASE WHEN $20::boolean THEN 'relay' ELSE 'smtp' END
       -- Joined (an aggregate: always one row) so that the quarantine CTE runs; a LEFT JOIN would be removed by the planner.
       FROM updated CROSS JOIN (SELECT count(*) AS n FROM quarantine) applied`,
        [
          a.deliveryId,
          a.recipientId,
          a.attempt,
          a.outcome,
          a.reply.code,
          a.reply.enhancedCode,
          a.reply.text,
          a.reply.mxHost,
          a.failureReason,
          a.retryClass,
          a.ruleId,
          a.status,
          a.failureType,
          a.nextRetryAt,
          counted?.reason ?? null,
          counted?.hard ?? false,
          p.softFailuresBeforeQuarantine,
          `${p.softFailureSpanMs} milliseconds`,
          `${p.quarantineMs} milliseconds`,
          a.relayed ?? false,
          q.kind === 'clear_count',
        ],
      ),
    );
  }

  /**
   * Relay mode, the confirmation window is over: a recipient still waiting for a report becomes sent (source
   * confirmation_window) and its address's failure count is cleared. Idempotent; returns the row as it is afterwards.
   */
  async confirmAfterReportWindow(deliveryId: string, recipientId: number): Promise<{ row: RecipientRow | null; confirmed: boolean }> {
    const r = await this.pool.query(
      `WITH updated AS (
         UPDATE delivery_recipients SET status = 'sent', failure_type = NULL, failure_reason = NULL, final_at = now(), updated_at = now()
         WHERE delivery_id = $1 AND recipient_id = $2 AND status = 'taken_into_account' AND relayed_at IS NOT NULL
         RETURNING recipient_id, address_key
       ), cleared AS (
         SELECT clear_address_failures(address_key) FROM updated
       )
       INSERT INTO efs_transitions (delivery_id, recipient_id, from_status, to_status, source)
       SELECT $1, recipient_id, 'taken_into_account', 'sent', 'confirmation_window' FROM updated CROSS JOIN (SELECT count(*) FROM cleared) c`,
      [deliveryId, recipientId],
    );
    return { row: await this.recipient(deliveryId, recipientId), confirmed: (r.rowCount ?? 0) > 0 };
  }

  /**
   * Recipients not yet handed over end as cancelled (outside the Success % denominator): cancels at most `limit` of
   * them (lowest ids first) and logs each transition; returns how many. Called until it returns 0: short statements, so a million pending rows never hold one long transaction.
   */
  async cancelPending(deliveryId: string, limit: number): Promise<number> {
    const r = await this.pool.query(
      `WITH chunk AS (
         SELECT recipient_id FROM delivery_recipients WHERE delivery_id = $1 AND status = 'pending'
         ORDER BY recipient_id LIMIT $2 FOR UPDATE SKIP LOCKED
       ), updated AS (
         UPDATE delivery_recipients d SET status = 'cancelled', final_at = now(), updated_at = now()
         FROM chunk WHERE d.delivery_id = $1 AND d.recipient_id = chunk.recipient_id AND d.status = 'pending'
         RETURNING d.recipient_id
       ), logged AS (
         INSERT INTO efs_transitions (delivery_id, recipient_id, from_status, to_status, source)
         SELECT $1, recipient_id, 'pending', 'cancelled', 'cancel' FROM updated
       )
       SELECT count(*)::int AS n FROM updated`,
      [deliveryId, limit],
    );
    return r.rows[0].n;
  }

  /**
   * The counts per status are read from delivery_recipients_status_idx alone (an index-only scan: 14 ms at 100,000
   * recipients, where reading every row to count the unattempted ones along took 37 ms and three processes); the
   * recipients handed over and not attempted yet are counted among the taken_into_account ones only (the in-flight
   * window), in the same statement, so from the same snapshot.
   */
  async kpis(deliveryId: string): Promise<DeliveryKpis> {
    const [byStatus, byFailure, byFeedback] = await Promise.all([
      this.pool.query<{ status: EfsStatus; n: number; unattempted: number }>(
        `SELECT status, count(*)::int AS n,
           CASE WHEN status = 'taken_into_account' THEN (SELECT count(*)::int FROM delivery_recipients
             WHERE delivery_id = $1 AND status = 'taken_into_account' AND attempts = 0) END AS unattempted
         FROM delivery_recipients WHERE delivery_id = $1 GROUP BY status`,
        [deliveryId],
      ),
      this.pool.query<{ failure_type: string; failure_reason: string; n: number }>(
        `SELECT failure_type, failure_reason, count(*)::int AS n FROM delivery_recipients
         WHERE delivery_id = $1 AND status = 'failed' GROUP BY failure_type, failure_reason`,
        [deliveryId],
      ),
      this.pool.query<{ complaints: number; failed_by_report: number }>(
        `SELECT count(DISTINCT recipient_id) FILTER (WHERE type = 'complaint')::int AS complaints,
           count(DISTINCT recipient_id) FILTER (WHERE effect = 'failed')::int AS failed_by_report
         FROM recipient_feedback WHERE delivery_id = $1`,
        [deliveryId],
      ),
    ]);
    const counts: Partial<Record<EfsStatus, number>> = {};
    let awaitingFirstAttempt = 0;
    for (const row of byStatus.rows) {
      counts[row.status] = row.n;
      if (row.status === 'taken_into_account') awaitingFirstAttempt = row.unattempted;
    }
    const byReason: Record<string, number> = {};
    const byType: Record<string, number> = {};
    for (const row of byFailure.rows) {
      byReason[row.failure_reason ?? 'not_defined'] = (byReason[row.failure_reason ?? 'not_defined'] ?? 0) + row.n;
      byType[row.failure_type ?? 'hard'] = (byType[row.failure_type ?? 'hard'] ?? 0) + row.n;
    }
    const feedback = byFeedback.rows[0];
    return kpisFromCounts(counts, byReason, byType, awaitingFirstAttempt, { complaints: feedback.complaints, failedByReport: feedback.failed_by_report });
  }

  /**
   * Keyset paging through a delivery's recipients (recipient order), narrowed by `filter`. Only the filters given go
   * into the statement, so that each can use its index (db/migrations/040_delivery_log_search.sql) rather than a plan
   * made for every filter at once.
   */
  async page(deliveryId: string, opts: { afterRecipientId: number; limit: number } & RecipientFilter): Promise<RecipientRow[]> {
    const params: unknown[] = [deliveryId, opts.afterRecipientId, opts.limit];
    // Prepared: its filters combine into a few dozen texts at most, and planning was most of its cost.
    const r = await this.pool.query<RecipientRow>(
      prepared(
        `SELECT ${RECIPIENT_COLUMNS} FROM delivery_recipients
       WHERE delivery_id = $1 AND recipient_id > $2${filterConditions(opts, params)}
       ORDER BY recipient_id LIMIT $3`,
        params,
      ),
    );
    return r.rows;
  }

  /**
   * Every recipient matching `filter`, page after page (`batch` rows each), for an export that streams: each page is
   * its own short statement, so a slow reader never holds a connection or a snapshot for the length of a download, and
   * a reader that stops (`return()` on the iterator) ends the reading at once. Rows are the same as page()'s, in the
   * same order.
   */
  async *everyRecipient(deliveryId: string, filter: RecipientFilter, batch = 1000): AsyncGenerator<RecipientRow[]> {
    let after = 0;
    for (;;) {
      const rows = await this.page(deliveryId, { ...filter, afterRecipientId: after, limit: batch });
      if (rows.length > 0) yield rows;
      if (rows.length < batch) return;
      after = rows[rows.length - 1].recipientId;
    }
  }

  async recipient(deliveryId: string, recipientId: number): Promise<RecipientRow | null> {
    const r = await this.pool.query<RecipientRow>(prepared(`SELECT ${RECIPIENT_COLUMNS} FROM delivery_recipients WHERE delivery_id = $1 AND recipient_id = $2`, [deliveryId, recipientId]));
    return r.rows[0] ?? null;
  }

  /**
   * A recipient with its status history and attempts, in one statement: the recipient page and the API's recipient
   * route read it often while a delivery sends, and three statements cost three round trips and three plans. The
   * same rows as recipient(), transitions() and attempts(); timestamps come out as the API writes them (ISO 8601 UTC,
   * milliseconds) so the answer is the same as theirs.
   */
  async recipientDetail(deliveryId: string, recipientId: number): Promise<RecipientDetail | null> {
    const iso = (c: string) => `to_char(${c} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
    // Aliased apart from the row's own "attempts" column (its count of attempts).
    const r = await this.pool.query<RecipientRow & { transitionRows: Record<string, unknown>[]; attemptRows: Record<string, unknown>[] }>(
      prepared(
        `SELECT ${RECIPIENT_COLUMNS},
         (SELECT COALESCE(json_agg(json_build_object('at', ${iso('t.at')}, 'fromStatus', t.from_status, 'toStatus', t.to_status,
            'failureType', t.failure_type, 'failureReason', t.failure_reason, 'smtpCode', t.smtp_code, 'enhancedCode', t.enhanced_code,
            'replyText', t.reply_text, 'mxHost', t.mx_host, 'source', t.source) ORDER BY t.id), '[]'::json)
          FROM efs_transitions t WHERE t.delivery_id = r.delivery_id AND t.recipient_id = r.recipient_id) AS "transitionRows",
         (SELECT COALESCE(json_agg(json_build_object('attempt', a.attempt, 'startedAt', ${iso('a.started_at')}, 'finishedAt', ${iso('a.finished_at')},
            'outcome', a.outcome, 'smtpCode', a.smtp_code, 'enhancedCode', a.enhanced_code, 'replyText', a.reply_text, 'mxHost', a.mx_host,
            'failureReason', a.failure_reason, 'retryClass', a.retry_class, 'ruleId', a.rule_id, 'messageId', a.message_id) ORDER BY a.attempt), '[]'::json)
          FROM send_attempts a WHERE a.delivery_id = r.delivery_id AND a.recipient_id = r.recipient_id) AS "attemptRows"
       FROM delivery_recipients r WHERE r.delivery_id = $1 AND r.recipient_id = $2`,
        [deliveryId, recipientId],
      ),
    );
    const row = r.rows[0];
    if (!row) return null;
    const { transitionRows, attemptRows, ...recipient } = row;
    return { recipient, transitions: transitionRows, attempts: attemptRows };
  }

  /** What a recipient's message is built from; null when there is no such recipient. */
  async messageRecipient(deliveryId: string, recipientId: number): Promise<MessageRecipient | null> {
    const r = await this.pool.query<MessageRecipient>(
      prepared(`SELECT address, domain, fields, handed_over_at AS "handedOverAt" FROM delivery_recipients WHERE delivery_id = $1 AND recipient_id = $2`, [deliveryId, recipientId]),
    );
    return r.rows[0] ?? null;
  }

  /** The fields of the first recipient not excluded (empty when there is none): proofs are personalised with real data. */
  async sampleFields(deliveryId: string): Promise<Record<string, unknown>> {
    const r = await this.pool.query<{ fields: Record<string, unknown> }>(
      `SELECT fields FROM delivery_recipients WHERE delivery_id = $1 AND status <> 'excluded' ORDER BY recipient_id LIMIT 1`,
      [deliveryId],
    );
    return r.rows[0]?.fields ?? {};
  }

  async transitions(deliveryId: string, recipientId: number) {
    const r = await this.pool.query(
      `SELECT at, from_status AS "fromStatus", to_status AS "toStatus", failure_type AS "failureType", failure_reason AS "failureReason",
         smtp_code AS "smtpCode", enhanced_code AS "enhancedCode", reply_text AS "replyText", mx_host AS "mxHost", source
       FROM efs_transitions WHERE delivery_id = $1 AND recipient_id = $2 ORDER BY id`,
      [deliveryId, recipientId],
    );
    return r.rows;
  }

  async attempts(deliveryId: string, recipientId: number) {
    const r = await this.pool.query(
      `SELECT attempt, started_at AS "startedAt", finished_at AS "finishedAt", outcome, smtp_code AS "smtpCode",
         enhanced_code AS "enhancedCode", reply_text AS "replyText", mx_host AS "mxHost", failure_reason AS "failureReason",
         retry_class AS "retryClass", rule_id AS "ruleId", message_id AS "messageId"
       FROM send_attempts WHERE delivery_id = $1 AND recipient_id = $2 ORDER BY attempt`,
      [deliveryId, recipientId],
    );
    return r.rows;
  }

  /**
   * What the delivery's last `n` finished attempts were, while it is sending (null otherwise), counting only attempts
   * finished since its safety window began (its last resume): hard bounces, and final refusals (reason refused, no
   * retry: a policy, spam or block-list refusal; a throttling reply is retried and is the MX rules' business). Reads at
   * most n rows through send_attempts_finished_idx.
   */
  async recentAttempts(deliveryId: string, n: number): Promise<{ attempts: number; hardBounces: number; refusals: number } | null> {
    const r = await this.pool.query<{ sending: boolean; attempts: number; hard: number; refused: number }>(
      `WITH d AS (SELECT state = 'sending' AS sending, COALESCE(safety_window_from, '-infinity'::timestamptz) AS since FROM deliveries WHERE id = $1),
       last AS (
         SELECT a.outcome, a.failure_reason, a.retry_class FROM send_attempts a, d
         WHERE d.sending AND a.delivery_id = $1 AND a.finished_at IS NOT NULL AND a.finished_at > d.since
         ORDER BY a.finished_at DESC LIMIT $2
       )
       SELECT (SELECT sending FROM d) AS sending, count(*)::int AS attempts,
         count(*) FILTER (WHERE outcome = 'hard')::int AS hard,
         count(*) FILTER (WHERE outcome <> 'hard' AND failure_reason = 'refused' AND retry_class = 'none')::int AS refused
       FROM last`,
      [deliveryId, n],
    );
    const row = r.rows[0];
    if (!row?.sending) return null;
    return { attempts: row.attempts, hardBounces: row.hard, refusals: row.refused };
  }
}
