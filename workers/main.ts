/** Worker process entry: connects to Temporal and Postgres from the configuration and runs until SIGINT/SIGTERM. */
import { NativeConnection } from '@temporalio/worker';
import { settings } from '../config/settings';
import { buildActivityDependencies, buildWorker, openRuntime } from '../runtime/composition-root';

async function main() {
  const s = settings();
  const rt = await openRuntime(s);
  const connection = await NativeConnection.connect({ address: s.TEMPORAL_ADDRESS });
  const deps = buildActivityDependencies(rt);
  await deps.rules.start();
  // WORKFLOW_BUNDLE_PATH: a prebuilt bundle starts the worker in about a second instead of bundling the workflows first.
  const worker = await buildWorker(rt, { connection, deps });
  console.log(JSON.stringify({ msg: 'worker started', taskQueue: s.TASK_QUEUE, temporal: s.TEMPORAL_ADDRESS }));
  await worker.run();
  deps.rules.stop();
  await deps.sender.close();
  await rt.close();
  await connection.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
