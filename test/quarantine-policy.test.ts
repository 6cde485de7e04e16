/** The pure quarantine policy: which results count, what quarantines at once, over what span, what clears, when it ends. */
import { describe, expect, it } from 'vitest';
import {
  applyQuarantineEffect,
  DEFAULT_QUARANTINE_POLICY,
  isQuarantined,
  quarantineEffect,
  quarantinePolicyFromSettings,
  type AttemptEnd,
  type QuarantineEffect,
  type QuarantineRecord,
} from '../domain/quarantine-policy';
import { transitionAfterAttempt } from '../domain/efs-status';
import type { Qualification } from '../domain/failure';

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const userUnknown: Qualification = { type: 'hard', reason: 'user_unknown', retryClass: 'none', ruleId: 't' };
const invalidDomain: Qualification = { type: 'hard', reason: 'invalid_domain', retryClass: 'none', ruleId: 't' };
const accountDisabled: Qualification = { type: 'soft', reason: 'account_disabled', retryClass: 'none', ruleId: 't' };
const spamRefused: Qualification = { type: 'soft', reason: 'refused', retryClass: 'none', ruleId: 't' };
const mailboxFull: Qualification = { type: 'soft', reason: 'mailbox_full', retryClass: 'mailbox_full', ruleId: 't' };
const ignored: Qualification = { type: 'ignored', reason: 'error_ignored', retryClass: 'none', ruleId: 't' };

const accepted = (): AttemptEnd => transitionAfterAttempt({ accepted: true }, false);
const failedWith = (q: Qualification, retryFits = false): AttemptEnd => transitionAfterAttempt({ accepted: false, qualification: q }, retryFits);

/** Applies effects at the given times (ms from 0). */
function replay(steps: [QuarantineEffect, number][], from: QuarantineRecord | null = null): QuarantineRecord | null {
  return steps.reduce<QuarantineRecord | null>((record, [effect, at]) => applyQuarantineEffect(record, effect, at), from);
}

describe('transitionAfterAttempt: type and retry decided separately', () => {
  it('ends a message on a final soft failure without making it hard', () => {
    expect(failedWith(spamRefused)).toEqual({ status: 'failed', failureType: 'soft', failureReason: 'refused', retry: false });
  });
  it('retries a retryable failure while the window is open, and fails it with its own type after', () => {
    expect(failedWith(mailboxFull, true)).toMatchObject({ status: 'taken_into_account', retry: true });
    expect(failedWith(mailboxFull, false)).toMatchObject({ status: 'failed', failureType: 'soft', retry: false });
  });
  it('retries a hard-typed reply whose rule says it is retryable (a 4xx that names an unknown user)', () => {
    const retryableHard: Qualification = { type: 'hard', reason: 'user_unknown', retryClass: 'transient', ruleId: 't' };
    expect(failedWith(retryableHard, true)).toMatchObject({ status: 'taken_into_account', failureType: 'hard', retry: true });
    expect(failedWith(retryableHard, false)).toMatchObject({ status: 'failed', failureType: 'hard', retry: false });
  });
});

describe('quarantineEffect', () => {
  it('quarantines any final hard failure at once', () => {
    expect(quarantineEffect(failedWith(userUnknown))).toEqual({ kind: 'count_failure', reason: 'user_unknown', hard: true });
    expect(quarantineEffect(failedWith(invalidDomain))).toEqual({ kind: 'count_failure', reason: 'invalid_domain', hard: true });
  });
  it('counts a final soft failure (refused, account disabled, mailbox full out of time) without quarantining at once', () => {
    expect(quarantineEffect(failedWith(spamRefused))).toEqual({ kind: 'count_failure', reason: 'refused', hard: false });
    expect(quarantineEffect(failedWith(accountDisabled))).toEqual({ kind: 'count_failure', reason: 'account_disabled', hard: false });
    expect(quarantineEffect(failedWith(mailboxFull))).toEqual({ kind: 'count_failure', reason: 'mailbox_full', hard: false });
  });
  it('does not count a failure that will be retried: the message has not failed yet', () => {
    expect(quarantineEffect(failedWith(mailboxFull, true))).toEqual({ kind: 'none' });
  });
  it('clears the count on a message that got through, ignored failures included', () => {
    expect(quarantineEffect(accepted())).toEqual({ kind: 'clear_count' });
    expect(quarantineEffect(failedWith(ignored))).toEqual({ kind: 'clear_count' });
  });
  it('leaves statuses outside the sending stage alone', () => {
    for (const status of ['pending', 'taken_into_account', 'excluded', 'cancelled'] as const) {
      expect(quarantineEffect({ status, failureType: null, failureReason: null })).toEqual({ kind: 'none' });
    }
  });
});

describe('applyQuarantineEffect', () => {
  const soft = quarantineEffect(failedWith(mailboxFull));
  const hard = quarantineEffect(failedWith(userUnknown));
  const success = quarantineEffect(accepted());

  it('is the documented default: three soft failures over more than a day, 30 days of quarantine', () => {
    expect(DEFAULT_QUARANTINE_POLICY).toEqual({ softFailuresBeforeQuarantine: 3, softFailureSpanMs: DAY, quarantineMs: 30 * DAY });
    expect(quarantinePolicyFromSettings({ QUARANTINE_SOFT_FAILURES: 5, QUARANTINE_SOFT_SPAN_HOURS: 2, QUARANTINE_DAYS: 7 })).toEqual({
      softFailuresBeforeQuarantine: 5,
      softFailureSpanMs: 2 * HOUR,
      quarantineMs: 7 * DAY,
    });
  });

  it('quarantines on the third soft failure when they span more than a day, not before', () => {
    expect(replay([[soft, 0], [soft, 10 * HOUR]])).toMatchObject({ errorCount: 2, quarantined: false });
    const third = replay([[soft, 0], [soft, 10 * HOUR], [soft, DAY + 1]]);
    expect(third).toMatchObject({ errorCount: 3, quarantined: true, reason: 'mailbox_full', firstFailureAtMs: 0, expiresAtMs: DAY + 1 + 30 * DAY });
  });

  it('does not quarantine three soft failures within one day; the fourth a day later does', () => {
    const sameDay = replay([[soft, 0], [soft, HOUR], [soft, 2 * HOUR]]);
    expect(sameDay).toMatchObject({ errorCount: 3, quarantined: false });
    expect(applyQuarantineEffect(sameDay, soft, DAY + HOUR)).toMatchObject({ errorCount: 4, quarantined: true });
  });

  it('quarantines on the first hard failure, whatever the count', () => {
    expect(replay([[hard, 5]])).toEqual({ errorCount: 1, quarantined: true, reason: 'user_unknown', firstFailureAtMs: 5, expiresAtMs: 5 + 30 * DAY });
  });

  it('restarts the count (and its span) after a success', () => {
    const r = replay([[soft, 0], [soft, 2 * DAY], [success, 3 * DAY], [soft, 4 * DAY], [soft, 6 * DAY]]);
    expect(r).toMatchObject({ errorCount: 2, quarantined: false, firstFailureAtMs: 4 * DAY });
  });

  it('never lifts a live quarantine on a success; a new failure renews it and keeps its reason', () => {
    const quarantined = replay([[hard, 0]]);
    expect(applyQuarantineEffect(quarantined, success, DAY)).toEqual(quarantined);
    const renewed = applyQuarantineEffect(quarantined, soft, 10 * DAY);
    expect(renewed).toMatchObject({ quarantined: true, reason: 'user_unknown', expiresAtMs: 40 * DAY });
  });

  it('ends a quarantine after its period; a failure after that starts over', () => {
    const quarantined = replay([[hard, 0]]);
    expect(isQuarantined(quarantined, 30 * DAY - 1)).toBe(true);
    expect(isQuarantined(quarantined, 30 * DAY)).toBe(false);
    expect(applyQuarantineEffect(quarantined, soft, 31 * DAY)).toEqual({
      errorCount: 1,
      quarantined: false,
      reason: 'mailbox_full',
      firstFailureAtMs: 31 * DAY,
      expiresAtMs: null,
    });
  });

  it('creates no record for an address that never failed', () => {
    expect(replay([[success, 0], [{ kind: 'none' }, 1]])).toBeNull();
  });
});
