/**
 * "No duplicate, nothing lost" when the worker process dies mid-delivery: a worker running as its own OS process is
 * SIGKILLed while it sends a 600-recipient delivery, a new one is started, and the sandbox MX, the delivery log and
 * the Temporal histories show what happened to every recipient. See docs/idempotency.md.
 */
import { formatPayloadKeys } from '../runtime/codec-keys';
import { AesGcmPayloadCodec } from '../runtime/payload-codec';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startHarness, TEST_SECRETS, type Harness } from './support/harness';
import { engineProcessExited, killEngineProcess, READY_MARKERS, startEngineProcess, type EngineProcess } from './support/engine-process';
import { startSlowNetwork, type SlowNetwork } from './support/slow-network';
import { recipientWorkflowId } from '../workflows/contract';

const RECIPIENTS = 600;
/** The worker is killed once the MX has accepted this many messages: about a third of the delivery. */
const KILL_AT_ACCEPTED = 200;
const DOMAIN = 'crash.example';
/** One-way latency between the worker and the MX (support/slow-network.ts says why there must be one). */
const ONE_WAY_LATENCY_MS = 40;
/**
 * Past the threshold the kill waits a random time up to this (several transactions, so it is not tied to the MX's
 * last acceptance), then strikes as soon as the log shows at least MIN_IN_FLIGHT attempts in progress: on a busy
 * machine the worker sends in bursts, and a kill between bursts would test nothing.
 */
const KILL_JITTER_MS = 1_000;
const MIN_IN_FLIGHT = 3;
/** Per-host SMTP connections of one worker (the default): at most one transaction per connection can be in the window. */
const SMTP_CONNECTIONS = 5;

let h: Harness;
let logDir: string;
const workers: EngineProcess[] = [];
let proxy: SlowNetwork | undefined;

/** Mostly accepting addresses; some greylisted and fail-once ones (soft bounce, then accepted), a few hard bounces. */
function population(): { email: string; kind: 'ok' | 'grey' | 'fail1' | 'hard' }[] {
  return Array.from({ length: RECIPIENTS }, (_, i) => {
    if (i % 50 === 7) return { email: `grey-${i}@${DOMAIN}`, kind: 'grey' as const };
    if (i % 50 === 23) return { email: `fail1-${i}@${DOMAIN}`, kind: 'fail1' as const };
    if (i % 120 === 41) return { email: `hard-${i}@${DOMAIN}`, kind: 'hard' as const };
    return { email: `r${i}@${DOMAIN}`, kind: 'ok' as const };
  });
}

/** `node --import tsx workers/main.ts` in its own process group, configured like a production worker would be. */
async function startWorkerProcess(label: string): Promise<EngineProcess> {
  const worker = await startEngineProcess({
    name: `worker-${label}`,
    entry: 'workers/main.ts',
    logDir,
    readyMarker: READY_MARKERS.worker,
    timeoutMs: 60_000,
    env: {
      DATA_DIR: logDir,
      DATABASE_URL: h.settings.DATABASE_URL!,
      TEMPORAL_ADDRESS: h.settings.TEMPORAL_ADDRESS,
      TASK_QUEUE: h.taskQueue,
      MX_OVERRIDES: JSON.stringify({ '*': `127.0.0.1:${proxy!.port}` }),
      VERP_SECRET: TEST_SECRETS.verpSecret,
      KEY_ENCRYPTION_SECRET: TEST_SECRETS.keyEncryptionSecret,
      // The same payload keys as the test's client: the worker opens the inputs the client sealed.
      PAYLOAD_KEYS: formatPayloadKeys(TEST_SECRETS.payloadKeys.keys),
      PAYLOAD_KEY_ID: TEST_SECRETS.payloadKeys.currentKeyId,
      RETRY_TIME_SCALE: String(h.settings.RETRY_TIME_SCALE),
      SMTP_CONNECT_TIMEOUT_MS: String(h.settings.SMTP_CONNECT_TIMEOUT_MS),
      SMTP_GREETING_TIMEOUT_MS: String(h.settings.SMTP_GREETING_TIMEOUT_MS),
      SMTP_SOCKET_TIMEOUT_MS: String(h.settings.SMTP_SOCKET_TIMEOUT_MS),
      SMTP_POOL_MAX_CONNECTIONS: String(SMTP_CONNECTIONS),
      WORKFLOW_BUNDLE_PATH: inject('workflowBundlePath'),
    },
  });
  workers.push(worker);
  return worker;
}

function workerLogs(): string {
  return fs
    .readdirSync(logDir)
    .filter((f) => f.endsWith('.log'))
    .map((f) => `--- ${f} (last 40 lines)\n${fs.readFileSync(path.join(logDir, f), 'utf8').split('\n').slice(-40).join('\n')}`)
    .join('\n');
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : NaN;
}

beforeAll(async () => {
  logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'worker-crash-'));
  // Greylisting's 5 minutes become 0.6 s, a transient failure's 15 minutes 1.8 s.
  h = await startHarness({ worker: false, env: { RETRY_TIME_SCALE: '0.002' }, mx: { keepRaw: false } });
  proxy = await startSlowNetwork(h.mx.listeningPort, ONE_WAY_LATENCY_MS);
});

afterAll(async () => {
  for (const w of workers) killEngineProcess(w);
  await Promise.all(workers.map(engineProcessExited));
  proxy?.close();
  await h?.stop();
  if (logDir) fs.rmSync(logDir, { recursive: true, force: true });
});

describe('worker killed in the middle of a delivery', () => {
  it('delivers every recipient exactly once (or explains each duplicate) and every recipient ends final', async () => {
    const people = population();
    const first = await startWorkerProcess('1');
    const id = await h.createDelivery({
      name: 'worker crash',
      from: 'news@crash-brand.example',
      subject: 'Hello {{n}}',
      text: 'Message for recipient {{n}}',
      recipients: people.map((p, i) => ({ email: p.email, fields: { n: i } })),
      autoConfirm: true,
    });
    const addressOf = new Map<number, string>();
    for (const r of (await h.pool.query('SELECT recipient_id, address FROM delivery_recipients WHERE delivery_id = $1', [id])).rows) {
      addressOf.set(r.recipient_id as number, (r.address as string).toLowerCase());
    }
    expect(addressOf.size).toBe(RECIPIENTS);

    // --- kill the worker (the whole process group) once about a third has been accepted ---
    const sendingStartedAt = Date.now();
    const waitFor = async (what: string, ok: () => boolean | Promise<boolean>, everyMs: number, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      while (!(await ok())) {
        if (Date.now() > deadline) throw new Error(`${what} did not happen in ${timeoutMs} ms (MX accepted ${h.mx.acceptedCount()})\n${workerLogs()}`);
        await new Promise((r) => setTimeout(r, everyMs));
      }
    };
    await waitFor(`${KILL_AT_ACCEPTED} acceptances`, () => h.mx.acceptedCount() >= KILL_AT_ACCEPTED, 10, 90_000);
    const thresholdAt = Date.now();
    const killDelayMs = Math.floor(Math.random() * KILL_JITTER_MS);
    await new Promise((r) => setTimeout(r, killDelayMs));
    const inProgressNow = async () =>
      (await h.pool.query(`SELECT count(*)::int AS n FROM send_attempts WHERE delivery_id = $1 AND outcome = 'in_progress'`, [id])).rows[0].n as number;
    await waitFor(`${MIN_IN_FLIGHT} attempts in progress at once`, async () => (await inProgressNow()) >= MIN_IN_FLIGHT, 5, 30_000);
    killEngineProcess(first);
    const killedAt = new Date();
    const acceptedAtKill = h.mx.acceptedCount();
    const firstAcceptedAt = h.mx.accepted()[0]!.receivedAt.getTime();
    await engineProcessExited(first);
    // Statements the dead worker had already sent may still commit; let them, then photograph the log.
    await new Promise((r) => setTimeout(r, 1000));
    const mxAtKill = h.mx.countsByRecipient();
    const inFlight = (
      await h.pool.query<{ recipient_id: number; attempt: number }>(
        `SELECT recipient_id, attempt FROM send_attempts WHERE delivery_id = $1 AND outcome = 'in_progress' ORDER BY recipient_id`,
        [id],
      )
    ).rows;
    const notFinalAtKill = (
      await h.pool.query<{ recipient_id: number }>(`SELECT recipient_id FROM delivery_recipients WHERE delivery_id = $1 AND status NOT IN ('sent', 'failed')`, [id])
    ).rows.map((r) => r.recipient_id);
    // An attempt the receiver accepted that the log still shows in progress: the retry cannot know, it will resend.
    const inWindow = inFlight.filter((a) => (mxAtKill.get(addressOf.get(a.recipient_id)!) ?? 0) > 0).map((a) => a.recipient_id);
    console.log(
      `killed the worker at ${acceptedAtKill} accepted messages (${killedAt.getTime() - thresholdAt} ms after the threshold, jitter ${killDelayMs} ms), ` +
        `${killedAt.getTime() - sendingStartedAt} ms after the delivery was created ` +
        `(first acceptance after ${firstAcceptedAt - sendingStartedAt} ms): ` +
        `${inFlight.length} attempts in progress (${inWindow.length} of them already accepted by the MX), ${notFinalAtKill.length} recipients not final`,
    );
    expect(acceptedAtKill).toBeLessThan(RECIPIENTS * 0.6); // the kill hit the middle of the delivery, not its end
    expect(inFlight.length).toBeGreaterThan(0); // ... and work in flight

    // --- a new worker picks up: the dead worker's workflow tasks time out and their local send activities run again ---
    const restartedAt = Date.now();
    await startWorkerProcess('2');
    let final;
    try {
      final = await h.waitForPhase(id, ['completed'], 110_000);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${workerLogs()}`);
    }
    console.log(`delivery completed ${Date.now() - restartedAt} ms after the restart`);

    // --- every recipient final, KPIs matching the log ---
    const hard = people.filter((p) => p.kind === 'hard').length;
    const byStatus = Object.fromEntries(
      (await h.pool.query(`SELECT status, count(*)::int AS n FROM delivery_recipients WHERE delivery_id = $1 GROUP BY status`, [id])).rows.map((r) => [r.status, r.n]),
    );
    expect(byStatus).toEqual({ sent: RECIPIENTS - hard, failed: hard });
    expect(final.kpis).toMatchObject({ targeted: RECIPIENTS, toDeliver: RECIPIENTS, sent: RECIPIENTS - hard, failed: hard, takenIntoAccount: 0 });
    expect(final.kpis?.failuresByReason).toEqual({ user_unknown: hard });
    expect(final.kpis).toMatchObject(await h.service.log.kpis(id));
    const stillInProgress = await h.pool.query(`SELECT count(*)::int AS n FROM send_attempts WHERE delivery_id = $1 AND outcome = 'in_progress'`, [id]);
    expect(stillInProgress.rows[0].n).toBe(0);
    // One accepted attempt per sent recipient, none for the others.
    const acceptedRows = await h.pool.query<{ recipient_id: number; n: number; finished_at: Date }>(
      `SELECT a.recipient_id, count(*)::int AS n, max(a.finished_at) AS finished_at FROM send_attempts a
       WHERE a.delivery_id = $1 AND a.outcome = 'accepted' GROUP BY a.recipient_id`,
      [id],
    );
    expect(acceptedRows.rows.every((r) => r.n === 1)).toBe(true);
    const sentIds = new Set(
      (await h.pool.query<{ recipient_id: number }>(`SELECT recipient_id FROM delivery_recipients WHERE delivery_id = $1 AND status = 'sent'`, [id])).rows.map(
        (r) => r.recipient_id,
      ),
    );
    expect(new Set(acceptedRows.rows.map((r) => r.recipient_id))).toEqual(sentIds);

    // --- at the MX: nothing lost, nothing unexpected, and one message per recipient unless the crash explains it ---
    const mx = h.mx.countsByRecipient();
    const sentAddresses = new Set([...sentIds].map((rid) => addressOf.get(rid)!));
    for (const address of sentAddresses) expect(mx.get(address) ?? 0, address).toBeGreaterThanOrEqual(1);
    for (const address of mx.keys()) expect(sentAddresses.has(address), `${address} reached the MX but is not sent`).toBe(true);
    const idOf = new Map([...addressOf].map(([rid, a]) => [a, rid]));
    const duplicates = [...mx].filter(([, n]) => n > 1).map(([address, n]) => ({ address, recipientId: idOf.get(address)!, copies: n }));
    const inFlightIds = new Set(inFlight.map((a) => a.recipient_id));
    for (const d of duplicates) {
      const attempts = await h.service.log.attempts(id, d.recipientId);
      const messageIds = new Set(h.mx.acceptedFor(d.address).map((m) => m.messageId));
      console.log(
        `duplicate: ${d.address} (recipient ${d.recipientId}) received ${d.copies} copies with Message-ID ${[...messageIds].join(', ')}; ` +
          `its attempt was in progress when the worker died and the MX had already accepted it; attempts: ` +
          JSON.stringify(attempts.map((a) => ({ attempt: a.attempt, outcome: a.outcome, startedAt: a.startedAt, finishedAt: a.finishedAt }))),
      );
      // Explained: its attempt row was in progress at the kill and the receiver had already taken the message.
      expect(inFlightIds.has(d.recipientId), `${d.address} duplicated without an attempt in flight at the kill`).toBe(true);
      expect(inWindow).toContain(d.recipientId);
      expect(d.copies).toBe(2); // one crash, at most one extra copy
      expect(messageIds.size).toBe(1); // the same Message-ID both times: a receiver can drop the copy
    }
    // Conversely every message in the window when the worker died was sent again (the retry could not know).
    expect(duplicates.map((d) => d.recipientId).sort((a, b) => a - b)).toEqual([...inWindow].sort((a, b) => a - b));
    expect(duplicates.length).toBeLessThanOrEqual(SMTP_CONNECTIONS);
    console.log(`duplicates at the MX after one kill: ${duplicates.length}`);

    // --- the crash hit work in flight, and that work was retried after the kill, not lost ---
    const rerun = await h.pool.query<{ recipient_id: number; attempt: number; started_at: Date; outcome: string }>(
      `SELECT recipient_id, attempt, started_at, outcome FROM send_attempts
       WHERE delivery_id = $1 AND (recipient_id, attempt) IN (SELECT * FROM unnest($2::int[], $3::int[]))`,
      [id, inFlight.map((a) => a.recipient_id), inFlight.map((a) => a.attempt)],
    );
    expect(rerun.rows).toHaveLength(inFlight.length);
    for (const r of rerun.rows) {
      expect(r.outcome, `recipient ${r.recipient_id} attempt ${r.attempt}`).not.toBe('in_progress');
      // beginAttempt restamps started_at when it re-runs an attempt left in progress.
      expect(r.started_at.getTime(), `recipient ${r.recipient_id} attempt ${r.attempt} re-ran`).toBeGreaterThan(killedAt.getTime());
    }
    // Every attempt in flight that the MX had not accepted yet was carried out by its retry: one message (none for a
    // hard bounce).
    const notYetAccepted = inFlight.filter((a) => !inWindow.includes(a.recipient_id));
    for (const a of notYetAccepted) {
      expect(mx.get(addressOf.get(a.recipient_id)!) ?? 0, `recipient ${a.recipient_id}`).toBe(sentIds.has(a.recipient_id) ? 1 : 0);
    }
    const recoveredByRetry = notYetAccepted.length;

    // Temporal's view: the sends run as local activities inside workflow tasks; the dead worker's tasks timed out and
    // the new worker ran them again (markers record each local activity's result, replayed or sent).
    const codec = new AesGcmPayloadCodec(TEST_SECRETS.payloadKeys);
    let workflowTaskTimeouts = 0;
    let replayedFromLog = 0;
    const histories = [...new Set([...notFinalAtKill, ...inFlightIds])];
    for (let i = 0; i < histories.length; i += 20) {
      await Promise.all(
        histories.slice(i, i + 20).map(async (rid) => {
          const history = await h.client.workflow.getHandle(recipientWorkflowId(id, rid)).fetchHistory();
          for (const e of history.events ?? []) {
            if (e.workflowTaskTimedOutEventAttributes) workflowTaskTimeouts++;
            const sealed = e.markerRecordedEventAttributes?.details?.result?.payloads?.[0];
            // Payloads are sealed by the payload codec: open them with the test's key to read the send's outcome.
            const payload = sealed ? codec.open(sealed).data : null;
            if (payload && (JSON.parse(Buffer.from(payload).toString('utf8')) as { replayed?: boolean }).replayed) replayedFromLog++;
          }
        }),
      );
    }
    console.log(
      `after the kill: ${workflowTaskTimeouts} workflow tasks of the dead worker timed out and ran again, ` +
        `${replayedFromLog} sends returned an outcome already in the log instead of sending, ${recoveredByRetry} in-flight messages delivered once by the retry`,
    );
    expect(workflowTaskTimeouts).toBeGreaterThan(0);

    // --- how wide the duplicate window is, against the send rate ---
    // The window opens when the final dot leaves the worker (one-way latency before the MX accepts it) and closes
    // when the attempt row says 'accepted'; the second part is measured from the MX's clock to Postgres's.
    const firstAcceptance = new Map<string, number>();
    for (const m of h.mx.accepted()) if (!firstAcceptance.has(m.rcptTo.toLowerCase())) firstAcceptance.set(m.rcptTo.toLowerCase(), m.receivedAt.getTime());
    const windows = acceptedRows.rows
      .map((r) => r.finished_at.getTime() - (firstAcceptance.get(addressOf.get(r.recipient_id)!) ?? NaN))
      .filter((w) => Number.isFinite(w) && w >= -5 && w < 5_000) // rows written by the retry after a kill are not the window
      .sort((a, b) => a - b);
    const firstPhaseMs = killedAt.getTime() - firstAcceptedAt;
    const rate = acceptedAtKill / Math.max(1, firstPhaseMs / 1000);
    const meanWindowMs = ONE_WAY_LATENCY_MS + windows.reduce((s, w) => s + w, 0) / Math.max(1, windows.length);
    console.log(
      `window: MX acceptance → attempt row 'accepted' median ${percentile(windows, 0.5)} ms, p95 ${percentile(windows, 0.95)} ms, ` +
        `max ${windows[windows.length - 1]} ms over ${windows.length} messages, plus ${ONE_WAY_LATENCY_MS} ms for the final dot to reach the MX; ` +
        `send rate before the kill ${rate.toFixed(1)} msg/s, so ${((SMTP_CONNECTIONS / rate) * 1000).toFixed(0)} ms per transaction per connection; ` +
        `expected messages inside the window at a random instant (rate × mean window, Little's law): ${((rate * meanWindowMs) / 1000).toFixed(2)}`,
    );
  });
});
