/** All activities of the worker, built from injected dependencies. Workflows import only the type. */
import type { ActivityDependencies } from './dependencies';
import { createDeliveryActivities } from './delivery-activities';
import { createSendingActivities } from './sending-activities';

export function createActivities(deps: ActivityDependencies) {
  return { ...createDeliveryActivities(deps), ...createSendingActivities(deps) };
}

export type Activities = ReturnType<typeof createActivities>;
export type { SendOutcome, SendInput } from './sending-activities';
export type { AnalysisSummary } from './delivery-activities';
