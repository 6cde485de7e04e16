/**
 * Recurring deliveries: a template sent on a Temporal Schedule through the API (create, list, read, pause, unpause,
 * run now, delete), each run an ordinary auto-confirmed delivery with its own delivery-<id> workflow and KPIs.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScheduleNotFoundError } from '@temporalio/client';
import { request } from './support/http';
import { startHarness, type Harness } from './support/harness';
import { DeliveryTemplateStore } from '../db/delivery-templates';
import { createRecurringActivities } from '../activities/recurring-activities';
import { recurringScheduleId } from '../api/schedule-routes';
import type { RecurringRunResult } from '../workflows/contract';

let h: Harness;
let templates: DeliveryTemplateStore;
const created: string[] = [];

const LIST = ['ada@recurring.example', 'grace@recurring.example', 'alan@recurring.example'];

async function api(method: string, path: string, body?: unknown, contentType = 'application/json') {
  const r = await request(h.apiUrl, method, path, body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body), contentType });
  return { status: r.status, body: r.json };
}

async function uploadList(name: string, emails: string[]): Promise<string> {
  const csv = ['email,firstName', ...emails.map((e) => `${e},${e.split('@')[0]}`)].join('\n');
  const r = await api('POST', `/api/lists?name=${encodeURIComponent(name)}`, csv, 'text/csv');
  expect(r.status).toBe(201);
  return r.body.id;
}

function template(listId: string, extra: Record<string, unknown> = {}) {
  return {
    name: 'Weekly news',
    from: { address: 'news@recurring-sender.example', name: 'News' },
    subject: 'News for {{firstName}}',
    text: 'Hello {{firstName}}',
    listId,
    validity: '30s',
    ...extra,
  };
}

async function createRecurring(body: unknown) {
  const r = await api('POST', '/api/recurring-deliveries', body);
  if (r.status === 201) created.push(r.body.id);
  return r;
}

async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  h = await startHarness();
  templates = new DeliveryTemplateStore(h.pool);
});

afterAll(async () => {
  // A schedule left behind would keep starting runs on a task queue that no worker polls any more.
  for (const id of created) await h?.client.schedule.getHandle(recurringScheduleId(id)).delete().catch(() => undefined);
  await h?.stop();
});

describe('recurring deliveries API', () => {
  it('refuses what a recurring delivery cannot be, and leaves nothing half created', async () => {
    const listId = await uploadList('refusals', ['x@recurring.example']);
    const before = (await h.pool.query('SELECT count(*)::int AS n FROM delivery_templates')).rows[0].n;

    const { listId: _l, ...noList } = template(listId);
    const inline = await api('POST', '/api/recurring-deliveries', {
      template: { ...noList, recipients: [{ email: 'a@recurring.example' }] },
      schedule: { intervalSeconds: 60 },
    });
    expect(inline.status).toBe(400);
    expect(inline.body.error).toBe('invalid request');
    expect(inline.body.issues).toContainEqual({ path: 'template.recipients', message: expect.stringContaining('inline recipients are not accepted') });

    const noSchedule = await api('POST', '/api/recurring-deliveries', { template: template(listId) });
    expect(noSchedule.status).toBe(400);
    expect(noSchedule.body.issues).toContainEqual({ path: 'schedule', message: expect.stringContaining('schedule is required') });

    const badCronShape = await api('POST', '/api/recurring-deliveries', { template: template(listId), schedule: { cron: 'every monday' } });
    expect(badCronShape.status).toBe(400);
    expect(badCronShape.body.issues[0].path).toBe('schedule.cron');

    // Well-formed but impossible values: Temporal refuses the schedule, and the template row is removed again.
    const badCronValues = await api('POST', '/api/recurring-deliveries', { template: template(listId), schedule: { cron: '99 25 * * *' } });
    expect(badCronValues.status).toBe(400);
    expect(badCronValues.body.issues[0]).toMatchObject({ path: 'schedule.cron', message: expect.stringContaining('not in range') });

    const both = await api('POST', '/api/recurring-deliveries', { template: template(listId), schedule: { cron: '0 9 * * MON', intervalSeconds: 60 } });
    expect(both.status).toBe(400);
    const badZone = await api('POST', '/api/recurring-deliveries', { template: template(listId), schedule: { cron: '0 9 * * MON', timeZone: 'Mars/Olympus' } });
    expect(badZone.status).toBe(400);
    expect(badZone.body.issues[0].path).toBe('schedule.timeZone');

    const contactDate = await api('POST', '/api/recurring-deliveries', {
      template: template(listId, { contactDate: new Date(Date.now() + 3_600_000).toISOString() }),
      schedule: { intervalSeconds: 60 },
    });
    expect(contactDate.status).toBe(400);
    expect(contactDate.body.issues[0].path).toBe('template.contactDate');

    const manual = await api('POST', '/api/recurring-deliveries', { template: template(listId, { autoConfirm: false }), schedule: { intervalSeconds: 60 } });
    expect(manual.status).toBe(400);
    expect(manual.body.issues[0].path).toBe('template.autoConfirm');

    const calendar = await api('POST', '/api/recurring-deliveries', {
      template: template(listId, { waves: { mode: 'calendar', waves: [{ startAt: new Date().toISOString(), percent: 100 }] } }),
      schedule: { intervalSeconds: 60 },
    });
    expect(calendar.status).toBe(400);
    expect(calendar.body.issues[0].path).toBe('template.waves.mode');

    const badTemplate = await api('POST', '/api/recurring-deliveries', { template: template(listId, { subject: '' }), schedule: { intervalSeconds: 60 } });
    expect(badTemplate.status).toBe(400);
    expect(badTemplate.body.issues[0].path).toBe('template.subject');

    const unknownList = await api('POST', '/api/recurring-deliveries', { template: template(randomUUID()), schedule: { intervalSeconds: 60 } });
    expect(unknownList.status).toBe(404);

    const after = (await h.pool.query('SELECT count(*)::int AS n FROM delivery_templates')).rows[0].n;
    expect(after).toBe(before);
  });

  it('answers 404 for an unknown recurring delivery and 400 for a malformed id', async () => {
    const id = randomUUID();
    for (const [method, path] of [
      ['GET', ''],
      ['POST', '/pause'],
      ['POST', '/unpause'],
      ['POST', '/trigger'],
      ['DELETE', ''],
    ] as const) {
      const r = await api(method, `/api/recurring-deliveries/${id}${path}`, method === 'POST' ? {} : undefined);
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.body.error).toContain(id);
    }
    const malformed = await api('GET', '/api/recurring-deliveries/not-an-id');
    expect(malformed.status).toBe(400);
  });

  it('a run creates its delivery once, however often the activity is retried', async () => {
    const listId = await uploadList('idempotency', LIST);
    const t = await templates.create({ name: 'direct', body: template(listId, { autoConfirm: true }), schedule: { intervalSeconds: 3600, catchupWindowSeconds: 3600 } });
    const { createDeliveryFromTemplate } = createRecurringActivities(h.deps);
    const runKey = `recurring-${t.id}-run-test`;
    const input = { templateId: t.id, runKey, runAtMs: Date.now() };
    // Two attempts at once (a timed-out attempt still running when its retry starts), then a later retry.
    const [a, b] = await Promise.all([createDeliveryFromTemplate(input), createDeliveryFromTemplate(input)]);
    const c = await createDeliveryFromTemplate(input);
    expect(new Set([a.deliveryId, b.deliveryId, c.deliveryId]).size).toBe(1);
    expect([a.created, b.created].filter(Boolean)).toHaveLength(1);
    expect(c.created).toBe(false);
    expect(c.recipients).toBe(LIST.length);
    expect(await templates.countDeliveries(t.id)).toBe(1);
    const row = await h.service.store.get(a.deliveryId);
    expect(row?.options).toMatchObject({ recurring: { templateId: t.id, runKey }, waves: { mode: 'single' } });
    expect(row?.autoConfirm).toBe(true);
    // The DKIM key of the From domain exists before the first message.
    const key = await h.pool.query('SELECT 1 FROM dkim_keys WHERE domain = $1', ['recurring-sender.example']);
    expect(key.rowCount).toBe(1);
    await templates.delete(t.id);
    await h.service.store.delete(a.deliveryId);
  });

  it('sends the template every interval, each run a complete ordinary delivery; pause, unpause, list, delete', async () => {
    const listId = await uploadList('every-2s', LIST);
    const r = await createRecurring({ template: template(listId), schedule: { intervalSeconds: 2 } });
    expect(r.status).toBe(201);
    const id: string = r.body.id;
    expect(r.body.scheduleId).toBe(`recurring-${id}`);
    expect(r.body.overlapPolicy).toBe('SKIP');
    expect(r.body.state).toMatchObject({ exists: true, paused: false });
    expect(r.body.template).toMatchObject({ listId, autoConfirm: true, validity: 30 });
    // validity 30 s > 2 s between runs: the API says so.
    expect(r.body.warnings.join(' ')).toContain('validity');

    // Two runs, each a completed delivery of the whole list.
    const completed = await waitFor('two completed runs', async () => {
      const v = await api('GET', `/api/recurring-deliveries/${id}`);
      const done = (v.body.deliveries as { id: string; state: string }[]).filter((d) => d.state === 'completed');
      return done.length >= 2 ? v.body : null;
    });
    const done = (completed.deliveries as { id: string; state: string; runWorkflowId: string }[]).filter((d) => d.state === 'completed').slice(0, 2);
    expect(new Set(done.map((d) => d.id)).size).toBe(2);
    for (const d of done) {
      const delivery = await api('GET', `/api/deliveries/${d.id}`);
      expect(delivery.status).toBe(200);
      expect(delivery.body.state).toBe('completed');
      expect(delivery.body.kpis).toMatchObject({ toDeliver: LIST.length, sent: LIST.length, failed: 0 });
      expect(delivery.body.confirmedAt).not.toBeNull();
      // Its own delivery-<id> workflow, started by the run.
      const wf = await h.client.workflow.getHandle(`delivery-${d.id}`).describe();
      expect(wf.type).toBe('deliveryWorkflow');
      expect(wf.status.name).toBe('COMPLETED');
      expect(wf.parentExecution?.workflowId).toBe(d.runWorkflowId);
      expect(d.runWorkflowId.startsWith(`recurring-${id}-run-`)).toBe(true);
      const run = (await h.client.workflow.getHandle(d.runWorkflowId).result()) as RecurringRunResult;
      expect(run).toMatchObject({ templateId: id, deliveryId: d.id, phase: 'completed', recipients: LIST.length, kpis: { sent: LIST.length } });
    }
    // Every address got the message of each completed run.
    for (const address of LIST) expect(h.mx.acceptedFor(address).length).toBeGreaterThanOrEqual(2);
    expect(completed.state.recentActions.length).toBeGreaterThanOrEqual(2);

    // Pause: the run going on (if any) finishes, and no new one starts.
    const paused = await api('POST', `/api/recurring-deliveries/${id}/pause`, { reason: 'holiday' });
    expect(paused.status).toBe(200);
    expect(paused.body.state).toMatchObject({ paused: true, note: 'holiday' });
    const again = await api('POST', `/api/recurring-deliveries/${id}/pause`, {});
    expect(again.status).toBe(409);
    expect(again.body.error).toContain('already paused');
    await waitFor('the last run to end', async () => {
      const v = await api('GET', `/api/recurring-deliveries/${id}`);
      return v.body.state.runningActions.length === 0;
    });
    const countPaused = await templates.countDeliveries(id);
    await sleep(5_000);
    expect(await templates.countDeliveries(id)).toBe(countPaused);

    // The list shows it, paused.
    const list = await api('GET', '/api/recurring-deliveries');
    expect(list.status).toBe(200);
    const listed = (list.body.recurringDeliveries as { id: string; state: { paused: boolean } }[]).find((x) => x.id === id);
    expect(listed?.state.paused).toBe(true);

    // Unpause: runs start again.
    const unpaused = await api('POST', `/api/recurring-deliveries/${id}/unpause`, {});
    expect(unpaused.status).toBe(200);
    expect(unpaused.body.state.paused).toBe(false);
    expect((await api('POST', `/api/recurring-deliveries/${id}/unpause`, {})).status).toBe(409);
    await waitFor('a run after unpause', async () => (await templates.countDeliveries(id)) > countPaused);

    // Delete: the schedule is gone (a run still going finishes as an ordinary delivery), and so is the template.
    const del = await api('DELETE', `/api/recurring-deliveries/${id}`);
    expect(del.status).toBe(204);
    expect((await api('GET', `/api/recurring-deliveries/${id}`)).status).toBe(404);
    await expect(h.client.schedule.getHandle(recurringScheduleId(id)).describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
    expect(await templates.get(id)).toBeNull();
  });

  it('a cron schedule in a time zone, created paused, runs now when triggered', async () => {
    const listId = await uploadList('cron', LIST);
    const r = await createRecurring({ template: template(listId, { validity: '1h' }), schedule: { cron: '0 9 * * MON', timeZone: 'Europe/Paris' }, paused: true });
    expect(r.status).toBe(201);
    const id: string = r.body.id;
    expect(r.body.state.paused).toBe(true);
    expect(r.body.schedule).toEqual({ cron: '0 9 * * MON', timeZone: 'Europe/Paris', catchupWindowSeconds: 3600 });
    // Next runs: Mondays 09:00 in Paris (07:00 or 08:00 UTC), a week apart.
    const next = (r.body.state.nextActionTimes as string[]).map((s) => new Date(s));
    expect(next.length).toBeGreaterThanOrEqual(2);
    for (const t of next) {
      expect(t.getUTCDay()).toBe(1);
      expect([7, 8]).toContain(t.getUTCHours());
    }
    expect(r.body.warnings).toEqual([]);

    const trig = await api('POST', `/api/recurring-deliveries/${id}/trigger`, {});
    expect(trig.status).toBe(202);
    const view = await waitFor('the triggered run to complete', async () => {
      const v = await api('GET', `/api/recurring-deliveries/${id}`);
      return v.body.deliveries.length === 1 && v.body.deliveries[0].state === 'completed' ? v.body : null;
    });
    const deliveryId = view.deliveries[0].id;
    expect(view.state.recentActions).toHaveLength(1);
    expect(view.state.recentActions[0].deliveryId).toBe(deliveryId);
    expect(view.state.paused).toBe(true);
    const delivery = await api('GET', `/api/deliveries/${deliveryId}`);
    expect(delivery.body.kpis).toMatchObject({ sent: LIST.length });
    expect(delivery.body.name).toMatch(/^Weekly news \(\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC\)$/);

    expect((await api('DELETE', `/api/recurring-deliveries/${id}`)).status).toBe(204);
  });
});
