/** The workflows the worker bundles: one file per workflow. */
export { deliveryWorkflow } from './delivery-workflow';
export { recipientBatchWorkflow } from './recipient-batch-workflow';
export { recipientWorkflow } from './recipient-workflow';
export { proofWorkflow } from './proof-workflow';
export { recurringDeliveryWorkflow } from './recurring-delivery-workflow';
export { webhookEndpointWorkflow } from './webhook-endpoint-workflow';
