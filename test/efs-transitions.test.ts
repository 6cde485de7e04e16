/** The EFS transitions of a delivery, driven through real workflows, Postgres and the sandbox MX, checked in the log and by query. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness';
import { recipientStateQuery, recipientWorkflowId, type RecipientStateView } from '../workflows/contract';

let h: Harness;

beforeAll(async () => {
  // Greylisting's 5-minute first retry becomes 0.6 s; a full mailbox's 4 hours exceed the 8-second validity.
  h = await startHarness({ env: { RETRY_TIME_SCALE: '0.002' } });
});
afterAll(async () => {
  await h?.stop();
});

async function recipientByAddress(deliveryId: string, address: string) {
  const r = await h.pool.query('SELECT recipient_id FROM delivery_recipients WHERE delivery_id = $1 AND address = $2', [deliveryId, address]);
  return r.rows[0].recipient_id as number;
}

async function queryRecipient(deliveryId: string, recipientId: number): Promise<RecipientStateView> {
  return h.client.workflow.getHandle(recipientWorkflowId(deliveryId, recipientId)).query(recipientStateQuery);
}

describe('EFS status transitions', () => {
  it('follows the seed table for relayed, hard, soft, soft-then-sent and soft-past-validity recipients', async () => {
    const addresses = {
      relayed: 'alice@efs.example',
      hard: 'hard-bob@efs.example',
      softPastValidity: 'full-carol@efs.example',
      greylisted: 'grey-dan@efs.example',
      failThenAccept: 'fail2-erin@efs.example',
    };
    const id = await h.createDelivery({
      name: 'efs transitions',
      from: 'news@efs-brand.example',
      subject: 'Hi {{firstName}}',
      text: 'Hello {{firstName}}',
      recipients: Object.values(addresses).map((email) => ({ email, fields: { firstName: email.split('@')[0] } })),
      validity: 8,
      autoConfirm: true,
    });
    const full = await recipientByAddress(id, addresses.softPastValidity);

    // Soft bounce: still taken into account, reason updated, a retry planned — in the log and in the recipient's query.
    const deadline = Date.now() + 30_000;
    let row;
    for (;;) {
      row = await h.service.log.recipient(id, full);
      if (row && row.attempts >= 1) break;
      if (Date.now() > deadline) throw new Error('the mailbox-full recipient was never attempted');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(row.status).toBe('taken_into_account');
    expect(row.failureType).toBe('soft');
    expect(row.failureReason).toBe('mailbox_full');
    expect(row.nextRetryAt).not.toBeNull();
    const softView = await queryRecipient(id, full);
    expect(softView.status).toBe('taken_into_account');
    expect(softView.failureReason).toBe('mailbox_full');
    expect(softView.nextRetryAtMs).toBeGreaterThan(Date.now() - 1000);
    expect(softView.lastReply?.code).toBe(452);

    const final = await h.waitForPhase(id, ['completed'], 60_000);
    expect(final.kpis).toMatchObject({ targeted: 5, toDeliver: 5, sent: 3, failed: 2, takenIntoAccount: 0, successPercent: 60 });
    expect(final.kpis?.failuresByReason).toEqual({ user_unknown: 1, mailbox_full: 1 });

    const expectations: Record<keyof typeof addresses, Partial<RecipientStateView> & { transitions: string[]; minAttempts: number }> = {
      relayed: { status: 'sent', failureType: null, transitions: ['pending>taken_into_account', 'taken_into_account>sent'], minAttempts: 1 },
      hard: { status: 'failed', failureType: 'hard', failureReason: 'user_unknown', transitions: ['pending>taken_into_account', 'taken_into_account>failed'], minAttempts: 1 },
      softPastValidity: {
        status: 'failed',
        failureType: 'soft',
        failureReason: 'mailbox_full',
        transitions: ['pending>taken_into_account', 'taken_into_account>taken_into_account', 'taken_into_account>failed'],
        minAttempts: 2,
      },
      greylisted: { status: 'sent', transitions: ['pending>taken_into_account', 'taken_into_account>taken_into_account', 'taken_into_account>sent'], minAttempts: 2 },
      failThenAccept: {
        status: 'sent',
        transitions: ['pending>taken_into_account', 'taken_into_account>taken_into_account', 'taken_into_account>taken_into_account', 'taken_into_account>sent'],
        minAttempts: 3,
      },
    };
    for (const [key, want] of Object.entries(expectations) as [keyof typeof addresses, (typeof expectations)[keyof typeof addresses]][]) {
      const rid = await recipientByAddress(id, addresses[key]);
      const logRow = await h.service.log.recipient(id, rid);
      const view = await queryRecipient(id, rid);
      const transitions = (await h.service.log.transitions(id, rid)).map((t) => `${t.fromStatus}>${t.toStatus}`);
      const { transitions: wantTransitions, minAttempts, ...wantState } = want;
      expect(transitions, key).toEqual(wantTransitions);
      expect(logRow, key).toMatchObject(wantState);
      expect(view, key).toMatchObject(wantState);
      expect(view.attempts, key).toBe(logRow!.attempts);
      expect(logRow!.attempts, key).toBeGreaterThanOrEqual(minAttempts);
      expect((await h.service.log.attempts(id, rid)).length, key).toBe(logRow!.attempts);
      // The API's recipient route reads the same three things in one statement: as JSON, the same answer.
      const detail = await h.service.log.recipientDetail(id, rid);
      const separate = { recipient: logRow, transitions: await h.service.log.transitions(id, rid), attempts: await h.service.log.attempts(id, rid) };
      expect(JSON.parse(JSON.stringify(detail)), key).toEqual(JSON.parse(JSON.stringify(separate)));
    }
    expect(await h.service.log.recipientDetail(id, 999_999)).toBeNull();
    // Search attributes follow each transition: the Web UI can list a delivery's failed + mailbox_full recipients.
    const listed = async (query: string) => {
      const ids: string[] = [];
      for await (const wf of h.client.workflow.list({ query })) ids.push(wf.workflowId);
      return ids.sort();
    };
    const fullId = recipientWorkflowId(id, full);
    let found: string[] = [];
    for (let i = 0; i < 50 && found.length === 0; i++) {
      found = await listed(`DeliveryId = "${id}" AND EfsStatus = "failed" AND FailureReason = "mailbox_full"`);
      if (found.length === 0) await new Promise((r) => setTimeout(r, 200));
    }
    expect(found).toEqual([fullId]);
    expect(await listed(`DeliveryId = "${id}" AND EfsStatus = "sent" AND WorkflowType = "recipientWorkflow"`)).toHaveLength(3);
    expect(await listed(`DeliveryId = "${id}" AND RecipientDomain = "efs.example"`)).toHaveLength(5);

    // Exactly one message per accepted recipient reached the receiver.
    for (const a of [addresses.relayed, addresses.greylisted, addresses.failThenAccept]) expect(h.mx.acceptedFor(a)).toHaveLength(1);
    expect(h.mx.acceptedFor(addresses.hard)).toHaveLength(0);
  });
});
