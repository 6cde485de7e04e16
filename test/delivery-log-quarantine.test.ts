/** The delivery log applies the quarantine policy's effects in SQL exactly as applyQuarantineEffect defines them, on the real Postgres. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { Pool } from 'pg';
import { createPool } from '../db/pool';
import { createStores, type Stores } from '../db/stores';
import { transitionAfterAttempt, type AttemptOutcome } from '../domain/efs-status';
import type { Qualification } from '../domain/failure';
import { applyQuarantineEffect, quarantineEffect, type AttemptEnd, type QuarantineRecord } from '../domain/quarantine-policy';

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
const refused: Qualification = { type: 'hard', reason: 'refused', retryClass: 'none', ruleId: 't' };

const SENT = transitionAfterAttempt({ accepted: true }, false);
const failed = (q: Qualification, retryFits = false) => transitionAfterAttempt({ accepted: false, qualification: q }, retryFits);

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

async function storedRecord(address: string): Promise<(QuarantineRecord & { quarantinedAtSet: boolean }) | null> {
  const r = await pool.query<{ error_count: number; quarantined: boolean; reason: QuarantineRecord['reason']; quarantined_at: Date | null }>(
    `SELECT q.error_count, q.quarantined, q.reason, q.quarantined_at FROM address_quarantine q
     WHERE q.address_key = (SELECT address_key FROM delivery_recipients WHERE address = $1 LIMIT 1)`,
    [address],
  );
  const row = r.rows[0];
  return row ? { errorCount: row.error_count, quarantined: row.quarantined, reason: row.reason, quarantinedAtSet: row.quarantined_at !== null } : null;
}

/** Plays the messages against Postgres and against the pure definition, comparing the record after each one. */
async function expectSameAsPolicy(ends: (AttemptEnd & { retry: boolean })[]): Promise<QuarantineRecord | null> {
  const address = `q-${randomUUID().slice(0, 8)}@quarantine.example`;
  let expected: QuarantineRecord | null = null;
  for (const end of ends) {
    await messageEnding(address, end);
    expected = applyQuarantineEffect(expected, quarantineEffect(end));
    const stored = await storedRecord(address);
    expect(stored === null ? null : { errorCount: stored.errorCount, quarantined: stored.quarantined, reason: stored.reason }).toEqual(expected);
    if (stored) expect(stored.quarantinedAtSet).toBe(stored.quarantined);
  }
  return expected;
}

describe('DeliveryLog.completeAttempt and the quarantine policy', () => {
  it('quarantines on the third final failure across deliveries', async () => {
    expect(await expectSameAsPolicy([failed(mailboxFull), failed(refused), failed(mailboxFull)])).toMatchObject({ errorCount: 3, quarantined: true });
  });

  it('quarantines a user_unknown at once', async () => {
    expect(await expectSameAsPolicy([failed(userUnknown)])).toMatchObject({ errorCount: 1, quarantined: true });
  });

  it('clears the count on a success, but never a quarantine', async () => {
    expect(await expectSameAsPolicy([failed(mailboxFull), failed(mailboxFull), SENT, failed(mailboxFull)])).toMatchObject({ errorCount: 1, quarantined: false });
    expect(await expectSameAsPolicy([failed(userUnknown), SENT])).toMatchObject({ errorCount: 1, quarantined: true });
  });

  it('does not count a soft failure that will be retried', async () => {
    expect(await expectSameAsPolicy([failed(mailboxFull, true)])).toBeNull();
  });
});
