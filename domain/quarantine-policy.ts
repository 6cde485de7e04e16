/**
 * When an address that keeps failing is quarantined (later analyses exclude it), what resets its failure count, and
 * when a quarantine ends. The delivery log applies these rules in SQL (record_address_failure, migration 031), for
 * synchronous replies and asynchronous bounces alike; applyQuarantineEffect is their definition, tested against it.
 */
import type { EfsStatus } from './efs-status';
import type { FailureReason, FailureType } from './failure';

export interface QuarantinePolicy {
  /** Final soft failures of messages, across deliveries, after which an address is quarantined... */
  softFailuresBeforeQuarantine: number;
  /** ...when the first and the last of them are more than this apart: a mailbox full for an hour is not a dead address. */
  softFailureSpanMs: number;
  /** How long a quarantine lasts unless a new failure renews it. */
  quarantineMs: number;
}

const DAY_MS = 24 * 3600 * 1000;

/**
 * The defaults (QUARANTINE_SOFT_FAILURES, QUARANTINE_SOFT_SPAN_HOURS, QUARANTINE_DAYS): three soft failures spread
 * over more than a day, 30 days of quarantine. A hard failure (the address will never work) quarantines at once.
 */
export const DEFAULT_QUARANTINE_POLICY: QuarantinePolicy = Object.freeze({
  softFailuresBeforeQuarantine: 3,
  softFailureSpanMs: DAY_MS,
  quarantineMs: 30 * DAY_MS,
});

export function quarantinePolicyFromSettings(s: { QUARANTINE_SOFT_FAILURES: number; QUARANTINE_SOFT_SPAN_HOURS: number; QUARANTINE_DAYS: number }): QuarantinePolicy {
  return Object.freeze({
    softFailuresBeforeQuarantine: s.QUARANTINE_SOFT_FAILURES,
    softFailureSpanMs: Math.round(s.QUARANTINE_SOFT_SPAN_HOURS * 3600 * 1000),
    quarantineMs: Math.round(s.QUARANTINE_DAYS * DAY_MS),
  });
}

/** What one message's result does to its address's quarantine record; the store applies it with the result. */
export type QuarantineEffect =
  /** Nothing: the message is still being retried, or its result says nothing about the address. */
  | { kind: 'none' }
  /** The message ended in a failure: a hard one quarantines now, a soft one is counted. */
  | { kind: 'count_failure'; reason: FailureReason; hard: boolean }
  /** A message got through: the failure count of an address that is not quarantined starts again from zero. */
  | { kind: 'clear_count' };

/** The recipient's status after an attempt or a report, as the delivery log records it. */
export interface AttemptEnd {
  status: EfsStatus;
  failureType: FailureType | null;
  failureReason: FailureReason | null;
}

const NO_EFFECT: QuarantineEffect = Object.freeze({ kind: 'none' });
const CLEAR_COUNT: QuarantineEffect = Object.freeze({ kind: 'clear_count' });

/**
 * The effect of a result that left the recipient with `end`. Only a message's final outcome counts: a soft failure
 * still inside its retry window is not a failure of the message yet. An ignored failure counts as delivered.
 */
export function quarantineEffect(end: AttemptEnd): QuarantineEffect {
  if (end.status === 'sent') return CLEAR_COUNT;
  if (end.status !== 'failed' || (end.failureType !== 'hard' && end.failureType !== 'soft') || end.failureReason === null) return NO_EFFECT;
  return { kind: 'count_failure', reason: end.failureReason, hard: end.failureType === 'hard' };
}

/** An address's quarantine record; null before its first counted failure. Times are epoch ms. */
export interface QuarantineRecord {
  errorCount: number;
  quarantined: boolean;
  reason: FailureReason;
  firstFailureAtMs: number;
  /** Set while quarantined: the quarantine ends then unless renewed. */
  expiresAtMs: number | null;
}

/** True while the record keeps its address out of deliveries. */
export function isQuarantined(record: QuarantineRecord | null, nowMs: number): boolean {
  return record !== null && record.quarantined && (record.expiresAtMs === null || record.expiresAtMs > nowMs);
}

/**
 * The record after an effect at `nowMs`. A success clears the count of an address that is not quarantined and never
 * lifts a quarantine; a failure of a quarantined address renews the quarantine (and keeps the reason that caused it);
 * an expired quarantine starts over as if the address had never failed.
 */
export function applyQuarantineEffect(
  record: QuarantineRecord | null,
  effect: QuarantineEffect,
  nowMs: number,
  policy: QuarantinePolicy = DEFAULT_QUARANTINE_POLICY,
): QuarantineRecord | null {
  switch (effect.kind) {
    case 'none':
      return record;
    case 'clear_count':
      return record && !isQuarantined(record, nowMs) ? { ...record, errorCount: 0 } : record;
    case 'count_failure': {
      const live = record !== null && (!record.quarantined || isQuarantined(record, nowMs)) ? record : null;
      const errorCount = (live?.errorCount ?? 0) + 1;
      const firstFailureAtMs = live && live.errorCount > 0 ? live.firstFailureAtMs : nowMs;
      const wasQuarantined = live?.quarantined ?? false;
      const quarantined =
        wasQuarantined ||
        effect.hard ||
        (errorCount >= policy.softFailuresBeforeQuarantine && nowMs - firstFailureAtMs > policy.softFailureSpanMs);
      return {
        errorCount,
        quarantined,
        reason: wasQuarantined ? live!.reason : effect.reason,
        firstFailureAtMs,
        expiresAtMs: quarantined ? nowMs + policy.quarantineMs : null,
      };
    }
  }
}
