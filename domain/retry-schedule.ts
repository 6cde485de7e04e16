/** When to retry a soft bounce, by retry class, and the retry window that bounds every retry. */
import type { RetryClass } from './failure';

/** Soft-bounce retries never go past 3.5 days after the message first entered the sending stage. */
export const MAX_RETRY_WINDOW_MS = 3.5 * 24 * 3600 * 1000;

/** The end of the retry window: the earlier of validity end and 3.5 days after first handover. */
export function retryWindowEnd(validityEndsAtMs: number, firstHandoverAtMs: number): number {
  return Math.min(validityEndsAtMs, firstHandoverAtMs + MAX_RETRY_WINDOW_MS);
}

interface ClassSchedule {
  /** Delay before the first retry. */
  firstMs: number;
  /** Growth factor per further retry. */
  factor: number;
  /** Upper bound of one delay. */
  maxMs: number;
  /** Fraction of random spread (±) so retries of one wave don't hit a receiver in lockstep. */
  jitter: number;
}

const MIN = 60_000;
const HOUR = 60 * MIN;

/**
 * Modern-MTA style schedules. Greylisting usually clears within 5-15 minutes, so retry soon and often;
 * throttling means the site wants less traffic, so back off harder; a full mailbox changes over hours;
 * unreachable hosts get exponential backoff with wide jitter.
 */
export const RETRY_SCHEDULES: Record<Exclude<RetryClass, 'none'>, ClassSchedule> = {
  greylisting: { firstMs: 5 * MIN, factor: 2, maxMs: 1 * HOUR, jitter: 0.1 },
  throttling: { firstMs: 10 * MIN, factor: 2, maxMs: 4 * HOUR, jitter: 0.25 },
  mailbox_full: { firstMs: 4 * HOUR, factor: 1.5, maxMs: 12 * HOUR, jitter: 0.1 },
  unreachable: { firstMs: 15 * MIN, factor: 2, maxMs: 8 * HOUR, jitter: 0.3 },
  transient: { firstMs: 15 * MIN, factor: 2, maxMs: 6 * HOUR, jitter: 0.2 },
};

/**
 * Delay before retry number `retryNumber` (1 for the first retry) of a class.
 * `random` is a number in [0, 1) supplied by the caller, so this stays pure and testable.
 * `scale` shrinks every delay (tests and the sandbox run a day of retries in seconds).
 */
export function retryDelayMs(retryClass: RetryClass, retryNumber: number, random: number, scale = 1): number {
  if (retryClass === 'none') throw new Error('retry class "none" is never retried');
  const s = RETRY_SCHEDULES[retryClass];
  const base = Math.min(s.firstMs * Math.pow(s.factor, Math.max(0, retryNumber - 1)), s.maxMs);
  const spread = 1 + s.jitter * (2 * random - 1);
  return Math.max(1, Math.round(base * spread * scale));
}

/**
 * Next retry instant, clamped to the window end so the last retry happens right at it;
 * null once the window is over (the soft bounce then becomes final).
 */
export function nextRetryAt(
  retryClass: RetryClass,
  retryNumber: number,
  nowMs: number,
  windowEndMs: number,
  random: number,
  scale = 1,
): number | null {
  if (retryClass === 'none' || nowMs >= windowEndMs) return null;
  return Math.min(nowMs + retryDelayMs(retryClass, retryNumber, random, scale), windowEndMs);
}
