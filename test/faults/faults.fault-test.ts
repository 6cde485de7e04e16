/**
 * The fault suite (`npm run test:faults`, docs/fault-suite.md): the engine runs as separate processes (Temporal dev
 * server on a file database, embedded Postgres, a worker, the API) and each fault strikes in the middle of a delivery:
 * (a) kill -9 of the worker, then a new one; (b) the Temporal dev server stopped and started again; (c) Postgres
 * stopped and started again on the same data directory; (d) the sandbox MX cutting transactions in the middle of DATA,
 * then refusing connections; (e) kill -9 of the API while several deliveries are being created through it. After each:
 * every recipient final, the delivery log and the workflows agreeing, no half-created delivery, each duplicate at the
 * MX of the documented kind (docs/idempotency.md) and counted, nothing lost. The table is printed and written to
 * test-results/fault-suite.md.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_SECRETS } from '../support/harness';
import { startProcessStack, type ProcessStack } from '../support/process-stack';
import { checkDelivery, deliveryBody, historyStats, population, waitForCompletion, workflowExists, type DeliveryCheck, type FaultWindow, type HistoryStats, type Person } from './delivery-checks';
import { renderTable, writeReport, type FaultRow } from './fault-table';
import { provisionApiKey } from './api-key';

const REDUCED = process.env.FAULTS_REDUCED === '1';
/** Sizes and durations of the full suite and of the reduced one CI can afford. */
const PLAN = REDUCED
  ? { recipients: 200, temporalDownMs: 5_000, postgresDownMs: 5_000, dataCutMs: 5_000, refuseMs: 10_000, concurrentCreates: 4, completionTimeoutMs: 300_000 }
  : { recipients: 2_000, temporalDownMs: 15_000, postgresDownMs: 15_000, dataCutMs: 20_000, refuseMs: 30_000, concurrentCreates: 8, completionTimeoutMs: 1_200_000 };
/** Each fault strikes once the MX has accepted this share of the delivery. */
const STRIKE_AT = 1 / 3;
/** The worker kill waits a random time up to this past the threshold, then for attempts in flight (as test/worker-crash.test.ts). */
const KILL_JITTER_MS = 1_000;
const MIN_IN_FLIGHT = 3;
/** Fault (e): how far apart the concurrent creations are sent. */
const CREATE_STAGGER_MS = 15;

let stack: ProcessStack;
let dir: string;
const rows: FaultRow[] = [];
const startedAt = new Date();
const loadAtStart = os.loadavg()[0]!;
/** Messages accepted by the MX per recipient domain: each fault's delivery has its own. */
const acceptedByDomain = new Map<string, number>();

const redoneText = (r: HistoryStats) =>
  `${r.workflowTaskTimeouts} workflow task timeouts and ${r.workflowTaskFailures} failures in ${r.sampled === PLAN.recipients ? 'the' : `${r.sampled} of the`} ${PLAN.recipients} recipient histories`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const secondsText = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function waitFor<T>(what: string, f: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs: number, everyMs = 50): Promise<T> {
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
      throw new Error(`${what} did not happen within ${timeoutMs / 1000} s${lastError ? ` (last error: ${(lastError as Error).message})` : ''}\n${stack.logs(20)}`);
    }
    await sleep(everyMs);
  }
}

async function notFinal(deliveryId: string): Promise<number> {
  const r = await stack.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM delivery_recipients WHERE delivery_id = $1 AND status NOT IN ('sent', 'failed')`, [deliveryId]);
  return r.rows[0]!.n;
}

/** Creates a delivery through the API (as a client would, with an idempotency key) and returns its ID. */
async function createThroughApi(body: ReturnType<typeof deliveryBody>, key: string): Promise<string> {
  const created = await stack.request<{ id: string }>('POST', '/api/deliveries', body, { 'idempotency-key': key });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return created.body.id;
}

/** What failed in the checks of a row, in a few words; null when nothing did. */
function failures(checks: DeliveryCheck[], expected: { sent: number; failed: number }): string | null {
  const problems: string[] = [];
  const sum = (f: (c: DeliveryCheck) => number) => checks.reduce((s, c) => s + f(c), 0);
  if (sum((c) => c.notFinal)) problems.push(`${sum((c) => c.notFinal)} not final`);
  if (sum((c) => c.lost.length)) problems.push(`${sum((c) => c.lost.length)} lost`);
  if (sum((c) => c.unexpectedAtMx.length)) problems.push(`${sum((c) => c.unexpectedAtMx.length)} unexpected at the MX`);
  if (sum((c) => c.duplicates.filter((d) => !d.documented).length)) problems.push(`${sum((c) => c.duplicates.filter((d) => !d.documented).length)} unexplained duplicates`);
  if (sum((c) => c.logProblems.length)) problems.push(`${sum((c) => c.logProblems.length)} delivery log problems`);
  if (sum((c) => c.workflowMismatches.length)) problems.push(`${sum((c) => c.workflowMismatches.length)} log/workflow mismatches`);
  if (sum((c) => c.byStatus.sent ?? 0) !== expected.sent || sum((c) => c.byStatus.failed ?? 0) !== expected.failed) {
    problems.push(`expected ${expected.sent} sent / ${expected.failed} failed`);
  }
  return problems.length ? problems.join(', ') : null;
}

function rowFrom(fault: string, checks: DeliveryCheck[], people: Person[], detail: string, extraFailure: string | null = null): FaultRow {
  const sum = (f: (c: DeliveryCheck) => number) => checks.reduce((s, c) => s + f(c), 0);
  const hard = people.filter((p) => p.kind === 'hard').length;
  const failure = [failures(checks, { sent: people.length - hard, failed: hard }), extraFailure].filter(Boolean).join('; ') || null;
  const recoveries = checks.map((c) => c.recoverMs).filter((x): x is number => x !== null);
  return {
    fault,
    deliveries: checks.length,
    recipients: sum((c) => c.recipients),
    sent: sum((c) => c.byStatus.sent ?? 0),
    failed: sum((c) => c.byStatus.failed ?? 0),
    notFinal: sum((c) => c.notFinal),
    duplicates: sum((c) => c.duplicates.length),
    lost: sum((c) => c.lost.length),
    recoverMs: recoveries.length ? Math.max(...recoveries) : null,
    completedAfterMs: Math.max(...checks.map((c) => c.completedAfterMs)),
    detail,
    failure,
  };
}

/** The assertions behind a row, with the evidence in the message of whichever fails. */
function assertChecks(checks: DeliveryCheck[], people: Person[]) {
  const hard = people.filter((p) => p.kind === 'hard').length;
  const all = <T>(f: (c: DeliveryCheck) => T[]) => checks.flatMap(f);
  expect(all((c) => c.lost), 'lost recipients').toEqual([]);
  expect(checks.reduce((s, c) => s + c.notFinal, 0), 'recipients not final').toBe(0);
  expect(all((c) => c.unexpectedAtMx), 'messages the MX should not have').toEqual([]);
  expect(all((c) => c.logProblems), 'delivery log problems').toEqual([]);
  expect(all((c) => c.workflowMismatches), 'delivery log and workflows disagree').toEqual([]);
  expect(all((c) => c.duplicates.filter((d) => !d.documented).map((d) => `${d.address}: ${d.why}`)), 'duplicates not of the documented kind').toEqual([]);
  expect(checks.reduce((s, c) => s + (c.byStatus.sent ?? 0), 0)).toBe(people.length - hard);
  expect(checks.reduce((s, c) => s + (c.byStatus.failed ?? 0), 0)).toBe(hard);
  for (const c of checks) for (const d of c.duplicates) console.log(`[faults] duplicate of the documented kind: ${d.address} (recipient ${d.recipientId}): ${d.why}`);
}

/**
 * One delivery of PLAN.recipients, created through the API; `strike` runs the fault once a third has been accepted
 * and returns when it began and ended. Then: completion, the checks, the table row, the assertions.
 */
async function deliveryThroughFault(
  fault: string,
  domainLabel: string,
  strike: (deliveryId: string) => Promise<FaultWindow & { detail: string }>,
): Promise<void> {
  const domain = `${domainLabel}.fault.example`;
  const people = population(PLAN.recipients, domain);
  let row: FaultRow | null = null;
  let id: string | null = null;
  try {
    id = await createThroughApi(deliveryBody(`fault ${fault}`, people), `fault-${domainLabel}-${randomBytes(4).toString('hex')}`);
    const createdAt = Date.now();
    const threshold = Math.floor(PLAN.recipients * STRIKE_AT);
    // As long as the whole delivery may take: on a loaded 2-core host a third of 2,000 took three minutes.
    await waitFor(`${threshold} acceptances at the MX`, () => (acceptedByDomain.get(domain) ?? 0) >= threshold, PLAN.completionTimeoutMs, 10);
    const rateBefore = threshold / ((Date.now() - createdAt) / 1000);
    const window = await strike(id);
    console.log(`[faults] ${fault}: ${window.detail} (before it: ${threshold} accepted ${secondsText(window.startedAt - createdAt)} after the creation, ${rateBefore.toFixed(1)}/s)`);
    await waitForCompletion(stack, id, PLAN.completionTimeoutMs);
    const checkStartedAt = Date.now();
    const check = await checkDelivery(stack, id, people, window);
    const redone = await historyStats(stack, id, check.recipientIds);
    console.log(`[faults] ${fault}: checked in ${secondsText(Date.now() - checkStartedAt)}`);
    row = rowFrom(fault, [check], people, `${window.detail}; ${redoneText(redone)}`);
    rows.push(row);
    console.log(`[faults] ${fault}: ${JSON.stringify({ ...row, detail: undefined })}`);
    assertChecks([check], people);
  } catch (e) {
    if (!row) rows.push({ fault, deliveries: 1, recipients: PLAN.recipients, sent: 0, failed: 0, notFinal: 0, duplicates: 0, lost: 0, recoverMs: null, completedAfterMs: 0, detail: '', failure: (e as Error).message.split('\n')[0]!.slice(0, 200) });
    // A delivery left sending would load the next faults' machine and muddle their figures.
    if (id) await stack.request('POST', `/api/deliveries/${id}/cancel`, { reason: 'fault suite: this fault failed' }).catch(() => undefined);
    throw e;
  }
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fault-suite-'));
  const t0 = Date.now();
  stack = await startProcessStack({
    dir,
    secrets: TEST_SECRETS,
    mxLatencyMs: 20,
    env: {
      // Retry delays shrink 2,000-fold: greylisting's 5 minutes become 0.15 s, an unreachable host's 15 minutes 0.45 s
      // (then 0.9, 1.8, 3.6 s...: the schedule's doubling is kept, so an outage is still retried with a growing back-off).
      RETRY_TIME_SCALE: '0.0005',
      KPI_REFRESH_SECONDS: '1',
      SMTP_CONNECT_TIMEOUT_MS: '5000',
      SMTP_GREETING_TIMEOUT_MS: '5000',
      SMTP_SOCKET_TIMEOUT_MS: '15000',
      // A retry takes over the creation of an API process that died once its claim lapses: the shortest lease allowed.
      IDEMPOTENCY_LEASE_SECONDS: '10',
    },
    log: (m) => console.log(`[faults] ${m}`),
  });
  stack.mx.on('accepted', (m) => {
    const domain = m.rcptTo.slice(m.rcptTo.lastIndexOf('@') + 1).toLowerCase();
    acceptedByDomain.set(domain, (acceptedByDomain.get(domain) ?? 0) + 1);
  });
  stack.apiKey = await provisionApiKey(stack);
  await stack.startWorker();
  console.log(`[faults] ${REDUCED ? 'reduced' : 'full'} suite: stack up in ${secondsText(Date.now() - t0)} (${dir})`);
});

afterAll(async () => {
  if (rows.length) {
    const file = writeReport({ mode: REDUCED ? 'reduced' : 'full', startedAt, finishedAt: new Date(), load: { atStart: loadAtStart, atEnd: os.loadavg()[0]! }, rows });
    console.log(`\n[faults] results (${file}):\n${renderTable(rows)}\n`);
  }
  const failed = rows.some((r) => r.failure);
  if (failed && stack) {
    // Keep the processes' logs of a failed run next to the table.
    const keep = path.resolve(__dirname, '..', '..', 'test-results', 'fault-suite-logs');
    fs.rmSync(keep, { recursive: true, force: true });
    fs.cpSync(stack.logDir, keep, { recursive: true });
  }
  await stack?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe.sequential(`fault suite (${REDUCED ? 'reduced' : 'full'}: ${PLAN.recipients} recipients per fault)`, () => {
  it('(a) kill -9 of the worker in the middle of a delivery, then a new worker', async () => {
    await deliveryThroughFault('(a) worker kill -9', 'worker-kill', async (id) => {
      await sleep(Math.floor(Math.random() * KILL_JITTER_MS));
      const inProgress = async () =>
        (await stack.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM send_attempts WHERE delivery_id = $1 AND outcome = 'in_progress'`, [id])).rows[0]!.n;
      // On a busy machine the worker sends in bursts: a kill between bursts would test nothing.
      await waitFor(`${MIN_IN_FLIGHT} attempts in progress`, async () => (await inProgress()) >= MIN_IN_FLIGHT, 60_000, 5);
      const worker = stack.workers[0]!;
      const startedAt = Date.now();
      await stack.killWorker(worker);
      // Statements the dead worker had already sent may still commit; then count what it left in flight.
      await sleep(500);
      const inFlight = await inProgress();
      const left = await notFinal(id);
      expect(inFlight, 'attempts in flight at the kill').toBeGreaterThan(0);
      expect(left, 'recipients not final at the kill').toBeGreaterThan(0);
      await stack.startWorker();
      const endedAt = Date.now();
      return { startedAt, endedAt, detail: `kill -9 with ${inFlight} attempts in progress, ${left} recipients not final; new worker ready ${secondsText(endedAt - startedAt)} later` };
    });
  });

  it('(b) the Temporal dev server stopped and started again (file database)', async () => {
    await deliveryThroughFault('(b) Temporal restart', 'temporal-restart', async (id) => {
      const startedAt = Date.now();
      await stack.stopTemporal('SIGTERM');
      const left = await notFinal(id);
      expect(left, 'recipients not final when Temporal stopped').toBeGreaterThan(0);
      await sleep(PLAN.temporalDownMs);
      await stack.startTemporal();
      const endedAt = Date.now();
      for (const p of [...stack.workers, stack.api!]) expect(p.child.exitCode, `${p.name} exited while Temporal was down`).toBeNull();
      return { startedAt, endedAt, detail: `stopped (SIGTERM) with ${left} recipients not final, down ${secondsText(endedAt - startedAt)}` };
    });
  });

  it('(c) Postgres stopped and started again on the same data directory', async () => {
    await deliveryThroughFault('(c) Postgres restart', 'postgres-restart', async (id) => {
      const left = await notFinal(id);
      const startedAt = Date.now();
      await stack.stopPostgres();
      await sleep(PLAN.postgresDownMs);
      await stack.startPostgres();
      const endedAt = Date.now();
      expect(left, 'recipients not final when Postgres stopped').toBeGreaterThan(0);
      for (const p of [...stack.workers, stack.api!]) expect(p.child.exitCode, `${p.name} exited while Postgres was down`).toBeNull();
      return { startedAt, endedAt, detail: `stopped (fast shutdown) with ${left} recipients not final, down ${secondsText(endedAt - startedAt)}` };
    });
  });

  it('(d1) the sandbox MX cuts every transaction in the middle of DATA for a while', async () => {
    await deliveryThroughFault('(d1) MX cuts in DATA', 'data-cut', async (id) => {
      const before = stack.mx.outageStatus().droppedInData;
      const startedAt = Date.now();
      stack.mx.dropInData(PLAN.dataCutMs);
      await sleep(PLAN.dataCutMs);
      stack.mx.stopDroppingInData();
      const endedAt = Date.now();
      const cut = stack.mx.outageStatus().droppedInData - before;
      expect(cut, 'transactions cut in DATA').toBeGreaterThan(0);
      expect(await notFinal(id), 'recipients not final after the cuts').toBeGreaterThan(0);
      return { startedAt, endedAt, detail: `${cut} transactions cut in DATA during ${secondsText(endedAt - startedAt)}` };
    });
  });

  it('(d2) the sandbox MX refuses connections', async () => {
    await deliveryThroughFault('(d2) MX refuses connections', 'refusal', async (id) => {
      const before = { ...stack.mx.outageStatus(), refused: stack.network.refusedUpstream() };
      const startedAt = Date.now();
      await stack.mx.refuseConnections(PLAN.refuseMs);
      const endedAt = Date.now();
      const refused = stack.network.refusedUpstream() - before.refused;
      const cut = stack.mx.outageStatus().connectionsCut - before.connectionsCut;
      expect(refused, 'connections refused').toBeGreaterThan(0);
      expect(await notFinal(id), 'recipients not final after the refusal').toBeGreaterThan(0);
      return { startedAt, endedAt, detail: `refused ${refused} connections during ${secondsText(endedAt - startedAt)}, cut ${cut} open ones at its start` };
    });
  });

  it('(e) kill -9 of the API while deliveries are being created through it; the client retries what failed', async () => {
    const fault = '(e) API kill -9 during creates';
    const tag = randomBytes(3).toString('hex');
    const n = PLAN.concurrentCreates;
    const per = Math.floor(PLAN.recipients / n);
    const requests = Array.from({ length: n }, (_, i) => {
      const people = population(per, 'api-kill.fault.example', `${tag}x${i}-`);
      return { people, body: deliveryBody(`fault (e) ${tag} #${i}`, people), key: `fault-e-${tag}-${i}` };
    });
    const allPeople = requests.flatMap((r) => r.people);
    const namePattern = `fault (e) ${tag} #%`;
    const rowsOfRun = async () =>
      (await stack.pool.query<{ id: string; name: string; state: string; recipients: number }>(
        `SELECT d.id, d.name, d.state, (SELECT count(*)::int FROM delivery_recipients r WHERE r.delivery_id = d.id) AS recipients
         FROM deliveries d WHERE d.name LIKE $1 ORDER BY d.name, d.created_at`,
        [namePattern],
      )).rows;
    let row: FaultRow | null = null;
    try {
      // --- several creations at once, a few milliseconds apart so that they are at different stages (parsing, copying
      // the population, starting the workflow) when the API dies: as soon as the first of them has committed ---
      const attempts = requests.map((r, i) =>
        sleep(i * CREATE_STAGGER_MS).then(() => stack.request<{ id: string }>('POST', '/api/deliveries', r.body, { 'idempotency-key': r.key })).then(
          (res) => ({ status: res.status, id: res.status === 201 ? res.body.id : null, error: res.status === 201 ? null : JSON.stringify(res.body) }),
          (e: Error) => ({ status: 0, id: null as string | null, error: e.message }),
        ),
      );
      await waitFor('a first creation committed', async () => (await rowsOfRun()).length > 0, 120_000, 2);
      const startedAt = Date.now();
      await stack.killApi();
      const first = await Promise.all(attempts);
      const answered = first.filter((a) => a.status === 201).length;
      for (const a of first) if (a.status !== 201 && a.status !== 0) throw new Error(`a creation was refused rather than cut: ${a.status} ${a.error}`);
      // What the kill left behind, before any retry: deliveries stored without their workflow are half-created.
      const atKill = await rowsOfRun();
      const halfAtKill: string[] = [];
      for (const d of atKill) if (!(await workflowExists(stack, d.id))) halfAtKill.push(d.id);
      console.log(`[faults] ${fault}: ${answered} of ${n} creations answered before the kill; ${atKill.length} stored, ${halfAtKill.length} of them without a workflow`);
      expect(answered, 'the kill interrupted creations in flight').toBeLessThan(n);

      // --- a new API; the client retries every creation that got no answer, with the same idempotency key ---
      await stack.startApi();
      const endedAt = Date.now();
      const ids = first.map((a) => a.id);
      const refusals: string[] = [];
      let conflicts = 0;
      for (const [i, a] of first.entries()) {
        if (a.status === 201) continue;
        ids[i] = await waitFor(
          `the retried creation #${i}`,
          async () => {
            const res = await stack.request<{ id: string }>('POST', '/api/deliveries', requests[i]!.body, { 'idempotency-key': requests[i]!.key });
            // 409: the dead process's claim on the key has not lapsed yet (Retry-After); any other refusal is a failure.
            if (res.status >= 400 && res.status < 500 && res.status !== 409) {
              refusals.push(`#${i}: ${res.status} ${JSON.stringify(res.body)}`);
              return 'refused';
            }
            if (res.status === 409) conflicts += 1;
            return res.status === 201 ? res.body.id : null;
          },
          120_000,
          500,
        );
      }
      const retriedAt = Date.now();
      expect(refusals, 'retries refused').toEqual([]);

      // --- every delivery complete or absent: one per request, each with its recipients and its workflow ---
      const after = await rowsOfRun();
      const halfCreated: string[] = [];
      for (const d of after) {
        if (!ids.includes(d.id)) halfCreated.push(`${d.name}: ${d.id} stored but no client holds it (state ${d.state})`);
        else if (!(await workflowExists(stack, d.id))) halfCreated.push(`${d.name}: ${d.id} has no workflow`);
        else if (d.recipients !== per) halfCreated.push(`${d.name}: ${d.id} has ${d.recipients} of ${per} recipients`);
      }
      expect(new Set(ids).size, 'one delivery per request').toBe(n);
      const detail =
        `kill -9 at the first commit: ${answered} of ${n} creations answered, ${n - answered} retried; ` +
        `${halfAtKill.length} stored without a workflow at the kill; retries answered 409 (claim of the dead API still held) ${conflicts} times, ` +
        `all created ${secondsText(retriedAt - endedAt)} after the new API was up`;
      const checks: DeliveryCheck[] = [];
      if (halfCreated.length === 0) {
        for (const [i, id] of ids.entries()) {
          await waitForCompletion(stack, id!, PLAN.completionTimeoutMs);
          checks.push(await checkDelivery(stack, id!, requests[i]!.people, { startedAt, endedAt }));
        }
      }
      const extra = halfCreated.length ? `${halfCreated.length} half-created or extra deliveries: ${halfCreated.slice(0, 3).join('; ')}` : null;
      row = checks.length
        ? { ...rowFrom(fault, checks, allPeople, detail, extra), recoverMs: retriedAt - endedAt }
        : { fault, deliveries: after.length, recipients: 0, sent: 0, failed: 0, notFinal: 0, duplicates: 0, lost: 0, recoverMs: null, completedAfterMs: 0, detail, failure: extra };
      rows.push(row);
      expect(halfCreated, 'deliveries half-created, or created twice').toEqual([]);
      assertChecks(checks, allPeople);
    } catch (e) {
      if (!row) rows.push({ fault, deliveries: n, recipients: per * n, sent: 0, failed: 0, notFinal: 0, duplicates: 0, lost: 0, recoverMs: null, completedAfterMs: 0, detail: '', failure: (e as Error).message.split('\n')[0]!.slice(0, 200) });
      throw e;
    }
  });
});
