/**
 * One durable loop per webhook subscription: long-poll the outbox for the next message, send it until the endpoint
 * takes it (exponential backoff between attempts, scheduled by the Temporal server: no worker slot is held while
 * waiting), and when nothing succeeds for the retry window, disable the subscription and wait to be enabled again.
 * Messages go one after the other, so the endpoint receives the events in outbox order; an endpoint that is down
 * holds back only its own loop.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  TimeoutFailure,
  condition,
  continueAsNew,
  isCancellation,
  log,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import {
  webhookDisableSignal,
  webhookEnableSignal,
  webhookEndpointStateQuery,
  type WebhookActivities,
  type WebhookEndpointInput,
  type WebhookEndpointView,
  type WebhookRetryTunables,
} from './contract';

// The long poll waits about a minute, heartbeating every few seconds: a worker that dies is noticed within the heartbeat
// timeout and the poll starts again on another. Retried without end: while Postgres is down there is nothing else to do.
const { awaitWebhookMessage } = proxyActivities<WebhookActivities>({
  startToCloseTimeout: '3 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

// One short write.
const { disableWebhookEndpoint } = proxyActivities<WebhookActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

/**
 * One message's delivery: each attempt gets the HTTP time limit plus room for the log writes around it; retries
 * double from the initial interval up to the maximum; the schedule-to-close timeout is the retry window, after which
 * the activity fails with a TimeoutFailure and the endpoint is disabled.
 */
function deliveryWith(t: WebhookRetryTunables) {
  return proxyActivities<WebhookActivities>({
    startToCloseTimeout: t.attemptTimeoutMs + 10_000,
    scheduleToCloseTimeout: t.windowMs,
    retry: { initialInterval: t.initialIntervalMs, backoffCoefficient: 2, maximumInterval: t.maximumIntervalMs },
  }).deliverWebhookMessage;
}

/** About 150 messages, or 10 idle hours (one long poll a minute), per run. */
const HISTORY_EVENTS_BEFORE_CONTINUE = 2_000;

type Step = { kind: 'next' } | { kind: 'disabled'; reason: string | null } | { kind: 'gone' };

export async function webhookEndpointWorkflow(input: WebhookEndpointInput): Promise<WebhookEndpointView> {
  const { subscriptionId } = input;
  const r = input.resume;
  const view: WebhookEndpointView = {
    subscriptionId,
    phase: r?.disabled ? 'disabled' : 'waiting',
    messageId: null,
    disabledReason: r?.disabledReason ?? null,
    messagesDelivered: r?.messagesDelivered ?? 0,
    eventsDelivered: r?.eventsDelivered ?? 0,
  };
  // The API writes the subscription first, then signals: the signal only wakes or interrupts the loop.
  let requested: { kind: 'enable' } | { kind: 'disable'; reason: string | null } | null = null;
  let current: CancellationScope | null = null;
  /** Set when a disable signal cancelled the running step (an enable may follow it in the same task). */
  let cancelledByDisable: { reason: string | null } | null = null;

  setHandler(webhookEndpointStateQuery, () => view);
  // Kept even when it arrives before the loop has seen its own disable (the activity's result and the signal in one
  // task): the subscription says enabled then. A stale one costs one poll, which finds the subscription disabled.
  setHandler(webhookEnableSignal, () => {
    requested = { kind: 'enable' };
  });
  setHandler(webhookDisableSignal, (req) => {
    requested = { kind: 'disable', reason: req?.reason ?? null };
    if (current) {
      cancelledByDisable = { reason: req?.reason ?? null };
      current.cancel();
    }
  });

  /** Waits for the next message and sends it; a disable signal cancels it wherever it is (poll, attempt, backoff). */
  async function step(): Promise<Step> {
    const scope = new CancellationScope();
    current = scope;
    try {
      return await scope.run(pollAndDeliver);
    } catch (e) {
      if (isCancellation(e) && cancelledByDisable) {
        const { reason } = cancelledByDisable;
        cancelledByDisable = null;
        if (requested?.kind === 'disable') requested = null;
        return { kind: 'disabled', reason };
      }
      throw e; // the workflow itself was cancelled (the subscription was deleted)
    } finally {
      current = null;
    }
  }

  async function pollAndDeliver(): Promise<Step> {
    view.phase = 'waiting';
    const next = await awaitWebhookMessage({ subscriptionId });
    if (next.kind === 'idle') return { kind: 'next' };
    if (next.kind !== 'message') return next;
    view.phase = 'delivering';
    view.messageId = next.messageId;
    try {
      const sent = await deliveryWith(next.retry)({ subscriptionId, messageId: next.messageId });
      view.messagesDelivered++;
      view.eventsDelivered += sent.eventCount;
      view.messageId = null;
      return { kind: 'next' };
    } catch (e) {
      if (!(e instanceof ActivityFailure) || isCancellation(e)) throw e;
      const cause = e.cause;
      if (cause instanceof ApplicationFailure && cause.type === 'WebhookSubscriptionGone') return { kind: 'gone' };
      if (cause instanceof ApplicationFailure && cause.type === 'WebhookSubscriptionDisabled') return { kind: 'disabled', reason: cause.message };
      const gone = cause instanceof ApplicationFailure && cause.type === 'WebhookEndpointGone';
      // The server stops retrying when the next attempt would start after the schedule-to-close timeout: the failure
      // is then the last attempt's, with retry state TIMEOUT.
      const windowOver = e.retryState === 'TIMEOUT' || cause instanceof TimeoutFailure;
      if (!gone && !windowOver) log.warn('webhook delivery failed unexpectedly', { subscriptionId, retryState: e.retryState, error: String(cause?.message ?? e.message) });
      // Out of the retry window (or refused for good): the endpoint is disabled, with the reason the API shows.
      const { reason } = await disableWebhookEndpoint({ subscriptionId, cause: gone ? 'gone' : 'retry_window', windowMs: next.retry.windowMs });
      return { kind: 'disabled', reason };
    }
  }

  for (;;) {
    if (view.phase === 'disabled') {
      await condition(() => requested?.kind === 'enable');
      requested = null;
      view.phase = 'waiting';
      view.disabledReason = null;
    }
    const info = workflowInfo();
    if (info.historyLength > HISTORY_EVENTS_BEFORE_CONTINUE || info.continueAsNewSuggested) {
      return continueAsNew<typeof webhookEndpointWorkflow>({
        subscriptionId,
        resume: { disabled: false, disabledReason: null, messagesDelivered: view.messagesDelivered, eventsDelivered: view.eventsDelivered },
      });
    }
    const outcome = await step();
    if (outcome.kind === 'gone') return view;
    if (outcome.kind === 'disabled') {
      view.phase = 'disabled';
      view.disabledReason = outcome.reason;
      view.messageId = null;
    }
  }
}
