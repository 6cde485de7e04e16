/**
 * The whole engine as separate OS processes that a test can kill and start again, each on state that survives its
 * restart: the Temporal dev server on a file database, embedded Postgres on a kept data directory, worker and API
 * processes (workers/main.ts, api/main.ts) configured only through their environment. The sandbox MX runs in the test
 * process, behind a proxy that adds network latency. The fault suite (test/faults/) is built on it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import type { Pool } from 'pg';
import { parseSettings } from '../../config/settings';
import type { Secrets } from '../../config/secrets';
import { createPool } from '../../db/pool';
import { SandboxMx, type SandboxMxOptions } from '../../mx-sandbox/sandbox-mx';
import { formatPayloadKeys } from '../../runtime/codec-keys';
import { temporalDataConverter } from '../../runtime/composition-root';
import { workflowBundleConverterOptions } from '../../runtime/data-converter-codec';
import { startEmbeddedPostgres, type PostgresHandle } from '../../stack/postgres';
import { freePort } from '../../stack/ports';
import { locateTemporalCli } from '../../stack/temporal-cli';
import { startDevServer, type RunningDevServer } from '../../stack/temporal-dev-server';
import { workflowsPath } from '../../workers/create-worker';
import { engineProcessExited, isRunning, killEngineProcess, logSince, READY_MARKERS, startEngineProcess, tail, type EngineProcess } from './engine-process';
import { startSlowNetwork, type SlowNetwork } from './slow-network';

/** Longest a request to the API may take (a creation of thousands of recipients takes seconds on a loaded machine). */
const REQUEST_TIMEOUT_MS = 120_000;

export interface ProcessStackOptions {
  /** Everything the stack keeps: Temporal's SQLite file, the Postgres cluster, the workflow bundle, the logs. */
  dir: string;
  secrets: Secrets;
  /** Settings of the worker and API processes beyond what the layout sets (retry scale, timeouts, tuning). */
  env?: Record<string, string>;
  /** One-way latency between the workers and the sandbox MX. */
  mxLatencyMs?: number;
  mx?: SandboxMxOptions;
  log?: (m: string) => void;
}

export interface ApiAnswer<T> {
  status: number;
  body: T;
  headers: Headers;
}

export interface ProcessStack {
  dir: string;
  logDir: string;
  taskQueue: string;
  temporalAddress: string;
  databaseUrl: string;
  apiUrl: string;
  mx: SandboxMx;
  network: SlowNetwork;
  /** The test's own connections: rows checked directly, workflows queried with the engine's payload codec. */
  pool: Pool;
  client: Client;
  workers: EngineProcess[];
  api: EngineProcess | null;
  /** Sent as `Authorization: Bearer <key>` by `request`. Set it once a key exists (the API process must be up to use one). */
  apiKey: string | null;
  startWorker(): Promise<EngineProcess>;
  /** kill -9 of the worker's process group; resolves once it is gone. */
  killWorker(w: EngineProcess): Promise<void>;
  startApi(): Promise<EngineProcess>;
  killApi(): Promise<void>;
  /** Graceful stop (SIGTERM), or a crash (SIGKILL). */
  stopTemporal(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  startTemporal(): Promise<void>;
  stopPostgres(): Promise<void>;
  startPostgres(): Promise<void>;
  request<T>(method: string, urlPath: string, body?: unknown, headers?: Record<string, string>): Promise<ApiAnswer<T>>;
  /** The last lines of every process log, for a failure message. */
  logs(lines?: number): string;
  stop(): Promise<void>;
}

export async function startProcessStack(o: ProcessStackOptions): Promise<ProcessStack> {
  const log = o.log ?? (() => undefined);
  fs.mkdirSync(o.dir, { recursive: true });
  // Postgres runs as its own user when the tests run as root: it must be able to enter this folder.
  fs.chmodSync(o.dir, 0o755);
  const logDir = path.join(o.dir, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const base = parseSettings(process.env);
  const cli = locateTemporalCli({ explicit: base.TEMPORAL_CLI, toolsDir: base.TOOLS_DIR, log });
  const [temporalPort, uiPort, pgPort, apiPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const temporalAddress = `127.0.0.1:${temporalPort}`;
  const taskQueue = 'fault-suite';

  let temporal: RunningDevServer | null = null;
  let pg: PostgresHandle | null = null;
  let pool: Pool | null = null;
  let connection: Connection | null = null;
  let mx: SandboxMx | null = null;
  let network: SlowNetwork | null = null;
  const processes: EngineProcess[] = [];

  const startTemporal = async () => {
    const t0 = Date.now();
    const t = await startDevServer({
      cliPath: cli,
      address: temporalAddress,
      uiPort,
      namespace: 'default',
      dbFile: path.join(o.dir, 'temporal.sqlite'),
      logFile: path.join(logDir, 'temporal.log'),
    });
    temporal = t;
    process.once('exit', () => t.process.kill('SIGKILL'));
    log(`Temporal dev server on ${temporalAddress} (file database) in ${Date.now() - t0} ms`);
  };
  const startPostgres = async () => {
    const t0 = Date.now();
    pg = await startEmbeddedPostgres({ dataDir: path.join(o.dir, 'postgres'), port: pgPort, persistent: true, log });
    log(`Postgres on :${pgPort} in ${Date.now() - t0} ms`);
  };

  const stopAll = async () => {
    for (const p of processes) killEngineProcess(p);
    await Promise.all(processes.map(engineProcessExited));
    network?.close();
    await mx?.stop();
    await connection?.close().catch(() => undefined);
    await pool?.end().catch(() => undefined);
    await (temporal as RunningDevServer | null)?.stop();
    await (pg as PostgresHandle | null)?.stop();
  };

  try {
    await startTemporal();
    await startPostgres();
    const databaseUrl = pg!.connectionString;
    mx = new SandboxMx({ port: 0, keepRaw: false, ...o.mx });
    const { port: mxPort } = await mx.start();
    network = await startSlowNetwork(mxPort, o.mxLatencyMs ?? 20);

    // A prebuilt bundle starts a worker in about a second instead of bundling the workflows at every start.
    const bundlePath = path.join(o.dir, 'workflow-bundle.js');
    const bundle = await bundleWorkflowCode({ workflowsPath: workflowsPath(), ...workflowBundleConverterOptions(), logger: new DefaultLogger('WARN') });
    fs.writeFileSync(bundlePath, bundle.code);

    const env: Record<string, string> = {
      DATA_DIR: path.join(o.dir, 'app-data'),
      DATABASE_URL: databaseUrl,
      TEMPORAL_ADDRESS: temporalAddress,
      TEMPORAL_EXTERNAL: 'true',
      TASK_QUEUE: taskQueue,
      API_PORT: String(apiPort),
      WORKFLOW_BUNDLE_PATH: bundlePath,
      MX_OVERRIDES: JSON.stringify({ '*': `127.0.0.1:${network.port}` }),
      VERP_SECRET: o.secrets.verpSecret,
      KEY_ENCRYPTION_SECRET: o.secrets.keyEncryptionSecret,
      // One key ring for every process and the test's client: the worker opens what the API sealed, and back.
      PAYLOAD_KEYS: formatPayloadKeys(o.secrets.payloadKeys.keys),
      PAYLOAD_KEY_ID: o.secrets.payloadKeys.currentKeyId,
      // Recipient workflows close with their SMTP transaction: nothing waits an hour for late bounces.
      LATE_FEEDBACK_WINDOW_SECONDS: '0',
      ...o.env,
    };
    let workerCount = 0;
    let apiCount = 0;
    const stack: ProcessStack = {
      dir: o.dir,
      logDir,
      taskQueue,
      temporalAddress,
      databaseUrl,
      apiUrl: `http://127.0.0.1:${apiPort}`,
      mx,
      network,
      pool: null as unknown as Pool,
      client: null as unknown as Client,
      workers: [],
      api: null,
      apiKey: null,
      async startWorker() {
        const w = await startEngineProcess({ name: `worker-${++workerCount}`, entry: 'workers/main.ts', env, logDir, readyMarker: READY_MARKERS.worker });
        processes.push(w);
        stack.workers.push(w);
        return w;
      },
      async killWorker(w) {
        killEngineProcess(w);
        await engineProcessExited(w);
        stack.workers = stack.workers.filter((x) => x !== w);
      },
      async startApi() {
        const a = await startEngineProcess({ name: `api-${++apiCount}`, entry: 'api/main.ts', env, logDir, readyMarker: READY_MARKERS.api });
        processes.push(a);
        stack.api = a;
        return a;
      },
      async killApi() {
        const a = stack.api;
        stack.api = null;
        if (!a) return;
        killEngineProcess(a);
        await engineProcessExited(a);
      },
      async stopTemporal(signal = 'SIGTERM') {
        const t = temporal;
        temporal = null;
        if (!t) return;
        if (signal === 'SIGTERM') return t.stop();
        const gone = new Promise<void>((r) => (t.process.exitCode !== null || t.process.signalCode !== null ? r() : t.process.once('exit', () => r())));
        t.process.kill('SIGKILL');
        await gone;
      },
      startTemporal,
      async stopPostgres() {
        const p = pg;
        pg = null;
        await p?.stop();
      },
      startPostgres,
      async request<T>(method: string, urlPath: string, body?: unknown, headers: Record<string, string> = {}) {
        const res = await fetch(`${stack.apiUrl}${urlPath}`, {
          method,
          headers: {
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
            ...(stack.apiKey ? { authorization: `Bearer ${stack.apiKey}` } : {}),
            ...headers,
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          // A hung API fails the request (and the test) with a reason instead of running into the test's timeout.
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        const text = await res.text();
        let parsed: unknown = text;
        try {
          parsed = text ? JSON.parse(text) : null;
        } catch {
          // not JSON: keep the text for the failure message
        }
        return { status: res.status, body: parsed as T, headers: res.headers };
      },
      logs(lines = 30) {
        const named = processes.map((p) => `--- ${p.name}${isRunning(p) ? '' : ' (exited)'} (last ${lines} lines)\n${tail(logSince(p), lines)}`);
        const temporalLog = path.join(logDir, 'temporal.log');
        if (fs.existsSync(temporalLog)) named.push(`--- temporal (last ${lines} lines)\n${tail(fs.readFileSync(temporalLog, 'utf8'), lines)}`);
        return named.join('\n');
      },
      stop: stopAll,
    };
    // The API process migrates the database (under an advisory lock) before it listens; workers start after it.
    await stack.startApi();
    pool = createPool(databaseUrl, 4);
    connection = await Connection.connect({ address: temporalAddress });
    stack.pool = pool;
    stack.client = new Client({ connection, namespace: 'default', dataConverter: temporalDataConverter(o.secrets) });
    return stack;
  } catch (e) {
    await stopAll().catch(() => undefined);
    throw e;
  }
}
