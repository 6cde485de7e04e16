/** When an address that keeps failing is quarantined (later analyses exclude it), and what resets its failure count. */
import type { EfsStatus } from './efs-status';
import type { FailureReason, FailureType } from './failure';

export interface QuarantinePolicy {
  /** Messages ending in a failure, across deliveries, after which an address is quarantined. */
  failuresBeforeQuarantine: number;
  /** Final failures that quarantine at once: they say the address itself does not exist, so no later message can reach it. */
  quarantineAtOnce: readonly { type: FailureType; reason: FailureReason }[];
}

/**
 * A hard "user unknown" quarantines at once; three messages ending in a failure, across deliveries, quarantine too
 * (a mailbox full for days or a disabled account: mailbox providers read repeated sends to such addresses as a
 * sign of a stale list); a message that gets through resets the count.
 */
export const QUARANTINE_POLICY: QuarantinePolicy = Object.freeze({
  failuresBeforeQuarantine: 3,
  quarantineAtOnce: Object.freeze([{ type: 'hard', reason: 'user_unknown' }] as const),
});

/** What one attempt's result does to its address's quarantine record; the store applies it with the attempt. */
export type QuarantineEffect =
  /** Nothing: the message is still being retried, or its result says nothing about the address. */
  | { kind: 'none' }
  /** One more message ended in a failure: count it, and quarantine now or once the count reaches `quarantineAtCount`. */
  | { kind: 'count_failure'; reason: FailureReason; quarantineNow: boolean; quarantineAtCount: number }
  /** A message got through: the failure count of an address that is not quarantined starts again from zero. */
  | { kind: 'clear_count' };

/** The recipient's status after an attempt, as the delivery log records it. */
export interface AttemptEnd {
  status: EfsStatus;
  failureType: FailureType | null;
  failureReason: FailureReason | null;
}

const NO_EFFECT: QuarantineEffect = Object.freeze({ kind: 'none' });
const CLEAR_COUNT: QuarantineEffect = Object.freeze({ kind: 'clear_count' });

/**
 * The effect of an attempt that left the recipient with `end`. Only a message's final outcome counts: a soft failure
 * still inside its retry window is not a failure of the message yet. An ignored failure counts as delivered.
 */
export function quarantineEffect(end: AttemptEnd, policy: QuarantinePolicy = QUARANTINE_POLICY): QuarantineEffect {
  if (end.status === 'sent') return CLEAR_COUNT;
  if (end.status !== 'failed' || (end.failureType !== 'hard' && end.failureType !== 'soft') || end.failureReason === null) return NO_EFFECT;
  const { failureType, failureReason } = end;
  return {
    kind: 'count_failure',
    reason: failureReason,
    quarantineNow: policy.quarantineAtOnce.some((q) => q.type === failureType && q.reason === failureReason),
    quarantineAtCount: policy.failuresBeforeQuarantine,
  };
}

/** An address's quarantine record; null before its first counted failure. */
export interface QuarantineRecord {
  errorCount: number;
  quarantined: boolean;
  reason: FailureReason;
}

/**
 * The record after an effect: the meaning of an effect, which the delivery log applies in SQL, atomically with the
 * attempt, against the row other workers may be updating at the same time. A quarantine is never lifted here: a
 * later success clears the count only of an address that is not quarantined.
 */
export function applyQuarantineEffect(record: QuarantineRecord | null, effect: QuarantineEffect): QuarantineRecord | null {
  switch (effect.kind) {
    case 'none':
      return record;
    case 'clear_count':
      return record && !record.quarantined ? { ...record, errorCount: 0 } : record;
    case 'count_failure': {
      const errorCount = (record?.errorCount ?? 0) + 1;
      return {
        errorCount,
        reason: effect.reason,
        quarantined: (record?.quarantined ?? false) || effect.quarantineNow || errorCount >= effect.quarantineAtCount,
      };
    }
  }
}
