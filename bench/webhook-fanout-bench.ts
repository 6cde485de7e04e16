/**
 * Sending at full speed with and without webhook subscriptions, paired on one stack (docs/webhooks.md, "What it costs"):
 *
 *   npx tsx bench/webhook-fanout-bench.ts [--recipients 2000] [--pairs 2]
 *
 * Each pair runs the fan-out bench (bench/fanout-bench.ts) once with no subscription and once with two endpoints
 * subscribed to every event type (two local HTTP receivers that answer 204), in alternating order so that drift on
 * a shared host falls on both. Reports the completion rates, their ratio, and what the endpoints received.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { startBenchStack, type BenchStack, type WorkerTuning } from './stack';
import { runFanoutBench } from './fanout-bench';
import { median, round } from './measure';
import { WEBHOOK_EVENT_TYPES } from '../domain/webhook-events';
import { webhookEndpointWorkflowId } from '../workflows/contract';
import type { webhookEndpointWorkflow } from '../workflows/webhook-endpoint-workflow';

interface Receiver {
  url: string;
  events: number;
  requests: number;
  /** Body bytes received, and the largest body. */
  bytes: number;
  largestBody: number;
  close(): Promise<void>;
}

async function receiver(): Promise<Receiver> {
  const r = { events: 0, requests: 0, bytes: 0, largestBody: 0 };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      r.requests++;
      r.bytes += body.length;
      r.largestBody = Math.max(r.largestBody, body.length);
      r.events += (JSON.parse(body.toString('utf8')) as { data: { events: unknown[] } }).data.events.length;
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    get events() {
      return r.events;
    },
    get requests() {
      return r.requests;
    },
    get bytes() {
      return r.bytes;
    },
    get largestBody() {
      return r.largestBody;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Subscribes a receiver the way POST /api/webhooks does: the row, then its endpoint workflow. */
async function subscribe(stack: BenchStack, url: string): Promise<string> {
  const { subscription } = await stack.deps.webhooks.create({ url, eventTypes: [...WEBHOOK_EVENT_TYPES] });
  await stack.client.workflow.start<typeof webhookEndpointWorkflow>('webhookEndpointWorkflow', {
    taskQueue: stack.settings.TASK_QUEUE,
    workflowId: webhookEndpointWorkflowId(subscription.id),
    args: [{ subscriptionId: subscription.id }],
  });
  return subscription.id;
}

async function unsubscribe(stack: BenchStack, id: string): Promise<void> {
  await stack.deps.webhooks.delete(id);
  await stack.client.workflow.getHandle(webhookEndpointWorkflowId(id)).cancel().catch(() => undefined);
}

async function main() {
  const { values } = parseArgs({ options: { recipients: { type: 'string', default: '2000' }, pairs: { type: 'string', default: '2' } } });
  const n = Number(values.recipients);
  const pairs = Number(values.pairs);
  const log = (m: string) => console.log(`[webhook-fanout] ${m}`);
  const stack = await startBenchStack(log);
  const tuning: WorkerTuning = { maxConcurrentActivities: stack.settings.WORKER_MAX_CONCURRENT_ACTIVITIES, maxConcurrentWorkflowTasks: stack.settings.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS };
  const rates: Record<'none' | 'two', number[]> = { none: [], two: [] };
  const cpu: Record<'none' | 'two', Record<string, number>[]> = { none: [], two: [] };
  const received: { events: number; requests: number; bytesPerEvent: number; largestBody: number; expected: number; drainSeconds: number }[] = [];
  try {
    for (let p = 0; p < pairs; p++) {
      for (const mode of p % 2 === 0 ? (['none', 'two'] as const) : (['two', 'none'] as const)) {
        const receivers = mode === 'two' ? [await receiver(), await receiver()] : [];
        const subs = [];
        for (const r of receivers) subs.push(await subscribe(stack, r.url));
        const result = await runFanoutBench(stack, { recipients: n, tuning, log });
        rates[mode].push(result.steadyCompletedPerSecond);
        cpu[mode].push(result.cpu.msPerRecipient);
        log(
          `pair ${p + 1}, ${mode === 'two' ? 'two endpoints' : 'no subscription'}: ${result.completedPerSecond}/s (steady ${result.steadyCompletedPerSecond}/s); ` +
            `CPU ms per recipient ${JSON.stringify(result.cpu.msPerRecipient)}`,
        );
        if (mode === 'two') {
          // Every recipient's sent event, plus the delivery's own: wait until both endpoints have them.
          const t0 = performance.now();
          const expected = n + 5;
          while (receivers.some((r) => r.events < expected) && performance.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 200));
          const drainSeconds = round((performance.now() - t0) / 1000, 1);
          for (const r of receivers) {
            received.push({ events: r.events, requests: r.requests, bytesPerEvent: Math.round(r.bytes / Math.max(1, r.events)), largestBody: r.largestBody, expected, drainSeconds });
          }
          log(`endpoints: ${receivers.map((r) => `${r.events} events in ${r.requests} POSTs`).join(', ')}; the last ${drainSeconds} s after the delivery completed`);
        }
        for (const id of subs) await unsubscribe(stack, id);
        for (const r of receivers) await r.close();
      }
    }
  } finally {
    await stack.stop();
  }
  const none = median(rates.none);
  const two = median(rates.two);
  console.log(
    JSON.stringify(
      { recipients: n, pairs, webhookBatch: { maxEvents: stack.settings.WEBHOOK_BATCH_MAX_EVENTS, lingerMs: stack.settings.WEBHOOK_BATCH_LINGER_MS }, steadyCompletedPerSecond: rates, cpuMsPerRecipient: cpu, medianNone: none, medianTwoEndpoints: two, ratio: round(two / none, 3), endpoints: received },
      null,
      1,
    ),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
