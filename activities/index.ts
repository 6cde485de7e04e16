/** All activities of the worker, built from injected dependencies; checked against the contract the workflows call. */
import type { Activities } from '../workflows/contract';
import type { ActivityDependencies } from './dependencies';
import { createDeliveryActivities } from './delivery-activities';
import { createSendingActivities } from './sending-activities';
import { createAnalysisActivities } from './delivery-analysis';
import { createProofActivities } from './proof-activities';
import { createRecurringActivities } from './recurring-activities';
import { createWebhookActivities } from './webhook-activities';

export function createActivities(deps: ActivityDependencies): Activities {
  return { ...createAnalysisActivities(deps), ...createDeliveryActivities(deps), ...createSendingActivities(deps), ...createProofActivities(deps), ...createRecurringActivities(deps), ...createWebhookActivities(deps) };
}
