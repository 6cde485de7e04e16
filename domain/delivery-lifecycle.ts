/** The one vocabulary for where a delivery is in its life, shared by the workflow, the delivery table and the API. */

export const DELIVERY_PHASES = [
  /** Stored, workflow not started yet (only ever seen in Postgres, for an instant). */
  'created',
  'analysing',
  'awaiting_confirmation',
  'analysis_failed',
  'scheduled',
  'sending',
  'paused',
  'completed',
  'cancelled',
] as const;
export type DeliveryPhase = (typeof DELIVERY_PHASES)[number];

/** Phases before anyone (or auto-confirm) confirmed the delivery: content and target may still change. */
export const BEFORE_CONFIRMATION: readonly DeliveryPhase[] = ['created', 'analysing', 'awaiting_confirmation', 'analysis_failed'];

export function isEndedPhase(phase: DeliveryPhase): boolean {
  return phase === 'completed' || phase === 'cancelled';
}
