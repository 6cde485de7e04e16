/**
 * The production layout of docker-compose.yml run on this machine without Docker: Temporal's Postgres and the
 * application's Postgres (two embedded clusters), the schema job, the Temporal server of the pinned release, the
 * namespace and search-attribute jobs (the same scripts the admin-tools jobs run), then the API and N workers as
 * separate processes, configured only through their environment, as in the compose file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { ALL_SEARCH_ATTRIBUTES } from '../../workflows/search-attributes';
import { workflowsPath } from '../../workers/create-worker';
// The failure converter seals failure messages (they quote SMTP replies): a prebuilt bundle must carry it.
import { workflowBundleConverterOptions } from '../../runtime/data-converter-codec';
import { startEmbeddedPostgres, type PostgresHandle } from '../postgres';
import { freePort } from '../ports';
import { StartupError } from '../startup-error';
import {
  clusterHealthy,
  DEFAULT_NAMESPACE_RETENTION,
  locateTemporalServer,
  renderServerConfig,
  runClusterScript,
  startTemporalServer,
  type ClusterPorts,
  type RunningTemporalServer,
  type TemporalServerTools,
  TEMPORAL_SERVER_VERSION,
} from './temporal-server';

const ROOT = path.resolve(__dirname, '..', '..');
/** The embedded clusters' superuser (stack/postgres.ts). */
const PG_USER = 'postgres';
const PG_PASSWORD = 'postgres';

/** SEARCH_ATTRIBUTES of the search-attribute job: every attribute the workflows upsert. */
export function searchAttributesSetting(): string {
  return ALL_SEARCH_ATTRIBUTES.map((k) => `${k.name}=${k.type === 'KEYWORD' ? 'Keyword' : k.type}`).join(',');
}

export interface LocalClusterOptions {
  /** State of both Postgres clusters, the server's config and the processes' logs. */
  dir: string;
  toolsDir: string;
  /** Keep both Postgres clusters between runs (npm run start:cluster) or remove them on stop (tests, bench). */
  persistent: boolean;
  workers: number;
  namespace?: string;
  taskQueue?: string;
  /** host:port of the frontend; a free loopback port when absent. */
  temporalPort?: number;
  apiPort?: number;
  /** Environment of the worker and API processes beyond what the layout sets (MX_OVERRIDES, secrets, tuning). */
  appEnv: Record<string, string>;
  log?: (m: string) => void;
}

export interface AppProcess {
  name: string;
  process: ChildProcess;
  logFile: string;
  /** Size of the log when this process started: a kept log also holds earlier runs. */
  logFrom: number;
}

export interface LocalCluster {
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  apiUrl: string;
  databaseUrl: string;
  tools: TemporalServerTools;
  workers: AppProcess[];
  api: AppProcess;
  /** Stops the Temporal server (SIGTERM, or SIGKILL for a crash); the workers and the API keep running. */
  stopTemporal(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts it again on the same databases and ports; resolves once the frontend is healthy. */
  startTemporal(): Promise<void>;
  /** The last lines of every log of the layout, for a failure message. */
  logs(lines?: number): string;
  stop(): Promise<void>;
}

/** True when 127.0.0.1:port can be bound right now. */
function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A free port below 32768: Temporal stores membership ports in a smallint column (cluster_membership.rpc_port), so
 * an ephemeral port (32768 and up on Linux) makes the server fail at start ("out of range for type smallint").
 */
async function freeLowPort(taken: Set<number>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (!taken.has(port) && (await canBind(port))) {
      taken.add(port);
      return port;
    }
  }
  throw new StartupError('no free port between 20000 and 32000 for the Temporal server');
}

async function allPorts(): Promise<ClusterPorts> {
  const taken = new Set<number>();
  const next = () => freeLowPort(taken);
  return {
    frontend: await next(),
    frontendHttp: await next(),
    frontendMembership: await next(),
    history: await next(),
    historyMembership: await next(),
    matching: await next(),
    matchingMembership: await next(),
    worker: await next(),
    workerMembership: await next(),
  };
}

async function waitForLine(p: AppProcess, marker: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = fs.existsSync(p.logFile) ? fs.readFileSync(p.logFile).subarray(p.logFrom).toString('utf8') : '';
    if (text.includes(marker)) return;
    if (p.process.exitCode !== null || p.process.signalCode !== null) {
      throw new StartupError(`${p.name} exited at start (${p.process.exitCode ?? p.process.signalCode}): ${text.trim().split('\n').slice(-15).join('\n')}`);
    }
    if (Date.now() > deadline) throw new StartupError(`${p.name} did not start within ${timeoutMs / 1000} s: ${text.trim().split('\n').slice(-15).join('\n')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function stopProcess(p: AppProcess, timeoutMs = 20_000): Promise<void> {
  const child = p.process;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export interface ClusterTemporal {
  address: string;
  namespace: string;
  tools: TemporalServerTools;
  /** Data folder of Temporal's Postgres cluster (CPU accounting reads its postmaster.pid). */
  pgDataDir: string;
  /** The running server process (null while stopped). */
  readonly process: ChildProcess | null;
  /** Stops the Temporal server (SIGTERM, or SIGKILL for a crash). */
  stopTemporal(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts it again on the same database and ports; resolves once the frontend is healthy. */
  startTemporal(): Promise<void>;
  /** Stops the server and Temporal's Postgres. */
  stop(): Promise<void>;
}

/**
 * The Temporal half of the layout: Temporal's Postgres, the temporal-schema job, the server of the pinned release
 * (config rendered from the image's template), then the temporal-namespace and temporal-search-attributes jobs.
 */
export async function startClusterTemporal(o: {
  dir: string;
  toolsDir: string;
  persistent: boolean;
  logDir: string;
  namespace?: string;
  temporalPort?: number;
  log?: (m: string) => void;
}): Promise<ClusterTemporal> {
  const log = o.log ?? ((m: string) => console.log(`· ${m}`));
  const namespace = o.namespace ?? 'default';
  const stops: (() => Promise<unknown>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((e) => log(`shutdown step failed: ${(e as Error).message}`));
    stops.length = 0;
  };
  try {
    const tools = locateTemporalServer({ toolsDir: o.toolsDir, log });

    // --- Temporal's Postgres and the temporal-schema job ---
    const temporalPgPort = await freePort();
    log(`Temporal's Postgres on :${temporalPgPort}`);
    const temporalPg: PostgresHandle = await startEmbeddedPostgres({ dataDir: path.join(o.dir, 'temporal-postgres'), port: temporalPgPort, persistent: o.persistent, log });
    stops.push(() => temporalPg.stop());
    const t0 = Date.now();
    await runClusterScript(tools, 'setup-schema.sh', { SQL_HOST: '127.0.0.1', SQL_PORT: String(temporalPgPort), SQL_USER: PG_USER, SQL_PASSWORD: PG_PASSWORD }, log);
    log(`schemas set up and upgraded in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    // --- the temporal service ---
    const ports = await allPorts();
    if (o.temporalPort) ports.frontend = o.temporalPort;
    const address = `127.0.0.1:${ports.frontend}`;
    const configDir = path.join(o.dir, 'temporal-config');
    renderServerConfig({ tools, configDir, db: { host: '127.0.0.1', port: temporalPgPort, user: PG_USER, password: PG_PASSWORD }, ports });
    const serverLog = path.join(o.logDir, 'temporal-server.log');
    let server: RunningTemporalServer | null = null;
    const startTemporal = async () => {
      const t = Date.now();
      server = await startTemporalServer({ tools, configDir, address, logFile: serverLog });
      log(`Temporal server ${TEMPORAL_SERVER_VERSION} healthy on ${address} after ${((Date.now() - t) / 1000).toFixed(1)} s`);
    };
    const stopTemporal = async (signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM') => {
      const s = server;
      server = null;
      if (!s) return;
      if (signal === 'SIGKILL') {
        const gone = new Promise<void>((r) => (s.process.exitCode !== null || s.process.signalCode !== null ? r() : s.process.once('exit', () => r())));
        s.process.kill('SIGKILL');
        await gone;
      } else await s.stop();
    };
    await startTemporal();
    stops.push(() => stopTemporal());

    // --- the temporal-namespace and temporal-search-attributes jobs ---
    const jobEnv = { TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace, NAMESPACE_RETENTION: DEFAULT_NAMESPACE_RETENTION };
    await runClusterScript(tools, 'create-namespace.sh', jobEnv, log);
    await runClusterScript(tools, 'register-search-attributes.sh', { ...jobEnv, SEARCH_ATTRIBUTES: searchAttributesSetting() }, log);
    return {
      address,
      namespace,
      tools,
      pgDataDir: temporalPg.dataDir,
      get process() {
        return server?.process ?? null;
      },
      stopTemporal,
      async startTemporal() {
        if (server && (await clusterHealthy(tools, address))) return;
        await startTemporal();
      },
      stop: stopAll,
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}

export async function startLocalCluster(o: LocalClusterOptions): Promise<LocalCluster> {
  const log = o.log ?? ((m: string) => console.log(`· ${m}`));
  const namespace = o.namespace ?? 'default';
  const taskQueue = o.taskQueue ?? 'email-delivery';
  fs.mkdirSync(o.dir, { recursive: true });
  // Postgres runs as its own user when started as root: it must be able to enter this folder.
  fs.chmodSync(o.dir, 0o755);
  const logDir = path.join(o.dir, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const stops: (() => Promise<unknown>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((e) => log(`shutdown step failed: ${(e as Error).message}`));
    stops.length = 0;
  };
  const procs: AppProcess[] = [];
  const logs = (lines = 30) =>
    fs
      .readdirSync(logDir)
      .filter((f) => f.endsWith('.log'))
      .map((f) => `--- ${f} (last ${lines} lines)\n${fs.readFileSync(path.join(logDir, f), 'utf8').trim().split('\n').slice(-lines).join('\n')}`)
      .join('\n');

  try {
    const temporal = await startClusterTemporal({ dir: o.dir, toolsDir: o.toolsDir, persistent: o.persistent, logDir, namespace, temporalPort: o.temporalPort, log });
    stops.push(() => temporal.stop());
    const temporalAddress = temporal.address;
    // --- the application's Postgres ---
    const appPgPort = await freePort();
    log(`application Postgres on :${appPgPort}`);
    const appPg = await startEmbeddedPostgres({ dataDir: path.join(o.dir, 'app-postgres'), port: appPgPort, persistent: o.persistent, log });
    stops.push(() => appPg.stop());

    // --- the workflow bundle, built once as the image build does ---
    const bundlePath = path.join(o.dir, 'workflow-bundle.js');
    const bundle = await bundleWorkflowCode({ workflowsPath: workflowsPath(), ...workflowBundleConverterOptions(), logger: new DefaultLogger('WARN') });
    fs.writeFileSync(bundlePath, bundle.code);

    // --- the api and worker services ---
    const apiPort = o.apiPort ?? (await freePort());
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/',
      NODE_ENV: 'production',
      DATA_DIR: path.join(o.dir, 'app-data'),
      DATABASE_URL: appPg.connectionString,
      TEMPORAL_ADDRESS: temporalAddress,
      TEMPORAL_EXTERNAL: 'true',
      TEMPORAL_NAMESPACE: namespace,
      TASK_QUEUE: taskQueue,
      API_PORT: String(apiPort),
      WORKFLOW_BUNDLE_PATH: bundlePath,
      ...o.appEnv,
    };
    const spawnApp = (name: string, entry: string): AppProcess => {
      const logFile = path.join(logDir, `${name}.log`);
      const fd = fs.openSync(logFile, 'a');
      const logFrom = fs.fstatSync(fd).size;
      const child = spawn(process.execPath, ['--import', 'tsx', entry], { cwd: ROOT, env, stdio: ['ignore', fd, fd] });
      fs.closeSync(fd);
      process.once('exit', () => child.kill('SIGKILL'));
      const p = { name, process: child, logFile, logFrom };
      procs.push(p);
      stops.push(() => stopProcess(p));
      return p;
    };
    // One process first: migrations and rule seeding run under an advisory lock, but one at a time starts faster.
    const api = spawnApp('api', 'api/main.ts');
    await waitForLine(api, '"api listening"', 120_000);
    const workers = Array.from({ length: o.workers }, (_, i) => spawnApp(`worker-${i + 1}`, 'workers/main.ts'));
    await Promise.all(workers.map((w) => waitForLine(w, '"worker started"', 120_000)));
    log(`API on http://127.0.0.1:${apiPort} and ${workers.length} workers started (logs in ${logDir})`);

    return {
      temporalAddress,
      namespace,
      taskQueue,
      apiUrl: `http://127.0.0.1:${apiPort}`,
      databaseUrl: appPg.connectionString,
      tools: temporal.tools,
      workers,
      api,
      stopTemporal: (signal) => temporal.stopTemporal(signal),
      startTemporal: () => temporal.startTemporal(),
      logs,
      stop: stopAll,
    };
  } catch (e) {
    const tail = logs(15);
    await stopAll();
    if (tail && e instanceof Error) e.message = `${e.message}\n${tail}`;
    throw e;
  }
}
