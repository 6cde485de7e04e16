/**
 * The API under read load while a delivery sends: does the API hold a steady rate of authenticated reads with a low
 * p99, and what does that load cost the sending rate?
 *
 * One large delivery sends throughout. Its completion rate is measured over consecutive windows of equal length that
 * alternate: quiet, loaded, quiet, loaded, ... quiet (`rounds` loaded windows). Each loaded window is compared with the
 * mean of the two quiet ones around it, which cancels most of the drift of a shared machine and of the delivery's own
 * rate; the drop reported is the median and the mean over the rounds, each round's shown too (one quiet/loaded/quiet
 * triple was fooled by a delivery still speeding up). Each window also records the cores every part of the stack kept
 * busy (the load generator's included: on one host it takes its share from sending too). The API runs as its own
 * process, as in the production layout; the load generator too.
 * API_LOAD_PROFILE_DIR=<dir> in the environment writes a CPU profile of the API process there (node --cpu-prof).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createDeliverySchema } from '../api/delivery-input';
import { formatPayloadKeys } from '../runtime/codec-keys';
import { freePort } from '../stack/ports';
import { BENCH_FROM, BENCH_TEMPLATE, uploadList } from './analysis-bench';
import { cleanPopulation } from './population';
import { childrenOf, median, postgresCpuSeconds, processCpuSeconds, round, sleep, untilHostQuiet } from './measure';
import { BENCH_SECRETS, type BenchStack, type WorkerTuning } from './stack';

export interface ApiLoadResult {
  recipients: number;
  /** Requests per second asked of the load generator, and the mix of paths it cycled through. */
  targetRatePerSecond: number;
  windowSeconds: number;
  /** Loaded windows, each between two quiet ones. */
  rounds: number;
  paths: string[];
  load: {
    requests: number;
    perSecond: number;
    latencyMs: { p50: number; p90: number; p99: number; max: number };
    non2xx: number;
    errors: number;
    timeouts: number;
    statusCodes: Record<string, number>;
    /** CPU seconds the load generator itself used (it shares the host's cores with what it measures). */
    cpuSeconds: number;
  };
  /**
   * Recipients made final per second in each window, in order (quiet first and last), and the cores each part of the
   * stack kept busy during it (CPU seconds over the window's seconds): where a loaded window's CPU went.
   */
  windows: { kind: 'quiet' | 'loaded'; rate: number; cores: WindowCores }[];
  /** Per round: 1 − loaded ÷ mean(the quiet windows on each side). */
  dropPerRound: number[];
  /** The mean of dropPerRound: the share of the sending rate the read load took. */
  sendRateDrop: number;
  /** The median of dropPerRound: one round disturbed by something else on the host moves it least. */
  sendRateDropMedian: number;
  /** CPU ms the API process spent per read served during the loaded windows. */
  apiCpuMsPerRead: number;
  /**
   * What one read of each kind costs, measured after the windows once the stack is idle (sending cancelled): each kind
   * alone at the bench's rate for 10 s, the API process's, Postgres's and the load generator's CPU over the reads.
   */
  costPerRead: { path: string; reads: number; apiCpuMs: number; postgresCpuMs: number; loadGeneratorCpuMs: number; p50Ms: number; p99Ms: number }[];
}

/** Cores kept busy during a window, by part of the stack. */
export interface WindowCores {
  /** The bench process: the worker (workflows, activities) and the sandbox MX. */
  workerAndBench: number;
  temporal: number;
  postgres: number;
  api: number;
  loadGenerator: number;
  total: number;
}

const ROOT = path.join(__dirname, '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

/** CPU seconds of the API process: the tsx launcher and the node process it runs the API in. */
export function apiCpuSeconds(pid: number): number {
  return [pid, ...childrenOf(pid)].reduce((a, p) => a + processCpuSeconds(p), 0);
}

/**
 * What a read of each kind costs at the bench's rate: each kind alone, `seconds` at `ratePerSecond` (the load generator
 * cycling through its paths), with the API process's and Postgres's CPU over the reads served. Sequential reads (one
 * waiting for the other) cost two to four times more here: every one of them pays for waking idle cores and processes.
 */
async function costPerRead(
  stack: BenchStack,
  apiPid: number,
  plan: { baseUrl: string; apiKey: string; ratePerSecond: number; seconds: number },
  groups: { label: string; paths: string[] }[],
): Promise<ApiLoadResult['costPerRead']> {
  const out: ApiLoadResult['costPerRead'] = [];
  for (const g of groups) {
    const api0 = apiCpuSeconds(apiPid);
    const pg0 = postgresCpuSeconds(stack.pgDataDir);
    const load = await runLoadClient({ ...plan, paths: g.paths, connections: 20 });
    const reads = Math.max(1, load.requests);
    out.push({
      path: g.label,
      reads: load.requests,
      apiCpuMs: round(((apiCpuSeconds(apiPid) - api0) * 1000) / reads, 2),
      postgresCpuMs: round(((postgresCpuSeconds(stack.pgDataDir) - pg0) * 1000) / reads, 2),
      loadGeneratorCpuMs: round((load.cpuSeconds * 1000) / reads, 2),
      p50Ms: load.latencyMs.p50,
      p99Ms: load.latencyMs.p99,
    });
  }
  return out;
}

export async function finalCount(stack: BenchStack, deliveryId: string): Promise<number> {
  const r = await stack.probe.query<{ n: number }>(`SELECT count(*)::int AS n FROM delivery_recipients WHERE delivery_id = $1 AND status IN ('sent', 'failed')`, [deliveryId]);
  return r.rows[0].n;
}

/** The API process of the production layout (api/main.ts), on the bench's Temporal and Postgres with the bench's secrets. */
export async function startApiProcess(stack: BenchStack, log: (m: string) => void): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const s = stack.settings;
  const child = spawn(TSX, [...(process.env.API_LOAD_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.API_LOAD_PROFILE_DIR}`] : []), path.join(ROOT, 'api', 'main.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATA_DIR: s.DATA_DIR,
      TEMPORAL_ADDRESS: s.TEMPORAL_ADDRESS,
      DATABASE_URL: s.DATABASE_URL,
      TASK_QUEUE: s.TASK_QUEUE,
      API_PORT: String(port),
      VERP_SECRET: BENCH_SECRETS.verpSecret,
      KEY_ENCRYPTION_SECRET: BENCH_SECRETS.keyEncryptionSecret,
      PAYLOAD_KEYS: formatPayloadKeys(BENCH_SECRETS.payloadKeys!.keys),
      PAYLOAD_KEY_ID: BENCH_SECRETS.payloadKeys!.currentKeyId,
      // The bench measures the API's cost, not its per-key limiter: the load generator uses one key.
      RATE_LIMIT_PER_KEY: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the API process exited (${child.exitCode}): ${stderr}`);
    const ok = await fetch(`${url}/health`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the API process did not answer /health within 60 s: ${stderr}`);
    }
    await sleep(250);
  }
  log(`api-load: API process ${child.pid} on ${url}`);
  return { url, child };
}

export function runLoadClient(plan: { baseUrl: string; apiKey: string; paths: string[]; ratePerSecond: number; seconds: number; connections: number }): Promise<ApiLoadResult['load']> {
  return new Promise((resolve, reject) => {
    const child = spawn(TSX, [path.join(__dirname, 'api-load-client.ts'), JSON.stringify(plan)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`load generator exited with ${code}: ${err}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!));
      } catch (e) {
        reject(new Error(`load generator printed no result: ${(e as Error).message}: ${out.slice(-500)} ${err}`));
      }
    });
  });
}

/**
 * The load generator's results of several windows as one: counts add up, rates and p50 are means, and p90, p99 and max
 * are the worst window's (percentiles of separate runs cannot be merged exactly; the worst is the honest bound).
 */
function combinedLoad(loads: ApiLoadResult['load'][]): ApiLoadResult['load'] {
  const sum = (f: (l: ApiLoadResult['load']) => number) => loads.reduce((a, l) => a + f(l), 0);
  const worst = (f: (l: ApiLoadResult['load']) => number) => Math.max(...loads.map(f));
  const statusCodes: Record<string, number> = {};
  for (const l of loads) for (const [k, v] of Object.entries(l.statusCodes)) statusCodes[k] = (statusCodes[k] ?? 0) + v;
  return {
    requests: sum((l) => l.requests),
    perSecond: round(sum((l) => l.perSecond) / loads.length, 1),
    latencyMs: { p50: round(sum((l) => l.latencyMs.p50) / loads.length, 1), p90: worst((l) => l.latencyMs.p90), p99: worst((l) => l.latencyMs.p99), max: worst((l) => l.latencyMs.max) },
    non2xx: sum((l) => l.non2xx),
    errors: sum((l) => l.errors),
    timeouts: sum((l) => l.timeouts),
    statusCodes,
    cpuSeconds: round(sum((l) => l.cpuSeconds), 2),
  };
}

export async function runApiLoadBench(
  stack: BenchStack,
  opts: { recipients: number; ratePerSecond: number; windowSeconds: number; rounds: number; tuning: WorkerTuning; readKey: () => Promise<string>; log: (m: string) => void },
): Promise<ApiLoadResult> {
  const { log, recipients: n, windowSeconds: w } = opts;
  log(`api-load: ${n.toLocaleString('en')} recipients, ${opts.ratePerSecond} reads/s, ${opts.rounds} loaded windows of ${w} s between quiet ones`);
  const upload = await uploadList(stack, cleanPopulation(n), `bench api load ${n}`);
  await stack.startWorker(opts.tuning);
  await stack.deps.keys.ensureKey(BENCH_FROM.address.split('@')[1], stack.settings.DKIM_SELECTOR, 'rsa-sha256');
  const api = await startApiProcess(stack, log);
  try {
    const apiKey = await opts.readKey();
    const input = createDeliverySchema.parse({ name: `bench api load ${n}`, from: BENCH_FROM, ...BENCH_TEMPLATE, listId: upload.listId, autoConfirm: true, validity: '1d' });
    const { id } = await stack.service.create(input);
    // The reads a dashboard and an integrator make while a delivery sends: its live view, its log pages, the lists.
    const recipientIds = (await stack.probe.query<{ id: number }>(`SELECT recipient_id AS id FROM delivery_recipients WHERE delivery_id = $1 ORDER BY recipient_id LIMIT 50`, [id])).rows.map((r) => r.id);
    const paths = [
      `/api/deliveries/${id}`,
      `/api/deliveries/${id}`,
      `/api/deliveries/${id}/recipients?limit=50`,
      `/api/deliveries?limit=20`,
      ...recipientIds.slice(0, 4).map((rid) => `/api/deliveries/${id}/recipients/${rid}`),
      `/api/lists`,
    ];

    // Steady state first: a tenth of the delivery final. Its rate climbs for the first minutes (the window fills, the
    // worker's caches warm): windows started at 200 final measured the climb (13, 20, 39/s quiet), not the load.
    const warmDeadline = Date.now() + 15 * 60_000;
    while ((await finalCount(stack, id)) < n / 10) {
      if (Date.now() > warmDeadline) throw new Error('api-load: the delivery did not start sending within 15 minutes');
      await sleep(500);
    }
    const windowRate = async (during?: () => Promise<ApiLoadResult['load']>) => {
      const c0 = await finalCount(stack, id);
      const cpu0 = { stack: stack.cpu(), api: apiCpuSeconds(api.child.pid!) };
      const t0 = performance.now();
      const load = during ? await during() : (await sleep(w * 1000), undefined);
      const seconds = (performance.now() - t0) / 1000;
      const cpu1 = { stack: stack.cpu(), api: apiCpuSeconds(api.child.pid!) };
      const rate = ((await finalCount(stack, id)) - c0) / seconds;
      const per = (cpuSeconds: number) => round(cpuSeconds / seconds, 2);
      const cores = {
        workerAndBench: per(cpu1.stack.benchProcess - cpu0.stack.benchProcess),
        temporal: per(cpu1.stack.temporalServer - cpu0.stack.temporalServer),
        postgres: per(cpu1.stack.postgres - cpu0.stack.postgres),
        api: per(cpu1.api - cpu0.api),
        loadGenerator: per(load?.cpuSeconds ?? 0),
        total: 0,
      };
      cores.total = round(cores.workerAndBench + cores.temporal + cores.postgres + cores.api + cores.loadGenerator, 2);
      return { rate: round(rate, 2), load, cores, apiCpuSeconds: cpu1.api - cpu0.api };
    };
    // The API warm before the windows, as a serving API is: its pool's connections open, its code compiled, and the
    // delivery's first shared answer read (the first one waits for the workflow's query on a busy worker, and every
    // caller of that moment with it: a first window with a cold API had a p99 of 786 ms, the next 131 ms).
    await runLoadClient({ baseUrl: api.url, apiKey, paths, ratePerSecond: opts.ratePerSecond, seconds: 5, connections: 20 });
    await sleep(2_000);
    const windows: ApiLoadResult['windows'] = [];
    const loads: ApiLoadResult['load'][] = [];
    let apiCpuMs = 0;
    const coresLine = (c: WindowCores) => `cores: worker ${c.workerAndBench}, Temporal ${c.temporal}, Postgres ${c.postgres}, API ${c.api}, load generator ${c.loadGenerator} (total ${c.total})`;
    const quiet = async () => {
      const q = await windowRate();
      windows.push({ kind: 'quiet', rate: q.rate, cores: q.cores });
      log(`api-load: quiet window ${q.rate}/s; ${coresLine(q.cores)}`);
    };
    await quiet();
    for (let i = 0; i < opts.rounds; i++) {
      const loaded = await windowRate(() => runLoadClient({ baseUrl: api.url, apiKey, paths, ratePerSecond: opts.ratePerSecond, seconds: w, connections: 20 }));
      apiCpuMs += loaded.apiCpuSeconds * 1000;
      windows.push({ kind: 'loaded', rate: loaded.rate, cores: loaded.cores });
      loads.push(loaded.load!);
      log(`api-load: loaded window ${loaded.rate}/s; p99 ${loaded.load!.latencyMs.p99} ms over ${loaded.load!.requests} requests; ${coresLine(loaded.cores)}`);
      await quiet();
    }
    // Every window must have measured a delivery still sending: one that ended within the last window measured its tail.
    if ((await finalCount(stack, id)) >= n) throw new Error(`api-load: the delivery completed during the windows, so the last ones measured its tail, not its rate: use more recipients (--apiload-recipients)`);
    await stack.service.cancel(id, 'bench api-load done').catch(() => undefined);
    // The reads below are measured on an otherwise idle stack: the cancelled delivery's last attempts and the cancelling
    // of its pending recipients must be over first (5 s were not enough at 20,000: each read then cost 3–5 times more).
    // A tenth of a core of the host's two, as the bench's start waits for.
    await untilHostQuiet(log, 0.05, 180_000);
    const groups = [
      { label: 'GET /api/deliveries/:id', paths: [`/api/deliveries/${id}`] },
      { label: 'GET /api/deliveries/:id/recipients?limit=50', paths: [`/api/deliveries/${id}/recipients?limit=50`] },
      { label: 'GET /api/deliveries/:id/recipients/:rid', paths: recipientIds.map((rid) => `/api/deliveries/${id}/recipients/${rid}`) },
      { label: 'GET /api/deliveries?limit=20', paths: [`/api/deliveries?limit=20`] },
      { label: 'GET /api/lists', paths: [`/api/lists`] },
    ];
    const costs = await costPerRead(stack, api.child.pid!, { baseUrl: api.url, apiKey, ratePerSecond: opts.ratePerSecond, seconds: 10 }, groups);
    for (const c of costs) log(`api-load: ${c.path}: API ${c.apiCpuMs} ms + Postgres ${c.postgresCpuMs} ms + load generator ${c.loadGeneratorCpuMs} ms of CPU per read; p50 ${c.p50Ms} ms, p99 ${c.p99Ms} ms`);
    const dropPerRound = windows.flatMap((x, i) => {
      if (x.kind !== 'loaded') return [];
      const around = (windows[i - 1]!.rate + windows[i + 1]!.rate) / 2;
      return [round(around > 0 ? 1 - x.rate / around : NaN, 3)];
    });
    const load = combinedLoad(loads);
    return {
      recipients: n,
      targetRatePerSecond: opts.ratePerSecond,
      windowSeconds: w,
      rounds: opts.rounds,
      paths,
      load,
      windows,
      dropPerRound,
      sendRateDrop: round(dropPerRound.reduce((a, b) => a + b, 0) / dropPerRound.length, 3),
      sendRateDropMedian: round(median(dropPerRound), 3),
      apiCpuMsPerRead: round(apiCpuMs / Math.max(1, load.requests), 2),
      costPerRead: costs,
    };
  } finally {
    api.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    if (api.child.exitCode === null) api.child.kill('SIGKILL');
  }
}
