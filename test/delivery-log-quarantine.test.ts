/** The delivery log applies the quarantine policy's effects in SQL exactly as applyQuarantineEffect defines them, on the real Postgres. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { Pool } from 'pg';
import { createPool } from '../db/pool';
import { createStores, type Stores } from '../db/stores';
import { transitionAfterAttempt, type AttemptOutcome } from '../domain/efs-status';
import type { Qualification } from '../domain/failure';
import { applyQuarantineEffect, DEFAULT_QUARANTINE_POLICY, quarantineEffect, type AttemptEnd, type QuarantineRecord } from '../domain/quarantine-policy';

let pool: Pool;
let stores: Stores;

beforeAll(() => {
  pool = createPool(inject('databaseUrl'), 2);
  stores = createStores(pool, { keyEncryptionSecret: 'quarantine-test-secret' });
});

afterAll(async () => {
  await pool.end();
});

const userUnknown: Qualification = { type: 'hard', reason: 'user_unknown', retryClass: 'none', ruleId: 't' };
const mailboxFull: Qualification = { type: 'soft', reason: 'mailbox_full', retryClass: 'mailbox_full', ruleId: 't' };
const refused: Qualification = { type: 'soft', reason: 'refused', retryClass: 'none', ruleId: 't' };

const SENT = transitionAfterAttempt({ accepted: true }, false);
const failed = (q: Qualification, retryFits = false) => transitionAfterAttempt({ accepted: false, qualification: q }, retryFits);
const DAY = 24 * 3600_000;

/** Sends one message to `address` in a delivery of its own and records how it ended, as the send activity does. */
async function messageEnding(address: string, end: AttemptEnd & { retry: boolean }): Promise<void> {
  const { id } = await stores.deliveries.create(
    { name: 'quarantine', from: { address: 'news@quarantine.example' }, subject: 's', text: 't', validitySeconds: 3600, autoConfirm: false },
    { recipients: [{ email: address }] },
  );
  await stores.log.beginAttempt(id, 1, 1, `<${id}.1@quarantine.example>`);
  const outcome: AttemptOutcome = end.status === 'sent' && end.failureType === null ? 'accepted' : end.failureType!;
  await stores.log.completeAttempt({
    deliveryId: id,
    recipientId: 1,
    attempt: 1,
    outcome,
    reply: { code: outcome === 'accepted' ? 250 : 550, enhancedCode: null, text: 'test', mxHost: 'mx.quarantine.example' },
    ruleId: null,
    retryClass: null,
    status: end.status,
    failureType: end.failureType,
    failureReason: end.failureReason,
    nextRetryAt: end.retry ? new Date(Date.now() + 60_000) : null,
    quarantine: quarantineEffect(end),
  });
}

const KEY = `(SELECT address_key FROM delivery_recipients WHERE address = $1 LIMIT 1)`;

async function storedRecord(address: string) {
  const r = await pool.query<{ error_count: number; quarantined: boolean; reason: QuarantineRecord['reason']; quarantined_at: Date | null; expires_at: Date | null; first_failure_at: Date }>(
    `SELECT error_count, quarantined, reason, quarantined_at, expires_at, first_failure_at FROM address_quarantine WHERE address_key = ${KEY}`,
    [address],
  );
  return r.rows[0] ?? null;
}

/** Moves an address's record back in time, as if its failures had happened `ms` earlier. */
async function age(address: string, ms: number, record: QuarantineRecord | null): Promise<QuarantineRecord | null> {
  await pool.query(
    `UPDATE address_quarantine SET first_failure_at = first_failure_at - $2 * interval '1 millisecond',
       expires_at = expires_at - $2 * interval '1 millisecond' WHERE address_key = ${KEY}`,
    [address, ms],
  );
  return record && { ...record, firstFailureAtMs: record.firstFailureAtMs - ms, expiresAtMs: record.expiresAtMs === null ? null : record.expiresAtMs - ms };
}

type Step = (AttemptEnd & { retry: boolean }) | { ageMs: number };

/** Plays the steps against Postgres and against the pure definition, comparing the record after each one. */
async function expectSameAsPolicy(steps: Step[]): Promise<QuarantineRecord | null> {
  const address = `q-${randomUUID().slice(0, 8)}@quarantine.example`;
  let expected: QuarantineRecord | null = null;
  for (const step of steps) {
    if ('ageMs' in step) {
      expected = await age(address, step.ageMs, expected);
      continue;
    }
    await messageEnding(address, step);
    expected = applyQuarantineEffect(expected, quarantineEffect(step), Date.now(), DEFAULT_QUARANTINE_POLICY);
    const stored = await storedRecord(address);
    expect(stored === null ? null : { errorCount: stored.error_count, quarantined: stored.quarantined, reason: stored.reason }).toEqual(
      expected === null ? null : { errorCount: expected.errorCount, quarantined: expected.quarantined, reason: expected.reason },
    );
    if (stored) {
      expect(stored.quarantined_at !== null).toBe(stored.quarantined);
      expect(stored.expires_at !== null).toBe(stored.quarantined);
      if (stored.expires_at) expect(Math.abs(stored.expires_at.getTime() - expected!.expiresAtMs!)).toBeLessThan(60_000);
    }
  }
  return expected;
}

async function quarantinedForAnalysis(address: string): Promise<boolean> {
  const r = await pool.query(`SELECT 1 FROM address_quarantine q WHERE q.address_key = ${KEY} AND q.quarantined AND (q.expires_at IS NULL OR q.expires_at > now())`, [address]);
  return (r.rowCount ?? 0) > 0;
}

describe('DeliveryLog.completeAttempt and the quarantine policy (record_address_failure in Postgres)', () => {
  it('quarantines on the third final soft failure across deliveries once they span more than a day', async () => {
    expect(await expectSameAsPolicy([failed(mailboxFull), failed(refused), failed(mailboxFull)])).toMatchObject({ errorCount: 3, quarantined: false });
    expect(await expectSameAsPolicy([failed(mailboxFull), { ageMs: 2 * DAY }, failed(refused), failed(mailboxFull)])).toMatchObject({
      errorCount: 3,
      quarantined: true,
      reason: 'mailbox_full',
    });
  });

  it('quarantines a hard user_unknown at once', async () => {
    expect(await expectSameAsPolicy([failed(userUnknown)])).toMatchObject({ errorCount: 1, quarantined: true });
  });

  it('clears the count on a success, but never a live quarantine; a failure renews it and keeps its reason', async () => {
    expect(await expectSameAsPolicy([failed(mailboxFull), failed(mailboxFull), SENT, failed(mailboxFull)])).toMatchObject({ errorCount: 1, quarantined: false });
    expect(await expectSameAsPolicy([failed(userUnknown), SENT, failed(refused)])).toMatchObject({ errorCount: 2, quarantined: true, reason: 'user_unknown' });
  });

  it('lets a quarantine expire: analysis no longer excludes the address, and a new failure starts over', async () => {
    const address = `q-${randomUUID().slice(0, 8)}@quarantine.example`;
    await messageEnding(address, failed(userUnknown));
    expect(await quarantinedForAnalysis(address)).toBe(true);
    await age(address, 31 * DAY, null);
    expect(await quarantinedForAnalysis(address)).toBe(false);
    await messageEnding(address, failed(mailboxFull));
    expect(await storedRecord(address)).toMatchObject({ error_count: 1, quarantined: false, reason: 'mailbox_full', expires_at: null });
  });

  it('does not count a soft failure that will be retried', async () => {
    expect(await expectSameAsPolicy([failed(mailboxFull, true)])).toBeNull();
  });
});

describe('DeliveryLog.completeAttempt recorded twice (a retry after a commit whose answer was lost)', () => {
  it('changes nothing the second time: one transition', async () => {
    const address = `twice-${randomUUID().slice(0, 8)}@quarantine.example`;
    const { id } = await stores.deliveries.create(
      { name: 'twice', from: { address: 'news@quarantine.example' }, subject: 's', text: 't', validitySeconds: 3600, autoConfirm: false },
      { recipients: [{ email: address }] },
    );
    await stores.log.claimPage(id, 0, 10, 1);
    await stores.log.beginAttempt(id, 1, 1, `<${id}.1@quarantine.example>`);
    // A soft failure to be retried: the recipient stays taken_into_account, so only the attempt row can tell.
    const end = failed(mailboxFull, true);
    const result = {
      deliveryId: id,
      recipientId: 1,
      attempt: 1,
      outcome: 'soft' as const,
      reply: { code: 452, enhancedCode: '4.2.2', text: 'mailbox full', mxHost: 'mx.quarantine.example' },
      ruleId: 't',
      retryClass: 'mailbox_full' as const,
      status: end.status,
      failureType: end.failureType,
      failureReason: end.failureReason,
      nextRetryAt: new Date(Date.now() + 60_000),
      quarantine: quarantineEffect(end),
    };
    await stores.log.completeAttempt(result);
    await stores.log.completeAttempt(result);
    const transitions = await pool.query(`SELECT count(*)::int AS n FROM efs_transitions WHERE delivery_id = $1 AND source = 'smtp'`, [id]);
    expect(transitions.rows[0].n).toBe(1);
  });
});
