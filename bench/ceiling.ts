/**
 * `--only ceiling` (and every run with --ceiling-children): the no-op child-workflow ceiling of the Temporal server the
 * bench runs on, measured in the same run as the fan-out so that the engine's rate can be read as a share of it
 * (absolute rates move with the host; the ratio much less). Parents of 500 children each, every child two no-op local
 * activities; completion counted from visibility.
 */
import path from 'node:path';
import { Client } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Worker } from '@temporalio/worker';
import type { BenchStack, WorkerTuning } from './stack';
import { cpuDelta, round, secondsSince, sleep } from './measure';

const PAGE = 500;
const TASK_QUEUE = 'bench-ceiling';

export interface CeilingResult {
  children: number;
  completeSeconds: number;
  completedPerSecond: number;
  cpuMsPerChild: Record<string, number>;
  coresBusy: number;
}

export async function runCeiling(stack: BenchStack, opts: { children: number; tuning: WorkerTuning; log: (m: string) => void; timeoutMinutes?: number }): Promise<CeilingResult> {
  const { log, children: n } = opts;
  const bundle = await bundleWorkflowCode({ workflowsPath: path.join(__dirname, 'ceiling-workflows.ts'), logger: new DefaultLogger('WARN') });
  const connection = await NativeConnection.connect({ address: stack.settings.TEMPORAL_ADDRESS });
  const worker = await Worker.create({
    connection,
    namespace: stack.settings.TEMPORAL_NAMESPACE,
    taskQueue: TASK_QUEUE,
    workflowBundle: { code: bundle.code },
    activities: { noop: async () => undefined },
    maxConcurrentActivityTaskExecutions: opts.tuning.maxConcurrentActivities,
    maxConcurrentLocalActivityExecutions: opts.tuning.maxConcurrentActivities,
    maxConcurrentWorkflowTaskExecutions: opts.tuning.maxConcurrentWorkflowTasks,
  });
  const running = worker.run();
  // Temporal's default data converter: the ceiling measures Temporal alone, without the engine's payload codec.
  const client = new Client({ connection: stack.client.connection, namespace: stack.settings.TEMPORAL_NAMESPACE });
  const prefix = `ceiling-${Date.now()}`;
  try {
    log(`ceiling: ${n.toLocaleString('en')} no-op child workflows in parents of ${PAGE}`);
    const cpu0 = stack.cpu();
    const t0 = performance.now();
    const parents = [];
    for (let from = 0; from < n; from += PAGE) {
      parents.push(
        client.workflow.start('ceilingParent', { taskQueue: TASK_QUEUE, workflowId: `${prefix}-parent-${from}`, args: [{ prefix, from, count: Math.min(PAGE, n - from) }] }),
      );
    }
    await Promise.all(parents);
    const deadline = Date.now() + (opts.timeoutMinutes ?? 30) * 60_000;
    const query = `WorkflowType = 'ceilingChild' AND ExecutionStatus = 'Completed' AND WorkflowId STARTS_WITH '${prefix}-'`;
    for (;;) {
      const { count } = await client.workflow.count(query);
      if (count >= n) break;
      if (Date.now() > deadline) throw new Error(`ceiling: ${count} of ${n} children completed within ${opts.timeoutMinutes ?? 30} minutes`);
      await sleep(500);
    }
    const seconds = secondsSince(t0);
    const cpu = cpuDelta(cpu0, stack.cpu());
    const busy = Object.values(cpu).reduce((a, b) => a + b, 0);
    const result: CeilingResult = {
      children: n,
      completeSeconds: round(seconds, 1),
      completedPerSecond: round(n / seconds, 1),
      cpuMsPerChild: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, round((v * 1000) / n, 1)])),
      coresBusy: round(busy / seconds, 2),
    };
    log(`ceiling: ${result.completedPerSecond}/s (${result.completeSeconds} s), CPU ms per child ${JSON.stringify(result.cpuMsPerChild)}`);
    return result;
  } finally {
    worker.shutdown();
    await running.catch(() => undefined);
    await connection.close();
  }
}
