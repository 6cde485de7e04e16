/** Activities of the webhook endpoint workflow: the outbox long poll, one signed POST of a message, disabling an endpoint. */
import { setTimeout as setTimeoutPromise } from 'node:timers/promises';
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type { ActivityDependencies } from './dependencies';
import type { WebhookActivities, WebhookRetryTunables } from '../workflows/contract';
import type { Settings } from '../config/settings';
import { postWebhook, signedWebhookHeaders } from './webhook-sender';

/** While waiting, the poll looks at the outbox at least this often, in case a notification was lost. */
const RECHECK_MS = 5_000;
/**
 * Events are committed but a transaction older than them still runs (they cannot be cut into a message yet, see
 * migration 035): look again soon instead of waiting for a notification that the older transaction may never send.
 */
const RECHECK_BEHIND_RUNNING_TRANSACTION_MS = 250;
/**
 * While a message is left to fill (WEBHOOK_BATCH_LINGER_MS), the poll looks again at most this often when notified of
 * new events, so that a message that becomes full goes out without waiting for the rest of the linger, and a busy
 * outbox does not cost one look per committed transaction.
 */
const LINGER_LOOK_EVERY_MS = 250;
/** Pruning of old events and messages runs at most this often per worker process. */
const PRUNE_EVERY_MS = 10 * 60_000;

export function webhookRetryTunables(s: Settings): WebhookRetryTunables {
  return {
    initialIntervalMs: Math.round(s.WEBHOOK_RETRY_INITIAL_SECONDS * 1000),
    maximumIntervalMs: Math.round(s.WEBHOOK_RETRY_MAX_INTERVAL_SECONDS * 1000),
    windowMs: Math.round(s.WEBHOOK_RETRY_WINDOW_SECONDS * 1000),
    attemptTimeoutMs: Math.round(s.WEBHOOK_HTTP_TIMEOUT_SECONDS * 1000),
  };
}

/** Waits `ms` (nothing when it is not positive), or less when `signal` aborts (the caller then sees the abort). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return setTimeoutPromise(ms, undefined, { signal }).catch(() => undefined);
}

function duration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${Math.round(ms / 1000)} s`;
}

export function createWebhookActivities(deps: ActivityDependencies): WebhookActivities {
  const s = deps.settings;
  const store = deps.webhooks;
  let lastPruneMs = 0;

  async function pruneNowAndThen(): Promise<void> {
    if (Date.now() - lastPruneMs < PRUNE_EVERY_MS) return;
    lastPruneMs = Date.now();
    const pruned = await store.prune(new Date(Date.now() - s.WEBHOOK_RETENTION_DAYS * 86_400_000));
    if (pruned.events || pruned.messages) console.log(JSON.stringify({ msg: 'webhook outbox pruned', ...pruned }));
  }

  return {
    async awaitWebhookMessage({ subscriptionId }) {
      const ctx = Context.current();
      const deadline = Date.now() + s.WEBHOOK_POLL_WAIT_SECONDS * 1000;
      await pruneNowAndThen().catch((e) => console.error(JSON.stringify({ msg: 'webhook outbox prune failed', error: (e as Error).message })));
      const linger = s.WEBHOOK_BATCH_LINGER_MS;
      /** When this poll first left a message to fill: it is cut at the latest a linger later, whatever the clocks say. */
      let lingeringSince: number | null = null;
      for (;;) {
        const seen = store.notifications.generation;
        const lookedAt = Date.now();
        const lingerMs = lingeringSince !== null && lookedAt - lingeringSince >= linger ? 0 : linger;
        const next = await store.nextMessage(subscriptionId, s.WEBHOOK_BATCH_MAX_EVENTS, lingerMs);
        if (next.kind === 'message') return { kind: 'message', messageId: next.messageId, eventCount: next.eventCount, retry: webhookRetryTunables(s) };
        if (next.kind === 'gone' || next.kind === 'disabled') return next;
        ctx.heartbeat();
        if (next.lingerMs !== undefined) {
          // Events wait for the message to fill. The linger ends the wait even past the poll's deadline (it is short),
          // as returning idle would only start another poll that finds them again.
          lingeringSince ??= lookedAt;
          const until = Date.now() + next.lingerMs;
          const notified = await store.notifications.wait(seen, next.lingerMs, ctx.cancellationSignal);
          // New events may have filled the message: look again, but not sooner than LINGER_LOOK_EVERY_MS after the last look.
          if (notified) await sleep(Math.min(until, lookedAt + LINGER_LOOK_EVERY_MS) - Date.now(), ctx.cancellationSignal);
        } else {
          const remaining = deadline - Date.now();
          if (remaining <= 0) return { kind: 'idle' };
          await store.notifications.wait(seen, Math.min(remaining, next.unsafePending ? RECHECK_BEHIND_RUNNING_TRANSACTION_MS : RECHECK_MS), ctx.cancellationSignal);
        }
        if (ctx.cancellationSignal.aborted) throw new CancelledFailure('the long poll was cancelled');
      }
    },

    async deliverWebhookMessage({ subscriptionId, messageId }) {
      const m = await store.messageToSend(messageId);
      if (!m || m.subscriptionId !== subscriptionId) {
        throw ApplicationFailure.nonRetryable(`webhook message ${messageId} no longer exists: the subscription was deleted`, 'WebhookSubscriptionGone');
      }
      // Sent by an attempt whose answer to the workflow was lost.
      if (m.deliveredAt) return { statusCode: null, eventCount: m.events.length };
      if (!m.enabled) throw ApplicationFailure.nonRetryable(m.disabledReason ?? 'the subscription is disabled', 'WebhookSubscriptionDisabled');
      const startedAt = new Date();
      if (m.events.length === 0) {
        // Every event of a message retried past the retention is gone: nothing left to send.
        await store.recordAttempt({ messageId, startedAt, durationMs: 0, statusCode: null, error: 'its events expired (WEBHOOK_RETENTION_DAYS) before delivery', responseExcerpt: null, delivered: true });
        return { statusCode: null, eventCount: 0 };
      }
      // The batch's timestamp is when it was cut, so the body is the same bytes on every attempt.
      const body = JSON.stringify({ type: 'event.batch', timestamp: m.createdAt.toISOString(), data: { events: m.events } });
      const timeoutMs = Math.round(s.WEBHOOK_HTTP_TIMEOUT_SECONDS * 1000);
      const r = await postWebhook(m.url, signedWebhookHeaders(m.secret, m.id, body, startedAt), body, timeoutMs);
      const attempt = await store.recordAttempt({
        messageId,
        startedAt,
        durationMs: r.durationMs,
        statusCode: r.statusCode,
        error: r.error,
        responseExcerpt: r.responseExcerpt,
        delivered: r.ok,
      });
      if (r.ok) return { statusCode: r.statusCode, eventCount: m.events.length };
      const detail = { subscriptionId, messageId, attempt, statusCode: r.statusCode };
      if (r.statusCode === 410) throw ApplicationFailure.nonRetryable('the endpoint answered 410 Gone', 'WebhookEndpointGone', detail);
      throw ApplicationFailure.create({
        message: r.error ?? 'failed',
        type: 'WebhookDeliveryFailed',
        details: [detail],
        // A Retry-After (429, 503) moves the next attempt, never past the longest interval.
        ...(r.retryAfterMs !== null ? { nextRetryDelay: Math.min(r.retryAfterMs, s.WEBHOOK_RETRY_MAX_INTERVAL_SECONDS * 1000) } : {}),
      });
    },

    async disableWebhookEndpoint({ subscriptionId, cause, windowMs }) {
      const last = await store.lastAttempt(subscriptionId);
      const lastText = last ? `; last attempt (${last.attempt}) at ${last.at.toISOString()}: ${last.error ?? `HTTP ${last.statusCode}`}` : '';
      const reason =
        cause === 'gone'
          ? `the endpoint answered 410 Gone (it asks not to be sent events any more)${lastText}`
          : `no attempt succeeded within the retry window of ${duration(windowMs)}${lastText}`;
      const changed = await store.disableAfterFailures(subscriptionId, reason);
      if (changed) console.log(JSON.stringify({ msg: 'webhook endpoint disabled', subscriptionId, reason }));
      return { reason };
    },
  };
}
