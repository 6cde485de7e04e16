/** One run of a recurring delivery: started by the template's Temporal Schedule, it creates an ordinary delivery from the template and runs it to the end. */
import { ChildWorkflowCancellationType, executeChild, ParentClosePolicy, proxyActivities, workflowInfo } from '@temporalio/workflow';
import { deliveryWorkflowId, type RecurringActivities, type RecurringDeliveryInput, type RecurringRunResult } from './contract';
import { deliveryWorkflow } from './delivery-workflow';
import { DeliveryIdAttribute } from './search-attributes';

// Copies the list into the delivery in one INSERT ... SELECT: seconds even for a million members.
const { createDeliveryFromTemplate } = proxyActivities<RecurringActivities>({
  startToCloseTimeout: '10 minutes',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 10 },
});

export async function recurringDeliveryWorkflow(input: RecurringDeliveryInput): Promise<RecurringRunResult> {
  const info = workflowInfo();
  // The schedule gives each run its own workflow ID (its ID plus the scheduled time): the run's idempotency key.
  const created = await createDeliveryFromTemplate({ templateId: input.templateId, runKey: info.workflowId, runAtMs: info.startTime.getTime() });
  const workflowId = deliveryWorkflowId(created.deliveryId);
  const final = await executeChild(deliveryWorkflow, {
    workflowId,
    // The same workflow as a delivery created through POST /api/deliveries, except that no one confirms it.
    args: [created.workflowInput],
    typedSearchAttributes: [{ key: DeliveryIdAttribute, value: created.deliveryId }],
    // The delivery lives its own life: ending this run (terminate, cancel) never stops a delivery half sent.
    // It is controlled like any other, through /api/deliveries/:id (pause, cancel).
    parentClosePolicy: ParentClosePolicy.ABANDON,
    cancellationType: ChildWorkflowCancellationType.ABANDON,
  });
  return {
    templateId: input.templateId,
    deliveryId: created.deliveryId,
    deliveryWorkflowId: workflowId,
    recipients: created.recipients,
    phase: final.phase,
    kpis: final.kpis,
  };
}
