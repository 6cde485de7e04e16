/**
 * Analysis of a large delivery: upload the list (COPY), create the delivery from it, time the analysis activity until
 * the delivery awaits confirmation, then re-run analysePopulation directly with a timer on each SQL statement (and,
 * with --explain, under EXPLAIN ANALYZE), time the KPI query the sending loop runs per page, and time cancellation.
 */
import type { Pool, PoolClient, QueryResult } from 'pg';
import { createDeliverySchema, type CreateDeliveryInput } from '../api/delivery-input';
import { analysePopulation } from '../db/delivery-analysis';
import { deliveryStateQuery, deliveryWorkflowId, type DeliveryStateView } from '../workflows/contract';
import type { BenchStack, WorkerTuning } from './stack';
import { analysisPopulation, exclusionLists, populationCsv, type ExpectedAnalysis, type PopulationSpec } from './population';
import { median, round, secondsSince, sleep } from './measure';

export const BENCH_FROM = { address: 'news@bench.example', name: 'Bench' };
export const BENCH_TEMPLATE = {
  subject: 'Hello {{firstName}}, news from {{city}}',
  html: '<p>Hello {{firstName}},</p><p>Here is what is new in {{city}} this week.</p><p>See you soon.</p>',
  text: 'Hello {{firstName}},\n\nHere is what is new in {{city}} this week.\n\nSee you soon.',
};

export interface UploadResult {
  rows: number;
  seconds: number;
  rowsPerSecond: number;
  megabytes: number;
  listId: string;
  expected: ExpectedAnalysis;
}

/** Streams a generated CSV into a stored list with the product's upload path (csv-parse, address checks, COPY). */
export async function uploadList(stack: BenchStack, spec: PopulationSpec, name: string): Promise<UploadResult> {
  const { stream, expected } = populationCsv(spec);
  const t0 = performance.now();
  const list = await stack.service.lists.createFromCsv(name, stream);
  const seconds = secondsSince(t0);
  if (list.memberCount !== spec.rows) throw new Error(`the list has ${list.memberCount} members, expected ${spec.rows}`);
  return { rows: list.memberCount, seconds: round(seconds, 2), rowsPerSecond: Math.round(list.memberCount / seconds), megabytes: round(expected.chars / 1e6, 1), listId: list.id, expected };
}

export async function waitForPhase(stack: BenchStack, deliveryId: string, phases: string[], timeoutMs: number, pollMs = 250): Promise<{ view: DeliveryStateView; seconds: number }> {
  const handle = stack.client.workflow.getHandle(deliveryWorkflowId(deliveryId));
  const t0 = performance.now();
  let last: DeliveryStateView | null = null;
  while (performance.now() - t0 < timeoutMs) {
    last = await handle.query(deliveryStateQuery).catch(() => last);
    if (last && phases.includes(last.phase)) return { view: last, seconds: secondsSince(t0) };
    await sleep(pollMs);
  }
  throw new Error(`delivery ${deliveryId} did not reach ${phases.join('/')} within ${timeoutMs / 1000} s (last phase: ${last?.phase})`);
}

type Timestamp = { seconds?: { toNumber(): number } | number | null; nanos?: number | null } | null | undefined;
const tsMs = (t: Timestamp) => (t ? Number(typeof t.seconds === 'object' && t.seconds ? t.seconds.toNumber() : (t.seconds ?? 0)) * 1000 + (t.nanos ?? 0) / 1e6 : NaN);

/** Scheduled → started → completed of an activity in a workflow's history (the last execution of that type). */
export async function activityTimes(stack: BenchStack, workflowId: string, activityType: string) {
  const history = await stack.client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  let scheduled: { id: number; at: number } | null = null;
  let startedAt = NaN;
  let completedAt = NaN;
  let attempt = 0;
  for (const e of events) {
    const id = Number(e.eventId);
    if (e.activityTaskScheduledEventAttributes?.activityType?.name === activityType) scheduled = { id, at: tsMs(e.eventTime as Timestamp) };
    if (scheduled && Number(e.activityTaskStartedEventAttributes?.scheduledEventId) === scheduled.id) {
      startedAt = tsMs(e.eventTime as Timestamp);
      attempt = e.activityTaskStartedEventAttributes?.attempt ?? 1;
    }
    if (scheduled && Number(e.activityTaskCompletedEventAttributes?.scheduledEventId) === scheduled.id) completedAt = tsMs(e.eventTime as Timestamp);
  }
  return { scheduledToStartSeconds: round((startedAt - (scheduled?.at ?? NaN)) / 1000, 2), runSeconds: round((completedAt - startedAt) / 1000, 2), attempt };
}

export interface StepTiming {
  step: string;
  seconds: number;
  rows: number | null;
  plan?: string[];
  timedOut?: boolean;
  error?: string;
}

function stepName(sql: string): string {
  const s = sql.replace(/\s+/g, ' ').trim();
  const reason = /exclusion_reason = '(\w+)'/.exec(s);
  if (/^(BEGIN|COMMIT|ROLLBACK)/i.test(s)) return s.split(' ')[0].toLowerCase();
  if (/^(SET|ANALYZE)/i.test(s)) return s;
  if (/^UPDATE/i.test(s) && /SET status = 'pending'/.test(s)) return 'reset earlier exclusions';
  if (/^UPDATE/i.test(s) && reason) return `exclude ${reason[1]}`;
  if (/GROUP BY exclusion_reason/.test(s)) return 'count by exclusion reason';
  if (/GROUP BY domain/.test(s)) return 'top domains';
  return s.slice(0, 60);
}

export interface InstrumentOptions {
  /** analyze: run each data statement as EXPLAIN (ANALYZE, BUFFERS) (it still executes); plan: plain EXPLAIN (nothing executes). */
  explain?: 'analyze' | 'plan';
  /** Statements run right after BEGIN (SET LOCAL ..., ANALYZE ...). */
  setup?: string[];
  /** Replacement SQL for a step, by step name (experiments with rewritten statements). */
  replace?: Record<string, string>;
  /** statement_timeout for every statement (ms): a pathological plan ends as "timed out" instead of running for hours. */
  timeoutMs?: number;
}

/**
 * A pool whose clients time each statement analysePopulation sends (the real SQL, not a copy of it), optionally under
 * EXPLAIN, after extra setup statements, with a step's SQL replaced, or with a statement timeout.
 */
function instrumentedPool(pool: Pool, steps: StepTiming[], o: InstrumentOptions): Pool {
  const wrap = (client: PoolClient): PoolClient =>
    new Proxy(client, {
      get(target, prop, receiver) {
        if (prop !== 'query') {
          const v = Reflect.get(target, prop, receiver);
          return typeof v === 'function' ? v.bind(target) : v;
        }
        return async (text: string, params?: unknown[]) => {
          const step = stepName(text);
          // Only data statements can run under EXPLAIN (not BEGIN/COMMIT, SET, ANALYZE).
          const isData = /^\s*(UPDATE|SELECT|INSERT|DELETE|WITH)\b/i.test(text);
          const sql = o.replace?.[step] ?? text;
          const t0 = performance.now();
          try {
            if (o.explain && isData) {
              const r = await target.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${o.explain === 'analyze' ? '(ANALYZE, BUFFERS) ' : ''}${sql}`, params);
              steps.push({ step, seconds: round(secondsSince(t0), 3), rows: null, plan: r.rows.map((x) => x['QUERY PLAN']) });
              return { rows: [], rowCount: 0 } as unknown as QueryResult;
            }
            const r = await target.query(sql, params);
            steps.push({ step, seconds: round(secondsSince(t0), 3), rows: r.rowCount ?? null });
            if (step === 'begin') {
              if (o.timeoutMs) await target.query(`SET LOCAL statement_timeout = ${Math.round(o.timeoutMs)}`);
              for (const extra of o.setup ?? []) {
                const e0 = performance.now();
                await target.query(extra);
                steps.push({ step: extra, seconds: round(secondsSince(e0), 3), rows: null });
              }
            }
            return r;
          } catch (e) {
            const err = e as { code?: string; message?: string };
            steps.push({ step, seconds: round(secondsSince(t0), 3), rows: null, ...(err.code === '57014' ? { timedOut: true } : {}), error: `${err.code}: ${err.message}` });
            throw e;
          }
        };
      },
    });
  return { connect: async () => wrap(await pool.connect()) } as unknown as Pool;
}

/** Runs analysePopulation through the instrumented pool; a statement timeout ends it with `timedOut` instead of throwing. */
export async function profileAnalysePopulation(pool: Pool, deliveryId: string, requiredFields: string[], o: InstrumentOptions = {}) {
  const steps: StepTiming[] = [];
  const t0 = performance.now();
  try {
    const result = await analysePopulation(instrumentedPool(pool, steps, o), deliveryId, requiredFields);
    return { seconds: round(secondsSince(t0), 2), steps, result, timedOut: false };
  } catch (e) {
    if ((e as { code?: string }).code !== '57014') throw e;
    return { seconds: round(secondsSince(t0), 2), steps, result: null, timedOut: true };
  }
}

export interface ProfileRun {
  seconds: number;
  timedOut: boolean;
  steps: StepTiming[];
}

/** One delivery analysed through the product's path: service.create() (copy of the list), then the workflow's analysis activity. */
export interface WorkflowAnalysisRun {
  scenario: string;
  deliveryId: string;
  createSeconds: number;
  createRowsPerSecond: number;
  /** ANALYZE delivery_recipients run between the copy and the analysis (the worker held back meanwhile), if any. */
  analyzeSeconds?: number;
  /** From the end of service.create() (or the worker's start, when held back) until the workflow reports awaiting_confirmation; null when not within the limit. */
  wallSeconds: number | null;
  timedOut: boolean;
  timeoutSeconds: number;
  activity: { scheduledToStartSeconds: number; runSeconds: number; attempt: number } | null;
  withinTarget: boolean;
  /** When the analysis did not finish: the statement Postgres was still running, and for how long. */
  stuckStatement?: { step: string; runningSeconds: number };
  /** Plain EXPLAIN of the duplicate step with the statistics this run had (taken after it, nothing executed). */
  duplicatePlan?: string[];
  exclusions: Record<string, number>;
  exclusionsMatch: boolean;
}

export interface AnalysisBenchResult {
  recipients: number;
  upload: Omit<UploadResult, 'listId' | 'expected'>;
  /**
   * The same list analysed three times: on a fresh install (delivery_recipients never analysed), in the situation of a
   * database in use (statistics describe earlier, finished deliveries only: autovacuum does not re-analyse a big table
   * for one new delivery), and with ANALYZE between the copy and the analysis.
   */
  runs: WorkflowAnalysisRun[];
  /** analysePopulation called directly on the first delivery, every statement timed: statistics as they were, then after ANALYZE. */
  profile: { dbOnly: ProfileRun; dbOnlyAfterAnalyze: ProfileRun; analyzeSeconds: number; explain?: StepTiming[] };
  expectedExclusions: Omit<ExpectedAnalysis, 'rows' | 'uniques' | 'chars'>;
  /** The sending loop reads the KPIs before each page (a GROUP BY over the whole delivery). */
  kpiQuerySeconds: number;
  /** Cancelling a delivery that awaits confirmation: every recipient becomes cancelled (one local activity). */
  cancel: { seconds: number; rowsCancelled: number } | null;
  tableSizesMb: Record<string, number>;
}

export const REQUIRED_FIELDS = ['firstName', 'city'];

/** Seeds the denylist and the quarantine: the addresses the population hits plus unrelated rows, as a real database would hold. */
async function seedExclusions(stack: BenchStack, spec: PopulationSpec, uniques: number) {
  const lists = exclusionLists(spec, uniques, 20_000);
  await stack.pool.query(
    `INSERT INTO address_denylist (address_key, reason, source) SELECT k, 'unsubscribed', 'bench' FROM unnest($1::text[]) k ON CONFLICT DO NOTHING`,
    [[...lists.denied, ...lists.fillerKeys]],
  );
  await stack.pool.query(
    `INSERT INTO address_quarantine (address_key, reason, error_count, quarantined, quarantined_at)
     SELECT k, 'user_unknown', 1, true, now() FROM unnest($1::text[]) k
     UNION ALL SELECT k, 'mailbox_full', 1, false, NULL FROM unnest($2::text[]) k ON CONFLICT DO NOTHING`,
    [[...lists.quarantined, ...lists.fillerKeys.map((k) => `q.${k}`)], lists.notQuarantined],
  );
  await stack.pool.query('ANALYZE address_denylist; ANALYZE address_quarantine');
}

/** Cancels analysis statements still running in Postgres (after the bench gave up on them). */
export async function cancelRunningAnalysis(stack: BenchStack): Promise<{ step: string; runningSeconds: number } | undefined> {
  const r = await stack.probe.query<{ pid: number; query: string; secs: number }>(
    `SELECT pid, query, extract(epoch FROM now() - query_start)::float8 AS secs FROM pg_stat_activity
     WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active' AND query ILIKE '%delivery_recipients%'`,
  );
  for (const row of r.rows) await stack.probe.query('SELECT pg_cancel_backend($1)', [row.pid]);
  const longest = r.rows.sort((a, b) => b.secs - a.secs)[0];
  return longest ? { step: stepName(longest.query), runningSeconds: round(longest.secs, 1) } : undefined;
}

const summary = (p: { seconds: number; timedOut: boolean; steps: StepTiming[] }): ProfileRun => ({ seconds: p.seconds, timedOut: p.timedOut, steps: p.steps });
const stepsLine = (p: ProfileRun) => p.steps.filter((x) => x.step !== 'begin').map((x) => `${x.step} ${x.seconds}s${x.timedOut ? ' (timed out)' : ''}`).join(', ');

async function exclusionsInLog(stack: BenchStack, deliveryId: string): Promise<Record<string, number>> {
  const r = await stack.probe.query<{ reason: string; n: number }>(
    `SELECT exclusion_reason AS reason, count(*)::int AS n FROM delivery_recipients WHERE delivery_id = $1 AND exclusion_reason IS NOT NULL GROUP BY 1`,
    [deliveryId],
  );
  return Object.fromEntries(r.rows.map((x) => [x.reason, x.n]));
}

/**
 * Creates a delivery from the list through the service and waits for its analysis. With `analyzeBetween`, the worker
 * is stopped first, ANALYZE runs after the copy, and the wait starts when the worker is back.
 */
async function analyseThroughWorkflow(
  stack: BenchStack,
  input: CreateDeliveryInput,
  o: { scenario: string; analyzeBetween: boolean; timeoutSeconds: number; tuning: WorkerTuning; expected: Record<string, number>; log: (m: string) => void },
): Promise<WorkflowAnalysisRun> {
  const { log } = o;
  if (o.analyzeBetween) await stack.stopWorker();
  const t0 = performance.now();
  const created = await stack.service.create(input);
  const createSeconds = secondsSince(t0);
  log(`analysis [${o.scenario}]: delivery created (${created.recipientCount.toLocaleString('en')} rows copied) in ${createSeconds.toFixed(1)} s`);
  let analyzeSeconds: number | undefined;
  if (o.analyzeBetween) {
    const a0 = performance.now();
    await stack.pool.query('ANALYZE delivery_recipients');
    analyzeSeconds = round(secondsSince(a0), 2);
    await stack.startWorker(o.tuning);
  }
  const wfId = deliveryWorkflowId(created.id);
  let reached: { view: DeliveryStateView; seconds: number } | null = null;
  let stuckStatement: WorkflowAnalysisRun['stuckStatement'];
  let duplicatePlan: string[] | undefined;
  try {
    reached = await waitForPhase(stack, created.id, ['awaiting_confirmation', 'analysis_failed'], o.timeoutSeconds * 1000, 100);
    if (reached.view.phase !== 'awaiting_confirmation') throw new Error(`analysis ended in ${reached.view.phase}: ${JSON.stringify(reached.view.analysis?.findings)}`);
  } catch (e) {
    if (reached) throw e;
    log(`analysis [${o.scenario}]: ${(e as Error).message}; terminating the workflow and cancelling its statement`);
    await stack.client.workflow.getHandle(wfId).terminate('benchmark: analysis exceeded its time limit').catch(() => {});
    stuckStatement = await cancelRunningAnalysis(stack);
    if (stuckStatement) log(`analysis [${o.scenario}]: Postgres was still running "${stuckStatement.step}" (for ${stuckStatement.runningSeconds} s)`);
    await sleep(500);
    const plan = await profileAnalysePopulation(stack.pool, created.id, REQUIRED_FIELDS, { explain: 'plan' });
    duplicatePlan = plan.steps.find((x) => x.step === 'exclude duplicate')?.plan?.slice(0, 14);
  }
  const activity = reached ? await activityTimes(stack, wfId, 'analyseDelivery') : null;
  const exclusions = reached ? ((reached.view.analysis?.exclusions ?? {}) as Record<string, number>) : await exclusionsInLog(stack, created.id);
  const exclusionsMatch = Object.entries(o.expected).every(([k, v]) => (exclusions[k] ?? 0) === v);
  if (reached) log(`analysis [${o.scenario}]: awaiting_confirmation after ${reached.seconds.toFixed(1)} s (activity ran ${activity?.runSeconds} s)${exclusionsMatch ? '' : ' — EXCLUSIONS DIFFER FROM THE GENERATED ONES'}`);
  return {
    scenario: o.scenario,
    deliveryId: created.id,
    createSeconds: round(createSeconds, 2),
    createRowsPerSecond: Math.round(created.recipientCount / createSeconds),
    ...(analyzeSeconds !== undefined ? { analyzeSeconds } : {}),
    wallSeconds: reached ? round(reached.seconds, 2) : null,
    timedOut: !reached,
    timeoutSeconds: o.timeoutSeconds,
    activity,
    withinTarget: !!reached && reached.seconds + (analyzeSeconds ?? 0) < 60,
    ...(stuckStatement ? { stuckStatement } : {}),
    ...(duplicatePlan ? { duplicatePlan } : {}),
    exclusions,
    exclusionsMatch,
  };
}

/** Ends a delivery's recipients: through the workflow when it still runs (timed), else directly in the log. */
async function finish(stack: BenchStack, run: WorkflowAnalysisRun): Promise<{ seconds: number; rowsCancelled: number } | null> {
  if (run.timedOut) {
    while ((await stack.deps.log.cancelPending(run.deliveryId, 50_000)) > 0);
    return null;
  }
  const c0 = performance.now();
  await stack.service.cancel(run.deliveryId, 'benchmark done');
  const cancelled = await waitForPhase(stack, run.deliveryId, ['cancelled'], 30 * 60_000, 250);
  return { seconds: round(secondsSince(c0), 2), rowsCancelled: cancelled.view.kpis?.cancelled ?? 0 };
}

export async function runAnalysisBench(
  stack: BenchStack,
  opts: { recipients: number; explain: boolean; timeoutSeconds: number; statementTimeoutSeconds: number; tuning: WorkerTuning; log: (m: string) => void },
): Promise<AnalysisBenchResult & { listId: string }> {
  const { log } = opts;
  const spec = analysisPopulation(opts.recipients);
  log(`analysis: uploading a ${opts.recipients.toLocaleString('en')}-row CSV`);
  const upload = await uploadList(stack, spec, `bench analysis ${opts.recipients}`);
  log(`analysis: upload ${upload.seconds} s (${upload.rowsPerSecond.toLocaleString('en')} rows/s, ${upload.megabytes} MB)`);
  await seedExclusions(stack, spec, upload.expected.uniques);
  const { rows: _r, uniques: _u, chars: _c, ...expected } = upload.expected;

  // The From domain's DKIM key is generated on its first delivery: do it now so the timings below are the copy alone.
  const fromDomain = BENCH_FROM.address.split('@')[1];
  await stack.deps.keys.ensureKey(fromDomain, stack.settings.DKIM_SELECTOR, 'rsa-sha256');
  const input = (name: string) =>
    createDeliverySchema.parse({ name: `bench analysis ${opts.recipients}: ${name}`, from: BENCH_FROM, ...BENCH_TEMPLATE, listId: upload.listId, autoConfirm: false, validity: '5d' });
  const common = { timeoutSeconds: opts.timeoutSeconds, tuning: opts.tuning, expected, log };
  const runs: WorkflowAnalysisRun[] = [];

  // 1. Fresh install: delivery_recipients has never been analysed.
  const first = await analyseThroughWorkflow(stack, input('fresh install'), { ...common, scenario: 'fresh install', analyzeBetween: false });
  runs.push(first);

  // Direct profile of the same delivery: statistics as they are, then after ANALYZE.
  const guard = { timeoutMs: opts.statementTimeoutSeconds * 1000 };
  log(`analysis: running analysePopulation directly, statistics as they are (statement timeout ${opts.statementTimeoutSeconds} s)`);
  const dbOnly = summary(await profileAnalysePopulation(stack.pool, first.deliveryId, REQUIRED_FIELDS, guard));
  log(`analysis: DB-only ${dbOnly.seconds} s${dbOnly.timedOut ? ' (TIMED OUT)' : ''}: ${stepsLine(dbOnly)}`);
  const a0 = performance.now();
  await stack.pool.query('ANALYZE delivery_recipients');
  const analyzeSeconds = round(secondsSince(a0), 2);
  const dbOnlyAfterAnalyze = summary(await profileAnalysePopulation(stack.pool, first.deliveryId, REQUIRED_FIELDS, guard));
  log(`analysis: DB-only after ANALYZE (${analyzeSeconds} s) ${dbOnlyAfterAnalyze.seconds} s: ${stepsLine(dbOnlyAfterAnalyze)}`);
  let explain: StepTiming[] | undefined;
  if (opts.explain) {
    log('analysis: once more under EXPLAIN (ANALYZE, BUFFERS)');
    explain = (await profileAnalysePopulation(stack.pool, first.deliveryId, REQUIRED_FIELDS, { ...guard, explain: 'analyze' })).steps;
  }
  const kpiTimes: number[] = [];
  for (let i = 0; i < 3; i++) {
    const k0 = performance.now();
    await stack.deps.log.kpis(first.deliveryId);
    kpiTimes.push(secondsSince(k0));
  }
  await finish(stack, first);

  // 2. A database in use: the statistics describe earlier deliveries, all final; autovacuum is held off so it cannot
  //    re-analyse the table in the second between the copy and the analysis (on a big table it would not anyway).
  await stack.pool.query('ANALYZE delivery_recipients');
  await stack.pool.query('ALTER TABLE delivery_recipients SET (autovacuum_enabled = false)');
  let cancel: AnalysisBenchResult['cancel'] = null;
  try {
    const inUse = await analyseThroughWorkflow(stack, input('statistics of earlier deliveries'), { ...common, scenario: 'statistics of earlier deliveries', analyzeBetween: false });
    runs.push(inUse);
    await finish(stack, inUse);
    await stack.pool.query('ANALYZE delivery_recipients');

    // 3. The same, with ANALYZE between the copy and the analysis.
    const analysed = await analyseThroughWorkflow(stack, input('ANALYZE after the copy'), { ...common, scenario: 'ANALYZE after the copy', analyzeBetween: true });
    runs.push(analysed);
    log('analysis: cancelling it (every pending recipient becomes cancelled)');
    cancel = await finish(stack, analysed);
    if (cancel) log(`analysis: cancelled in ${cancel.seconds} s`);
  } finally {
    await stack.pool.query('ALTER TABLE delivery_recipients RESET (autovacuum_enabled)');
  }

  const sizes = await stack.probe.query<{ name: string; mb: number }>(
    `SELECT relname AS name, round(pg_total_relation_size(oid) / 1e6)::int AS mb FROM pg_class
     WHERE relname IN ('delivery_recipients', 'recipient_list_members', 'efs_transitions') AND relkind = 'r'`,
  );
  return {
    listId: upload.listId,
    recipients: opts.recipients,
    upload: { rows: upload.rows, seconds: upload.seconds, rowsPerSecond: upload.rowsPerSecond, megabytes: upload.megabytes },
    runs,
    profile: { dbOnly, dbOnlyAfterAnalyze, analyzeSeconds, ...(explain ? { explain } : {}) },
    expectedExclusions: expected,
    kpiQuerySeconds: round(median(kpiTimes), 3),
    cancel,
    tableSizesMb: Object.fromEntries(sizes.rows.map((r) => [r.name, r.mb])),
  };
}
