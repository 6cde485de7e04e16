/** The pure quarantine policy: which attempt results count, which quarantine at once, what clears, and the record they lead to. */
import { describe, expect, it } from 'vitest';
import {
  applyQuarantineEffect,
  quarantineEffect,
  QUARANTINE_POLICY,
  type AttemptEnd,
  type QuarantineEffect,
  type QuarantineRecord,
} from '../domain/quarantine-policy';
import { transitionAfterAttempt } from '../domain/efs-status';
import type { Qualification } from '../domain/failure';

const userUnknown: Qualification = { type: 'hard', reason: 'user_unknown', retryClass: 'none', ruleId: 't' };
const accountDisabled: Qualification = { type: 'hard', reason: 'account_disabled', retryClass: 'none', ruleId: 't' };
const mailboxFull: Qualification = { type: 'soft', reason: 'mailbox_full', retryClass: 'mailbox_full', ruleId: 't' };
const ignored: Qualification = { type: 'ignored', reason: 'error_ignored', retryClass: 'none', ruleId: 't' };

/** The recipient's status after an attempt, as the send activity computes it. */
const accepted = (): AttemptEnd => transitionAfterAttempt({ accepted: true }, false);
const failedWith = (q: Qualification, retryFits = false): AttemptEnd => transitionAfterAttempt({ accepted: false, qualification: q }, retryFits);

function replay(effects: QuarantineEffect[], from: QuarantineRecord | null = null): QuarantineRecord | null {
  return effects.reduce<QuarantineRecord | null>((record, effect) => applyQuarantineEffect(record, effect), from);
}

describe('quarantineEffect', () => {
  it('quarantines a hard user_unknown at once', () => {
    expect(quarantineEffect(failedWith(userUnknown))).toEqual({ kind: 'count_failure', reason: 'user_unknown', quarantineNow: true, quarantineAtCount: 3 });
  });

  it('counts every other final failure, hard or soft, towards the threshold without quarantining at once', () => {
    expect(quarantineEffect(failedWith(mailboxFull))).toEqual({ kind: 'count_failure', reason: 'mailbox_full', quarantineNow: false, quarantineAtCount: 3 });
    expect(quarantineEffect(failedWith(accountDisabled))).toEqual({ kind: 'count_failure', reason: 'account_disabled', quarantineNow: false, quarantineAtCount: 3 });
  });

  it('does not count a soft failure that will be retried: the message has not failed yet', () => {
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

  it('takes its thresholds and immediate reasons from the policy it is given', () => {
    const strict = { failuresBeforeQuarantine: 1, quarantineAtOnce: [{ type: 'soft', reason: 'mailbox_full' }] } as const;
    expect(quarantineEffect(failedWith(mailboxFull), strict)).toEqual({ kind: 'count_failure', reason: 'mailbox_full', quarantineNow: true, quarantineAtCount: 1 });
    expect(quarantineEffect(failedWith(userUnknown), strict)).toMatchObject({ quarantineNow: false, quarantineAtCount: 1 });
  });

  it('is the documented policy: user_unknown at once, three failures otherwise', () => {
    expect(QUARANTINE_POLICY.failuresBeforeQuarantine).toBe(3);
    expect(QUARANTINE_POLICY.quarantineAtOnce).toEqual([{ type: 'hard', reason: 'user_unknown' }]);
  });
});

describe('applyQuarantineEffect', () => {
  const soft = quarantineEffect(failedWith(mailboxFull));
  const success = quarantineEffect(accepted());

  it('quarantines an address on its third final failure across deliveries, not before', () => {
    expect(replay([soft, soft])).toEqual({ errorCount: 2, quarantined: false, reason: 'mailbox_full' });
    expect(replay([soft, soft, soft])).toEqual({ errorCount: 3, quarantined: true, reason: 'mailbox_full' });
  });

  it('quarantines on the first user_unknown, whatever the count', () => {
    expect(replay([quarantineEffect(failedWith(userUnknown))])).toEqual({ errorCount: 1, quarantined: true, reason: 'user_unknown' });
  });

  it('restarts the count after a success', () => {
    expect(replay([soft, soft, success, soft, soft])).toEqual({ errorCount: 2, quarantined: false, reason: 'mailbox_full' });
  });

  it('never lifts a quarantine on a success', () => {
    const quarantined = replay([soft, soft, soft]);
    expect(applyQuarantineEffect(quarantined, success)).toEqual(quarantined);
  });

  it('creates no record for an address that never failed', () => {
    expect(replay([success, { kind: 'none' }])).toBeNull();
  });

  it('keeps the latest failure reason', () => {
    expect(replay([soft, quarantineEffect(failedWith(accountDisabled))])?.reason).toBe('account_disabled');
  });
});
