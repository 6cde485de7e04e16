/**
 * Webhook subscriptions, the event outbox their endpoints read (migration 035), the messages cut from it and every
 * HTTP attempt made with them (the endpoint's delivery log).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import type { KeyCipher } from '../mail/dkim/key-cipher';
import { webhookEventId, type WebhookEvent, type WebhookEventType } from '../domain/webhook-events';
import { insertAuditEntry, type AuditActor } from './audit-log-store';
import { inTransaction } from './transaction';
import { WebhookNotifications } from './webhook-notifications';

export interface WebhookSubscription {
  id: string;
  url: string;
  description: string | null;
  eventTypes: WebhookEventType[];
  enabled: boolean;
  disabledReason: string | null;
  disabledAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewWebhookSubscription {
  url: string;
  eventTypes: WebhookEventType[];
  description?: string | null;
  /** False: created disabled (nothing is sent until it is enabled; events are still kept for it). */
  enabled?: boolean;
}

export interface WebhookSubscriptionChanges {
  url?: string;
  eventTypes?: WebhookEventType[];
  description?: string | null;
}

/** What an endpoint's workflow should do next. */
export type NextWebhookMessage =
  | { kind: 'message'; messageId: string; eventCount: number }
  /**
   * Nothing to send yet. `unsafePending`: events exist but a transaction older than them is still running.
   * `lingerMs`: wanted events are ready but fewer than a full message, and the oldest of them is younger than the
   * linger asked for: the message is left to fill, and is cut at the latest this many milliseconds from now.
   */
  | { kind: 'none'; unsafePending: boolean; lingerMs?: number }
  | { kind: 'disabled'; reason: string | null }
  | { kind: 'gone' };

/** A message with everything needed to send it. */
export interface WebhookMessageToSend {
  id: string;
  subscriptionId: string;
  kind: 'stream' | 'replay';
  createdAt: Date;
  deliveredAt: Date | null;
  attempts: number;
  url: string;
  secret: string;
  enabled: boolean;
  disabledReason: string | null;
  /** The message's events still in the outbox (retention may have removed some of a very old message). */
  events: WebhookEvent[];
}

export interface WebhookAttemptInput {
  messageId: string;
  startedAt: Date;
  durationMs: number;
  statusCode: number | null;
  error: string | null;
  responseExcerpt: string | null;
  /** A 2xx: the message is delivered, and a stream message moves the subscription's cursor past its events. */
  delivered: boolean;
}

export interface WebhookAttemptRow {
  id: number;
  messageId: string;
  kind: 'stream' | 'replay';
  attempt: number;
  startedAt: Date;
  durationMs: number;
  statusCode: number | null;
  error: string | null;
  responseExcerpt: string | null;
  eventIds: string[];
  messageDeliveredAt: Date | null;
}

export interface WebhookSubscriptionStatus {
  lastAttempt: { at: Date; statusCode: number | null; error: string | null } | null;
  lastDeliveredAt: Date | null;
  /** The message the endpoint is being sent (retried) now, if any. */
  pending: { messageId: string; kind: string; attempts: number; since: Date; eventCount: number } | null;
}

const SUBSCRIPTION_COLUMNS = `id, url, description, event_types AS "eventTypes", enabled, disabled_reason AS "disabledReason",
  disabled_at AS "disabledAt", created_at AS "createdAt", updated_at AS "updatedAt"`;

/** Rows scanned past the cursor per look: a subscription to rare types skips others this many at a time. */
const SCAN_ROWS = 5_000;
/** Rows removed per statement when pruning, so no statement holds locks for long. */
const PRUNE_CHUNK = 10_000;

/** A new signing secret: "whsec_" and 32 random bytes in base64, the Standard Webhooks form. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

function newMessageId(): string {
  return `msg_${randomUUID().replace(/-/g, '')}`;
}

export class WebhookStore {
  /** LISTEN on the outbox's channel (one connection per process, opened by the first long poll). */
  readonly notifications: WebhookNotifications;

  constructor(
    private readonly pool: Pool,
    private readonly cipher: KeyCipher,
  ) {
    this.notifications = new WebhookNotifications(pool.options);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Subscriptions
  // ---------------------------------------------------------------------------------------------------------------

  /**
   * Stores a subscription and its new secret. It receives the events of transactions that were still running or
   * not begun when it was created: its cursor starts at the oldest running transaction.
   */
  async create(input: NewWebhookSubscription, actor?: AuditActor): Promise<{ subscription: WebhookSubscription; secret: string }> {
    const id = randomUUID();
    const secret = newWebhookSecret();
    const enabled = input.enabled ?? true;
    const subscription = await this.changeSubscriptions(async (c) => {
      const r = await c.query<WebhookSubscription>(
        `INSERT INTO webhook_subscriptions (id, url, description, event_types, secret_enc, enabled, disabled_reason, disabled_at, cursor_txid)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, pg_snapshot_xmin(pg_current_snapshot()))
         RETURNING ${SUBSCRIPTION_COLUMNS}`,
        [id, input.url, input.description ?? null, input.eventTypes, this.cipher.encrypt(secret), enabled, enabled ? null : 'created disabled', enabled ? null : new Date()],
      );
      if (actor) {
        await insertAuditEntry(c, { actor, action: 'webhook.create', targetType: 'webhook', targetId: id, details: { url: input.url, eventTypes: input.eventTypes, enabled } });
      }
      return r.rows[0];
    });
    return { subscription, secret };
  }

  async list(): Promise<WebhookSubscription[]> {
    const r = await this.pool.query<WebhookSubscription>(`SELECT ${SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions ORDER BY created_at, id`);
    return r.rows;
  }

  async get(id: string): Promise<WebhookSubscription | null> {
    const r = await this.pool.query<WebhookSubscription>(`SELECT ${SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id = $1`, [id]);
    return r.rows[0] ?? null;
  }

  /** The signing secret in clear (admin only); null when there is no such subscription. */
  async secret(id: string, actor?: AuditActor): Promise<string | null> {
    const r = await this.pool.query<{ secret_enc: Buffer }>(`SELECT secret_enc FROM webhook_subscriptions WHERE id = $1`, [id]);
    if (!r.rows[0]) return null;
    if (actor) await insertAuditEntry(this.pool, { actor, action: 'webhook.read_secret', targetType: 'webhook', targetId: id });
    return this.cipher.decrypt(r.rows[0].secret_enc);
  }

  /** URL, types or description; null when there is no such subscription. */
  async update(id: string, changes: WebhookSubscriptionChanges, actor?: AuditActor): Promise<WebhookSubscription | null> {
    return this.changeSubscriptions(async (c) => {
      const r = await c.query<WebhookSubscription>(
        `UPDATE webhook_subscriptions SET url = COALESCE($2, url), event_types = COALESCE($3, event_types),
           description = CASE WHEN $4::boolean THEN $5 ELSE description END, updated_at = now()
         WHERE id = $1 RETURNING ${SUBSCRIPTION_COLUMNS}`,
        [id, changes.url ?? null, changes.eventTypes ?? null, changes.description !== undefined, changes.description ?? null],
      );
      if (r.rows[0] && actor) await insertAuditEntry(c, { actor, action: 'webhook.update', targetType: 'webhook', targetId: id, details: { ...changes } });
      return r.rows[0] ?? null;
    });
  }

  /**
   * Enables or disables; `changed` is false when it already was so. Disabling keeps the cursor and the outbox keeps
   * the endpoint's events, so enabling again resumes where it stopped (within the retention).
   */
  async setEnabled(
    id: string,
    enabled: boolean,
    reason: string | null,
    actor?: AuditActor,
  ): Promise<{ subscription: WebhookSubscription; changed: boolean } | null> {
    return inTransaction(this.pool, async (c) => {
      const r = await c.query<WebhookSubscription & { was: boolean }>(
        `WITH before AS (SELECT enabled AS was FROM webhook_subscriptions WHERE id = $1 FOR UPDATE)
         UPDATE webhook_subscriptions s SET enabled = $2,
           disabled_reason = CASE WHEN $2 THEN NULL WHEN before.was THEN $3 ELSE s.disabled_reason END,
           disabled_at = CASE WHEN $2 THEN NULL WHEN before.was THEN now() ELSE s.disabled_at END,
           updated_at = now()
         FROM before WHERE s.id = $1
         RETURNING ${SUBSCRIPTION_COLUMNS}, before.was`,
        [id, enabled, reason],
      );
      const row = r.rows[0];
      if (!row) return null;
      const { was, ...subscription } = row;
      const changed = was !== enabled;
      if (changed && actor) {
        await insertAuditEntry(c, { actor, action: enabled ? 'webhook.enable' : 'webhook.disable', targetType: 'webhook', targetId: id, details: reason ? { reason } : {} });
      }
      return { subscription, changed };
    });
  }

  /** Removes a subscription with its messages and delivery log; false when there was none. */
  async delete(id: string, actor?: AuditActor): Promise<boolean> {
    return this.changeSubscriptions(async (c) => {
      const r = await c.query<{ url: string }>(`DELETE FROM webhook_subscriptions WHERE id = $1 RETURNING url`, [id]);
      if (r.rows[0] && actor) await insertAuditEntry(c, { actor, action: 'webhook.delete', targetType: 'webhook', targetId: id, details: { url: r.rows[0].url } });
      return r.rows.length > 0;
    });
  }

  /**
   * Runs a change of the subscriptions with the switch row locked, then recomputes the event types the triggers
   * write: two concurrent changes run one after the other, and the second recomputes after the first committed.
   */
  private changeSubscriptions<T>(work: (c: PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, async (c) => {
      await c.query('SELECT 1 FROM webhook_switch FOR UPDATE');
      const result = await work(c);
      await c.query(
        `UPDATE webhook_switch SET event_types =
           COALESCE((SELECT array_agg(DISTINCT t ORDER BY t) FROM webhook_subscriptions, unnest(event_types) t), '{}')`,
      );
      return result;
    });
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Delivery to an endpoint (the endpoint workflow's activities)
  // ---------------------------------------------------------------------------------------------------------------

  /**
   * The message the endpoint should be sent next: one not yet delivered (a stream message being retried, a replay),
   * else a new stream message cut from the next events after the cursor (up to `maxEvents` of the subscribed types,
   * in outbox order, never past a transaction still running). Idempotent: asked again, it returns the same message.
   *
   * With `lingerMs` > 0, fewer than `maxEvents` wanted events are cut only once the oldest of them was written at least
   * `lingerMs` ago (by the database's clock); until then it answers `none` with the time left, so that events arriving
   * in a burst go out as a few full messages rather than many small ones.
   */
  async nextMessage(subscriptionId: string, maxEvents: number, lingerMs = 0): Promise<NextWebhookMessage> {
    for (;;) {
      const s = await this.pool.query<{ enabled: boolean; disabled_reason: string | null; event_types: string[]; cursor_txid: string; cursor_seq: number }>(
        `SELECT enabled, disabled_reason, event_types, cursor_txid::text, cursor_seq FROM webhook_subscriptions WHERE id = $1`,
        [subscriptionId],
      );
      const sub = s.rows[0];
      if (!sub) return { kind: 'gone' };
      if (!sub.enabled) return { kind: 'disabled', reason: sub.disabled_reason };

      const pending = await this.pool.query<{ id: string; n: number }>(
        `SELECT id, cardinality(event_seqs) AS n FROM webhook_messages WHERE subscription_id = $1 AND delivered_at IS NULL
         ORDER BY created_at, id LIMIT 1`,
        [subscriptionId],
      );
      if (pending.rows[0]) return { kind: 'message', messageId: pending.rows[0].id, eventCount: pending.rows[0].n };

      // Rows of a transaction at or above the oldest one still running are not final yet (a lower one may still come):
      // the scan stops at the first of them.
      // (The text form of txid is named tx: ORDER BY txid would otherwise sort by an output column named txid, as text.)
      // age_ms: how long ago the event was written (migration 038), for the linger.
      const scanned = await this.pool.query<{ seq: number; tx: string; wanted: boolean; safe: boolean; age_ms: number }>(
        `SELECT e.seq, e.txid::text AS tx, e.type = ANY ($3::text[]) AS wanted, e.txid < pg_snapshot_xmin(pg_current_snapshot()) AS safe,
           (extract(epoch FROM clock_timestamp() - e.created_at) * 1000)::float8 AS age_ms
         FROM webhook_events e WHERE (e.txid, e.seq) > ($1::xid8, $2::bigint) ORDER BY e.txid, e.seq LIMIT $4`,
        [sub.cursor_txid, sub.cursor_seq, sub.event_types, SCAN_ROWS],
      );
      const seqs: number[] = [];
      let last: { txid: string; seq: number } | null = null;
      let unsafePending = false;
      let oldestAgeMs = 0;
      for (const row of scanned.rows) {
        if (!row.safe) {
          unsafePending = true;
          break;
        }
        last = { txid: row.tx, seq: row.seq };
        if (row.wanted) {
          // Outbox order is not write order across transactions: the oldest is the largest age, wherever it is.
          oldestAgeMs = Math.max(oldestAgeMs, row.age_ms);
          seqs.push(row.seq);
          if (seqs.length >= maxEvents) break;
        }
      }
      if (!last) return { kind: 'none', unsafePending };
      if (seqs.length > 0 && seqs.length < maxEvents && oldestAgeMs < lingerMs) {
        // Not full and still young: let it fill (the cursor is not moved either, so nothing changes meanwhile).
        return { kind: 'none', unsafePending, lingerMs: Math.max(1, Math.ceil(lingerMs - oldestAgeMs)) };
      }
      if (seqs.length === 0) {
        // Only events of other types: skip them and look further.
        await this.pool.query(
          `UPDATE webhook_subscriptions SET cursor_txid = $2::xid8, cursor_seq = $3 WHERE id = $1 AND cursor_txid = $4::xid8 AND cursor_seq = $5`,
          [subscriptionId, last.txid, last.seq, sub.cursor_txid, sub.cursor_seq],
        );
        continue;
      }
      const inserted = await this.pool.query<{ id: string }>(
        `INSERT INTO webhook_messages (id, subscription_id, kind, event_seqs, from_txid, from_seq, to_txid, to_seq)
         VALUES ($1, $2, 'stream', $3, $4::xid8, $5, $6::xid8, $7)
         ON CONFLICT (subscription_id, from_txid, from_seq) WHERE kind = 'stream' DO NOTHING RETURNING id`,
        [newMessageId(), subscriptionId, seqs, sub.cursor_txid, sub.cursor_seq, last.txid, last.seq],
      );
      if (inserted.rows[0]) return { kind: 'message', messageId: inserted.rows[0].id, eventCount: seqs.length };
      // Cut by an earlier attempt whose answer was lost: the same message again.
      continue;
    }
  }

  /** A message with its endpoint and events; null when it (or its subscription) no longer exists. */
  async messageToSend(messageId: string): Promise<WebhookMessageToSend | null> {
    const r = await this.pool.query<{
      id: string;
      subscription_id: string;
      kind: 'stream' | 'replay';
      created_at: Date;
      delivered_at: Date | null;
      attempts: number;
      event_seqs: string[];
      url: string;
      secret_enc: Buffer;
      enabled: boolean;
      disabled_reason: string | null;
    }>(
      `SELECT m.id, m.subscription_id, m.kind, m.created_at, m.delivered_at, m.attempts, m.event_seqs, s.url, s.secret_enc, s.enabled, s.disabled_reason
       FROM webhook_messages m JOIN webhook_subscriptions s ON s.id = m.subscription_id WHERE m.id = $1`,
      [messageId],
    );
    const m = r.rows[0];
    if (!m) return null;
    const events = await this.pool.query<{ seq: number; type: WebhookEventType; occurred_at: Date; data: Record<string, unknown> }>(
      `SELECT seq, type, occurred_at, data FROM webhook_events WHERE seq = ANY ($1::bigint[]) ORDER BY txid, seq`,
      [m.event_seqs],
    );
    return {
      id: m.id,
      subscriptionId: m.subscription_id,
      kind: m.kind,
      createdAt: m.created_at,
      deliveredAt: m.delivered_at,
      attempts: m.attempts,
      url: m.url,
      secret: this.cipher.decrypt(m.secret_enc),
      enabled: m.enabled,
      disabledReason: m.disabled_reason,
      events: events.rows.map((e) => ({ id: webhookEventId(e.seq), type: e.type, timestamp: e.occurred_at.toISOString(), data: e.data })),
    };
  }

  /**
   * Logs one HTTP attempt; a delivered one also marks its message delivered and, for a stream message, moves the
   * cursor past it, in the same statement. Returns the attempt's number for this message.
   */
  async recordAttempt(a: WebhookAttemptInput): Promise<number> {
    const r = await this.pool.query<{ attempt: number }>(
      `WITH m AS (
         UPDATE webhook_messages SET attempts = attempts + 1,
           delivered_at = CASE WHEN $7::boolean THEN COALESCE(delivered_at, now()) ELSE delivered_at END
         WHERE id = $1 RETURNING subscription_id, attempts, kind, to_txid, to_seq
       ), cursor AS (
         UPDATE webhook_subscriptions s SET cursor_txid = m.to_txid, cursor_seq = m.to_seq
         FROM m WHERE $7::boolean AND m.kind = 'stream' AND s.id = m.subscription_id AND (s.cursor_txid, s.cursor_seq) < (m.to_txid, m.to_seq)
       )
       INSERT INTO webhook_attempts (subscription_id, message_id, attempt, started_at, duration_ms, status_code, error, response_excerpt)
       SELECT subscription_id, $1, attempts, $2, $3, $4, $5, $6 FROM m RETURNING attempt`,
      [a.messageId, a.startedAt, a.durationMs, a.statusCode, a.error, a.responseExcerpt, a.delivered],
    );
    return r.rows[0]?.attempt ?? 0;
  }

  /**
   * Disables a subscription because its endpoint could not be reached (retry window over, or 410 Gone), with the
   * reason shown by the API; recorded in the audit log under the engine's name.
   */
  async disableAfterFailures(id: string, reason: string): Promise<boolean> {
    return inTransaction(this.pool, async (c) => {
      const r = await c.query(
        `UPDATE webhook_subscriptions SET enabled = false, disabled_reason = $2, disabled_at = now() WHERE id = $1 AND enabled`,
        [id, reason],
      );
      const changed = (r.rowCount ?? 0) > 0;
      if (changed) {
        await insertAuditEntry(c, { actor: { keyId: null, name: 'webhook delivery' }, action: 'webhook.disable', targetType: 'webhook', targetId: id, details: { reason } });
      }
      return changed;
    });
  }

  /** The last attempts of a subscription's pending message (the disable reason quotes the last one). */
  async lastAttempt(subscriptionId: string): Promise<{ at: Date; statusCode: number | null; error: string | null; attempt: number } | null> {
    const r = await this.pool.query<{ at: Date; statusCode: number | null; error: string | null; attempt: number }>(
      `SELECT started_at AS at, status_code AS "statusCode", error, attempt FROM webhook_attempts WHERE subscription_id = $1 ORDER BY id DESC LIMIT 1`,
      [subscriptionId],
    );
    return r.rows[0] ?? null;
  }

  /**
   * Queues one event to be sent again to the endpoint as a message of its own (a new webhook-id; the event keeps its
   * id). Null when the subscription or the event does not exist (an event past the retention is gone).
   */
  async replay(subscriptionId: string, seq: number, actor?: AuditActor): Promise<{ messageId: string } | null> {
    return inTransaction(this.pool, async (c) => {
      const messageId = newMessageId();
      const r = await c.query(
        `INSERT INTO webhook_messages (id, subscription_id, kind, event_seqs)
         SELECT $1, s.id, 'replay', ARRAY[e.seq] FROM webhook_subscriptions s, webhook_events e WHERE s.id = $2 AND e.seq = $3`,
        [messageId, subscriptionId, seq],
      );
      if ((r.rowCount ?? 0) === 0) return null;
      await c.query(`SELECT pg_notify('webhook_events', '')`);
      if (actor) {
        await insertAuditEntry(c, { actor, action: 'webhook.replay', targetType: 'webhook', targetId: subscriptionId, details: { eventId: webhookEventId(seq), messageId } });
      }
      return { messageId };
    });
  }

  /** The endpoint's delivery log, newest first (keyset paging on the attempt id). */
  async attempts(subscriptionId: string, o: { beforeId?: number; limit: number }): Promise<WebhookAttemptRow[]> {
    const r = await this.pool.query<Omit<WebhookAttemptRow, 'eventIds'> & { seqs: string[] }>(
      `SELECT a.id, a.message_id AS "messageId", m.kind, a.attempt, a.started_at AS "startedAt", a.duration_ms AS "durationMs",
         a.status_code AS "statusCode", a.error, a.response_excerpt AS "responseExcerpt", m.event_seqs AS seqs,
         m.delivered_at AS "messageDeliveredAt"
       FROM webhook_attempts a JOIN webhook_messages m ON m.id = a.message_id
       WHERE a.subscription_id = $1 AND ($2::bigint IS NULL OR a.id < $2)
       ORDER BY a.id DESC LIMIT $3`,
      [subscriptionId, o.beforeId ?? null, o.limit],
    );
    return r.rows.map(({ seqs, ...a }) => ({ ...a, eventIds: seqs.map(webhookEventId) }));
  }

  /** Last attempt, last success, and the message being sent now. */
  async status(subscriptionId: string): Promise<WebhookSubscriptionStatus> {
    const r = await this.pool.query<{ last: WebhookSubscriptionStatus['lastAttempt']; delivered: Date | null; pending: WebhookSubscriptionStatus['pending'] }>(
      `SELECT
         (SELECT json_build_object('at', started_at, 'statusCode', status_code, 'error', error)
          FROM webhook_attempts WHERE subscription_id = $1 ORDER BY id DESC LIMIT 1) AS last,
         (SELECT max(delivered_at) FROM webhook_messages WHERE subscription_id = $1) AS delivered,
         (SELECT json_build_object('messageId', id, 'kind', kind, 'attempts', attempts, 'since', created_at, 'eventCount', cardinality(event_seqs))
          FROM webhook_messages WHERE subscription_id = $1 AND delivered_at IS NULL ORDER BY created_at, id LIMIT 1) AS pending`,
      [subscriptionId],
    );
    const row = r.rows[0];
    return {
      lastAttempt: row.last ? { ...row.last, at: new Date(row.last.at as unknown as string) } : null,
      lastDeliveredAt: row.delivered,
      pending: row.pending ? { ...row.pending, since: new Date(row.pending.since as unknown as string) } : null,
    };
  }

  /**
   * Removes events older than `olderThan` (from the oldest, in chunks) and delivered messages with their attempts.
   * Undelivered messages stay, so a disabled endpoint's log still says what it was being sent.
   */
  async prune(olderThan: Date): Promise<{ events: number; messages: number }> {
    let events = 0;
    // Events are appended in about occurred_at order: the first recent one bounds the old ones, found by walking only
    // the old rows of the primary key.
    const bound = await this.pool.query<{ seq: number | null }>(
      `SELECT (SELECT seq FROM webhook_events WHERE occurred_at >= $1 ORDER BY seq LIMIT 1) AS seq`,
      [olderThan],
    );
    const below = bound.rows[0].seq;
    for (;;) {
      const r = await this.pool.query(
        `DELETE FROM webhook_events WHERE seq IN (
           SELECT seq FROM webhook_events WHERE ($2::bigint IS NULL OR seq < $2) AND occurred_at < $1 ORDER BY seq LIMIT $3)`,
        [olderThan, below, PRUNE_CHUNK],
      );
      events += r.rowCount ?? 0;
      if ((r.rowCount ?? 0) < PRUNE_CHUNK) break;
    }
    let messages = 0;
    for (;;) {
      const r = await this.pool.query(
        `DELETE FROM webhook_messages WHERE id IN (
           SELECT id FROM webhook_messages WHERE created_at < $1 AND delivered_at IS NOT NULL ORDER BY created_at LIMIT $2)`,
        [olderThan, PRUNE_CHUNK],
      );
      messages += r.rowCount ?? 0;
      if ((r.rowCount ?? 0) < PRUNE_CHUNK) break;
    }
    return { events, messages };
  }

  /** Closes the LISTEN connection (the process is stopping). */
  close(): Promise<void> {
    return this.notifications.close();
  }
}
