/** Starts one page of recipient workflows and ends: keeps the delivery's own history small whatever the population. */
import { ParentClosePolicy, startChild, WorkflowIdReusePolicy } from '@temporalio/workflow';
import { recipientWorkflowId, type RecipientBatchInput } from './contract';
import { recipientWorkflow } from './recipient-workflow';
import { DeliveryIdAttribute, EfsStatusAttribute, RecipientDomainAttribute } from './search-attributes';

export async function recipientBatchWorkflow(input: RecipientBatchInput): Promise<number> {
  let started = 0;
  await Promise.all(
    input.recipients.map(async (r) => {
      try {
        await startChild(recipientWorkflow, {
          workflowId: recipientWorkflowId(input.deliveryId, r.recipientId),
          args: [
            {
              deliveryId: input.deliveryId,
              recipientId: r.recipientId,
              domain: r.domain,
              validityEndsAtMs: input.validityEndsAtMs,
              sendAtMs: r.sendAtMs,
              feedbackWindows: input.feedbackWindows,
            },
          ],
          // Recipients outlive this batch (soft-bounce retries last days); the delivery follows them through the log.
          parentClosePolicy: ParentClosePolicy.ABANDON,
          // A page handed over twice (activity retry, continue-as-new) must never start a second message for a recipient.
          workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
          typedSearchAttributes: [
            { key: DeliveryIdAttribute, value: input.deliveryId },
            { key: EfsStatusAttribute, value: 'taken_into_account' },
            { key: RecipientDomainAttribute, value: r.domain },
          ],
        });
        started++;
      } catch (e) {
        if ((e as Error).name !== 'WorkflowExecutionAlreadyStartedError') throw e;
      }
    }),
  );
  return started;
}
