/**
 * An isolated stack for the benchmark, in a temp dir: its own Temporal (the dev server on a file DB, or with
 * `--layout cluster` the production layout's server on Postgres, stack/cluster/), Postgres, sandbox MX and worker.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Connection, type Client } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, type Worker } from '@temporalio/worker';
import type { Pool } from 'pg';
import { parseSettings, type Settings } from '../config/settings';
import { createPool } from '../db/pool';
import type { ActivityDependencies } from '../activities/dependencies';
import { workflowsPath } from '../workers/create-worker';
import type { DeliveryService } from '../api/delivery-service';
import { buildActivityDependencies, buildDeliveryService, buildTemporalClient, buildWorker, openRuntime } from '../runtime/composition-root';
import { workflowBundleConverterOptions } from '../runtime/data-converter-codec';
import type { Secrets } from '../config/secrets';
import { SandboxMx } from '../mx-sandbox/sandbox-mx';
import { freePort } from '../stack/ports';
import { locateTemporalCli } from '../stack/temporal-cli';
import { startDevServer, type RunningDevServer } from '../stack/temporal-dev-server';
import { startEmbeddedPostgres, type PostgresHandle } from '../stack/postgres';
import { startClusterTemporal } from '../stack/cluster/local-cluster';
import { HISTORY_SHARDS, serverVersion } from '../stack/cluster/temporal-server';
import { cpuSnapshot, type CpuSnapshot } from './measure';

/** Which Temporal the bench runs on: the dev server (SQLite file) or the production layout's server on Postgres. */
export type BenchLayout = 'dev' | 'cluster';

export interface WorkerTuning {
  maxConcurrentActivities: number;
  maxConcurrentWorkflowTasks: number;
}

export interface BenchStack {
  dir: string;
  settings: Settings;
  /** The worker's and the service's pool (the product's default size). */
  pool: Pool;
  /** A small separate pool for the bench's own probes, so they never wait behind the worker's queries. */
  probe: Pool;
  client: Client;
  service: DeliveryService;
  deps: ActivityDependencies;
  mx: SandboxMx;
  temporal: RunningDevServer;
  pgDataDir: string;
  /** Temporal's own Postgres data directory (cluster layout only). */
  temporalPgDataDir?: string;
  layout: BenchLayout;
  /** What runs Temporal, for the report. */
  temporalDescription: string;
  /** CPU seconds so far of the bench process, the Temporal server, the application's Postgres (and Temporal's, in the cluster layout). */
  cpu(): CpuSnapshot;
  /** Starts (or restarts with other settings) the one worker of the bench. */
  startWorker(t: WorkerTuning): Promise<void>;
  stopWorker(): Promise<void>;
  stop(): Promise<void>;
}

export const BENCH_SECRETS: Secrets = {
  verpSecret: 'bench-verp-secret-0123456789',
  keyEncryptionSecret: 'bench-key-secret-0123456789',
  // Payloads are sealed in the bench as in production: the codec's cost is part of what is measured.
  payloadKeys: { currentKeyId: 'bench-1', keys: [{ id: 'bench-1', key: createHash('sha256').update('bench payload key').digest() }] },
};

export async function startBenchStack(log: (m: string) => void, layout: BenchLayout = 'dev'): Promise<BenchStack> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'email-delivery-bench-'));
  // Postgres runs as its own user when the bench runs as root: it must be able to enter this folder.
  fs.chmodSync(dir, 0o755);
  const stops: (() => Promise<unknown>)[] = [];
  let stopped = false;
  const stopAll = async () => {
    if (stopped) return;
    stopped = true;
    for (const stop of stops.reverse()) await stop().catch((e) => log(`shutdown step failed: ${(e as Error).message}`));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const base = parseSettings(process.env);
    const cli = locateTemporalCli({ explicit: base.TEMPORAL_CLI, toolsDir: base.TOOLS_DIR, log });
    const [temporalPort, uiPort, pgPort] = [await freePort(), await freePort(), await freePort()];
    let temporal: RunningDevServer;
    let temporalPgDataDir: string | undefined;
    let temporalDescription: string;
    if (layout === 'cluster') {
      log(`temp dir ${dir}; Temporal server of the production layout (Postgres) on :${temporalPort}`);
      const cluster = await startClusterTemporal({ dir: path.join(dir, 'cluster'), toolsDir: base.TOOLS_DIR, persistent: false, logDir: dir, temporalPort, log });
      stops.push(() => cluster.stop());
      temporal = {
        get process() {
          return cluster.process!;
        },
        stop: () => cluster.stopTemporal(),
      };
      temporalPgDataDir = cluster.pgDataDir;
      temporalDescription = `${serverVersion(cluster.tools)} (stack/cluster: Postgres 18 embedded, ${HISTORY_SHARDS} history shards, config rendered from the image template), GOGC=400`;
    } else {
      log(`temp dir ${dir}; Temporal dev server (file DB) on :${temporalPort}`);
      const dev = await startDevServer({
        cliPath: cli,
        address: `127.0.0.1:${temporalPort}`,
        uiPort,
        namespace: 'default',
        dbFile: path.join(dir, 'temporal.sqlite'),
        logFile: path.join(dir, 'temporal.log'),
      });
      temporal = dev;
      stops.push(() => dev.stop());
      temporalDescription = 'dev server, SQLite file DB (WAL, synchronous=normal), GOGC=400';
    }
    process.once('exit', () => temporal.process?.kill('SIGKILL'));

    log(`embedded Postgres on :${pgPort}`);
    const pgDataDir = path.join(dir, 'pg');
    const pg: PostgresHandle = await startEmbeddedPostgres({ dataDir: pgDataDir, port: pgPort, persistent: false });
    stops.push(() => pg.stop());
    // A separate small pool reads Postgres' statistics while the runtime's pool is busy with the run.
    const probe = createPool(pg.connectionString, 3);
    stops.push(() => probe.end());

    // Bodies are not kept and only the last records are: a long run must not grow the bench process.
    const mx = new SandboxMx({ port: 0, keepRaw: false, maxRecords: 1_000 });
    const { port: mxPort } = await mx.start();
    stops.push(() => mx.stop());

    const settings = parseSettings({
      ...process.env,
      DATA_DIR: dir,
      TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
      TEMPORAL_EXTERNAL: 'true',
      DATABASE_URL: pg.connectionString,
      TASK_QUEUE: 'bench',
      MX_OVERRIDES: JSON.stringify({ '*': `127.0.0.1:${mxPort}` }),
      VERP_SECRET: BENCH_SECRETS.verpSecret,
      KEY_ENCRYPTION_SECRET: BENCH_SECRETS.keyEncryptionSecret,
      SEND_MODE: 'direct',
    });
    const rt = await openRuntime(settings, { secrets: BENCH_SECRETS });
    stops.push(() => rt.close());
    const pool = rt.pool;
    const deps = buildActivityDependencies(rt);
    await deps.rules.start();
    stops.push(async () => deps.rules.stop());
    stops.push(async () => deps.sender.close());

    log('bundling workflows');
    const bundle = await bundleWorkflowCode({ workflowsPath: workflowsPath(), ...workflowBundleConverterOptions(), logger: new DefaultLogger('WARN') });
    const nativeConnection = await NativeConnection.connect({ address: settings.TEMPORAL_ADDRESS });
    stops.push(() => nativeConnection.close());
    let worker: Worker | null = null;
    let running: Promise<void> | null = null;
    const stopWorker = async () => {
      if (worker && worker.getState() === 'RUNNING') worker.shutdown();
      await running?.catch((e) => log(`worker ended with ${(e as Error).message}`));
      worker = null;
      running = null;
    };
    stops.push(stopWorker);
    const startWorker = async (t: WorkerTuning) => {
      await stopWorker();
      worker = await buildWorker(rt, {
        connection: nativeConnection,
        deps,
        maxConcurrentActivities: t.maxConcurrentActivities,
        maxConcurrentWorkflowTasks: t.maxConcurrentWorkflowTasks,
        workflowBundle: { code: bundle.code },
      });
      running = worker.run();
    };

    const connection = await Connection.connect({ address: settings.TEMPORAL_ADDRESS });
    stops.push(() => connection.close());
    const client = buildTemporalClient(rt, connection);
    const service = buildDeliveryService(rt, client);
    return {
      dir,
      settings,
      pool,
      probe,
      client,
      service,
      deps,
      mx,
      temporal,
      pgDataDir,
      temporalPgDataDir,
      layout,
      temporalDescription,
      cpu: () => cpuSnapshot(temporal.process?.pid, pgDataDir, temporalPgDataDir),
      startWorker,
      stopWorker,
      stop: stopAll,
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
