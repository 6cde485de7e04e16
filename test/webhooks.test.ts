/**
 * Event webhooks end to end on the real stack, against real HTTP receivers started here: a 2,000-recipient delivery
 * gives exactly one sent/failed event per recipient to each endpoint (signatures verified with the standardwebhooks
 * package, messages deduplicated by webhook-id), an endpoint answering 500 for a minute still gets every event, and
 * one that refuses connections delays nobody. Then, on a small delivery: every event type, the two example receivers
 * of docs/webhooks.md (Node and Python), disabling after the retry window with the reason shown, replay, enable.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, TEST_SECRETS, type Harness } from './support/harness';
import { apiCall, request, waitUntil } from './support/http';
import { WebhookReceiver, type ReceivedEvent } from './support/webhook-receiver';
import { freePort } from '../stack/ports';
import { unsubscribeToken } from '../mail/list-unsubscribe/one-click';
import { WEBHOOK_EVENT_TYPES } from '../domain/webhook-events';

const TERMINAL = new Set(['recipient.sent', 'recipient.failed']);

function* csv(rows: string[]) {
  yield 'email,firstName\n';
  for (const r of rows) yield `${r},Reader\n`;
}

/** Events per recipient id (this delivery only), in arrival order. */
function byRecipient(events: ReceivedEvent[], deliveryId: string): Map<number, ReceivedEvent[]> {
  const m = new Map<number, ReceivedEvent[]>();
  for (const e of events) {
    if (e.data.deliveryId !== deliveryId || typeof e.data.recipientId !== 'number') continue;
    const list = m.get(e.data.recipientId as number) ?? [];
    list.push(e);
    m.set(e.data.recipientId as number, list);
  }
  return m;
}

function terminalCount(events: ReceivedEvent[], deliveryId: string): number {
  return events.filter((e) => TERMINAL.has(e.type) && e.data.deliveryId === deliveryId).length;
}

/** waitUntil, with what was seen when it times out. */
async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs: number, seen: () => unknown): Promise<T> {
  try {
    return await waitUntil(what, probe, timeoutMs, 250);
  } catch (e) {
    throw new Error(`${(e as Error).message}; seen: ${JSON.stringify(await seen())}`);
  }
}

/** Where an endpoint stands, for a failure message: its cursor, its pending message, what the outbox holds after it. */
async function endpointReport(h: Harness, subscriptionId: string) {
  const q = async (sql: string) => (await h.pool.query(sql, [subscriptionId])).rows;
  const [sub] = await q(`SELECT enabled, cursor_txid::text, cursor_seq FROM webhook_subscriptions WHERE id = $1`);
  const pending = await q(`SELECT id, attempts, cardinality(event_seqs) AS n, created_at FROM webhook_messages WHERE subscription_id = $1 AND delivered_at IS NULL`);
  const [after] = await q(
    `SELECT count(*)::int AS n, count(*) FILTER (WHERE e.txid < pg_snapshot_xmin(pg_current_snapshot()))::int AS safe
     FROM webhook_events e, webhook_subscriptions s WHERE s.id = $1 AND (e.txid, e.seq) > (s.cursor_txid, s.cursor_seq)`,
  );
  const [xmin] = await q(`SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin, $1::text AS id`);
  const running = (await h.pool.query(`SELECT pid, state, backend_xid::text, xact_start, left(query, 80) AS query FROM pg_stat_activity WHERE backend_xid IS NOT NULL OR backend_xmin IS NOT NULL`)).rows;
  const workflow = await h.client.workflow
    .getHandle(`webhook-endpoint-${subscriptionId}`)
    .describe()
    .then((d) => ({ status: d.status.name, pending: d.raw.pendingActivities?.map((a) => ({ type: a.activityType?.name, attempt: a.attempt, state: a.state, lastFailure: a.lastFailure?.message })) }))
    .catch((e: Error) => e.message);
  return { sub, pending, after, xmin: xmin.xmin, running, workflow };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function deleteAllSubscriptions(h: Harness) {
  const list = await apiCall(h.apiUrl, 'GET', '/api/webhooks');
  for (const s of list.json.webhooks ?? []) await apiCall(h.apiUrl, 'DELETE', `/api/webhooks/${s.id}`);
}

describe('webhooks on a 2,000-recipient delivery', () => {
  let h: Harness;
  const receivers: WebhookReceiver[] = [];

  beforeAll(async () => {
    h = await startHarness({
      mx: { keepRaw: false },
      env: {
        // Soft bounces are retried within a second.
        RETRY_TIME_SCALE: '0.002',
        // Failed POSTs are tried again after 1, 2, 4, 4, ... s (the default starts at 5 s and doubles up to 2 h).
        WEBHOOK_RETRY_INITIAL_SECONDS: '1',
        WEBHOOK_RETRY_MAX_INTERVAL_SECONDS: '4',
      },
    });
  });
  afterAll(async () => {
    // Without subscriptions the triggers write nothing for the test files that run after this one.
    if (h) await deleteAllSubscriptions(h);
    for (const r of receivers) await r.stop();
    await h?.stop();
  });

  it('delivers one sent/failed event per recipient, signed and in order; a failing endpoint catches up; a dead one delays nobody', { timeout: 20 * 60_000 }, async () => {
    const api = (method: string, p: string, body?: unknown) => apiCall(h.apiUrl, method, p, body);
    const a = new WebhookReceiver();
    const b = new WebhookReceiver();
    receivers.push(a, b);
    const urlA = await a.start();
    const urlB = await b.start();
    // Nothing listens there: every attempt is refused at once.
    const urlC = `http://127.0.0.1:${await freePort()}/hooks`;
    // B answers 500 for its first minute.
    let bFirstRequestMs: number | null = null;
    b.behaviour = () => {
      bFirstRequestMs ??= Date.now();
      return Date.now() - bFirstRequestMs < 60_000 ? 500 : 200;
    };

    const subA = await api('POST', '/api/webhooks', { url: urlA, description: 'healthy' });
    expect(subA.status).toBe(201);
    expect(subA.json.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(subA.json.eventTypes).toEqual([...WEBHOOK_EVENT_TYPES].sort());
    a.secret = subA.json.secret;
    const subB = await api('POST', '/api/webhooks', { url: urlB, description: '500 for a minute' });
    expect(subB.status).toBe(201);
    b.secret = subB.json.secret;
    const subC = await api('POST', '/api/webhooks', { url: urlC, eventTypes: ['recipient.sent', 'recipient.failed'], description: 'down' });
    expect(subC.status).toBe(201);
    // The secret is shown at creation only; reads never carry it.
    expect((await api('GET', `/api/webhooks/${subA.json.id}`)).json.secret).toBeUndefined();

    const N = Number(process.env.WEBHOOK_TEST_RECIPIENTS ?? 2_000);
    const tag = randomUUID().slice(0, 8);
    const kind = (i: number) => (i % 50 === 0 ? 'hard' : i % 40 === 0 ? 'fail1' : 'user');
    const rows = Array.from({ length: N }, (_, k) => `${kind(k + 1)}-${tag}-${k + 1}@hooks${(k + 1) % 20}.example`);
    const list = await h.service.lists.createFromCsv('webhooks', Readable.from(csv(rows)));
    const t0 = Date.now();
    const id = await h.createDelivery({ name: 'webhooks at scale', from: 'news@hooks-brand.example', subject: 'Hi {{firstName}}', text: 'Hello {{firstName}}', listId: list.id, autoConfirm: true });
    await h.waitForPhase(id, ['completed'], 15 * 60_000);
    const completedMs = Date.now();

    const seen = async () => {
      const dupes = (r: WebhookReceiver) => {
        const byId = new Map<string, string[]>();
        for (const e of r.events) byId.set(e.id, [...(byId.get(e.id) ?? []), e.messageId]);
        return [...byId].filter(([, m]) => m.length > 1).slice(0, 5);
      };
      return {
        sinceStartS: Math.round((Date.now() - t0) / 1000),
        a: { terminal: terminalCount(a.events, id), events: a.events.length, requests: a.requests, dupes: dupes(a), report: await endpointReport(h, subA.json.id) },
        b: { terminal: terminalCount(b.events, id), events: b.events.length, requests: b.requests, refused: b.refused, dupes: dupes(b), report: await endpointReport(h, subB.json.id) },
      };
    };
    console.log(`webhooks: delivery completed after ${Math.round((completedMs - t0) / 1000)} s; ${JSON.stringify(await seen())}`);
    await waitFor('A has every recipient event and the completion', async () => terminalCount(a.events, id) >= N && a.eventsOfType('delivery.completed').length > 0, 120_000, seen);
    const aDoneMs = Date.now();
    await waitFor('B has caught up', async () => terminalCount(b.events, id) >= N && b.eventsOfType('delivery.completed').length > 0, 240_000, seen);

    const hard = rows.filter((r) => r.startsWith('hard-')).length;
    const soft = rows.filter((r) => r.startsWith('fail1-')).length;
    for (const [name, r] of [['A', a], ['B', b]] as const) {
      // Every request verified; a retried webhook-id carried the same bytes.
      expect(r.badSignatures, name).toBe(0);
      expect(r.changedRetries, name).toBe(0);
      // Exactly one sent or failed per recipient, and failed exactly for the hard bounces.
      const per = byRecipient(r.events, id);
      expect(per.size, name).toBe(N);
      let failed = 0;
      for (const [rid, evs] of per) {
        const terminal = evs.filter((e) => TERMINAL.has(e.type));
        expect(terminal, `${name} recipient ${rid}`).toHaveLength(1);
        const address = String(terminal[0].data.address);
        if (terminal[0].type === 'recipient.failed') {
          failed++;
          expect(address, name).toMatch(/^hard-/);
          // Failed, then quarantined (user unknown), attributed to this recipient.
          expect(evs.map((e) => e.type), `${name} ${address}`).toContain('recipient.quarantined');
        }
        if (address.startsWith('fail1-')) {
          // In order: the soft bounce, then the success of the retry.
          expect(evs.map((e) => e.type), `${name} ${address}`).toEqual(['recipient.soft_bounce', 'recipient.sent']);
          expect(evs[0].data).toMatchObject({ status: 'taken_into_account', failureType: 'soft', reply: { code: 451 } });
        }
      }
      expect(failed, name).toBe(hard);
      expect(r.eventsOfType('recipient.soft_bounce').filter((e) => e.data.deliveryId === id), name).toHaveLength(soft);
      // The delivery's life, once each, in order.
      const life = r.events.filter((e) => e.data.deliveryId === id && e.type.startsWith('delivery.')).map((e) => e.type);
      expect(life, name).toEqual(['delivery.analysed', 'delivery.confirmed', 'delivery.started', 'delivery.wave_started', 'delivery.completed']);
      const completed = r.eventsOfType('delivery.completed')[0];
      expect(completed.data.recipients, name).toEqual({ sent: N - hard, failed: hard });
      // Event ids are unique across messages.
      expect(new Set(r.events.map((e) => e.id)).size, name).toBe(r.events.length);
    }
    // The failing endpoint got exactly what the healthy one got.
    expect(new Set(b.events.map((e) => e.id))).toEqual(new Set(a.events.map((e) => e.id)));

    // B's minute of 500s is in its delivery log with the status codes; then 204s.
    expect(b.refused).toBeGreaterThanOrEqual(5);
    // Paged newest first through `next`: every request B answered is there once.
    const bAttempts: { id: number; statusCode: number }[] = [];
    for (let page: string | null = `/api/webhooks/${subB.json.id}/deliveries?limit=200`; page; ) {
      const r = await api('GET', page);
      expect(r.status).toBe(200);
      bAttempts.push(...r.json.attempts);
      page = r.json.next;
    }
    // (An attempt whose worker died between the answer and its log row would be missing: none is expected here.)
    expect(bAttempts).toHaveLength(b.requests);
    expect(new Set(bAttempts.map((x) => x.id)).size).toBe(bAttempts.length);
    expect(bAttempts.filter((x) => x.statusCode === 500)).toHaveLength(b.refused);
    expect(bAttempts.find((x) => x.statusCode === 500)).toMatchObject({ error: 'HTTP 500 Internal Server Error', responseExcerpt: 'not now' });

    // C refused every connection all along, and is still retrying (the window is 24 h): enabled, its message pending.
    const cState = await api('GET', `/api/webhooks/${subC.json.id}`);
    expect(cState.json).toMatchObject({ enabled: true, endpoint: { phase: 'delivering' } });
    expect(cState.json.status.pending.attempts).toBeGreaterThanOrEqual(5);
    const cLog = await api('GET', `/api/webhooks/${subC.json.id}/deliveries`);
    expect(cLog.json.attempts.length).toBeGreaterThanOrEqual(5);
    for (const x of cLog.json.attempts) expect(x).toMatchObject({ statusCode: null, error: expect.stringMatching(/ECONNREFUSED/) });

    // Neither the dead endpoint nor the failing one held A back: A got events while B was still refusing them, and
    // each within seconds of being recorded.
    const aBeforeB = a.events.filter((e) => e.receivedAtMs < b.firstOkAtMs!).length;
    expect(aBeforeB).toBeGreaterThan(100);
    const lags = a.events.map((e) => e.receivedAtMs - Date.parse(e.timestamp));
    const p50 = percentile(lags, 50);
    const p99 = percentile(lags, 99);
    expect(p99).toBeLessThan(30_000);
    expect(aDoneMs - completedMs).toBeLessThan(30_000);

    // B's backlog drained at the rate the endpoint workflow sends batches.
    const afterOk = b.events.filter((e) => e.receivedAtMs >= b.firstOkAtMs!);
    const backlog = afterOk.filter((e) => Date.parse(e.timestamp) < b.firstOkAtMs!);
    const drainMs = Math.max(1, Math.max(...backlog.map((e) => e.receivedAtMs)) - b.firstOkAtMs!);
    const seconds = (completedMs - t0) / 1000;
    console.log(
      `webhooks: ${N} recipients in ${seconds.toFixed(0)} s (${(N / seconds).toFixed(1)}/s); A: ${a.events.length} events in ${a.messages.size} messages, ` +
        `lag p50 ${p50} ms, p99 ${p99} ms, last event ${aDoneMs - completedMs} ms after completion; ` +
        `B: ${b.refused} refused requests, backlog of ${backlog.length} events drained in ${drainMs} ms (${((backlog.length / drainMs) * 1000).toFixed(0)} events/s), ${b.duplicateMessages} duplicate messages; ` +
        `C: ${cLog.json.attempts.length} refused attempts`,
    );

    // Deleting a subscription stops its workflow and removes its log.
    expect((await api('DELETE', `/api/webhooks/${subC.json.id}`)).status).toBe(204);
    expect((await api('GET', `/api/webhooks/${subC.json.id}`)).status).toBe(404);
    const cWorkflow = h.client.workflow.getHandle(subC.json.workflowId);
    await waitUntil('C workflow ended', async () => (await cWorkflow.describe()).status.name !== 'RUNNING', 30_000, 250);
  });
});

/** An example receiver of docs/webhooks.md, as a process: its JSON lines (one per handled event) collected. */
class ExampleReceiver {
  readonly events: ReceivedEvent[] = [];
  readonly errors: string[] = [];
  private child: ChildProcess | null = null;

  constructor(
    private readonly command: string,
    private readonly script: string,
  ) {}

  async start(port: number, secret: string): Promise<void> {
    const child = spawn(this.command, [this.script], { env: { ...process.env, PORT: String(port), WEBHOOK_SECRET: secret }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    createInterface({ input: child.stderr! }).on('line', (l) => this.errors.push(l));
    const listening = new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`${this.script} exited with ${code}: ${this.errors.join(' ')}`)));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const j = JSON.parse(line);
        if ('listening' in j) resolve();
        else this.events.push({ ...j, data: { deliveryId: j.deliveryId, recipientId: j.recipientId, address: j.address, status: j.status }, receivedAtMs: Date.now() });
      });
    });
    await listening;
  }

  stop() {
    this.child?.kill();
  }
}

describe('every event type, the example receivers, disable after the retry window, replay, enable', () => {
  let h: Harness;
  const receivers: WebhookReceiver[] = [];
  const examples: ExampleReceiver[] = [];

  beforeAll(async () => {
    h = await startHarness({
      // Late bounces and complaints are mailed back to the inbound listener; slow- recipients hold the delivery in
      // its sending phase for a few seconds (time to pause it).
      inbound: { reportDelayMs: 300 },
      mx: { slowMs: 4_000, keepRaw: false },
      env: {
        RETRY_TIME_SCALE: '0.002',
        WEBHOOK_RETRY_INITIAL_SECONDS: '1',
        WEBHOOK_RETRY_MAX_INTERVAL_SECONDS: '2',
        // No success for 8 s: the endpoint is disabled (the default is 24 h).
        WEBHOOK_RETRY_WINDOW_SECONDS: '8',
      },
    });
  });
  afterAll(async () => {
    if (h) await deleteAllSubscriptions(h);
    for (const e of examples) e.stop();
    for (const r of receivers) await r.stop();
    await h?.stop();
  });

  it('refuses bad subscriptions with the field named, and needs admin to change them', async () => {
    const bad1 = await apiCall(h.apiUrl, 'POST', '/api/webhooks', { url: 'ftp://example.test/hooks' });
    expect(bad1.status).toBe(400);
    expect(bad1.json.issues[0].path).toBe('url');
    const bad2 = await apiCall(h.apiUrl, 'POST', '/api/webhooks', { url: 'https://example.test/hooks', eventTypes: ['recipient.opened'] });
    expect(bad2.status).toBe(400);
    expect(bad2.json.issues[0].path).toBe('eventTypes.0');
    const bad3 = await apiCall(h.apiUrl, 'POST', `/api/webhooks/${randomUUID()}/events/evt_x/replay`);
    expect(bad3.status).toBe(400);
    const reader = await h.createApiKey(['read']);
    const headers = { authorization: `Bearer ${reader.secret}`, 'content-type': 'application/json' };
    expect((await fetch(`${h.apiUrl}/api/webhooks`, { headers })).status).toBe(200);
    expect((await fetch(`${h.apiUrl}/api/webhooks`, { method: 'POST', headers, body: JSON.stringify({ url: 'https://example.test/h' }) })).status).toBe(403);
  });

  it('publishes every event type to the Node and Python example receivers; disables a failing endpoint with the reason; replays; enables', { timeout: 5 * 60_000 }, async () => {
    const api = (method: string, p: string, body?: unknown) => apiCall(h.apiUrl, method, p, body);

    // D answers 503 until told otherwise.
    const d = new WebhookReceiver();
    receivers.push(d);
    let dStatus = 503;
    d.behaviour = () => dStatus;
    const subD = await api('POST', '/api/webhooks', { url: await d.start() });
    expect(subD.status).toBe(201);
    d.secret = subD.json.secret;

    // The example receivers need their secret to start: each subscription is created disabled, then enabled.
    const root = path.resolve(__dirname, '..', 'examples', 'webhook-receivers');
    const node = new ExampleReceiver(process.execPath, path.join(root, 'node', 'receiver.mjs'));
    const python = new ExampleReceiver('python3', path.join(root, 'python', 'receiver.py'));
    examples.push(node, python);
    const exampleSubs: string[] = [];
    for (const ex of [node, python]) {
      const port = await freePort();
      const sub = await api('POST', '/api/webhooks', { url: `http://127.0.0.1:${port}/`, enabled: false });
      expect(sub.status).toBe(201);
      expect(sub.json).toMatchObject({ enabled: false, disabledReason: 'created disabled' });
      // An admin reads the secret again.
      expect((await api('GET', `/api/webhooks/${sub.json.id}/secret`)).json.secret).toBe(sub.json.secret);
      await ex.start(port, sub.json.secret);
      const enabled = await api('POST', `/api/webhooks/${sub.json.id}/enable`);
      expect(enabled.status).toBe(200);
      expect(enabled.json.enabled).toBe(true);
      expect((await api('POST', `/api/webhooks/${sub.json.id}/enable`)).status).toBe(409);
      exampleSubs.push(sub.json.id);
    }

    // A delivery with every kind of recipient, paused and resumed while it sends.
    const tag = randomUUID().slice(0, 8);
    const who = ['ok1', 'ok2', 'hard', 'fail1', 'late', 'complain', 'slow1', 'slow2'];
    const addr = (w: string) => `${w}-${tag}@every-event.example`;
    const id = await h.createDelivery({
      name: 'every event',
      from: 'news@every-brand.example',
      subject: 'Hello',
      text: 'Hello',
      recipients: who.map((w) => ({ email: addr(w) })),
      autoConfirm: true,
    });
    await h.waitForPhase(id, ['sending']);
    expect((await api('POST', `/api/deliveries/${id}/pause`, {})).status).toBe(200);
    await h.waitForPhase(id, ['paused']);
    expect((await api('POST', `/api/deliveries/${id}/resume`)).status).toBe(200);
    await h.waitForPhase(id, ['completed']);
    // A second delivery, cancelled before confirmation.
    const cancelledId = await h.createDelivery({ name: 'never sent', from: 'news@every-brand.example', subject: 'Hi', text: 'Hi', recipients: [{ email: addr('never') }] });
    await h.waitForPhase(cancelledId, ['awaiting_confirmation']);
    expect((await api('POST', `/api/deliveries/${cancelledId}/cancel`, {})).status).toBe(202);
    // A one-click unsubscribe of ok1 (recipient 1).
    const unsub = await request(h.apiUrl, 'POST', `/u/${id}/1/${unsubscribeToken(id, 1, TEST_SECRETS.verpSecret)}`, { body: 'List-Unsubscribe=One-Click', contentType: 'application/x-www-form-urlencoded' });
    expect(unsub.status).toBe(200);

    const expectedTypes = [
      'delivery.analysed',
      'delivery.confirmed',
      'delivery.started',
      'delivery.wave_started',
      'delivery.paused',
      'delivery.resumed',
      'delivery.completed',
      'recipient.sent',
      'recipient.failed',
      'recipient.soft_bounce',
      'recipient.async_bounce',
      'recipient.complaint',
      'recipient.unsubscribed',
      'recipient.quarantined',
    ];
    const complete = (events: ReceivedEvent[]) =>
      expectedTypes.every((t) => events.some((e) => e.type === t && e.data.deliveryId === id)) &&
      events.some((e) => e.type === 'delivery.cancelled' && e.data.deliveryId === cancelledId) &&
      events.filter((e) => e.type === 'recipient.quarantined' && e.data.deliveryId === id).length >= 2;
    const missing = (events: ReceivedEvent[]) => ({
      types: expectedTypes.filter((t) => !events.some((e) => e.type === t && e.data.deliveryId === id)),
      got: events.map((e) => `${e.type}:${e.data.address ?? e.data.deliveryId}`),
    });
    await waitFor('the Node example receiver has every event type', async () => complete(node.events), 90_000, async () => missing(node.events));
    await waitFor('the Python example receiver has every event type', async () => complete(python.events), 30_000, async () => missing(python.events));
    expect(node.errors).toEqual([]);
    expect(python.errors).toEqual([]);
    // Both verified and handled the same events (the Python one checks the signature without the package).
    expect(new Set(python.events.map((e) => e.id))).toEqual(new Set(node.events.map((e) => e.id)));

    const types = (w: string) =>
      node.events.filter((e) => e.data.deliveryId === id && e.data.address === addr(w)).map((e) => e.type);
    expect(types('ok2')).toEqual(['recipient.sent']);
    expect(types('ok1')).toEqual(['recipient.sent', 'recipient.unsubscribed']);
    expect(types('fail1')).toEqual(['recipient.soft_bounce', 'recipient.sent']);
    expect(types('hard').sort()).toEqual(['recipient.failed', 'recipient.quarantined']);
    expect(types('late')).toEqual(['recipient.sent', 'recipient.async_bounce', 'recipient.quarantined']);
    expect(types('complain')).toEqual(['recipient.sent', 'recipient.complaint']);
    const life = node.events.filter((e) => e.data.deliveryId === id && e.type.startsWith('delivery.')).map((e) => e.type);
    expect(life).toEqual(['delivery.analysed', 'delivery.confirmed', 'delivery.started', 'delivery.wave_started', 'delivery.paused', 'delivery.resumed', 'delivery.completed']);
    expect(node.events.filter((e) => e.data.deliveryId === cancelledId).map((e) => e.type)).toEqual(['delivery.analysed', 'delivery.cancelled']);

    // D never answered 2xx: disabled once the 8 s window was over, with the reason and its 503s visible.
    const disabled = await waitUntil('D disabled', async () => {
      const r = await api('GET', `/api/webhooks/${subD.json.id}`);
      return r.json.enabled === false ? r.json : null;
    }, 60_000, 250);
    expect(disabled.disabledReason).toMatch(/^no attempt succeeded within the retry window of 8 s; last attempt \(\d+\) at .+: HTTP 503 Service Unavailable$/);
    expect(disabled.endpoint).toMatchObject({ phase: 'disabled' });
    const dLog = await api('GET', `/api/webhooks/${subD.json.id}/deliveries`);
    expect(dLog.json.attempts.length).toBeGreaterThanOrEqual(3);
    expect(dLog.json.attempts.every((x: { statusCode: number }) => x.statusCode === 503)).toBe(true);
    expect(d.events).toHaveLength(0);

    // Enabled again, D resumes from its cursor: everything it missed, nothing twice.
    dStatus = 204;
    const reenabled = await api('POST', `/api/webhooks/${subD.json.id}/enable`);
    expect(reenabled.status).toBe(200);
    expect(reenabled.json).toMatchObject({ enabled: true, disabledReason: null });
    const nodeIds = new Set(node.events.map((e) => e.id));
    await waitUntil('D caught up', async () => [...nodeIds].every((e) => d.events.some((x) => x.id === e)), 60_000, 250);
    expect(d.badSignatures).toBe(0);
    expect(new Set(d.events.map((e) => e.id)).size).toBe(d.events.length);

    // Replay of one event: a new message (webhook-id) carrying the same event id.
    const target = d.events.find((e) => e.type === 'recipient.failed' && e.data.deliveryId === id)!;
    const replay = await api('POST', `/api/webhooks/${subD.json.id}/events/${target.id}/replay`);
    expect(replay.status).toBe(202);
    expect(replay.json.eventId).toBe(target.id);
    const again = await waitUntil('replayed event received', async () => d.events.find((e) => e.id === target.id && e.messageId !== target.messageId), 30_000, 100);
    expect(again.messageId).toBe(replay.json.messageId);
    expect(again.data).toEqual(target.data);
    expect((await api('POST', `/api/webhooks/${subD.json.id}/events/evt_999999999999/replay`)).status).toBe(404);

    // Disabled through the API: the workflow stops at once; a replay asked meanwhile waits for the next enable.
    const off = await api('PATCH', `/api/webhooks/${subD.json.id}`, { enabled: false, disabledReason: 'maintenance' });
    expect(off.status).toBe(200);
    expect(off.json).toMatchObject({ enabled: false, disabledReason: 'maintenance' });
    await waitUntil('D workflow disabled', async () => (await api('GET', `/api/webhooks/${subD.json.id}`)).json.endpoint?.phase === 'disabled', 20_000, 200);
    const queued = await api('POST', `/api/webhooks/${subD.json.id}/events/${target.id}/replay`);
    expect(queued.status).toBe(202);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(d.messages.has(queued.json.messageId)).toBe(false);
    expect((await api('PATCH', `/api/webhooks/${subD.json.id}`, { enabled: true })).json.enabled).toBe(true);
    await waitUntil('queued replay sent after enable', async () => d.messages.has(queued.json.messageId), 30_000, 100);

    // A subscription's types narrow what it receives from then on.
    const narrowed = await api('PATCH', `/api/webhooks/${exampleSubs[0]}`, { eventTypes: ['delivery.completed', 'delivery.completed'] });
    expect(narrowed.json.eventTypes).toEqual(['delivery.completed']);
  });
});
