/**
 * The one composition root: builds the engine's runtime (pool, stores, activity dependencies, delivery service, API,
 * worker) from the settings. The API process, the worker process, the embedded stack, the bench and the test harness
 * all assemble themselves here, so a new dependency is wired once.
 */
import type express from 'express';
import type { Pool } from 'pg';
import type { Client } from '@temporalio/client';
import type { NativeConnection, Worker, WorkerOptions } from '@temporalio/worker';
import type { Settings } from '../config/settings';
import { loadSecrets, type Secrets } from '../config/secrets';
import { createPool } from '../db/pool';
import { migrate } from '../db/migrate';
import { seedQualificationRules } from '../db/qualification-rule-store';
import { createStores, type Stores } from '../db/stores';
import { createActivityDependencies, type ActivityDependencies } from '../activities/dependencies';
import { createActivities } from '../activities';
import type { Activities } from '../workflows/contract';
import { createWorker } from '../workers/create-worker';
import { DeliveryService } from '../api/delivery-service';
import { createApp } from '../api/app';

export interface EngineRuntime {
  settings: Settings;
  secrets: Secrets;
  /** Only the composition root and db/ use the pool; everything else gets stores. */
  pool: Pool;
  stores: Stores;
  /** Ends the pool (the caller stops workers and servers first). */
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /** Default: settings.DATABASE_URL. */
  databaseUrl?: string;
  /** Default: loadSecrets(settings) (generated under DATA_DIR for the embedded stack). */
  secrets?: Secrets;
  poolSize?: number;
  /** Run migrations and seed the qualification rules (default true; idempotent, under an advisory lock). */
  prepareDatabase?: boolean;
}

export async function openRuntime(settings: Settings, o: RuntimeOptions = {}): Promise<EngineRuntime> {
  const databaseUrl = o.databaseUrl ?? settings.DATABASE_URL;
  if (!databaseUrl) throw new Error('DATABASE_URL is required to run a process on its own (npm start runs the embedded stack)');
  const pool = createPool(databaseUrl, o.poolSize);
  try {
    if (o.prepareDatabase !== false) {
      await migrate(pool);
      await seedQualificationRules(pool);
    }
  } catch (e) {
    await pool.end().catch(() => {});
    throw e;
  }
  const secrets = o.secrets ?? loadSecrets(settings);
  return { settings, secrets, pool, stores: createStores(pool, { keyEncryptionSecret: secrets.keyEncryptionSecret }), close: () => pool.end() };
}

/** The activities' dependencies: the runtime's stores plus the SMTP sender and the rules cache (call `rules.start()`). */
export function buildActivityDependencies(rt: EngineRuntime): ActivityDependencies {
  return createActivityDependencies(rt.stores, rt.settings, rt.secrets);
}

export function buildDeliveryService(rt: EngineRuntime, client: Client, taskQueue = rt.settings.TASK_QUEUE): DeliveryService {
  return new DeliveryService({ client, stores: rt.stores, settings: rt.settings, taskQueue });
}

export function buildApi(rt: EngineRuntime, o: { service: DeliveryService; client: Client; taskQueue?: string; temporalUiUrl?: string }): express.Express {
  return createApp({
    service: o.service,
    stores: rt.stores,
    verpSecret: rt.secrets.verpSecret,
    temporalUiUrl: o.temporalUiUrl,
    schedules: { client: o.client, taskQueue: o.taskQueue ?? rt.settings.TASK_QUEUE },
  });
}

export interface WorkerParts {
  connection: NativeConnection;
  deps: ActivityDependencies;
  namespace?: string;
  taskQueue?: string;
  /** Activities built by the caller from `deps` (tests that observe activity inputs). */
  activities?: Activities;
  /** A prebuilt workflow bundle; otherwise the worker bundles workflows/ at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  maxConcurrentActivities?: number;
  maxConcurrentWorkflowTasks?: number;
}

/** A worker on the runtime's task queue running every workflow and activity of the project. */
export function buildWorker(rt: EngineRuntime, p: WorkerParts): Promise<Worker> {
  const s = rt.settings;
  return createWorker({
    connection: p.connection,
    namespace: p.namespace ?? s.TEMPORAL_NAMESPACE,
    taskQueue: p.taskQueue ?? s.TASK_QUEUE,
    activities: p.activities ?? createActivities(p.deps),
    maxConcurrentActivities: p.maxConcurrentActivities ?? s.WORKER_MAX_CONCURRENT_ACTIVITIES,
    maxConcurrentWorkflowTasks: p.maxConcurrentWorkflowTasks ?? s.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS,
    workflowBundle: p.workflowBundle ?? (s.WORKFLOW_BUNDLE_PATH ? { codePath: s.WORKFLOW_BUNDLE_PATH } : undefined),
  });
}
