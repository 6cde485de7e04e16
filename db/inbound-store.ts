/**
 * The inbound side in Postgres: every message received at the bounce domain (kept compressed with its
 * qualification), attribution lookups, the review table, and the effect of feedback on the delivery log, applied once.
 */
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Pool, PoolClient } from 'pg';
import type { EfsStatus } from '../domain/efs-status';
import type { FailureReason, FailureType } from '../domain/failure';
import { DEFAULT_QUARANTINE_POLICY, type QuarantinePolicy } from '../domain/quarantine-policy';
import type { InboundClassification, InboundRecipientResult } from '../mail/inbound/inbound-classification';
import { inTransaction } from './transaction';

export type InboundChannel = 'smtp' | 'http';
export type Attribution = 'verp' | 'envid' | 'message_id';
/** What one piece of feedback changed: the recipient failed, its reason was updated, it was confirmed sent, its address denylisted, or nothing. */
export type FeedbackEffect = 'failed' | 'reason_updated' | 'confirmed' | 'denylisted' | 'none';

export interface StoredInbound {
  id: string;
  /** True when the very same bytes were received before: nothing is applied twice. */
  duplicate: boolean;
}

export interface RecipientAfter {
  status: EfsStatus;
  failureType: FailureType | null;
  failureReason: FailureReason | null;
}

export interface AppliedFeedback {
  effect: FeedbackEffect;
  /** The recipient's row after the feedback; null when the delivery has no such recipient. */
  after: RecipientAfter | null;
  /** The address was quarantined by this feedback (or already was). */
  quarantined: boolean;
}

export interface InboundMessageRow {
  id: string;
  receivedAt: Date;
  channel: InboundChannel;
  envelopeFrom: string | null;
  envelopeTo: string[];
  sizeBytes: number;
  kind: string;
  messageId: string | null;
  fromHeader: string | null;
  subject: string | null;
  classification: InboundClassification;
  attribution: Attribution | null;
  deliveryId: string | null;
  recipientId: number | null;
  review: { why: string; resolvedAt: Date | null } | null;
}

const MESSAGE_COLUMNS = `m.id::text AS id, m.received_at AS "receivedAt", m.channel, m.envelope_from AS "envelopeFrom",
  m.envelope_to AS "envelopeTo", m.size_bytes AS "sizeBytes", m.kind, m.message_id AS "messageId", m.from_header AS "fromHeader",
  m.subject, m.classification, m.attribution, m.delivery_id AS "deliveryId", m.recipient_id AS "recipientId",
  CASE WHEN r.inbound_message_id IS NULL THEN NULL ELSE json_build_object('why', r.why, 'resolvedAt', r.resolved_at) END AS review`;

export class InboundStore {
  constructor(
    private readonly pool: Pool,
    private readonly quarantinePolicy: QuarantinePolicy = DEFAULT_QUARANTINE_POLICY,
  ) {}

  /** Keeps the raw message (gzip) with its qualification; the same bytes twice are stored once. */
  async store(m: {
    channel: InboundChannel;
    envelopeFrom: string | null;
    envelopeTo: string[];
    remoteAddress: string | null;
    raw: Buffer;
    classification: InboundClassification;
  }): Promise<StoredInbound> {
    const sha256 = createHash('sha256').update(m.raw).digest();
    const c = m.classification;
    const r = await this.pool.query<{ id: string }>(
      `INSERT INTO inbound_messages (channel, envelope_from, envelope_to, remote_address, sha256, size_bytes, raw_gz, kind,
         message_id, from_header, subject, classification)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
       ON CONFLICT (sha256) DO NOTHING RETURNING id::text`,
      [
        m.channel,
        m.envelopeFrom,
        m.envelopeTo,
        m.remoteAddress,
        sha256,
        m.raw.length,
        gzipSync(m.raw),
        c.kind,
        c.messageId?.slice(0, 998) ?? null,
        c.from?.slice(0, 998) ?? null,
        c.subject?.slice(0, 998) ?? null,
        JSON.stringify(c),
      ],
    );
    if (r.rows[0]) return { id: r.rows[0].id, duplicate: false };
    const existing = await this.pool.query<{ id: string }>(`SELECT id::text FROM inbound_messages WHERE sha256 = $1`, [sha256]);
    return { id: existing.rows[0].id, duplicate: true };
  }

  async attribute(id: string, how: Attribution, deliveryId: string, recipientId: number): Promise<void> {
    await this.pool.query(`UPDATE inbound_messages SET attribution = $2, delivery_id = $3, recipient_id = $4 WHERE id = $1`, [id, how, deliveryId, recipientId]);
  }

  /** A message no recipient could be found for: kept for a person to look at, never dropped. */
  async toReview(id: string, why: string): Promise<void> {
    await this.pool.query(`INSERT INTO inbound_review (inbound_message_id, why) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [id, why]);
  }

  /** True when the delivery has this recipient (the listener accepts a VERP address only then). */
  async recipientExists(deliveryId: string, recipientId: number): Promise<boolean> {
    const r = await this.pool.query(`SELECT 1 FROM delivery_recipients WHERE delivery_id = $1 AND recipient_id = $2`, [deliveryId, recipientId]);
    return (r.rowCount ?? 0) > 0;
  }

  /** The recipient whose message had this Message-ID (with or without angle brackets). */
  async recipientByMessageId(messageId: string): Promise<{ deliveryId: string; recipientId: number } | null> {
    const bare = messageId.replace(/^<|>$/g, '');
    const r = await this.pool.query<{ deliveryId: string; recipientId: number }>(
      `SELECT delivery_id AS "deliveryId", recipient_id AS "recipientId" FROM send_attempts WHERE message_id = ANY($1::text[]) LIMIT 1`,
      [[`<${bare}>`, bare]],
    );
    return r.rows[0] ?? null;
  }

  async recipientAddress(deliveryId: string, recipientId: number): Promise<string | null> {
    const r = await this.pool.query<{ address: string }>(`SELECT address FROM delivery_recipients WHERE delivery_id = $1 AND recipient_id = $2`, [
      deliveryId,
      recipientId,
    ]);
    return r.rows[0]?.address ?? null;
  }

  /**
   * Applies what one inbound message says about one recipient, with the EFS table as the law, in one transaction:
   * - a failure (hard or soft, not `delayed`) turns sent, or taken_into_account awaiting a relay's report, into failed,
   *   and counts against the address (hard: quarantined at once);
   * - a delay (`Action: delayed`) only updates the reason of a recipient still taken_into_account;
   * - a delivery report turns a relayed recipient awaiting its report into sent;
   * - a complaint denylists the address; an auto-reply changes nothing.
   * Applying the same message again changes nothing (one feedback row per message and recipient), and so does a
   * second report of what already happened (the transitions are conditional on the current status).
   */
  async applyFeedback(inboundMessageId: string, deliveryId: string, recipientId: number, f: InboundRecipientResult, feedbackType: string | null): Promise<AppliedFeedback> {
    return inTransaction(this.pool, async (client) => {
      const inserted = await client.query<{ id: string }>(
        `INSERT INTO recipient_feedback (inbound_message_id, delivery_id, recipient_id, type, reason, action, status_code, remote_mta, diagnostic, rule, effect)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'none'
         WHERE EXISTS (SELECT 1 FROM delivery_recipients WHERE delivery_id = $2 AND recipient_id = $3)
         ON CONFLICT (inbound_message_id, delivery_id, recipient_id) DO NOTHING RETURNING id::text`,
        [inboundMessageId, deliveryId, recipientId, f.type, f.reason, f.action, f.status, f.remoteMta?.slice(0, 500) ?? null, f.diagnosticCode?.slice(0, 2000) ?? null, f.rule],
      );
      if (!inserted.rows[0]) return { effect: 'none' as const, after: await this.recipientAfter(client, deliveryId, recipientId), quarantined: false };
      const { effect, quarantined } = await this.effectOf(client, deliveryId, recipientId, f, feedbackType);
      await client.query(`UPDATE recipient_feedback SET effect = $2 WHERE id = $1`, [inserted.rows[0].id, effect]);
      return { effect, after: await this.recipientAfter(client, deliveryId, recipientId), quarantined };
    });
  }

  private async effectOf(
    client: PoolClient,
    deliveryId: string,
    recipientId: number,
    f: InboundRecipientResult,
    feedbackType: string | null,
  ): Promise<{ effect: FeedbackEffect; quarantined: boolean }> {
    const p = this.quarantinePolicy;
    const details = [f.replyCode, f.status, f.diagnosticCode?.slice(0, 2000) ?? null, f.remoteMta?.slice(0, 500) ?? null];
    switch (f.type) {
      case 'hard':
      case 'soft': {
        if (f.action === 'delayed') {
          const r = await client.query(
            `WITH updated AS (
               UPDATE delivery_recipients SET failure_type = $3, failure_reason = $4, updated_at = now()
               WHERE delivery_id = $1 AND recipient_id = $2 AND status = 'taken_into_account' AND attempts > 0
               RETURNING recipient_id
             )
             INSERT INTO efs_transitions (delivery_id, recipient_id, from_status, to_status, failure_type, failure_reason,
               smtp_code, enhanced_code, reply_text, mx_host, source)
             SELECT $1, $2, 'taken_into_account', 'taken_into_account', $3, $4, $5, $6, $7, $8, 'dsn' FROM updated`,
            [deliveryId, recipientId, f.type, f.reason ?? 'not_defined', ...details],
          );
          return { effect: (r.rowCount ?? 0) > 0 ? 'reason_updated' : 'none', quarantined: false };
        }
        // The status before, read and locked by a statement of its own: a `SELECT ... FOR UPDATE` in a CTE beside the
        // UPDATE of the same row finds that row already changed by its own statement and returns nothing (the
        // transition was logged with no from_status).
        const previous = await client.query<{ status: EfsStatus }>(
          `SELECT status FROM delivery_recipients WHERE delivery_id = $1 AND recipient_id = $2 FOR UPDATE`,
          [deliveryId, recipientId],
        );
        const r = await client.query<{ address_key: string; from_status: EfsStatus }>(
          `WITH updated AS (
             UPDATE delivery_recipients SET status = 'failed', failure_type = $3, failure_reason = $4, next_retry_at = NULL,
               final_at = now(), updated_at = now()
             WHERE delivery_id = $1 AND recipient_id = $2
               AND (status = 'sent' OR (status = 'taken_into_account' AND relayed_at IS NOT NULL))
             RETURNING address_key
           ), logged AS (
             INSERT INTO efs_transitions (delivery_id, recipient_id, from_status, to_status, failure_type, failure_reason,
               smtp_code, enhanced_code, reply_text, mx_host, source)
             SELECT $1, $2, $9, 'failed', $3, $4, $5, $6, $7, $8, 'dsn' FROM updated
           )
           SELECT address_key, $9::text AS from_status FROM updated`,
          [deliveryId, recipientId, f.type, f.reason ?? 'not_defined', ...details, previous.rows[0]?.status ?? null],
        );
        const row = r.rows[0];
        if (!row) return { effect: 'none', quarantined: false };
        const q = await client.query<{ q: boolean }>(`SELECT record_address_failure($1, $2, $3, $4, $5::interval, $6::interval, 'dsn') AS q`, [
          row.address_key,
          f.reason ?? 'not_defined',
          f.type === 'hard',
          p.softFailuresBeforeQuarantine,
          `${p.softFailureSpanMs} milliseconds`,
          `${p.quarantineMs} milliseconds`,
        ]);
        return { effect: 'failed', quarantined: q.rows[0].q };
      }
      case 'delivered': {
        const r = await client.query(
          `WITH updated AS (
             UPDATE delivery_recipients SET status = 'sent', failure_type = NULL, failure_reason = NULL, final_at = now(), updated_at = now()
             WHERE delivery_id = $1 AND recipient_id = $2 AND status = 'taken_into_account' AND relayed_at IS NOT NULL
             RETURNING address_key
           ), cleared AS (
             SELECT clear_address_failures(address_key) FROM updated
           )
           INSERT INTO efs_transitions (delivery_id, recipient_id, from_status, to_status, enhanced_code, reply_text, mx_host, source)
           SELECT $1, $2, 'taken_into_account', 'sent', $3, $4, $5, 'dsn' FROM updated CROSS JOIN (SELECT count(*) FROM cleared) c`,
          [deliveryId, recipientId, f.status, f.diagnosticCode?.slice(0, 2000) ?? null, f.remoteMta?.slice(0, 500) ?? null],
        );
        return { effect: (r.rowCount ?? 0) > 0 ? 'confirmed' : 'none', quarantined: false };
      }
      case 'complaint': {
        const r = await client.query(
          `INSERT INTO address_denylist (address_key, reason, source, delivery_id, recipient_id, feedback_type)
           SELECT address_key, 'complaint', 'complaint', delivery_id, recipient_id, $3 FROM delivery_recipients
           WHERE delivery_id = $1 AND recipient_id = $2
           ON CONFLICT (address_key) DO NOTHING`,
          [deliveryId, recipientId, feedbackType?.slice(0, 100) ?? null],
        );
        return { effect: (r.rowCount ?? 0) > 0 ? 'denylisted' : 'none', quarantined: false };
      }
      case 'ignored':
        return { effect: 'none', quarantined: false };
    }
  }

  private async recipientAfter(client: PoolClient, deliveryId: string, recipientId: number): Promise<RecipientAfter | null> {
    const r = await client.query<RecipientAfter>(
      `SELECT status, failure_type AS "failureType", failure_reason AS "failureReason" FROM delivery_recipients WHERE delivery_id = $1 AND recipient_id = $2`,
      [deliveryId, recipientId],
    );
    return r.rows[0] ?? null;
  }

  async message(id: string): Promise<InboundMessageRow | null> {
    if (!/^\d{1,18}$/.test(id)) return null;
    const r = await this.pool.query<InboundMessageRow>(
      `SELECT ${MESSAGE_COLUMNS} FROM inbound_messages m LEFT JOIN inbound_review r ON r.inbound_message_id = m.id WHERE m.id = $1`,
      [id],
    );
    return r.rows[0] ?? null;
  }

  /** The raw message as received; null when there is no such message. */
  async raw(id: string): Promise<Buffer | null> {
    if (!/^\d{1,18}$/.test(id)) return null;
    const r = await this.pool.query<{ raw_gz: Buffer }>(`SELECT raw_gz FROM inbound_messages WHERE id = $1`, [id]);
    return r.rows[0] ? gunzipSync(r.rows[0].raw_gz) : null;
  }

  /** Newest first, keyset paging on the id; `review` keeps only unattributed messages not yet resolved. */
  async list(opts: { beforeId?: string; limit: number; review?: boolean; deliveryId?: string; kind?: string }): Promise<InboundMessageRow[]> {
    const r = await this.pool.query<InboundMessageRow>(
      `SELECT ${MESSAGE_COLUMNS} FROM inbound_messages m LEFT JOIN inbound_review r ON r.inbound_message_id = m.id
       WHERE ($1::bigint IS NULL OR m.id < $1) AND (NOT $3::boolean OR (r.inbound_message_id IS NOT NULL AND r.resolved_at IS NULL))
         AND ($4::uuid IS NULL OR m.delivery_id = $4) AND ($5::text IS NULL OR m.kind = $5)
       ORDER BY m.id DESC LIMIT $2`,
      [opts.beforeId ?? null, opts.limit, opts.review ?? false, opts.deliveryId ?? null, opts.kind ?? null],
    );
    return r.rows;
  }

  /** Marks a message of the review table as dealt with; false when it is not in the table. */
  async resolveReview(id: string): Promise<boolean> {
    if (!/^\d{1,18}$/.test(id)) return false;
    const r = await this.pool.query(`UPDATE inbound_review SET resolved_at = COALESCE(resolved_at, now()) WHERE inbound_message_id = $1`, [id]);
    return (r.rowCount ?? 0) > 0;
  }

  /** Every piece of feedback a recipient received, oldest first. */
  async recipientFeedback(deliveryId: string, recipientId: number) {
    const r = await this.pool.query(
      `SELECT id::text, inbound_message_id::text AS "inboundMessageId", received_at AS "receivedAt", type, reason, action,
         status_code AS "status", remote_mta AS "remoteMta", diagnostic, rule, effect
       FROM recipient_feedback WHERE delivery_id = $1 AND recipient_id = $2 ORDER BY id`,
      [deliveryId, recipientId],
    );
    return r.rows;
  }
}
