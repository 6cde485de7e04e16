/**
 * `--compare-direct-start`: the same recipient workflows handed over without child workflows. The bench claims pages
 * with the product's claimPage and starts each recipient workflow from the client (what an activity holding a Temporal
 * client would do), with the product's window of 2,000 recipients awaiting their first attempt. Compared with the
 * batch-of-children path, it shows what the batch workflow's bookkeeping costs the server per recipient.
 */
import { WorkflowIdReusePolicy } from '@temporalio/client';
import { recipientWorkflowId } from '../workflows/contract';
import { DeliveryIdAttribute, EfsStatusAttribute, RecipientDomainAttribute } from '../workflows/search-attributes';
import type { BenchStack, WorkerTuning } from './stack';
import { cleanPopulation } from './population';
import { BENCH_FROM, BENCH_TEMPLATE, uploadList } from './analysis-bench';
import { cpuDelta, round, secondsSince, sleep } from './measure';

const PAGE = 500;
const MAX_IN_FLIGHT = 2_000;
const START_CONCURRENCY = 50;

export interface DirectStartResult {
  recipients: number;
  worker: WorkerTuning;
  completeSeconds: number;
  completedPerSecond: number;
  cpuMsPerRecipient: { benchProcess: number; temporalServer: number; postgres: number };
  coresBusy: number;
}

async function mapLimit<T>(items: T[], limit: number, f: (x: T) => Promise<unknown>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (i < items.length) await f(items[i++]);
  }));
}

export async function runDirectStartFanout(stack: BenchStack, opts: { recipients: number; tuning: WorkerTuning; log: (m: string) => void }): Promise<DirectStartResult> {
  const { log, recipients: n } = opts;
  log(`direct-start fan-out ${n.toLocaleString('en')}: uploading the list`);
  const upload = await uploadList(stack, cleanPopulation(n), `bench direct start ${n}`);
  await stack.startWorker(opts.tuning);
  await stack.deps.keys.ensureKey(BENCH_FROM.address.split('@')[1], stack.settings.DKIM_SELECTOR, 'rsa-sha256');
  const created = await stack.service.store.create(
    { name: `bench direct start ${n}`, from: BENCH_FROM, ...BENCH_TEMPLATE, validitySeconds: 86_400, autoConfirm: true, options: {} },
    { listId: upload.listId },
  );
  const id = created.id;
  await stack.service.store.setState(id, 'sending');
  const validityEndsAtMs = Date.now() + 86_400_000;

  const cpu0 = stack.cpu();
  const t0 = performance.now();
  const counts = async () =>
    (
      await stack.probe.query<{ handed: number; final: number }>(
        `SELECT count(*) FILTER (WHERE status IN ('taken_into_account', 'sent', 'failed'))::int AS handed,
                count(*) FILTER (WHERE status IN ('sent', 'failed'))::int AS final FROM delivery_recipients WHERE delivery_id = $1`,
        [id],
      )
    ).rows[0];
  let after = 0;
  let lastLog = 0;
  for (;;) {
    const c = await counts();
    if (c.handed - c.final + PAGE > MAX_IN_FLIGHT) {
      await sleep(500);
      continue;
    }
    const page = await stack.deps.log.claimPage(id, after, PAGE, 1);
    if (page.length === 0) break;
    await mapLimit(page, START_CONCURRENCY, (r) =>
      stack.client.workflow
        .start('recipientWorkflow', {
          taskQueue: stack.settings.TASK_QUEUE,
          workflowId: recipientWorkflowId(id, r.recipientId),
          args: [{ deliveryId: id, recipientId: r.recipientId, domain: r.domain, validityEndsAtMs, sendAtMs: null }],
          workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
          typedSearchAttributes: [
            { key: DeliveryIdAttribute, value: id },
            { key: EfsStatusAttribute, value: 'taken_into_account' },
            { key: RecipientDomainAttribute, value: r.domain },
          ],
        })
        .catch((e) => {
          if ((e as Error).name !== 'WorkflowExecutionAlreadyStartedError') throw e;
        }),
    );
    after = page[page.length - 1].recipientId;
    if (secondsSince(t0) - lastLog >= 15) {
      lastLog = secondsSince(t0);
      log(`  t=${lastLog.toFixed(0)}s handed over ${c.handed}, final ${c.final}`);
    }
  }
  for (;;) {
    const c = await counts();
    if (c.final >= n) break;
    await sleep(1000);
  }
  await sleep(1500);
  const cpu = cpuDelta(cpu0, stack.cpu());
  const times = await stack.probe.query<{ first: Date; last: Date }>(
    `SELECT min(handed_over_at) AS first, max(final_at) AS last FROM delivery_recipients WHERE delivery_id = $1`,
    [id],
  );
  const completeSeconds = (times.rows[0].last.getTime() - times.rows[0].first.getTime()) / 1000;
  const wall = secondsSince(t0);
  const per = (x: number) => round((x * 1000) / n, 2);
  const result: DirectStartResult = {
    recipients: n,
    worker: opts.tuning,
    completeSeconds: round(completeSeconds, 1),
    completedPerSecond: round(n / completeSeconds, 1),
    cpuMsPerRecipient: { benchProcess: per(cpu.benchProcess), temporalServer: per(cpu.temporalServer), postgres: per(cpu.postgres) },
    coresBusy: round((cpu.benchProcess + cpu.temporalServer + cpu.postgres) / wall, 2),
  };
  log(`direct-start fan-out ${n}: completed ${result.completedPerSecond}/s; CPU ms per recipient ${JSON.stringify(result.cpuMsPerRecipient)}`);
  return result;
}
