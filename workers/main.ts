/** Worker process entry: connects to Temporal and Postgres from the configuration and runs until SIGINT/SIGTERM. */
import { NativeConnection } from '@temporalio/worker';
import { settings } from '../config/settings';
import { loadSecrets } from '../config/secrets';
import { createPool } from '../db/pool';
import { migrate } from '../db/migrate';
import { seedQualificationRules } from '../db/qualification-rule-store';
import { createActivityDependencies } from '../activities/dependencies';
import { createWorker } from './create-worker';

async function main() {
  const s = settings();
  if (!s.DATABASE_URL) throw new Error('DATABASE_URL is required to run a worker on its own (npm start runs the embedded stack)');
  const pool = createPool(s.DATABASE_URL);
  await migrate(pool);
  await seedQualificationRules(pool);
  const connection = await NativeConnection.connect({ address: s.TEMPORAL_ADDRESS });
  const deps = createActivityDependencies(pool, s, loadSecrets(s));
  await deps.rules.start();
  const worker = await createWorker({
    connection,
    namespace: s.TEMPORAL_NAMESPACE,
    taskQueue: s.TASK_QUEUE,
    deps,
    maxConcurrentActivities: s.WORKER_MAX_CONCURRENT_ACTIVITIES,
    maxConcurrentWorkflowTasks: s.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS,
    // A prebuilt bundle starts the worker in about a second instead of bundling the workflows first.
    workflowBundle: s.WORKFLOW_BUNDLE_PATH ? { codePath: s.WORKFLOW_BUNDLE_PATH } : undefined,
  });
  console.log(JSON.stringify({ msg: 'worker started', taskQueue: s.TASK_QUEUE, temporal: s.TEMPORAL_ADDRESS }));
  await worker.run();
  deps.rules.stop();
  deps.sender.close();
  await pool.end();
  await connection.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
