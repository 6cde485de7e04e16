/** Waves (size, calendar, ramp-up), local-time sending, pause/resume/cancel and rescheduling, on real workflows. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness';
import { apiCall, waitUntil } from './support/http';
import { recipientStateQuery, recipientWorkflowId } from '../workflows/contract';
import { nextLocalTime } from '../domain/local-send-time';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ env: { RETRY_TIME_SCALE: '0.002' } });
});
afterAll(async () => {
  await h?.stop();
});

function recipients(n: number, prefix = 'r') {
  return Array.from({ length: n }, (_, i) => ({ email: `${prefix}${i + 1}@waves.example`, fields: { firstName: `N${i + 1}` } }));
}

const content = { from: 'news@waves-brand.example', subject: 'Hi {{firstName}}', text: 'Hello {{firstName}}' };

async function wavesOf(deliveryId: string): Promise<Map<number, number[]>> {
  const r = await h.pool.query<{ wave: number | null; recipient_id: number }>(
    `SELECT wave, recipient_id FROM delivery_recipients WHERE delivery_id = $1 AND status <> 'excluded' ORDER BY recipient_id`,
    [deliveryId],
  );
  const byWave = new Map<number, number[]>();
  for (const row of r.rows) {
    expect(row.wave, `recipient ${row.recipient_id} has no wave`).not.toBeNull();
    byWave.set(row.wave!, [...(byWave.get(row.wave!) ?? []), row.recipient_id]);
  }
  return byWave;
}

const api = async (method: string, path: string, body?: unknown) => {
  const r = await apiCall(h.apiUrl, method, path, body);
  return { status: r.status, body: r.json as Record<string, unknown> };
};
const until = waitUntil;

describe('waves', () => {
  it('by size: splits 10 recipients 3/3/3/1, each wave starting its period after the previous one', async () => {
    const id = await h.createDelivery({ ...content, name: 'size waves', recipients: recipients(10), autoConfirm: true, waves: { mode: 'size', size: 3, periodSeconds: 2 } });
    const done = await h.waitForPhase(id, ['completed']);
    expect(done.waves.map((w) => w.size)).toEqual([3, 3, 3, 1]);
    expect(done.waves.map((w) => w.handedOver)).toEqual([3, 3, 3, 1]);
    for (let i = 1; i < done.waves.length; i++) {
      expect(done.waves[i].plannedStartMs - done.waves[i - 1].plannedStartMs).toBe(2000);
      // A wave never starts before its time, and starts within a couple of seconds of it.
      expect(done.waves[i].startedAtMs!).toBeGreaterThanOrEqual(done.waves[i].plannedStartMs);
      expect(done.waves[i].startedAtMs! - done.waves[i].plannedStartMs).toBeLessThan(2000);
    }
    const byWave = await wavesOf(id);
    expect([...byWave.entries()]).toEqual([
      [1, [1, 2, 3]],
      [2, [4, 5, 6]],
      [3, [7, 8, 9]],
      [4, [10]],
    ]);
    expect(done.kpis).toMatchObject({ toDeliver: 10, sent: 10 });
  });

  it('by calendar: 50% / 30% / 20% at three given times, nobody in two waves, nobody left out', async () => {
    const t0 = Date.now();
    const at = (s: number) => new Date(t0 + s * 1000).toISOString();
    const id = await h.createDelivery({
      ...content,
      name: 'calendar waves',
      recipients: recipients(10, 'c'),
      autoConfirm: true,
      waves: { mode: 'calendar', waves: [{ startAt: at(1), percent: 50 }, { startAt: at(3), percent: 30 }, { startAt: at(5), percent: 20 }] },
    });
    const done = await h.waitForPhase(id, ['completed']);
    expect(done.waves.map((w) => [w.size, w.plannedStartMs])).toEqual([
      [5, Date.parse(at(1))],
      [3, Date.parse(at(3))],
      [2, Date.parse(at(5))],
    ]);
    for (const w of done.waves) expect(w.startedAtMs!).toBeGreaterThanOrEqual(w.plannedStartMs);
    const byWave = await wavesOf(id);
    expect([...byWave.values()].map((ids) => ids.length)).toEqual([5, 3, 2]);
    expect([...byWave.values()].flat()).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
  });

  it('ramp-up for a new IP: growing wave sizes', async () => {
    const id = await h.createDelivery({
      ...content,
      name: 'ramp-up',
      recipients: recipients(15, 'u'),
      autoConfirm: true,
      waves: { mode: 'ramp_up', initialSize: 2, growthFactor: 2, periodSeconds: 1 },
    });
    const done = await h.waitForPhase(id, ['completed']);
    expect(done.waves.map((w) => w.size)).toEqual([2, 4, 8, 1]);
    const byWave = await wavesOf(id);
    expect([...byWave.values()].map((ids) => ids.length)).toEqual([2, 4, 8, 1]);
  });
});

describe('local-time sending', () => {
  it('computes the right instants around a DST change', () => {
    // Europe/Paris springs forward on 2026-03-29 (UTC+1 → UTC+2): 09:00 is 08:00Z the day before, 07:00Z that day.
    const before = Date.parse('2026-03-28T06:00:00Z');
    expect(new Date(nextLocalTime(before, '09:00', 'Europe/Paris')).toISOString()).toBe('2026-03-28T08:00:00.000Z');
    expect(new Date(nextLocalTime(Date.parse('2026-03-28T09:00:00Z'), '09:00', 'Europe/Paris')).toISOString()).toBe('2026-03-29T07:00:00.000Z');
    // New York falls back on 2026-11-01 (UTC-4 → UTC-5).
    expect(new Date(nextLocalTime(Date.parse('2026-10-31T20:00:00Z'), '09:00', 'America/New_York')).toISOString()).toBe('2026-11-01T14:00:00.000Z');
    expect(new Date(nextLocalTime(Date.parse('2026-10-31T12:00:00Z'), '09:00', 'America/New_York')).toISOString()).toBe('2026-10-31T13:00:00.000Z');
    // 02:30 does not exist in Paris on 2026-03-29: the wall time moves forward by the gap.
    expect(new Date(nextLocalTime(Date.parse('2026-03-29T00:00:00Z'), '02:30', 'Europe/Paris')).toISOString()).toBe('2026-03-29T01:30:00.000Z');
  });

  it("holds each message until the chosen time in the recipient's own zone", async () => {
    const id = await h.createDelivery({
      ...content,
      name: 'local time',
      recipients: [
        { email: 'tokyo@tz.example', fields: { firstName: 'T', timezone: 'Asia/Tokyo' } },
        { email: 'paris@tz.example', fields: { firstName: 'P', timezone: 'Europe/Paris' } },
        { email: 'nozone@tz.example', fields: { firstName: 'N' } },
      ],
      autoConfirm: true,
      localSendTime: { time: '03:00', defaultTimeZone: 'America/New_York' },
    });
    const sending = await h.waitForPhase(id, ['sending']);
    expect(sending.analysis?.findings.map((f) => f.code)).toContain('TIME_ZONE_DEFAULTED');
    const rows = await until('send times', async () => {
      const r = await h.pool.query(`SELECT recipient_id, address, send_at, status, attempts FROM delivery_recipients WHERE delivery_id = $1 ORDER BY recipient_id`, [id]);
      return r.rows.every((x) => x.send_at) && r.rows;
    });
    const zones = ['Asia/Tokyo', 'Europe/Paris', 'America/New_York'];
    for (const [i, row] of rows.entries()) {
      const sendAt = (row.send_at as Date).getTime();
      // The first 03:00 in the zone after hand-over: in the future, within a day, and 03:00 on that zone's clock.
      expect(sendAt).toBeGreaterThan(Date.now());
      expect(sendAt - Date.now()).toBeLessThanOrEqual(24 * 3600 * 1000);
      expect(new Intl.DateTimeFormat('en-GB', { timeZone: zones[i], hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(sendAt)).toBe('03:00');
      expect(row.status).toBe('taken_into_account');
      expect(row.attempts).toBe(0);
      // The send times are written when the page is claimed, before the batch workflow has started the recipient's.
      const view = await until('the recipient workflow', () =>
        h.client.workflow.getHandle(recipientWorkflowId(id, row.recipient_id)).query(recipientStateQuery).catch(() => null),
      );
      expect(view.sendAtMs).toBe(sendAt);
      expect(view.attempts).toBe(0);
    }
    expect(h.mx.acceptedFor('tokyo@tz.example')).toHaveLength(0);
    // Tidy up: these would otherwise wait until tomorrow.
    for (const row of rows) await h.client.workflow.getHandle(recipientWorkflowId(id, row.recipient_id)).terminate('test done');
    await h.client.workflow.getHandle(`delivery-${id}`).terminate('test done');
  });
});

describe('control', () => {
  it('pause stops new sends while waiting retries keep their timers; resume finishes the delivery', async () => {
    const list = [{ email: 'grey-first@ctl.example', fields: { firstName: 'G' } }, ...recipients(11, 'p')];
    const id = await h.createDelivery({ ...content, name: 'pause', recipients: list, autoConfirm: true, waves: { mode: 'size', size: 2, periodSeconds: 3 } });
    // Pause once the first wave is handed over and the greylisted recipient (in it) has had its first attempt: a
    // handed-over recipient whose first attempt has not started yet waits for the resume (batches start their
    // recipients while the next page is claimed, so hand-over alone does not mean the first attempt happened).
    await until('wave 1', async () => (await h.waitForPhase(id, ['sending'])).waves[0]?.handedOver === 2);
    await until('first attempt of the greylisted recipient', async () => h.mx.attemptsFor('grey-first@ctl.example') >= 1, 20_000);
    const paused = await api('POST', `/api/deliveries/${id}/pause`, {});
    expect(paused.status).toBe(200);
    expect((await api('POST', `/api/deliveries/${id}/pause`, {})).status).toBe(409);
    const handedAtPause = (await h.waitForPhase(id, ['paused'])).handedOverUpToRecipientId;
    // The greylisted recipient's retry (0.6 s timer) still goes out while paused.
    await until('greylisted retry sent during pause', async () => h.mx.acceptedFor('grey-first@ctl.example').length === 1, 20_000);
    await new Promise((r) => setTimeout(r, 4000));
    const during = await h.waitForPhase(id, ['paused']);
    expect(during.handedOverUpToRecipientId).toBe(handedAtPause);
    expect(during.paused).toBe(true);
    const handedRows = await h.pool.query(`SELECT count(*)::int AS n FROM delivery_recipients WHERE delivery_id = $1 AND status <> 'pending'`, [id]);
    expect(handedRows.rows[0].n).toBe(handedAtPause);
    const resumed = await api('POST', `/api/deliveries/${id}/resume`);
    expect(resumed.status).toBe(200);
    expect((await api('POST', `/api/deliveries/${id}/resume`)).status).toBe(409);
    const done = await h.waitForPhase(id, ['completed']);
    expect(done.kpis).toMatchObject({ toDeliver: 12, sent: 12 });
  });

  it('pause is refused before confirmation, confirm after cancel is refused, cancel ends recipients not handed over as cancelled', async () => {
    const draft = await h.createDelivery({ ...content, name: 'draft', recipients: recipients(3, 'd') });
    await h.waitForPhase(draft, ['awaiting_confirmation']);
    const refusedPause = await api('POST', `/api/deliveries/${draft}/pause`, {});
    expect(refusedPause.status).toBe(409);
    expect(String(refusedPause.body.error)).toMatch(/not confirmed/);
    expect((await api('POST', `/api/deliveries/${draft}/cancel`, { reason: 'changed my mind' })).status).toBe(202);
    const refusedConfirm = await api('POST', `/api/deliveries/${draft}/confirm`, {});
    expect(refusedConfirm.status).toBe(409);
    expect(String(refusedConfirm.body.error)).toMatch(/cancel/);
    const cancelledDraft = await h.waitForPhase(draft, ['cancelled']);
    expect(cancelledDraft.kpis).toMatchObject({ cancelled: 3, toDeliver: 0, sent: 0 });

    const id = await h.createDelivery({ ...content, name: 'cancel mid-way', recipients: recipients(10, 'x'), autoConfirm: true, waves: { mode: 'size', size: 2, periodSeconds: 30 } });
    await until('first wave sent', async () => {
      const k = (await h.waitForPhase(id, ['sending'])).kpis;
      return k && k.sent === 2;
    });
    expect((await api('POST', `/api/deliveries/${id}/cancel`, {})).status).toBe(202);
    const done = await h.waitForPhase(id, ['cancelled']);
    expect(done.kpis).toMatchObject({ targeted: 10, sent: 2, cancelled: 8, toDeliver: 2, successPercent: 100 });
    expect((await api('POST', `/api/deliveries/${id}/cancel`, {})).status).toBe(409);
    const cancelled = await h.service.log.page(id, { afterRecipientId: 0, limit: 100, status: 'cancelled' });
    expect(cancelled.map((r) => r.recipientId)).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('the contact date can change until sending starts, not after', async () => {
    const later = new Date(Date.now() + 3600_000).toISOString();
    const id = await h.createDelivery({ ...content, name: 'scheduled', recipients: recipients(2, 's'), autoConfirm: true, contactDate: later });
    const scheduled = await h.waitForPhase(id, ['scheduled']);
    expect(scheduled.contactDateMs).toBe(Date.parse(later));
    const soon = new Date(Date.now() + 1500).toISOString();
    expect((await api('PUT', `/api/deliveries/${id}/contact-date`, { contactDate: soon })).status).toBe(200);
    const done = await h.waitForPhase(id, ['completed']);
    expect(done.kpis?.sent).toBe(2);
    expect(done.waves[0].startedAtMs!).toBeGreaterThanOrEqual(Date.parse(soon));
    const row = await h.service.store.get(id);
    expect(row?.contactDate?.toISOString()).toBe(soon);
    const refused = await api('PUT', `/api/deliveries/${id}/contact-date`, { contactDate: later });
    expect(refused.status).toBe(409);
  });
});
