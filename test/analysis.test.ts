/**
 * Analysis end to end (real Temporal, Postgres, sandbox MX, HTTP API): every exclusion reason with exact counts and the
 * rows it leaves in delivery_recipients, the content / wave / validity findings, counts and wave plan, and confirmation
 * (refused while blocked, analysing, confirmed or cancelled; re-analysis after a draft edit).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness';
import { apiCall, waitUntil } from './support/http';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});

afterAll(async () => {
  await h?.stop();
});

const api = (method: string, path: string, body?: unknown) => apiCall(h.apiUrl, method, path, body);

interface Finding {
  severity: 'warning' | 'error';
  code: string;
  message: string;
}

const u = () => randomUUID().slice(0, 8);

function base(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: `analysis ${u()}`,
    from: { address: 'news@analysis-sender.example', name: 'Analysis' },
    subject: 'Hello',
    html: '<p>Hello</p>',
    text: 'Hello',
    validity: '3d',
    ...extra,
  };
}

async function create(body: Record<string, unknown>): Promise<string> {
  const r = await api('POST', '/api/deliveries', body);
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  return r.json.id as string;
}

async function getDelivery(id: string) {
  const r = await api('GET', `/api/deliveries/${id}`);
  expect(r.status).toBe(200);
  return r.json;
}

async function analysed(id: string, phases = ['awaiting_confirmation', 'analysis_failed']) {
  await h.waitForPhase(id, phases, 60_000);
  return getDelivery(id);
}


const codes = (d: { analysis: { findings: Finding[] } }) => d.analysis.findings.map((f) => f.code).sort();
const finding = (d: { analysis: { findings: Finding[] } }, code: string) => d.analysis.findings.find((f) => f.code === code);

async function rows(id: string) {
  const r = await h.pool.query<{ recipient_id: number; address: string; domain: string; status: string; exclusion_reason: string | null }>(
    'SELECT recipient_id, address, domain, status, exclusion_reason FROM delivery_recipients WHERE delivery_id = $1 ORDER BY recipient_id',
    [id],
  );
  return r.rows;
}

describe('exclusions', () => {
  it('excludes each address for exactly one reason, with exact counts, and accepts IDN domains and UTF-8 local parts', async () => {
    const s = u();
    const denied = `deny-${s}@an.example`;
    const quarantined = `quar-${s}@an.example`;
    const onlyCounted = `quar2-${s}@an.example`;
    await h.pool.query(`INSERT INTO address_denylist (address_key, reason, source) VALUES ($1, 'complaint', 'test')`, [denied]);
    await h.pool.query(`INSERT INTO address_quarantine (address_key, reason, quarantined, error_count) VALUES ($1, 'user_unknown', true, 1), ($2, 'mailbox_full', false, 1)`, [
      quarantined,
      onlyCounted,
    ]);
    const f = (firstName: string | undefined) => (firstName === undefined ? {} : { fields: { firstName } });
    const recipients = [
      { email: `ok-${s}@an.example`, ...f('Ann') }, // 1 pending
      { email: 'no-at.example', ...f('X') }, // 2 invalid: no @
      { email: `user-${s}@bad_label.example`, ...f('X') }, // 3 invalid: bad domain label
      { email: `${'a'.repeat(65)}@an.example`, ...f('X') }, // 4 invalid: local part > 64 octets
      { email: 'a..b@x.example', ...f('X') }, // 5 invalid: consecutive dots
      { email: `user-${s}@bücher.example`, ...f('Björn') }, // 6 pending: IDN domain
      { email: `josé-${s}@an.example`, ...f('José') }, // 7 pending: UTF-8 local part
      { email: `Dup-${s}@An.Example`, ...f('D') }, // 8 pending: first of its duplicates
      { email: `dup-${s}@an.example`, ...f('D') }, // 9 duplicate
      { email: `DUP-${s}@AN.EXAMPLE`, ...f('D') }, // 10 duplicate
      { email: `Deny-${s}@an.example`, ...f('N') }, // 11 denylisted (key is case-folded)
      { email: quarantined, ...f('Q') }, // 12 quarantined
      { email: onlyCounted, ...f('Q2') }, // 13 pending: counted in quarantine but not quarantined
      { email: `nofield-${s}@an.example` }, // 14 missing field
      { email: `emptyfield-${s}@an.example`, ...f('') }, // 15 missing field (empty)
      { email: 'broken@@x.example' }, // 16 invalid (and missing a field): one reason only, the first
      { email: `USER-${s}@xn--bcher-kva.example`, ...f('B') }, // 17 duplicate of 6: same IDN domain in punycode, other case
      { email: `JOSÉ-${s}@AN.example`, ...f('J') }, // 18 duplicate of 7: UTF-8 local parts are case-folded too
    ];
    const id = await create(base({ recipients, html: '<p>Hello {{firstName}}</p>', text: 'Hello {{firstName}}' }));
    const d = await analysed(id);
    expect(d.state).toBe('awaiting_confirmation');
    expect(d.analysis.targeted).toBe(18);
    expect(d.analysis.exclusions).toEqual({ invalid_address: 5, duplicate: 4, address_on_denylist: 1, quarantined_address: 1, missing_field: 2 });
    expect(d.analysis.excluded).toBe(13);
    expect(d.analysis.toDeliver).toBe(5);
    expect(d.analysis.requiredFields).toEqual(['firstName']);
    expect(d.analysis.confirmable).toBe(true);
    expect(finding(d, 'MISSING_FIELDS')).toMatchObject({ severity: 'warning' });
    expect(finding(d, 'MISSING_FIELDS')!.message).toMatch(/^2 recipients/);
    expect(d.kpis).toMatchObject({ targeted: 18, excluded: 13, toDeliver: 5, pending: 5, sent: 0 });

    const byId = new Map((await rows(id)).map((r) => [r.recipient_id, r]));
    const expected: Record<number, string | null> = {
      1: null,
      2: 'invalid_address',
      3: 'invalid_address',
      4: 'invalid_address',
      5: 'invalid_address',
      6: null,
      7: null,
      8: null,
      9: 'duplicate',
      10: 'duplicate',
      11: 'address_on_denylist',
      12: 'quarantined_address',
      13: null,
      14: 'missing_field',
      15: 'missing_field',
      16: 'invalid_address',
      17: 'duplicate',
      18: 'duplicate',
    };
    expect(byId.size).toBe(18);
    for (const [rid, reason] of Object.entries(expected)) {
      const row = byId.get(Number(rid))!;
      expect({ rid: Number(rid), status: row.status, reason: row.exclusion_reason }).toEqual({
        rid: Number(rid),
        status: reason ? 'excluded' : 'pending',
        reason,
      });
    }
    expect(byId.get(6)).toMatchObject({ domain: 'xn--bcher-kva.example', address: `user-${s}@bücher.example` });
    expect(byId.get(7)).toMatchObject({ domain: 'an.example', address: `josé-${s}@an.example` });
    // An invalid address has no domain; the domain counts only see deliverable ones.
    expect(byId.get(2)!.domain).toBe('');
    expect(d.analysis.topDomains).toEqual([
      { domain: 'an.example', count: 4 },
      { domain: 'xn--bcher-kva.example', count: 1 },
    ]);

    // The paged API shows the same exclusions.
    const excluded = await api('GET', `/api/deliveries/${id}/recipients?status=excluded`);
    expect(excluded.status).toBe(200);
    expect(excluded.json.recipients.map((r: { recipientId: number }) => r.recipientId)).toEqual([2, 3, 4, 5, 9, 10, 11, 12, 14, 15, 16, 17, 18]);
  });

  it('fails the analysis with NOTHING_TO_DELIVER when every address is excluded', async () => {
    const id = await create(base({ recipients: [{ email: 'nope' }, { email: 'still nope@x.example' }, { email: 'x@localhost' }] }));
    const d = await analysed(id);
    expect(d.state).toBe('analysis_failed');
    expect(d.analysis).toMatchObject({ targeted: 3, excluded: 3, toDeliver: 0, confirmable: false, exclusions: { invalid_address: 3 } });
    expect(finding(d, 'NOTHING_TO_DELIVER')).toMatchObject({ severity: 'error' });
    expect(d.analysis.wavePlan).toEqual([]);
    const confirm = await api('POST', `/api/deliveries/${id}/confirm`, {});
    expect(confirm.status).toBe(409);
    expect(confirm.json.error).toMatch(/blocking errors/);
  });
});

describe('findings', () => {
  it('reports content warnings: MESSAGE_TOO_BIG, NO_TEXT_PART, UNSUBSCRIBE_NOT_PUBLIC, VALIDITY_CAPPED; none of them for a small text message', async () => {
    const s = u();
    const bigHtml = `<html><body>${'<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>\n'.repeat(1800)}</body></html>`;
    expect(bigHtml.length).toBeGreaterThan(102 * 1024);
    const [bigId, smallId] = await Promise.all([
      // Default validity (5 days) is longer than the 3.5-day retry window.
      create({ ...base({ html: bigHtml, recipients: [{ email: `big-${s}@findings.example` }] }), text: undefined, validity: undefined }),
      create({ ...base({ recipients: [{ email: `small-${s}@findings.example` }] }), html: undefined, text: 'Just text', validity: '3d' }),
    ]);
    const [big, small] = await Promise.all([analysed(bigId), analysed(smallId)]);

    expect(big.state).toBe('awaiting_confirmation');
    expect(big.validitySeconds).toBe(5 * 86400);
    expect(codes(big)).toEqual(['MESSAGE_TOO_BIG', 'NO_TEXT_PART', 'UNSUBSCRIBE_NOT_PUBLIC', 'VALIDITY_CAPPED']);
    for (const f of big.analysis.findings as Finding[]) expect(f.severity).toBe('warning');
    expect(big.analysis.confirmable).toBe(true);
    expect(finding(big, 'MESSAGE_TOO_BIG')!.message).toMatch(/\d+ KB/);
    expect(finding(big, 'UNSUBSCRIBE_NOT_PUBLIC')!.message).toContain('http://127.0.0.1:3000');

    expect(small.state).toBe('awaiting_confirmation');
    expect(codes(small)).toEqual(['UNSUBSCRIBE_NOT_PUBLIC']);
  });

  it('TEMPLATE_INVALID blocks the delivery and confirm is refused with the reason', async () => {
    const id = await create(base({ html: '<p>{{#if vip}}Dear VIP</p>', recipients: [{ email: `t-${u()}@findings.example`, fields: { vip: true } }] }));
    const d = await analysed(id);
    expect(d.state).toBe('analysis_failed');
    expect(finding(d, 'TEMPLATE_INVALID')).toMatchObject({ severity: 'error' });
    expect(finding(d, 'TEMPLATE_INVALID')!.message).toMatch(/does not compile/);
    expect(d.analysis.confirmable).toBe(false);
    const confirm = await api('POST', `/api/deliveries/${id}/confirm`, {});
    expect(confirm.status).toBe(409);
    expect(confirm.json.error).toMatch(/^cannot confirm: .*blocking errors/);
  });

  it('calendar waves: CALENDAR_REMAINDER warning, LAST_WAVE_AFTER_VALIDITY error, the last wave taking the remainder', async () => {
    const now = Date.now();
    const first = new Date(now + 10 * 60_000).toISOString();
    const second = new Date(now + 2 * 3600_000).toISOString();
    const recipients = Array.from({ length: 10 }, (_, i) => ({ email: `cal${i}-${u()}@calendar.example` }));
    const id = await create(
      base({
        recipients,
        validity: '1h',
        waves: {
          mode: 'calendar',
          // Given out of order: the plan sorts them by start.
          waves: [
            { startAt: second, size: 3 },
            { startAt: first, size: 2 },
          ],
        },
      }),
    );
    const d = await analysed(id);
    expect(d.state).toBe('analysis_failed');
    expect(finding(d, 'CALENDAR_REMAINDER')).toMatchObject({ severity: 'warning' });
    expect(finding(d, 'CALENDAR_REMAINDER')!.message).toContain('cover 5 of 10');
    expect(finding(d, 'LAST_WAVE_AFTER_VALIDITY')).toMatchObject({ severity: 'error' });
    expect(finding(d, 'LAST_WAVE_AFTER_VALIDITY')!.message).toMatch(/^Wave 2 /);
    expect(finding(d, 'VALIDITY_CAPPED')).toBeUndefined();
    const plan = d.analysis.wavePlan as { index: number; size: number; startAtMs: number }[];
    expect(plan.map((w) => w.size)).toEqual([2, 8]);
    expect(plan.map((w) => w.startAtMs)).toEqual([Date.parse(first), Date.parse(second)]);
  });

  it('calendar waves inside the validity are confirmable, with no remainder when they add up', async () => {
    const now = Date.now();
    const recipients = Array.from({ length: 4 }, (_, i) => ({ email: `calok${i}-${u()}@calendar.example` }));
    const id = await create(
      base({
        recipients,
        validity: '2d',
        waves: { mode: 'calendar', waves: [{ startAt: new Date(now + 3600_000).toISOString(), percent: 50 }, { startAt: new Date(now + 7200_000).toISOString(), percent: 50 }] },
      }),
    );
    const d = await analysed(id);
    expect(d.state).toBe('awaiting_confirmation');
    expect(codes(d)).toEqual(['UNSUBSCRIBE_NOT_PUBLIC']);
    expect(d.analysis.wavePlan.map((w: { size: number }) => w.size)).toEqual([2, 2]);
  });

  it('TIME_ZONE_DEFAULTED counts recipients without a valid zone when sending at local time', async () => {
    const s = u();
    const id = await create(
      base({
        localSendTime: { time: '09:00', defaultTimeZone: 'Europe/Paris' },
        recipients: [
          { email: `tz1-${s}@tz.example`, fields: { timezone: 'America/New_York' } },
          { email: `tz2-${s}@tz.example`, fields: { timezone: 'Mars/Olympus' } },
          { email: `tz3-${s}@tz.example` },
          { email: `tz4-${s}@tz.example`, fields: { timezone: 'Asia/Tokyo' } },
          { email: `tz5-${s}@tz.example`, fields: { timezone: '' } },
        ],
      }),
    );
    const d = await analysed(id);
    expect(d.state).toBe('awaiting_confirmation');
    expect(finding(d, 'TIME_ZONE_DEFAULTED')).toMatchObject({ severity: 'warning' });
    expect(finding(d, 'TIME_ZONE_DEFAULTED')!.message).toMatch(/^3 recipients have no valid time zone in "timezone" and will be sent at 09:00 Europe\/Paris/);
  });

  it('NO_DKIM_KEY appears on re-analysis once the From domain has no active key', async () => {
    const domain = `nodkim-${u()}.example`;
    const id = await create(base({ from: `news@${domain}`, recipients: [{ email: `k-${u()}@dkim.example` }] }));
    const before = await analysed(id);
    expect(before.state).toBe('awaiting_confirmation');
    expect(finding(before, 'NO_DKIM_KEY')).toBeUndefined();
    const off = await h.pool.query('UPDATE dkim_keys SET active = false WHERE domain = $1', [domain]);
    expect(off.rowCount).toBe(1);
    const patch = await api('PATCH', `/api/deliveries/${id}`, { subject: 'Hello again' });
    expect(patch.status).toBe(202);
    await h.waitForPhase(id, ['analysis_failed'], 60_000);
    const after = await getDelivery(id);
    expect(after.subject).toBe('Hello again');
    expect(finding(after, 'NO_DKIM_KEY')).toMatchObject({ severity: 'error' });
    expect(finding(after, 'NO_DKIM_KEY')!.message).toContain(domain);
    expect(after.analysis.confirmable).toBe(false);
  });
});

describe('counts and wave plan', () => {
  it('size waves: 10 deliverable recipients by 3 → [3,3,3,1] spaced by periodSeconds; top domains; duration', async () => {
    const s = u();
    const emails = [
      ...Array.from({ length: 5 }, (_, i) => `a${i}-${s}@alpha.example`),
      ...Array.from({ length: 3 }, (_, i) => `b${i}-${s}@beta.example`),
      ...Array.from({ length: 2 }, (_, i) => `c${i}-${s}@gamma.example`),
      'invalid-address',
    ];
    const id = await create(base({ recipients: emails.map((email) => ({ email })), waves: { mode: 'size', size: 3, periodSeconds: 600 } }));
    const d = await analysed(id);
    expect(d.state).toBe('awaiting_confirmation');
    expect(d.analysis).toMatchObject({ targeted: 11, excluded: 1, toDeliver: 10, domainCount: 3 });
    expect(d.analysis.topDomains).toEqual([
      { domain: 'alpha.example', count: 5 },
      { domain: 'beta.example', count: 3 },
      { domain: 'gamma.example', count: 2 },
    ]);
    const plan = d.analysis.wavePlan as { index: number; size: number; startAtMs: number; startAt: string; estimatedEndMs: number }[];
    expect(plan.map((w) => w.index)).toEqual([1, 2, 3, 4]);
    expect(plan.map((w) => w.size)).toEqual([3, 3, 3, 1]);
    for (let i = 1; i < plan.length; i++) expect(plan[i].startAtMs - plan[i - 1].startAtMs).toBe(600_000);
    expect(Date.parse(plan[0].startAt)).toBe(plan[0].startAtMs);
    // The plan starts when the analysis ran (no contact date).
    expect(Math.abs(plan[0].startAtMs - Date.parse(d.analysis.analysedAt))).toBeLessThan(30_000);
    for (const w of plan) expect(w.estimatedEndMs).toBeGreaterThan(w.startAtMs);
    expect(d.analysis.estimatedDurationSeconds).toBeGreaterThanOrEqual(1800);
    expect(d.analysis.estimatedDurationSeconds).toBe(Math.ceil((plan[3].estimatedEndMs - plan[0].startAtMs) / 1000));
    expect(d.kpis).toMatchObject({ targeted: 11, excluded: 1, toDeliver: 10 });
  });

  it('a contact date moves the plan start', async () => {
    const contactDate = new Date(Date.now() + 6 * 3600_000);
    contactDate.setMilliseconds(0);
    const id = await create(base({ recipients: [{ email: `cd-${u()}@contact.example` }], contactDate: contactDate.toISOString() }));
    const d = await analysed(id);
    expect(d.analysis.wavePlan).toHaveLength(1);
    expect(d.analysis.wavePlan[0].startAtMs).toBe(contactDate.getTime());
    expect(d.analysis.estimatedDurationSeconds).toBeGreaterThan(0);
  });
});

describe('confirmation', () => {
  it('accepts once when awaiting confirmation, then refuses (already confirmed) and refuses edits', async () => {
    // A contact date an hour ahead keeps the confirmed delivery in "scheduled" while the second confirm is tried.
    const id = await create(base({ recipients: [{ email: `c1-${u()}@confirm.example` }], contactDate: new Date(Date.now() + 3600_000).toISOString() }));
    expect((await analysed(id)).state).toBe('awaiting_confirmation');
    const first = await api('POST', `/api/deliveries/${id}/confirm`, { confirmedBy: 'tester' });
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ id, confirmed: true });
    await h.waitForPhase(id, ['scheduled'], 30_000);
    const row = await h.pool.query('SELECT state, confirmed_at FROM deliveries WHERE id = $1', [id]);
    expect(row.rows[0].state).toBe('scheduled');
    expect(row.rows[0].confirmed_at).not.toBeNull();
    const second = await api('POST', `/api/deliveries/${id}/confirm`, {});
    expect(second.status).toBe(409);
    expect(second.json.error).toMatch(/already confirmed/);
    const edit = await api('PATCH', `/api/deliveries/${id}`, { subject: 'too late' });
    expect(edit.status).toBe(409);
    expect(edit.json.error).toMatch(/confirmed/);
    expect((await getDelivery(id)).subject).toBe('Hello');
    // Clean up: cancel before the contact date.
    expect((await api('POST', `/api/deliveries/${id}/cancel`, {})).status).toBe(202);
    await h.waitForPhase(id, ['cancelled'], 30_000);
    expect((await rows(id)).map((r) => r.status)).toEqual(['cancelled']);
  });

  it('refuses to confirm a cancelled delivery', async () => {
    const id = await create(base({ recipients: [{ email: `c2-${u()}@confirm.example` }, { email: `c3-${u()}@confirm.example` }] }));
    expect((await analysed(id)).state).toBe('awaiting_confirmation');
    const cancel = await api('POST', `/api/deliveries/${id}/cancel`, { reason: 'changed my mind' });
    expect(cancel.status).toBe(202);
    const confirm = await api('POST', `/api/deliveries/${id}/confirm`, {});
    expect(confirm.status).toBe(409);
    // Either the workflow's validator (still running) or the ended workflow answers.
    expect(confirm.json.error).toMatch(/cancelled|ended/);
    await h.waitForPhase(id, ['cancelled'], 30_000);
    const again = await api('POST', `/api/deliveries/${id}/confirm`, {});
    expect(again.status).toBe(409);
    expect((await rows(id)).map((r) => r.status)).toEqual(['cancelled', 'cancelled']);
    const d = await getDelivery(id);
    expect(d.state).toBe('cancelled');
    expect(d.kpis).toMatchObject({ cancelled: 2, sent: 0, toDeliver: 0 });
  });

  it('re-analyses after an edit (analysedAt changes) and refuses confirm until the new analysis has ended', async () => {
    const id = await create(base({ recipients: [{ email: `re-${u()}@confirm.example` }] }));
    const before = await analysed(id);
    expect(before.state).toBe('awaiting_confirmation');
    const patch = await api('PATCH', `/api/deliveries/${id}`, { subject: 'Edited subject' });
    expect(patch.status).toBe(202);
    expect(patch.json).toMatchObject({ id, reanalysing: true });
    // The update completes in the same workflow task that starts the new analysis: confirm cannot slip in before it.
    const early = await api('POST', `/api/deliveries/${id}/confirm`, {});
    expect(early.status).toBe(409);
    expect(early.json.error).toMatch(/analys/);
    const after = await waitUntil('a new analysis', async () => {
      const d = await getDelivery(id);
      return d.state === 'awaiting_confirmation' && d.analysis.analysedAt !== before.analysis.analysedAt ? d : null;
    });
    expect(Date.parse(after.analysis.analysedAt)).toBeGreaterThan(Date.parse(before.analysis.analysedAt));
    expect(after.subject).toBe('Edited subject');
    const confirm = await api('POST', `/api/deliveries/${id}/confirm`, {});
    expect(confirm.status).toBe(200);
    await h.waitForPhase(id, ['completed'], 60_000);
    const kpis = (await getDelivery(id)).kpis;
    expect(kpis).toMatchObject({ sent: 1, toDeliver: 1, successPercent: 100 });
  });

  it('a delivery blocked by TEMPLATE_INVALID becomes confirmable once the template is fixed, and sends the fixed content', async () => {
    const email = `fix-${u()}@confirm.example`;
    const id = await create(base({ html: '<p>{{#if vip}}Dear VIP</p>', text: undefined, recipients: [{ email, fields: { vip: true, firstName: 'Vera' } }] }));
    const blocked = await analysed(id);
    expect(blocked.state).toBe('analysis_failed');
    expect(finding(blocked, 'TEMPLATE_INVALID')).toBeDefined();
    expect((await api('POST', `/api/deliveries/${id}/confirm`, {})).status).toBe(409);

    const patch = await api('PATCH', `/api/deliveries/${id}`, { html: '<p>{{#if vip}}Dear VIP {{firstName}}{{/if}}</p>', text: 'Dear {{firstName}}' });
    expect(patch.status).toBe(202);
    await h.waitForPhase(id, ['awaiting_confirmation'], 60_000);
    const fixed = await getDelivery(id);
    expect(finding(fixed, 'TEMPLATE_INVALID')).toBeUndefined();
    expect(finding(fixed, 'NO_TEXT_PART')).toBeUndefined();
    expect(fixed.analysis.confirmable).toBe(true);
    expect(fixed.analysis.requiredFields).toEqual(['firstName', 'vip']);
    expect(Date.parse(fixed.analysis.analysedAt)).toBeGreaterThan(Date.parse(blocked.analysis.analysedAt));

    const confirm = await api('POST', `/api/deliveries/${id}/confirm`, { confirmedBy: 'fixer' });
    expect(confirm.status).toBe(200);
    await h.waitForPhase(id, ['completed'], 60_000);
    const msgs = h.mx.acceptedFor(email);
    expect(msgs).toHaveLength(1);
    const raw = msgs[0].raw!.toString('utf8');
    expect(raw).toContain('Dear VIP Vera');
    expect(raw).toContain('Dear Vera');
  });

  it('unknown or malformed delivery ids: 404 and 400', async () => {
    expect((await api('POST', `/api/deliveries/${randomUUID()}/confirm`, {})).status).toBe(404);
    expect((await api('POST', '/api/deliveries/not-a-uuid/confirm', {})).status).toBe(400);
    expect((await api('PATCH', `/api/deliveries/${randomUUID()}`, { subject: 'x' })).status).toBe(404);
    const nothing = await api('PATCH', `/api/deliveries/${randomUUID()}`, {});
    expect(nothing.status).toBe(400);
    expect(JSON.stringify(nothing.json.issues)).toContain('nothing to change');
  });
});
