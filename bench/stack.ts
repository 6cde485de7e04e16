/** An isolated stack for the benchmark: its own Temporal dev server (file DB), Postgres, sandbox MX and worker, in a temp dir. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, type Worker } from '@temporalio/worker';
import type { Pool } from 'pg';
import { parseSettings, type Settings } from '../config/settings';
import { createPool } from '../db/pool';
import type { ActivityDependencies } from '../activities/dependencies';
import { workflowsPath } from '../workers/create-worker';
import type { DeliveryService } from '../api/delivery-service';
import { buildActivityDependencies, buildDeliveryService, buildWorker, openRuntime } from '../runtime/composition-root';
import { SandboxMx } from '../mx-sandbox/sandbox-mx';
import { freePort } from '../stack/ports';
import { locateTemporalCli } from '../stack/temporal-cli';
import { startDevServer, type RunningDevServer } from '../stack/temporal-dev-server';
import { startEmbeddedPostgres, type PostgresHandle } from '../stack/postgres';

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
  /** Starts (or restarts with other settings) the one worker of the bench. */
  startWorker(t: WorkerTuning): Promise<void>;
  stopWorker(): Promise<void>;
  stop(): Promise<void>;
}

const SECRETS = { verpSecret: 'bench-verp-secret-0123456789', keyEncryptionSecret: 'bench-key-secret-0123456789' };

export async function startBenchStack(log: (m: string) => void): Promise<BenchStack> {
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
    log(`temp dir ${dir}; Temporal dev server (file DB) on :${temporalPort}`);
    const temporal = await startDevServer({
      cliPath: cli,
      address: `127.0.0.1:${temporalPort}`,
      uiPort,
      namespace: 'default',
      dbFile: path.join(dir, 'temporal.sqlite'),
      logFile: path.join(dir, 'temporal.log'),
    });
    stops.push(() => temporal.stop());
    process.once('exit', () => temporal.process.kill('SIGKILL'));

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
      VERP_SECRET: SECRETS.verpSecret,
      KEY_ENCRYPTION_SECRET: SECRETS.keyEncryptionSecret,
      SEND_MODE: 'direct',
    });
    const rt = await openRuntime(settings, { secrets: SECRETS });
    stops.push(() => rt.close());
    const pool = rt.pool;
    const deps = buildActivityDependencies(rt);
    await deps.rules.start();
    stops.push(async () => deps.rules.stop());
    stops.push(async () => deps.sender.close());

    log('bundling workflows');
    const bundle = await bundleWorkflowCode({ workflowsPath: workflowsPath(), logger: new DefaultLogger('WARN') });
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
    const client = new Client({ connection, namespace: settings.TEMPORAL_NAMESPACE });
    const service = buildDeliveryService(rt, client);
    return { dir, settings, pool, probe, client, service, deps, mx, temporal, pgDataDir, startWorker, stopWorker, stop: stopAll };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
