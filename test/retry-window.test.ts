/**
 * Retry timing by class and the retry window, on the Java time-skipping test server: days of durable retry timers run
 * in seconds, with the real worker, activities, Postgres and sandbox MX (RETRY_TIME_SCALE=1: real delays, skipped time).
 *
 * The evidence of "retry timing by class" is the recipient workflow's own history: each retry is one TimerStarted event
 * whose duration must equal the class schedule (domain/retry-schedule.ts) for the jitter drawn, and each attempt is one
 * ActivityTaskScheduled event whose input carries the workflow clock. Database times (now()) are real time and so
 * useless here; the workflow's clock is the one the test server moves.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, type Worker } from '@temporalio/worker';
import { parseSettings } from '../config/settings';
import type { ActivityDependencies } from '../activities/dependencies';
import { createActivities } from '../activities';
import type { SendInput } from '../workflows/contract';
import { buildActivityDependencies, buildWorker, openRuntime, type EngineRuntime } from '../runtime/composition-root';
import { SandboxMx } from '../mx-sandbox/sandbox-mx';
import { freePort } from '../stack/ports';
import { recipientWorkflow } from '../workflows/recipient-workflow';
import { recipientStateQuery, recipientWorkflowId, type RecipientStateView } from '../workflows/contract';
import {
  DeliveryIdAttribute,
  EfsStatusAttribute,
  FailureReasonAttribute,
  RecipientDomainAttribute,
} from '../workflows/search-attributes';
import { MAX_RETRY_WINDOW_MS, RETRY_SCHEDULES, retryDelayMs } from '../domain/retry-schedule';
import type { RetryClass } from '../domain/failure';
import { TEST_SECRETS } from './support/harness';
import { startTimeSkippingEnv } from './support/time-skipping';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const FROM_DOMAIN = 'retry-sender.test';
/** Routed by MX_OVERRIDES to a closed port: every attempt ends in "connection refused". */
const UNREACHABLE_DOMAIN = 'unreachable.test';

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
let runtime: EngineRuntime;
let pool: Pool;
let deps: ActivityDependencies;
let mx: SandboxMx;
let taskQueue: string;
/** Every jitter value the send activity drew, in order: one per soft-bounced attempt of the recipient under test. */
let draws: number[] = [];
const sendInputs: { attempt: number; workflowNowMs: number }[] = [];
const timings: Record<string, number> = {};

beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const t = Date.now();
  env = await startTimeSkippingEnv();
  timings.serverStartMs = Date.now() - t;

  mx = new SandboxMx({ port: 0 }); // greylistDelayMs 0: a greylisted address is accepted on its next attempt
  const { port } = await mx.start();
  taskQueue = `retry-window-${randomUUID()}`;
  const settings = parseSettings({
    DATABASE_URL: inject('databaseUrl'),
    TASK_QUEUE: taskQueue,
    // A closed port fresh for this run: its site's suspension (on this test's skipped clock) must not reach other tests.
    MX_OVERRIDES: JSON.stringify({ [UNREACHABLE_DOMAIN]: `127.0.0.1:${await freePort()}`, '*': `127.0.0.1:${port}` }),
    VERP_SECRET: TEST_SECRETS.verpSecret,
    KEY_ENCRYPTION_SECRET: TEST_SECRETS.keyEncryptionSecret,
    RETRY_TIME_SCALE: '1',
    SMTP_CONNECT_TIMEOUT_MS: '5000',
    SMTP_GREETING_TIMEOUT_MS: '5000',
    SMTP_SOCKET_TIMEOUT_MS: '10000',
  });
  expect(settings.RETRY_TIME_SCALE).toBe(1);
  runtime = await openRuntime(settings, { secrets: TEST_SECRETS, poolSize: 5, prepareDatabase: false });
  pool = runtime.pool;
  deps = buildActivityDependencies(runtime);
  deps.random = () => {
    const r = Math.random();
    draws.push(r);
    return r;
  };
  await deps.keys.ensureKey(FROM_DOMAIN, 's1', 'rsa-sha256');
  // The send runs as a local activity, whose input is not in the history: record what each attempt was given.
  const activities = createActivities(deps);
  const send = activities.sendRecipientMessage;
  activities.sendRecipientMessage = async (input: SendInput) => {
    const outcome = await send(input);
    if (outcome.outcome !== 'deferred') sendInputs.push({ attempt: input.attempt, workflowNowMs: input.workflowNowMs });
    return outcome;
  };
  worker = await buildWorker(runtime, {
    connection: env.nativeConnection,
    namespace: 'default',
    taskQueue,
    deps,
    activities,
    maxConcurrentActivities: 10,
    maxConcurrentWorkflowTasks: 10,
    workflowBundle: { codePath: inject('workflowBundlePath') },
  });
  running = worker.run();
});

afterAll(async () => {
  if (worker?.getState() === 'RUNNING') worker.shutdown();
  await running;
  deps?.sender.close();
  await mx?.stop();
  await runtime?.close();
  await env?.teardown();
  console.info(`time-skipping test server: located and started in ${timings.serverStartMs} ms`);
});

interface Attempt {
  attempt: number;
  /** The workflow clock the workflow passed to the attempt. */
  workflowNowMs: number;
}

interface Run {
  deliveryId: string;
  recipientId: number;
  workflowId: string;
  startedAtMs: number;
  state: RecipientStateView;
  /** Durations of the workflow's durable timers, in order: one per retry. */
  timers: number[];
  attempts: Attempt[];
  draws: number[];
  realMs: number;
}

/** Milliseconds of a protobuf Duration or Timestamp (seconds may be a Long). */
function protoMs(d: { seconds?: unknown; nanos?: number | null } | null | undefined): number {
  return Number(d?.seconds ?? 0) * 1000 + Math.round((d?.nanos ?? 0) / 1e6);
}

/** Creates a one-recipient delivery, hands the recipient over as the batch workflow would, and runs its workflow to the end. */
async function runRecipient(email: string, validityMs: number): Promise<Run> {
  const realStart = Date.now();
  const store = runtime.stores.deliveries;
  const log = runtime.stores.log;
  const { id: deliveryId } = await store.create(
    {
      name: `retry window ${email}`,
      from: { address: `news@${FROM_DOMAIN}` },
      subject: 'Retry window',
      text: 'Hello',
      validitySeconds: Math.round(validityMs / 1000),
      autoConfirm: true,
    },
    { recipients: [{ email }] },
  );
  const [claimed] = await log.claimPage(deliveryId, 0, 10, 1);
  expect(claimed).toBeDefined();
  const domain = claimed!.domain;
  // Validity is counted from the test server's clock, which earlier cases have already moved days ahead.
  const validityEndsAtMs = (await env.currentTimeMs()) + validityMs;
  const workflowId = recipientWorkflowId(deliveryId, claimed!.recipientId);
  draws = [];
  sendInputs.length = 0;
  const returned = await env.client.workflow.execute(recipientWorkflow, {
    args: [{ deliveryId, recipientId: claimed!.recipientId, domain, validityEndsAtMs }],
    workflowId,
    taskQueue,
    // What recipientBatchWorkflow sets at child start.
    typedSearchAttributes: [
      { key: DeliveryIdAttribute, value: deliveryId },
      { key: EfsStatusAttribute, value: 'taken_into_account' },
      { key: RecipientDomainAttribute, value: domain },
    ],
  });
  const handle = env.client.workflow.getHandle(workflowId);
  const state = await handle.query(recipientStateQuery);
  expect(state).toEqual(returned);

  const history = await handle.fetchHistory();
  const events = history.events ?? [];
  const startedAtMs = protoMs(events[0]!.eventTime);
  const timers = events.filter((e) => e.timerStartedEventAttributes).map((e) => protoMs(e.timerStartedEventAttributes!.startToFireTimeout));
  const attempts = sendInputs.map(({ attempt, workflowNowMs }) => ({ attempt, workflowNowMs }));
  const out = { deliveryId, recipientId: claimed!.recipientId, workflowId, startedAtMs, state, timers, attempts, draws: [...draws], realMs: Date.now() - realStart };
  if (process.env.DEBUG_RETRY) console.log(email, state.status, state.attempts, 'timers(min)', timers.map((t) => +(t / MIN).toFixed(1)).join(','), 'last-at(h)', ((attempts.at(-1)!.workflowNowMs - startedAtMs) / HOUR).toFixed(4), 'window(h)', ((state.retryWindowEndsAtMs - startedAtMs) / HOUR).toFixed(4), 'real', out.realMs);
  return out;
}

/**
 * Each retry timer is the class's delay for the jitter drawn on that attempt, minus the attempt's own SMTP exchange
 * (the retry is due `delay` after the attempt ended, and the timer starts when the workflow sees the outcome),
 * except the last one when the window clamps it.
 */
/** Real time an SMTP attempt may take in this test (sandbox on loopback). */
const ACTIVITY_SLACK_MS = 5_000;

function expectTimersFollowSchedule(run: Run, retryClass: Exclude<RetryClass, 'none'>, opts: { lastClamped: boolean }): void {
  expect(run.draws.length).toBeGreaterThanOrEqual(run.timers.length);
  run.timers.forEach((timer, i) => {
    const scheduled = retryDelayMs(retryClass, i + 1, run.draws[i]!);
    if (opts.lastClamped && i === run.timers.length - 1) {
      expect(timer).toBeLessThanOrEqual(scheduled);
      expect(timer).toBeGreaterThan(0);
    } else {
      expect(timer).toBeLessThanOrEqual(scheduled);
      expect(scheduled - timer).toBeLessThan(ACTIVITY_SLACK_MS);
    }
    // Jitter bounds of the class, whatever was drawn.
    const s = RETRY_SCHEDULES[retryClass];
    const base = Math.min(s.firstMs * s.factor ** i, s.maxMs);
    expect(timer).toBeLessThanOrEqual(Math.round(base * (1 + s.jitter)));
    if (!(opts.lastClamped && i === run.timers.length - 1)) expect(timer).toBeGreaterThanOrEqual(Math.round(base * (1 - s.jitter)) - ACTIVITY_SLACK_MS);
  });
}

/** The attempts are numbered 1..n, each scheduled when the previous timer fired (workflow time). */
function expectAttemptsFollowTimers(run: Run): void {
  expect(run.attempts.map((a) => a.attempt)).toEqual(run.attempts.map((_, i) => i + 1));
  expect(run.timers).toHaveLength(run.attempts.length - 1);
  for (let i = 1; i < run.attempts.length; i++) {
    const gap = run.attempts[i]!.workflowNowMs - run.attempts[i - 1]!.workflowNowMs;
    // The timer starts after the attempt's SMTP exchange (real milliseconds) and the next attempt a workflow task after it fires.
    expect(gap).toBeGreaterThanOrEqual(run.timers[i - 1]!);
    expect(gap - run.timers[i - 1]!).toBeLessThan(30_000);
  }
}

async function dbRow(run: Run) {
  const r = await pool.query(
    `SELECT status, failure_type AS "failureType", failure_reason AS "failureReason", attempts, last_smtp_code AS "lastSmtpCode",
       last_enhanced_code AS "lastEnhancedCode", next_retry_at AS "nextRetryAt", final_at AS "finalAt", handed_over_at AS "handedOverAt"
     FROM delivery_recipients WHERE delivery_id = $1 AND recipient_id = $2`,
    [run.deliveryId, run.recipientId],
  );
  return r.rows[0];
}

async function transitions(run: Run): Promise<string[]> {
  const r = await pool.query(
    `SELECT from_status, to_status, failure_type, failure_reason, smtp_code, source FROM efs_transitions
     WHERE delivery_id = $1 AND recipient_id = $2 ORDER BY id`,
    [run.deliveryId, run.recipientId],
  );
  return r.rows.map((t) =>
    [`${t.from_status}>${t.to_status}`, t.source, t.failure_type, t.failure_reason, t.smtp_code].filter((x) => x !== null).join(' '),
  );
}

async function sendAttempts(run: Run) {
  const r = await pool.query(
    `SELECT attempt, outcome, smtp_code AS "smtpCode", enhanced_code AS "enhancedCode", retry_class AS "retryClass", failure_reason AS "failureReason"
     FROM send_attempts WHERE delivery_id = $1 AND recipient_id = $2 ORDER BY attempt`,
    [run.deliveryId, run.recipientId],
  );
  return r.rows;
}

async function searchAttributes(run: Run) {
  const d = await env.client.workflow.getHandle(run.workflowId).describe();
  return {
    deliveryId: d.typedSearchAttributes.get(DeliveryIdAttribute),
    efsStatus: d.typedSearchAttributes.get(EfsStatusAttribute),
    domain: d.typedSearchAttributes.get(RecipientDomainAttribute),
    failureReason: d.typedSearchAttributes.get(FailureReasonAttribute),
  };
}

/**
 * The window is 3.5 days from handover (the workflow's start on its clock: its first activation, a few milliseconds
 * after the start event), not the longer validity.
 */
function expectWindowIsCap(run: Run): void {
  const fromStart = run.state.retryWindowEndsAtMs - run.startedAtMs;
  expect(fromStart).toBeGreaterThanOrEqual(MAX_RETRY_WINDOW_MS);
  expect(fromStart - MAX_RETRY_WINDOW_MS).toBeLessThan(5_000);
}

/** Soft bounces until the window ends: n-1 soft transitions that keep the recipient taken into account, then failed with the last reason. */
function softUntilFailed(n: number, reason: string, code: number): string[] {
  return [
    'pending>taken_into_account handover',
    ...Array.from({ length: n - 1 }, () => `taken_into_account>taken_into_account smtp soft ${reason} ${code}`),
    `taken_into_account>failed smtp soft ${reason} ${code}`,
  ];
}

describe('retry window on a time-skipping server', () => {
  it('mailbox full with a 5-day validity: retries every 4-12 hours until 3.5 days after handover, then failed/soft/mailbox_full', async () => {
    const run = await runRecipient('full-mona@retry.test', 5 * DAY);
    const windowEnd = run.state.retryWindowEndsAtMs;
    expectWindowIsCap(run);
    expect(run.state).toMatchObject({
      status: 'failed',
      failureType: 'soft',
      failureReason: 'mailbox_full',
      retryClass: 'mailbox_full',
      nextRetryAtMs: null,
      lastReply: { code: 452, enhancedCode: '4.2.2' },
    });
    const n = run.state.attempts;
    // 4 h, 6 h, 9 h, then 12 h (±10%) fit 9 to 11 attempts into 84 hours (10 without jitter).
    expect(n).toBeGreaterThanOrEqual(9);
    expect(n).toBeLessThanOrEqual(11);
    expect(run.attempts).toHaveLength(n);
    expectAttemptsFollowTimers(run);
    expectTimersFollowSchedule(run, 'mailbox_full', { lastClamped: true });
    // 4 h, 6 h, 9 h, then the 12-hour cap.
    run.timers.slice(0, 3).forEach((t, i) => expect(Math.abs(t / (4 * HOUR * 1.5 ** i) - 1)).toBeLessThanOrEqual(0.1));
    for (const t of run.timers.slice(3, -1)) expect(Math.abs(t / (12 * HOUR) - 1)).toBeLessThanOrEqual(0.1);
    // The last attempt is the one at the window end, 3.5 days after handover on the workflow clock; none after it.
    const last = run.attempts[n - 1]!;
    expect(last.workflowNowMs).toBeGreaterThanOrEqual(windowEnd);
    expect(last.workflowNowMs - windowEnd).toBeLessThan(30_000);
    expect(run.attempts[n - 2]!.workflowNowMs).toBeLessThan(windowEnd);

    expect(await dbRow(run)).toMatchObject({
      status: 'failed',
      failureType: 'soft',
      failureReason: 'mailbox_full',
      attempts: n,
      lastSmtpCode: 452,
      lastEnhancedCode: '4.2.2',
      nextRetryAt: null,
    });
    expect((await dbRow(run)).finalAt).not.toBeNull();
    expect(await transitions(run)).toEqual(softUntilFailed(n, 'mailbox_full', 452));
    const rows = await sendAttempts(run);
    expect(rows).toHaveLength(n);
    expect(rows.every((r) => r.outcome === 'soft' && r.retryClass === 'mailbox_full' && r.enhancedCode === '4.2.2')).toBe(true);
    expect(await searchAttributes(run)).toEqual({ deliveryId: run.deliveryId, efsStatus: 'failed', domain: 'retry.test', failureReason: 'mailbox_full' });
    expect(run.realMs).toBeLessThan(60_000);
  });

  it('mailbox full with a 1-day validity: the window ends at validity end, failed at 1 day', async () => {
    const run = await runRecipient('full-nina@retry.test', 1 * DAY);
    const windowEnd = run.state.retryWindowEndsAtMs;
    // Validity (counted from just before the start) is earlier than 3.5 days after handover.
    expect(windowEnd).toBeLessThanOrEqual(run.startedAtMs + DAY);
    expect(run.startedAtMs + DAY - windowEnd).toBeLessThan(30_000);
    expect(run.state).toMatchObject({ status: 'failed', failureType: 'soft', failureReason: 'mailbox_full', nextRetryAtMs: null });
    // 4 + 6 + 9 hours (±10%) leave 12 h retries past 24 h: clamped, so always 5 attempts.
    expect(run.state.attempts).toBe(5);
    expectAttemptsFollowTimers(run);
    expectTimersFollowSchedule(run, 'mailbox_full', { lastClamped: true });
    const last = run.attempts[4]!;
    expect(last.workflowNowMs).toBeGreaterThanOrEqual(windowEnd);
    expect(last.workflowNowMs - windowEnd).toBeLessThan(30_000);
    expect(await dbRow(run)).toMatchObject({ status: 'failed', failureType: 'soft', failureReason: 'mailbox_full', attempts: 5, nextRetryAt: null });
    expect(await transitions(run)).toEqual(softUntilFailed(5, 'mailbox_full', 452));
    expect(run.realMs).toBeLessThan(60_000);
  });

  it('greylisting: one retry after 5 minutes (±10%), then sent', async () => {
    const run = await runRecipient('grey-olga@retry.test', 5 * DAY);
    expect(run.state).toMatchObject({ status: 'sent', failureType: null, failureReason: null, retryClass: null, attempts: 2, nextRetryAtMs: null });
    expect(run.timers).toHaveLength(1);
    expect(run.timers[0]).toBeGreaterThanOrEqual(4.5 * MIN);
    expect(run.timers[0]).toBeLessThanOrEqual(5.5 * MIN);
    expectTimersFollowSchedule(run, 'greylisting', { lastClamped: false });
    expectAttemptsFollowTimers(run);
    const gap = run.attempts[1]!.workflowNowMs - run.attempts[0]!.workflowNowMs;
    expect(gap).toBeGreaterThanOrEqual(4.5 * MIN);
    expect(gap).toBeLessThan(5.5 * MIN + 30_000);
    expect(await transitions(run)).toEqual([
      'pending>taken_into_account handover',
      'taken_into_account>taken_into_account smtp soft refused 451',
      'taken_into_account>sent smtp 250',
    ]);
    expect((await sendAttempts(run)).map((a) => `${a.attempt} ${a.outcome} ${a.retryClass ?? '-'}`)).toEqual(['1 soft greylisting', '2 accepted -']);
    expect(mx.acceptedFor('grey-olga@retry.test')).toHaveLength(1);
    expect(await searchAttributes(run)).toMatchObject({ efsStatus: 'sent', failureReason: undefined });
  });

  it('throttling: 10 min doubling up to 4 h (±25%) until the 1.5-day validity ends, then failed/soft/refused', async () => {
    const run = await runRecipient('throttle-pia@retry.test', 1.5 * DAY);
    expect(run.state).toMatchObject({ status: 'failed', failureType: 'soft', failureReason: 'refused', retryClass: 'throttling', nextRetryAtMs: null });
    expectAttemptsFollowTimers(run);
    expectTimersFollowSchedule(run, 'throttling', { lastClamped: true });
    // 10, 20, 40, 80, 160 min, then the 4-hour cap.
    const firsts = run.timers.slice(0, 5).map((t, i) => t / (10 * MIN * 2 ** i));
    for (const f of firsts) expect(Math.abs(f - 1)).toBeLessThanOrEqual(0.25);
    const capped = run.timers.slice(5, -1);
    expect(capped.length).toBeGreaterThanOrEqual(5);
    for (const t of capped) {
      expect(t).toBeGreaterThanOrEqual(3 * HOUR);
      expect(t).toBeLessThanOrEqual(5 * HOUR);
    }
    const last = run.attempts.at(-1)!;
    expect(last.workflowNowMs).toBeGreaterThanOrEqual(run.state.retryWindowEndsAtMs);
    expect(last.workflowNowMs - run.state.retryWindowEndsAtMs).toBeLessThan(30_000);
    expect(await transitions(run)).toEqual(softUntilFailed(run.state.attempts, 'refused', 421));
    expect((await sendAttempts(run)).every((a) => a.retryClass === 'throttling')).toBe(true);
    expect(run.realMs).toBeLessThan(60_000);
  });

  it('unreachable host: 15 min doubling (±30%) up to 8 h, failed/soft/unreachable at the 3.5-day window end', async () => {
    const run = await runRecipient(`anna@${UNREACHABLE_DOMAIN}`, 5 * DAY);
    const windowEnd = run.state.retryWindowEndsAtMs;
    expectWindowIsCap(run);
    expect(run.state).toMatchObject({
      status: 'failed',
      failureType: 'soft',
      failureReason: 'unreachable',
      retryClass: 'unreachable',
      nextRetryAtMs: null,
      lastReply: { code: 0, enhancedCode: '4.4.1' },
    });
    expectAttemptsFollowTimers(run);
    expectTimersFollowSchedule(run, 'unreachable', { lastClamped: true });
    const firsts = run.timers.slice(0, 6).map((t, i) => t / (15 * MIN * 2 ** i));
    for (const f of firsts) expect(Math.abs(f - 1)).toBeLessThanOrEqual(0.3);
    for (const t of run.timers.slice(6, -1)) {
      expect(t).toBeGreaterThanOrEqual(0.7 * 8 * HOUR);
      expect(t).toBeLessThanOrEqual(1.3 * 8 * HOUR);
    }
    const last = run.attempts.at(-1)!;
    expect(last.workflowNowMs).toBeGreaterThanOrEqual(windowEnd);
    expect(last.workflowNowMs - windowEnd).toBeLessThan(30_000);
    expect(await dbRow(run)).toMatchObject({ status: 'failed', failureType: 'soft', failureReason: 'unreachable', lastSmtpCode: 0, lastEnhancedCode: '4.4.1' });
    expect(await transitions(run)).toEqual(softUntilFailed(run.state.attempts, 'unreachable', 0));
    expect(await searchAttributes(run)).toMatchObject({ efsStatus: 'failed', failureReason: 'unreachable', domain: UNREACHABLE_DOMAIN });
    expect(run.realMs).toBeLessThan(60_000);
  });

  it('fail2-: two transient failures (15 min, then 30 min, ±20%), sent on attempt 3', async () => {
    const run = await runRecipient('fail2-rita@retry.test', 5 * DAY);
    expect(run.state).toMatchObject({ status: 'sent', failureType: null, failureReason: null, attempts: 3, nextRetryAtMs: null, lastReply: { code: 250 } });
    expect(run.timers).toHaveLength(2);
    expectTimersFollowSchedule(run, 'transient', { lastClamped: false });
    expect(run.timers[0]).toBeGreaterThanOrEqual(12 * MIN);
    expect(run.timers[0]).toBeLessThanOrEqual(18 * MIN);
    expect(run.timers[1]).toBeGreaterThanOrEqual(24 * MIN);
    expect(run.timers[1]).toBeLessThanOrEqual(36 * MIN);
    expectAttemptsFollowTimers(run);
    expect(await transitions(run)).toEqual([
      'pending>taken_into_account handover',
      'taken_into_account>taken_into_account smtp soft not_defined 451',
      'taken_into_account>taken_into_account smtp soft not_defined 451',
      'taken_into_account>sent smtp 250',
    ]);
    expect((await sendAttempts(run)).map((a) => `${a.attempt} ${a.outcome} ${a.retryClass ?? '-'}`)).toEqual([
      '1 soft transient',
      '2 soft transient',
      '3 accepted -',
    ]);
    expect(await dbRow(run)).toMatchObject({ status: 'sent', attempts: 3, nextRetryAt: null, lastSmtpCode: 250 });
  });
});
