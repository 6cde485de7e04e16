/**
 * The webhook endpoint workflow's replay scenario (record-histories.ts, step `webhook-endpoint`): one subscription taken
 * through every path of its loop, on a harness whose retry window is 3 s. Returns the workflow ID, closed.
 *
 *   refused (503) until the window ends → disabled by the workflow → enabled (signal) → every message delivered →
 *   disabled through the API (signal that cancels the long poll) → an event replayed meanwhile → enabled → the replay
 *   delivered → deleted (the workflow is cancelled)
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Harness } from '../support/harness';
import { apiCall, waitUntil } from '../support/http';

/** The settings the scenario's harness needs besides the recorder's own. */
export const WEBHOOK_SCENARIO_ENV = { WEBHOOK_RETRY_INITIAL_SECONDS: '0.5', WEBHOOK_RETRY_MAX_INTERVAL_SECONDS: '1', WEBHOOK_RETRY_WINDOW_SECONDS: '3' };

export async function runWebhookEndpointScenario(h: Harness): Promise<string> {
  const api = async (method: string, p: string, body?: unknown, expected?: number) => {
    const r = await apiCall(h.apiUrl, method, p, body);
    if (expected !== undefined && r.status !== expected) throw new Error(`${method} ${p}: expected ${expected}, got ${r.status} ${JSON.stringify(r.json)}`);
    return r.json;
  };
  let status = 503;
  const received: { messageId: string; events: { id: string; type: string }[] }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (status < 300) received.push({ messageId: String(req.headers['webhook-id']), events: JSON.parse(Buffer.concat(chunks).toString('utf8')).data.events });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const sub = await api('POST', '/api/webhooks', { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, eventTypes: ['delivery.completed', 'recipient.sent'] }, 201);
    const events = () => received.flatMap((m) => m.events);
    const d = await api(
      'POST',
      '/api/deliveries',
      { name: 'replay: webhooks', from: 'news@replay-sender.example', subject: 'Hello', text: 'Hello', recipients: [{ email: 'wes@webhooks.example' }, { email: 'wyn@webhooks.example' }], autoConfirm: true },
      201,
    );
    await h.waitForPhase(d.id, ['completed'], 60_000);
    await waitUntil('the endpoint disabled after its retry window', async () => (await api('GET', `/api/webhooks/${sub.id}`)).enabled === false, 60_000, 200);
    status = 204;
    await api('POST', `/api/webhooks/${sub.id}/enable`, undefined, 200);
    await waitUntil('every event delivered', async () => events().some((e) => e.type === 'delivery.completed') && events().filter((e) => e.type === 'recipient.sent').length === 2, 60_000, 100);
    await api('PATCH', `/api/webhooks/${sub.id}`, { enabled: false, disabledReason: 'replay recording' }, 200);
    await waitUntil('the workflow disabled', async () => (await api('GET', `/api/webhooks/${sub.id}`)).endpoint?.phase === 'disabled', 30_000, 100);
    const replay = await api('POST', `/api/webhooks/${sub.id}/events/${events()[0].id}/replay`, undefined, 202);
    await api('PATCH', `/api/webhooks/${sub.id}`, { enabled: true }, 200);
    await waitUntil('the replay delivered', async () => received.some((m) => m.messageId === replay.messageId), 30_000, 100);
    await api('DELETE', `/api/webhooks/${sub.id}`, undefined, 204);
    return sub.workflowId as string;
  } finally {
    await new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  }
}
