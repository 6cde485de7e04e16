/** All activities of the worker, built from injected dependencies. Workflows import only the type. */
import type { ActivityDependencies } from './dependencies';
import { createDeliveryActivities } from './delivery-activities';
import { createSendingActivities } from './sending-activities';
import { createAnalysisActivities } from './delivery-analysis';
import { createProofActivities } from './proof-activities';
import { createRecurringActivities } from './recurring-activities';

export function createActivities(deps: ActivityDependencies) {
  return { ...createAnalysisActivities(deps), ...createDeliveryActivities(deps), ...createSendingActivities(deps), ...createProofActivities(deps), ...createRecurringActivities(deps) };
}

export type Activities = ReturnType<typeof createActivities>;
export type { SendOutcome, SendInput } from './sending-activities';
export type { AnalysisSummary } from './delivery-analysis';
export type { HandedOverRecipient } from './delivery-activities';
