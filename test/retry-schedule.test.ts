/** The pure retry schedule: per-class delays, growth, caps and jitter bounds, and the retry window that ends every retry. */
import { describe, expect, it } from 'vitest';
import { MAX_RETRY_WINDOW_MS, RETRY_SCHEDULES, nextRetryAt, retryDelayMs, retryWindowEnd } from '../domain/retry-schedule';
import type { RetryClass } from '../domain/failure';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
/** random = 0.5 is the schedule without jitter. */
const MID = 0.5;

type Retried = Exclude<RetryClass, 'none'>;

/** The modern-MTA schedule the requirement describes, per class: delays of retries 1, 2, 3, ... without jitter. */
const EXPECTED: Record<Retried, { delays: number[]; cap: number; jitter: number }> = {
  // Greylisting clears in minutes: retry after 5 minutes, then sooner than any other class grows to.
  greylisting: { delays: [5 * MIN, 10 * MIN, 20 * MIN, 40 * MIN, 1 * HOUR, 1 * HOUR], cap: 1 * HOUR, jitter: 0.1 },
  // Throttling backs off: 10 minutes doubling, up to 4 hours.
  throttling: { delays: [10 * MIN, 20 * MIN, 40 * MIN, 80 * MIN, 160 * MIN, 4 * HOUR, 4 * HOUR], cap: 4 * HOUR, jitter: 0.25 },
  // A full mailbox changes over hours: 4 h, ×1.5, up to 12 h.
  mailbox_full: { delays: [4 * HOUR, 6 * HOUR, 9 * HOUR, 12 * HOUR, 12 * HOUR], cap: 12 * HOUR, jitter: 0.1 },
  // Unreachable hosts: exponential from 15 minutes, up to 8 hours, with wide jitter.
  unreachable: { delays: [15 * MIN, 30 * MIN, 60 * MIN, 2 * HOUR, 4 * HOUR, 8 * HOUR, 8 * HOUR], cap: 8 * HOUR, jitter: 0.3 },
  transient: { delays: [15 * MIN, 30 * MIN, 60 * MIN, 2 * HOUR, 4 * HOUR, 6 * HOUR, 6 * HOUR], cap: 6 * HOUR, jitter: 0.2 },
};

describe('retryDelayMs', () => {
  for (const [retryClass, e] of Object.entries(EXPECTED) as [Retried, (typeof EXPECTED)[Retried]][]) {
    it(`${retryClass}: first delay, growth and cap`, () => {
      expect(e.delays.map((_, i) => retryDelayMs(retryClass, i + 1, MID))).toEqual(e.delays);
      expect(retryDelayMs(retryClass, 50, MID)).toBe(e.cap);
      expect(retryDelayMs(retryClass, 10_000, MID)).toBe(e.cap); // no overflow past the cap
      expect(RETRY_SCHEDULES[retryClass].jitter).toBe(e.jitter);
    });

    it(`${retryClass}: jitter stays within ±${e.jitter * 100}% (random 0 and 0.999)`, () => {
      for (let n = 1; n <= 20; n++) {
        const base = retryDelayMs(retryClass, n, MID);
        const low = retryDelayMs(retryClass, n, 0);
        const high = retryDelayMs(retryClass, n, 0.999);
        expect(low).toBe(Math.round(base * (1 - e.jitter)));
        expect(high).toBeLessThan(Math.round(base * (1 + e.jitter)));
        expect(high).toBeGreaterThan(Math.round(base * (1 + e.jitter * 0.99)));
        for (const r of [0.1, 0.25, 0.75, 0.9]) {
          const d = retryDelayMs(retryClass, n, r);
          expect(d).toBeGreaterThanOrEqual(low);
          expect(d).toBeLessThanOrEqual(high);
        }
      }
    });
  }

  it('orders the classes as a modern MTA does: greylisting soonest, mailbox full latest', () => {
    const first = (c: Retried) => retryDelayMs(c, 1, MID);
    expect(first('greylisting')).toBeLessThan(first('throttling'));
    expect(first('throttling')).toBeLessThan(first('unreachable'));
    expect(first('unreachable')).toBeLessThan(first('mailbox_full'));
    expect(first('mailbox_full')).toBeGreaterThanOrEqual(HOUR);
  });

  it('scales every delay (sandbox and tests), never below 1 ms', () => {
    expect(retryDelayMs('greylisting', 1, MID, 0.002)).toBe(600);
    expect(retryDelayMs('mailbox_full', 2, MID, 0.001)).toBe(Math.round(6 * HOUR * 0.001));
    expect(retryDelayMs('greylisting', 1, 0, 1e-12)).toBe(1);
  });

  it('treats a retry number below 1 as the first retry', () => {
    expect(retryDelayMs('throttling', 0, MID)).toBe(10 * MIN);
  });

  it('refuses the class that is never retried', () => {
    expect(() => retryDelayMs('none', 1, MID)).toThrow(/never retried/);
  });
});

describe('retryWindowEnd', () => {
  const handover = Date.UTC(2026, 0, 1, 8, 0, 0);

  it('is 3.5 days after first handover', () => {
    expect(MAX_RETRY_WINDOW_MS).toBe(3.5 * DAY);
  });

  it('takes the validity end when it is earlier than 3.5 days after handover', () => {
    expect(retryWindowEnd(handover + DAY, handover)).toBe(handover + DAY);
    expect(retryWindowEnd(handover + 3.5 * DAY - 1, handover)).toBe(handover + 3.5 * DAY - 1);
  });

  it('takes 3.5 days after handover when the validity is longer', () => {
    expect(retryWindowEnd(handover + 5 * DAY, handover)).toBe(handover + 3.5 * DAY);
    expect(retryWindowEnd(handover + 3.5 * DAY, handover)).toBe(handover + 3.5 * DAY);
  });

  it('is already over when the validity ended before handover', () => {
    expect(retryWindowEnd(handover - HOUR, handover)).toBe(handover - HOUR);
    expect(nextRetryAt('mailbox_full', 1, handover, retryWindowEnd(handover - HOUR, handover), MID)).toBeNull();
  });
});

describe('nextRetryAt', () => {
  const now = Date.UTC(2026, 0, 1, 8, 0, 0);

  it('is now plus the class delay inside the window', () => {
    expect(nextRetryAt('greylisting', 1, now, now + DAY, MID)).toBe(now + 5 * MIN);
    expect(nextRetryAt('mailbox_full', 3, now, now + DAY, MID)).toBe(now + 9 * HOUR);
    expect(nextRetryAt('unreachable', 1, now, now + DAY, 0)).toBe(now + Math.round(15 * MIN * 0.7));
    expect(nextRetryAt('throttling', 1, now, now + DAY, 0.999)).toBe(now + retryDelayMs('throttling', 1, 0.999));
  });

  it('clamps to the window end, so the last retry happens right at it', () => {
    expect(nextRetryAt('mailbox_full', 1, now, now + HOUR, MID)).toBe(now + HOUR);
    expect(nextRetryAt('mailbox_full', 5, now, now + 11 * HOUR, 0.999)).toBe(now + 11 * HOUR);
    expect(nextRetryAt('greylisting', 1, now, now + 1, MID)).toBe(now + 1);
    // A delay that ends exactly at the window end is kept as is.
    expect(nextRetryAt('greylisting', 1, now, now + 5 * MIN, MID)).toBe(now + 5 * MIN);
  });

  it('returns null once the window is over (at or after its end)', () => {
    expect(nextRetryAt('greylisting', 1, now, now, MID)).toBeNull();
    expect(nextRetryAt('mailbox_full', 2, now + 1, now, MID)).toBeNull();
    expect(nextRetryAt('unreachable', 9, now + DAY, now, 0)).toBeNull();
  });

  it('returns null for the class that is never retried', () => {
    expect(nextRetryAt('none', 1, now, now + DAY, MID)).toBeNull();
  });

  it('applies the scale before clamping', () => {
    expect(nextRetryAt('mailbox_full', 1, now, now + DAY, MID, 0.002)).toBe(now + Math.round(4 * HOUR * 0.002));
  });

  it('walks a mailbox-full recipient through a 3.5-day window: 10 attempts without jitter, the last at the window end', () => {
    const end = retryWindowEnd(now + 5 * DAY, now);
    const attemptsAt = [now];
    for (let retry = 1; ; retry++) {
      const at = nextRetryAt('mailbox_full', retry, attemptsAt.at(-1)!, end, MID);
      if (at === null) break;
      attemptsAt.push(at);
    }
    expect(attemptsAt.map((t) => (t - now) / HOUR)).toEqual([0, 4, 10, 19, 31, 43, 55, 67, 79, 84]);
  });

  it('walks a 1-day validity: 5 attempts, the last at validity end, whatever the jitter', () => {
    for (const r of [0, MID, 0.999]) {
      const end = retryWindowEnd(now + DAY, now);
      const attemptsAt = [now];
      for (let retry = 1; ; retry++) {
        const at = nextRetryAt('mailbox_full', retry, attemptsAt.at(-1)!, end, r);
        if (at === null) break;
        attemptsAt.push(at);
      }
      expect(attemptsAt).toHaveLength(5);
      expect(attemptsAt.at(-1)).toBe(now + DAY);
    }
  });
});
