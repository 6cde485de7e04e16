/**
 * The production layout, run: Temporal server of the release docker-compose.yml pins, built from its Go module, on
 * Postgres with several history shards (schemas by the schema tool, namespace and search attributes by the compose
 * file's job scripts), the API and two workers as separate processes. A delivery is created through the API and
 * sent to the sandbox MX; the Temporal server is killed in the middle and started again: every recipient ends
 * final and none is lost. `npm run test:cluster` (CI runs it after `npm test`).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pool } from 'pg';
import { parseSettings } from '../../config/settings';
import { SandboxMx } from '../../mx-sandbox/sandbox-mx';
import { startLocalCluster, type LocalCluster } from '../../stack/cluster/local-cluster';
import { HISTORY_SHARDS, serverVersion, TEMPORAL_SERVER_VERSION } from '../../stack/cluster/temporal-server';
import { createApiKey } from '../../db/api-key-store';

const RECIPIENTS = 300;
const DOMAIN = 'cluster.example';
/** Temporal is stopped once the MX has accepted this many messages: about a third of the delivery. */
const STOP_AT_ACCEPTED = 100;
/** How long Temporal stays down: long enough for sends and workflow tasks in flight to fail against it. */
const DOWN_MS = 5_000;

let cluster: LocalCluster | undefined;
let mx: SandboxMx;
let pool: Pool;
let dir: string;
/** An admin key of the cluster's API (created in its database, as `npm run api-key` would). */
let apiKey: string;

function population(): { email: string; kind: 'ok' | 'grey' | 'fail1' | 'hard' }[] {
  return Array.from({ length: RECIPIENTS }, (_, i) => {
    if (i % 30 === 7) return { email: `grey-${i}@${DOMAIN}`, kind: 'grey' as const };
    if (i % 30 === 19) return { email: `fail1-${i}@${DOMAIN}`, kind: 'fail1' as const };
    if (i % 60 === 41) return { email: `hard-${i}@${DOMAIN}`, kind: 'hard' as const };
    return { email: `r${i}@${DOMAIN}`, kind: 'ok' as const };
  });
}

async function api<T>(method: string, url: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${cluster!.apiUrl}${url}`, {
    method,
    headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

async function waitFor<T>(what: string, f: () => Promise<T | null | undefined | false>, timeoutMs: number, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what} did not happen within ${timeoutMs / 1000} s${lastError ? ` (last error: ${(lastError as Error).message})` : ''}\n${cluster?.logs(25) ?? ''}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

beforeAll(async () => {
  const base = parseSettings(process.env);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'email-delivery-cluster-'));
  mx = new SandboxMx({ port: 0, keepRaw: false });
  const { port: mxPort } = await mx.start();
  const started = Date.now();
  cluster = await startLocalCluster({
    dir,
    toolsDir: base.TOOLS_DIR,
    persistent: false,
    workers: 2,
    appEnv: {
      PUBLIC_URL: 'https://mail.cluster.example',
      BOUNCE_DOMAIN: 'bounces.cluster.example',
      SMTP_HELO_NAME: 'mta.cluster.example',
      VERP_SECRET: 'cluster-test-verp-secret-0123',
      KEY_ENCRYPTION_SECRET: 'cluster-test-key-secret-0123',
      // One key ring for every process, as the compose file requires.
      PAYLOAD_KEYS: `cluster-1:${randomBytes(32).toString('base64')}`,
      SEND_MODE: 'direct',
      MX_OVERRIDES: JSON.stringify({ '*': `127.0.0.1:${mxPort}` }),
      // Greylisting's 5 minutes become 0.6 s, a transient failure's 15 minutes 1.8 s.
      RETRY_TIME_SCALE: '0.002',
      KPI_REFRESH_SECONDS: '1',
      TEMPORAL_UI_URL: 'https://temporal-ui.cluster.example/',
    },
    log: (m) => console.log(`[cluster] ${m}`),
  });
  console.log(`[cluster] layout ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  pool = new Pool({ connectionString: cluster.databaseUrl, max: 2 });
  apiKey = (await createApiKey(pool, { name: 'cluster test', scopes: ['admin'] })).secret;
}, 900_000);

afterAll(async () => {
  await pool?.end();
  await cluster?.stop();
  await mx?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}, 120_000);

describe('production layout (Temporal server on Postgres, API and two workers as processes)', () => {
  it('runs the pinned server release on Postgres with several history shards, both workers polling', async () => {
    const c = cluster!;
    expect(serverVersion(c.tools)).toContain(TEMPORAL_SERVER_VERSION);
    const connection = await Connection.connect({ address: c.temporalAddress });
    try {
      const info = await connection.workflowService.getClusterInfo({});
      expect(info.serverVersion).toBe(TEMPORAL_SERVER_VERSION);
      expect(info.historyShardCount).toBe(HISTORY_SHARDS);
      expect(HISTORY_SHARDS).toBeGreaterThan(1);
      expect(info.persistenceStore).toBe('postgres12');
      // Both worker processes poll the engine's task queue.
      const pollers = await waitFor(
        'two workflow pollers',
        async () => {
          const d = await connection.workflowService.describeTaskQueue({ namespace: c.namespace, taskQueue: { name: c.taskQueue }, taskQueueType: 1 });
          const ids = new Set((d.pollers ?? []).map((p) => p.identity));
          return ids.size >= 2 ? ids : null;
        },
        60_000,
      );
      const pids = new Set(c.workers.map((w) => String(w.process.pid)));
      expect([...pollers].filter((id) => pids.has(String(id).split('@')[0])).length).toBe(2);
    } finally {
      await connection.close();
    }
  });

  it('gives the dashboard the Temporal UI address it is configured with (TEMPORAL_UI_URL), for links to workflows', async () => {
    const config = await api<{ temporalUi: { url: string; namespace: string } | null }>('GET', '/api/dashboard/config');
    expect(config.status).toBe(200);
    expect(config.body.temporalUi).toEqual({ url: 'https://temporal-ui.cluster.example', namespace: cluster!.namespace });
  });

  it('completes a delivery through a Temporal restart in the middle: every recipient final, none lost', async () => {
    const people = population();
    const created = await api<{ id: string }>('POST', '/api/deliveries', {
      name: 'cluster restart',
      from: 'news@cluster-brand.example',
      subject: 'Hello {{n}}',
      text: 'Message for recipient {{n}}',
      recipients: people.map((p, i) => ({ email: p.email, fields: { n: String(i) } })),
      autoConfirm: true,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.id;

    await waitFor(`${STOP_AT_ACCEPTED} acceptances at the MX`, async () => mx.acceptedCount() >= STOP_AT_ACCEPTED, 240_000, 20);
    const acceptedAtStop = mx.acceptedCount();
    await cluster!.stopTemporal('SIGKILL');
    const stoppedAt = Date.now();
    const notFinalAtStop = (
      await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM delivery_recipients WHERE delivery_id = $1 AND status NOT IN ('sent', 'failed')`, [id])
    ).rows[0].n;
    console.log(`[cluster] Temporal killed at ${acceptedAtStop} accepted messages, ${notFinalAtStop} recipients not final`);
    expect(acceptedAtStop).toBeLessThan(RECIPIENTS * 0.8);
    expect(notFinalAtStop).toBeGreaterThan(0);
    // While Temporal is down the API says so instead of answering from nowhere, and the processes stay up.
    await new Promise((r) => setTimeout(r, DOWN_MS));
    const askedAt = Date.now();
    const duringOutage = await api<{ temporalUnavailable?: boolean; kpisSource?: string; kpis?: { toDeliver: number } }>('GET', `/api/deliveries/${id}`);
    const answeredInMs = Date.now() - askedAt;
    console.log(`[cluster] GET /api/deliveries/${id} while Temporal is down: ${duringOutage.status} in ${answeredInMs} ms`);
    // The delivery log answers, and says the live view is missing, within the query's 5-second deadline.
    expect(duringOutage.status).toBe(200);
    expect(duringOutage.body).toMatchObject({ temporalUnavailable: true, kpisSource: 'delivery_log', kpis: { toDeliver: RECIPIENTS } });
    expect(answeredInMs).toBeLessThan(10_000);
    for (const p of [...cluster!.workers, cluster!.api]) expect(p.process.exitCode, `${p.name} exited while Temporal was down`).toBeNull();

    await cluster!.startTemporal();
    console.log(`[cluster] Temporal healthy again ${((Date.now() - stoppedAt) / 1000).toFixed(1)} s after the kill`);

    const final = await waitFor(
      'the delivery to complete',
      async () => {
        const r = await api<{ state: string; kpis: Record<string, unknown> }>('GET', `/api/deliveries/${id}`);
        return r.status === 200 && r.body.state === 'completed' ? r.body : null;
      },
      300_000,
      500,
    );
    console.log(`[cluster] delivery completed ${((Date.now() - stoppedAt) / 1000).toFixed(1)} s after the kill; KPIs ${JSON.stringify(final.kpis)}`);

    const hard = people.filter((p) => p.kind === 'hard').length;
    const byStatus = Object.fromEntries(
      (await pool.query(`SELECT status, count(*)::int AS n FROM delivery_recipients WHERE delivery_id = $1 GROUP BY status`, [id])).rows.map((r) => [r.status, r.n]),
    );
    expect(byStatus).toEqual({ sent: RECIPIENTS - hard, failed: hard });
    expect(final.kpis).toMatchObject({ toDeliver: RECIPIENTS, sent: RECIPIENTS - hard, failed: hard, takenIntoAccount: 0 });

    // Nothing lost: every address that should be delivered reached the MX; nothing else did.
    const counts = mx.countsByRecipient();
    const lost = people.filter((p) => p.kind !== 'hard' && !counts.get(p.email.toLowerCase()));
    expect(lost.map((p) => p.email)).toEqual([]);
    for (const p of people.filter((x) => x.kind === 'hard')) expect(counts.get(p.email.toLowerCase()) ?? 0).toBe(0);
    const duplicates = [...counts].filter(([, n]) => n > 1);
    console.log(`[cluster] lost: 0; duplicates at the MX: ${duplicates.length}`);
    // Sends are checked against the delivery log before they go out again: a Temporal outage resends nothing.
    for (const [address] of duplicates) expect(new Set(mx.acceptedFor(address).map((m) => m.messageId)).size, address).toBe(1);
    expect(duplicates.length).toBeLessThanOrEqual(2 * 5);
  });
});
