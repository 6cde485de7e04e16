/** One recipient's message: sign, send, qualify, retry soft bounces on durable timers until the retry window ends. */
import { proxyLocalActivities, setHandler, sleep, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { retryWindowEnd } from '../domain/retry-schedule';
import { recipientStateQuery, type RecipientActivities, type RecipientStateView, type RecipientWorkflowInput } from './contract';
import { EfsStatusAttribute, FailureReasonAttribute } from './search-attributes';

// Signing is CPU work on data the worker already has: a local activity saves three history events per recipient.
const { signRecipientMessage } = proxyLocalActivities<RecipientActivities>({
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
  };
  setHandler(recipientStateQuery, () => state);

  // Local-time sending: a durable timer holds the message until the recipient's wall clock reads the chosen time.
  if (input.sendAtMs) {
    const wait = input.sendAtMs - Date.now();
    if (wait > 0) await sleep(wait);
  }

  const { dkimSignature } = await signRecipientMessage({ deliveryId: input.deliveryId, recipientId: input.recipientId });

  for (;;) {
    const outcome = await sendRecipientMessage({
      deliveryId: input.deliveryId,
      recipientId: input.recipientId,
      attempt: state.attempts + 1,
      dkimSignature,
      retryWindowEndsAt: state.retryWindowEndsAtMs,
      workflowNowMs: Date.now(), // the workflow clock: deterministic on replay
    });
    if (outcome.outcome === 'deferred') {
      // Nothing was sent (delivery paused, or the receiving site backed off): wait, then the same attempt again.
      await sleep(outcome.retryInMs ?? 5_000);
      continue;
    }
    const changed = outcome.status !== state.status || outcome.failureReason !== state.failureReason;
    state.attempts = outcome.attempt;
    state.status = outcome.status;
    state.failureType = outcome.failureType;
    state.failureReason = outcome.failureReason;
    state.retryClass = outcome.retryClass;
    state.lastReply = outcome.reply;
    state.nextRetryAtMs = outcome.nextRetryAt;
    if (changed) {
      // Lets the Web UI list, say, every failed + mailbox_full recipient of a delivery. A null value removes the attribute.
      upsertSearchAttributes([
        { key: EfsStatusAttribute, value: state.status },
        { key: FailureReasonAttribute, value: state.failureReason },
      ]);
    }
    if (outcome.nextRetryAt === null) break;
    // Measured on the workflow clock when the outcome arrives, so time lost to activity retries is not added again.
    await sleep(Math.max(0, outcome.nextRetryAt - Date.now()));
    state.nextRetryAtMs = null;
  }
  return state;
}
