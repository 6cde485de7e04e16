/**
 * Asynchronous feedback end to end, with real processes and real SMTP: the sandbox MX accepts messages and later mails
 * RFC 3464 DSNs and ARF complaints to the inbound listener, which turns sent into failed, quarantines, denylists, and
 * updates the recipient workflow's query, its search attributes and the delivery's KPIs; the same DSN twice changes
 * nothing; forged bounces and mail for other addresses are refused at RCPT.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { startHarness, type Harness } from './support/harness';
import { authHeaders } from './support/http';
import { recipientStateQuery, recipientWorkflowId, type RecipientStateView } from '../workflows/contract';
import { encodeVerp } from '../domain/verp';

let h: Harness;

beforeAll(async () => {
  // Recipient workflows stay open two minutes after a 250, so the late bounce shows in their query and attributes.
  h = await startHarness({ env: { LATE_FEEDBACK_WINDOW_SECONDS: '120' }, inbound: { reportDelayMs: 300 } });
});
afterAll(async () => {
  await h?.stop();
});

async function recipientId(deliveryId: string, address: string): Promise<number> {
  const r = await h.pool.query('SELECT recipient_id FROM delivery_recipients WHERE delivery_id = $1 AND address = $2', [deliveryId, address]);
  return r.rows[0].recipient_id;
}

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function recipientView(deliveryId: string, rid: number): Promise<RecipientStateView> {
  return h.client.workflow.getHandle(recipientWorkflowId(deliveryId, rid)).query(recipientStateQuery);
}

async function listed(query: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const wf of h.client.workflow.list({ query })) ids.push(wf.workflowId);
  return ids;
}

/** A call with the harness's admin key (and the caller's own headers). */
async function api(path: string, init: RequestInit = {}) {
  const res = await fetch(`${h.apiUrl}${path}`, { ...init, headers: { ...authHeaders(h.apiUrl), ...(init.headers as Record<string, string> | undefined) } });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function inboundCount(): Promise<number> {
  return (await h.pool.query('SELECT count(*)::int AS n FROM inbound_messages')).rows[0].n;
}

/** One SMTP transaction to the listener; resolves to the reply or the refusal. */
async function mailListener(to: string, raw: string): Promise<{ ok: boolean; code: number | null; response: string }> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: h.inbound!.port, secure: false, tls: { rejectUnauthorized: false } });
  try {
    const info = await transport.sendMail({ envelope: { from: '', to: [to] }, raw });
    return { ok: true, code: 250, response: info.response };
  } catch (e) {
    const err = e as { responseCode?: number; response?: string; message: string };
    return { ok: false, code: err.responseCode ?? null, response: err.response ?? err.message };
  } finally {
    transport.close();
  }
}

describe('asynchronous feedback, direct mode', () => {
  it('a late DSN turns sent into failed, quarantines the address, and updates query, search attributes and KPIs; twice changes nothing', async () => {
    const late = 'late-frank@feedback.example';
    const fine = 'gina@feedback.example';
    const id = await h.createDelivery({
      name: 'late bounce',
      from: 'news@feedback-brand.example',
      subject: 'Hello',
      text: 'Hello',
      recipients: [{ email: late }, { email: fine }],
      autoConfirm: true,
    });
    const lateId = await recipientId(id, late);

    // The late recipient is first sent (the MX said 250) ...
    await until('the 250', async () => (await h.service.log.recipient(id, lateId))?.attempts === 1);
    // ... then the DSN the sandbox mails to its VERP return path makes it failed.
    const row = await until('the late bounce', async () => {
      const r = await h.service.log.recipient(id, lateId);
      return r?.status === 'failed' ? r : null;
    });
    expect(row).toMatchObject({ status: 'failed', failureType: 'hard', failureReason: 'user_unknown' });
    const transitions = await h.service.log.transitions(id, lateId);
    expect(transitions.map((t: { toStatus: string; source: string }) => `${t.toStatus}:${t.source}`)).toEqual(['taken_into_account:handover', 'sent:smtp', 'failed:dsn']);

    // Quarantined at once (hard user unknown), through the API.
    const q = await api(`/api/quarantine/${encodeURIComponent(late)}`);
    expect(q.status).toBe(200);
    expect(q.body).toMatchObject({ quarantined: true, reason: 'user_unknown', source: 'dsn' });

    // The recipient workflow, still open, shows it: status, the feedback, and its search attributes.
    const view = await until('the signalled workflow', async () => {
      const v = await recipientView(id, lateId);
      return v.status === 'failed' ? v : null;
    });
    expect(view.feedback).toHaveLength(1);
    expect(view.feedback![0]).toMatchObject({ type: 'hard', reason: 'user_unknown', action: 'failed', status: '5.1.1' });
    expect(view.statusSource).toBe('dsn');
    await until('the search attributes', async () => (await listed(`DeliveryId = "${id}" AND EfsStatus = "failed" AND FailureReason = "user_unknown"`)).length === 1);
    expect(await listed(`DeliveryId = "${id}" AND EfsStatus = "failed"`)).toEqual([recipientWorkflowId(id, lateId)]);

    // The KPIs: 1 sent of 2, after the delivery completed.
    await h.waitForPhase(id, ['completed'], 60_000);
    const delivery = await until('the KPIs', async () => {
      const d = await api(`/api/deliveries/${id}`);
      return d.body.kpis?.failed === 1 ? d : null;
    });
    expect(delivery.body.kpis).toMatchObject({ toDeliver: 2, sent: 1, failed: 1, successPercent: 50, failuresByReason: { user_unknown: 1 } });

    // The same DSN again, over SMTP: stored once, nothing changes.
    const [stored] = (await api(`/api/inbound?deliveryId=${id}`)).body.messages;
    const raw = await (await fetch(`${h.apiUrl}/api/inbound/${stored.id}/raw`, { headers: authHeaders(h.apiUrl) })).text();
    const before = { messages: await inboundCount(), transitions: (await h.service.log.transitions(id, lateId)).length };
    const again = await mailListener(stored.envelopeTo[0], raw);
    expect(again.ok).toBe(true);
    expect(await inboundCount()).toBe(before.messages);
    // And a copy that differs by one header (a second relay's copy) is stored but changes nothing either.
    const copy = await api('/api/inbound', { method: 'POST', headers: { 'content-type': 'message/rfc822' }, body: `X-Forwarded-By: relay2.example\r\n${raw}` });
    expect(copy.status).toBe(202);
    expect(copy.body).toMatchObject({ attribution: 'verp', deliveryId: id, recipientId: lateId, feedback: { type: 'hard', effect: 'none' } });
    expect((await h.service.log.transitions(id, lateId)).length).toBe(before.transitions);
    expect((await h.pool.query('SELECT error_count FROM address_quarantine WHERE address_key = $1', [late])).rows[0].error_count).toBe(1);
    expect((await recipientView(id, lateId)).feedback).toHaveLength(1);
  });

  it('refuses forged bounces and mail for any other address at RCPT, and stores nothing', async () => {
    const id = await h.createDelivery({ name: 'forgery', from: 'news@feedback-brand.example', subject: 'x', text: 'y', recipients: [{ email: 'hank@feedback.example' }], autoConfirm: true });
    const rid = await recipientId(id, 'hank@feedback.example');
    const domain = h.settings.BOUNCE_DOMAIN;
    const good = encodeVerp({ deliveryId: id, recipientId: rid }, 'test-verp-secret-0123456789', domain);
    const forged = good.replace(/-[0-9a-f]{20}@/, `-${'0'.repeat(20)}@`);
    const otherRecipient = encodeVerp({ deliveryId: id, recipientId: rid + 1000 }, 'test-verp-secret-0123456789', domain);
    const before = await inboundCount();
    const message = 'From: MAILER-DAEMON@mx.example\r\nSubject: Undelivered Mail\r\n\r\nuser unknown\r\n';
    for (const to of [forged, otherRecipient, `postmaster@${domain}`, 'someone@elsewhere.example', `b-${'a'.repeat(32)}-1-${'b'.repeat(20)}@${domain}`]) {
      const r = await mailListener(to, message);
      expect(r, to).toMatchObject({ ok: false, code: 550 });
    }
    expect(await inboundCount()).toBe(before);
    // The real VERP address is taken.
    expect((await mailListener(good, message)).ok).toBe(true);
    expect(await inboundCount()).toBe(before + 1);
  });

  it('an ARF complaint denylists the address, and the next delivery excludes it', async () => {
    const complainer = 'complain-ivy@feedback.example';
    const id = await h.createDelivery({ name: 'complaint', from: 'news@feedback-brand.example', subject: 'x', text: 'y', recipients: [{ email: complainer }], autoConfirm: true });
    const rid = await recipientId(id, complainer);
    const entry = await until('the denylist entry', async () => {
      const d = await api(`/api/denylist?search=${encodeURIComponent('complain-ivy')}`);
      return d.body.addresses?.[0];
    });
    expect(entry).toMatchObject({ address: complainer, reason: 'complaint', source: 'complaint', deliveryId: id, recipientId: rid, feedbackType: 'abuse' });
    // A complaint does not make the message undelivered.
    expect((await h.service.log.recipient(id, rid))!.status).toBe('sent');
    const feedback = (await api(`/api/deliveries/${id}/recipients/${rid}/feedback`)).body.feedback;
    expect(feedback).toHaveLength(1);
    expect(feedback[0]).toMatchObject({ type: 'complaint', effect: 'denylisted' });

    const next = await h.createDelivery({ name: 'after complaint', from: 'news@feedback-brand.example', subject: 'x', text: 'y', recipients: [{ email: complainer }, { email: 'jay@feedback.example' }], autoConfirm: true });
    const done = await h.waitForPhase(next, ['completed'], 60_000);
    expect(done.analysis!.exclusions).toMatchObject({ address_on_denylist: 1 });
    expect(h.mx.acceptedFor(complainer)).toHaveLength(1);
  });

  it('keeps a message it cannot attribute for review instead of dropping it', async () => {
    const r = await api('/api/inbound', {
      method: 'POST',
      headers: { 'content-type': 'message/rfc822' },
      body: 'From: MAILER-DAEMON@mx.example\r\nTo: someone@else.example\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <unattributable-1@mx.example>\r\n\r\n<nobody@nowhere.example>: host mx.nowhere.example said: 550 5.1.1 User unknown\r\n',
    });
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ attribution: null, deliveryId: null });
    expect(r.body.review).toBeTruthy();
    const review = (await api('/api/inbound?review=true')).body.messages;
    expect(review.map((m: { id: string }) => m.id)).toContain(r.body.id);
    expect((await api(`/api/inbound/${r.body.id}/resolve`, { method: 'POST' })).status).toBe(200);
    expect((await api('/api/inbound?review=true')).body.messages.map((m: { id: string }) => m.id)).not.toContain(r.body.id);
    // Wrong content type and empty bodies are refused with a clear 4xx.
    expect((await api('/api/inbound', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(415);
    expect((await api('/api/inbound', { method: 'POST', headers: { 'content-type': 'message/rfc822' }, body: '' })).status).toBe(400);
  });

  it('releases a quarantined address and manages manual denylist entries', async () => {
    const address = 'kim@feedback-manual.example';
    const added = await api('/api/denylist', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ address: 'Kim@Feedback-Manual.example', reason: 'asked by phone' }) });
    expect(added).toMatchObject({ status: 201, body: { address, added: true } });
    expect((await api('/api/denylist', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ address }) })).body.added).toBe(false);
    expect((await api('/api/denylist', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ address: 'not an address' }) })).status).toBe(400);
    expect((await api(`/api/denylist/${encodeURIComponent(address)}`, { method: 'DELETE' })).body.removed).toBe(true);
    expect((await api(`/api/denylist/${encodeURIComponent(address)}`, { method: 'DELETE' })).status).toBe(404);

    await h.pool.query(`INSERT INTO address_quarantine (address_key, reason, error_count, quarantined, quarantined_at, expires_at) VALUES ($1, 'user_unknown', 1, true, now(), now() + interval '30 days')`, [address]);
    const listed = (await api('/api/quarantine?search=feedback-manual')).body.addresses;
    expect(listed.map((a: { address: string }) => a.address)).toEqual([address]);
    expect((await api(`/api/quarantine/${encodeURIComponent(address)}`, { method: 'DELETE' })).body.released).toBe(true);
    expect((await api(`/api/quarantine/${encodeURIComponent(address)}`)).status).toBe(404);
  });
});
