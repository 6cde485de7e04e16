/**
 * Relay mode follows the EFS table: the smart host's 250 is "taken into account by the service provider"; its
 * delivery reports (RFC 3464, requested with NOTIFY=SUCCESS,FAILURE,DELAY and ENVID) decide sent or failed, and a
 * recipient with no report becomes sent when the confirmation window ends, recorded as such. The sandbox MX acts as
 * the smart host and mails its reports to the real inbound listener over SMTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness';
import { deliveryStateQuery, deliveryWorkflowId, recipientStateQuery, recipientWorkflowId } from '../workflows/contract';

const WINDOW_SECONDS = 12;
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ mx: { relay: true }, inbound: { reportDelayMs: 500 }, env: { RELAY_CONFIRMATION_WINDOW_SECONDS: String(WINDOW_SECONDS) } });
});
afterAll(async () => {
  await h?.stop();
});

describe('relay mode', () => {
  it('counts only confirmed recipients as sent; failures reported later come back failed with their reason', async () => {
    const addresses = {
      delivered: 'lena@relay-feedback.example',
      unknown: 'hard-mike@relay-feedback.example',
      spam: 'spam-nora@relay-feedback.example',
      full: 'full-omar@relay-feedback.example',
      noReport: 'quiet-pia@relay-feedback.example',
    };
    const id = await h.createDelivery({
      name: 'relay reports',
      from: 'news@relay-brand.example',
      subject: 'Hi',
      text: 'Hello',
      recipients: Object.values(addresses).map((email) => ({ email })),
      autoConfirm: true,
    });
    const ids: Record<string, number> = {};
    for (const [k, email] of Object.entries(addresses)) {
      ids[k] = (await h.pool.query('SELECT recipient_id FROM delivery_recipients WHERE delivery_id = $1 AND address = $2', [id, email])).rows[0].recipient_id;
    }

    // The relay accepted all five at once: nothing is sent yet.
    const deadline = Date.now() + 60_000;
    while (h.mx.acceptedCount() < 5) {
      if (Date.now() > deadline) throw new Error('the relay did not accept the five messages');
      await new Promise((r) => setTimeout(r, 100));
    }
    const early = await h.service.log.kpis(id);
    expect(early.sent).toBeLessThanOrEqual(1); // at most the delivered report can have come back already
    expect(early.successPercent).toBeLessThanOrEqual(20);

    const done = await h.waitForPhase(id, ['completed'], (WINDOW_SECONDS + 60) * 1000);
    const rows = Object.fromEntries(await Promise.all(Object.entries(ids).map(async ([k, rid]) => [k, await h.service.log.recipient(id, rid)])));
    expect(rows.delivered).toMatchObject({ status: 'sent', failureReason: null });
    expect(rows.unknown).toMatchObject({ status: 'failed', failureType: 'hard', failureReason: 'user_unknown' });
    expect(rows.spam).toMatchObject({ status: 'failed', failureType: 'soft', failureReason: 'refused' });
    expect(rows.full).toMatchObject({ status: 'failed', failureType: 'soft', failureReason: 'mailbox_full' });
    expect(rows.noReport).toMatchObject({ status: 'sent' });
    // Success % counts only what was confirmed (2 of 5), in the workflow's KPIs and in the log.
    expect(done.kpis).toMatchObject({ toDeliver: 5, sent: 2, failed: 3, successPercent: 40 });
    expect(await h.service.log.kpis(id)).toMatchObject({ sent: 2, failed: 3, successPercent: 40 });

    const sources = async (k: string) => (await h.service.log.transitions(id, ids[k])).map((t: { toStatus: string; source: string }) => `${t.toStatus}:${t.source}`);
    expect(await sources('delivered')).toEqual(['taken_into_account:handover', 'taken_into_account:relay', 'sent:dsn']);
    expect(await sources('unknown')).toEqual(['taken_into_account:handover', 'taken_into_account:relay', 'failed:dsn']);
    expect(await sources('noReport')).toEqual(['taken_into_account:handover', 'taken_into_account:relay', 'sent:confirmation_window']);

    // The hard failure quarantines the address; the soft ones only count.
    const q = await h.pool.query('SELECT address_key, quarantined, error_count FROM address_quarantine WHERE address_key = ANY($1) ORDER BY address_key', [
      [addresses.unknown, addresses.spam, addresses.full],
    ]);
    expect(q.rows).toEqual([
      { address_key: addresses.full, quarantined: false, error_count: 1 },
      { address_key: addresses.unknown, quarantined: true, error_count: 1 },
      { address_key: addresses.spam, quarantined: false, error_count: 1 },
    ]);

    // The recipient workflows say who decided.
    const view = (k: string) => h.client.workflow.getHandle(recipientWorkflowId(id, ids[k])).query(recipientStateQuery);
    expect(await view('noReport')).toMatchObject({ status: 'sent', statusSource: 'confirmation_window', feedbackWindowEndsAtMs: null });
    expect(await view('delivered')).toMatchObject({ status: 'sent', statusSource: 'dsn' });
    expect((await view('delivered')).feedback![0]).toMatchObject({ type: 'delivered', action: 'delivered' });
    expect(await view('unknown')).toMatchObject({ status: 'failed', failureReason: 'user_unknown', statusSource: 'dsn' });
    // Every report came back to the listener: four DSNs (one success, three failures), none for the quiet one.
    expect(h.mx.reportsSent().map((r) => `${r.recipient}:${r.action}`).sort()).toEqual(
      [`${addresses.delivered}:delivered`, `${addresses.full}:failed`, `${addresses.spam}:failed`, `${addresses.unknown}:failed`].sort(),
    );
    expect(h.mx.reportsSent().every((r) => !r.error)).toBe(true);
    // The delivery workflow's own query agrees.
    expect((await h.client.workflow.getHandle(deliveryWorkflowId(id)).query(deliveryStateQuery)).kpis?.successPercent).toBe(40);
  });
});
