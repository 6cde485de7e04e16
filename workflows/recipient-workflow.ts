/**
 * One recipient's message: sign, send, qualify, retry soft bounces on durable timers until the retry window ends,
 * then stay open for asynchronous feedback for a while (relay mode: until a delivery report or the confirmation
 * window's end; direct mode: late bounces), so that the query and the search attributes stay the live truth.
 */
import { condition, patched, proxyActivities, proxyLocalActivities, setHandler, sleep, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { retryWindowEnd } from '../domain/retry-schedule';
import {
  recipientFeedbackSignal,
  recipientStateQuery,
  type RecipientActivities,
  type RecipientFeedback,
  type RecipientStateView,
  type RecipientWorkflowInput,
} from './contract';
import { EfsStatusAttribute, FailureReasonAttribute } from './search-attributes';

// Signing is CPU work on data the worker already has: a local activity saves three history events per recipient.
const { signRecipientMessage, confirmAfterReportWindow } = proxyLocalActivities<RecipientActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10 },
});

// One SMTP transaction, run as a local activity: no activity task round trip and no second workflow task per message
// (the server's cost per recipient is what bounds throughput). connect + greeting + DATA timeouts stay well under
// 5 minutes. A worker that dies mid-send is noticed when its workflow task times out (10 s); the retry finds the
// attempt row and never resends an accepted message (docs/idempotency.md). SMTP rejections are results, not failures.
const { sendRecipientMessage } = proxyLocalActivities<RecipientActivities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 30 },
});

// A message whose receiving site has no budget within the local activity's short wait (docs/mx-rules.md) goes on as
// this regular activity. While the site has none, it fails with a retryable SiteBudgetWait carrying nextRetryDelay = the
// time to its reserved slot: the server holds and retries it, which adds no history event, no workflow task and no
// polling loop however long the wait (one ActivityTaskScheduled/Started/Completed for the whole wait). Those waits are
// not attempts of the message: no attempt number, no soft bounce, no retry budget. The retry policy is therefore
// unlimited in attempts; the activity itself ends the wait at the message's retry window end (an 'expired' outcome),
// and scheduleToClose, past the longest window (3.5 days), is only a backstop. 5 minutes start-to-close: the longest
// wait in memory (MX_REMOTE_WAIT_MS, 2 minutes at most) plus one SMTP transaction. It heartbeats every 5 s: a task lost
// between the server and a busy worker is retried 15 s later, and, since every wait counts as an attempt, genuine
// failures back off to 5 s at most instead of growing with the number of waits.
const { sendRecipientMessageWhenSiteAllows } = proxyActivities<RecipientActivities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '15 seconds',
  scheduleToCloseTimeout: '4 days',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 seconds' },
});

/** Patch (2026-12-02): a site-budget deferral goes on as the regular activity above instead of a timer and a retry (docs/workflow-versioning.md). */
const SITE_BUDGET_WAIT_SERVER_SIDE = 'site-budget-wait-server-side';

/** Feedback entries kept in the query view: a recipient rarely gets more than two; a loop of auto-replies must not grow the state. */
const MAX_FEEDBACK_KEPT = 20;

export async function recipientWorkflow(input: RecipientWorkflowInput): Promise<RecipientStateView> {
  const handedOverAtMs = workflowInfo().runStartTime.getTime();
  const state: RecipientStateView = {
    deliveryId: input.deliveryId,
    recipientId: input.recipientId,
    status: 'taken_into_account',
    failureType: null,
    failureReason: null,
    retryClass: null,
    attempts: 0,
    sendAtMs: input.sendAtMs ?? null,
    nextRetryAtMs: null,
    retryWindowEndsAtMs: retryWindowEnd(input.validityEndsAtMs, handedOverAtMs),
    lastReply: null,
    feedback: [],
    feedbackWindowEndsAtMs: null,
    statusSource: null,
  };
  setHandler(recipientStateQuery, () => state);

  /** Mirrors a status the delivery log now holds; the search attributes follow it (a null value removes one). */
  function setStatus(next: Pick<RecipientStateView, 'status' | 'failureType' | 'failureReason'>, source: string): void {
    const changed = next.status !== state.status || next.failureReason !== state.failureReason;
    state.status = next.status;
    state.failureType = next.failureType;
    state.failureReason = next.failureReason;
    state.statusSource = source;
    if (changed) {
      upsertSearchAttributes([
        { key: EfsStatusAttribute, value: state.status },
        { key: FailureReasonAttribute, value: state.failureReason },
      ]);
    }
  }

  // The inbound side has already applied the feedback to the delivery log (the law is the EFS table there); the
  // workflow shows it. A complaint or an auto-reply leaves the status as it is.
  setHandler(recipientFeedbackSignal, (feedback: RecipientFeedback) => {
    state.feedback!.push(feedback);
    if (state.feedback!.length > MAX_FEEDBACK_KEPT) state.feedback!.shift();
    if (feedback.type !== 'complaint' && feedback.type !== 'ignored') setStatus(feedback.after, 'dsn');
  });

  // Local-time sending: a durable timer holds the message until the recipient's wall clock reads the chosen time.
  if (input.sendAtMs) {
    const wait = input.sendAtMs - Date.now();
    if (wait > 0) await sleep(wait);
  }

  const { dkimSignature } = await signRecipientMessage({ deliveryId: input.deliveryId, recipientId: input.recipientId });

  let awaitingReport = false;
  for (;;) {
    let outcome = await sendRecipientMessage({
      deliveryId: input.deliveryId,
      recipientId: input.recipientId,
      attempt: state.attempts + 1,
      dkimSignature,
      retryWindowEndsAt: state.retryWindowEndsAtMs,
      workflowNowMs: Date.now(), // the workflow clock: deterministic on replay
    });
    // Recipients that deferred before this change (no siteWait in their histories) keep the timer below.
    if (outcome.outcome === 'deferred' && outcome.siteWait && patched(SITE_BUDGET_WAIT_SERVER_SIDE)) {
      outcome = await sendRecipientMessageWhenSiteAllows({
        deliveryId: input.deliveryId,
        recipientId: input.recipientId,
        attempt: state.attempts + 1,
        dkimSignature,
        retryWindowEndsAt: state.retryWindowEndsAtMs,
        workflowNowMs: Date.now(),
        reservation: outcome.siteWait.reservation,
      });
    }
    if (outcome.outcome === 'deferred') {
      // Nothing was sent (delivery paused, or the receiving site backed off): wait, then the same attempt again.
      await sleep(outcome.retryInMs ?? 5_000);
      continue;
    }
    state.attempts = outcome.attempt;
    state.retryClass = outcome.retryClass;
    state.lastReply = outcome.reply;
    state.nextRetryAtMs = outcome.nextRetryAt;
    // Lets the Web UI list, say, every failed + mailbox_full recipient of a delivery.
    setStatus(outcome, outcome.awaitingReport ? 'relay' : 'smtp');
    awaitingReport = outcome.awaitingReport === true;
    if (outcome.nextRetryAt === null) break;
    // Measured on the workflow clock when the outcome arrives, so time lost to activity retries is not added again.
    await sleep(Math.max(0, outcome.nextRetryAt - Date.now()));
    state.nextRetryAtMs = null;
  }

  // Recipients started before feedback windows existed end here, as they always did.
  const windows = input.feedbackWindows;
  if (windows && patched('feedback-window')) {
    if (awaitingReport) {
      // Relay mode: sent only once a report says so, or when the window ends with none (recorded as such).
      state.feedbackWindowEndsAtMs = Date.now() + windows.relayConfirmationMs;
      const reported = windows.relayConfirmationMs > 0 && (await condition(() => state.status !== 'taken_into_account', windows.relayConfirmationMs));
      if (!reported) {
        const confirmed = await confirmAfterReportWindow({ deliveryId: input.deliveryId, recipientId: input.recipientId });
        setStatus(confirmed, confirmed.confirmedByWindow ? 'confirmation_window' : 'dsn');
      }
    } else if (state.status === 'sent' && windows.afterAcceptedMs > 0) {
      // Direct mode: a late bounce can still turn sent into failed; after a failure nothing else can change.
      state.feedbackWindowEndsAtMs = Date.now() + windows.afterAcceptedMs;
      await condition(() => state.status === 'failed', windows.afterAcceptedMs);
    }
    state.feedbackWindowEndsAtMs = null;
  }
  return state;
}
