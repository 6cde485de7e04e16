/** Builds the worker that runs every workflow and activity of the project on one task queue. */
import path from 'node:path';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { Activities } from '../workflows/contract';

export interface WorkerConfig {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activities: Activities;
  maxConcurrentActivities: number;
  maxConcurrentWorkflowTasks: number;
  /** The sticky cache's size (WORKER_MAX_CACHED_WORKFLOWS). */
  maxCachedWorkflows: number;
  /** A prebuilt bundle (tests build it once); otherwise the worker bundles workflows/ at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** The payload codec and failure converter (runtime/composition-root.ts); a prebuilt bundle must carry the same failure converter. */
  dataConverter?: WorkerOptions['dataConverter'];
}

/** The workflow sources the worker bundles (TypeScript: the bundler compiles them). */
export function workflowsPath(): string {
  return path.resolve(__dirname, '..', 'workflows', 'index.ts');
}

export async function createWorker(c: WorkerConfig): Promise<Worker> {
  return Worker.create({
    connection: c.connection,
    namespace: c.namespace,
    taskQueue: c.taskQueue,
    activities: c.activities,
    ...(c.workflowBundle ? { workflowBundle: c.workflowBundle } : { workflowsPath: workflowsPath() }),
    ...(c.dataConverter ? { dataConverter: c.dataConverter } : {}),
    maxConcurrentActivityTaskExecutions: c.maxConcurrentActivities,
    maxConcurrentLocalActivityExecutions: c.maxConcurrentActivities,
    maxConcurrentWorkflowTaskExecutions: c.maxConcurrentWorkflowTasks,
    // Recipient workflows are many: the cache keeps those in flight from being replayed from history at each task.
    maxCachedWorkflows: c.maxCachedWorkflows,
  });
}
