/**
 * Fan-out of a confirmed delivery: how fast recipient workflows are started and how fast they complete (each one renders,
 * DKIM-signs and sends its message to the sandbox MX and records the outcome), how long each recipient waits from its
 * hand-over to `sent`, how long and how big the workflows' histories get, and what each part of the stack spends per
 * recipient (CPU seconds, peak memory, Postgres rows written).
 */
import { createDeliverySchema } from '../api/delivery-input';
import { deliveryStateQuery, deliveryWorkflowId, recipientWorkflowId, type DeliveryStateView } from '../workflows/contract';
import type { BenchStack, WorkerTuning } from './stack';
import { cleanPopulation } from './population';
import { signMessage } from '../mail/dkim/signer';
import { MessageContext } from '../activities/message-context';
import { publicUrl } from '../activities/dependencies';
import { BENCH_FROM, BENCH_TEMPLATE, uploadList, type UploadResult } from './analysis-bench';
import { cpuDelta, historySummary, MemoryWatch, pgCounters, pgDelta, round, runsMatching, runsOf, secondsSince, sleep, spread, type Spread, type StageMemory } from './measure';

/** Recipient workflows whose histories are read, picked at random among those handed over. */
const RECIPIENT_HISTORY_SAMPLE = 50;

export interface FanoutSample {
  /** Seconds since the delivery was created. */
  t: number;
  handedOver: number;
  final: number;
}

export interface FanoutResult {
  recipients: number;
  worker: WorkerTuning;
  upload: Omit<UploadResult, 'listId' | 'expected'>;
  completed: boolean;
  /** Creation → the delivery enters `sending` (copy of the list, analysis, auto-confirmation). */
  secondsToSending: number;
  /** First hand-over → the last page's recipient workflows are started (the delivery's own record of its wave). */
  startSeconds: number;
  startedPerSecond: number;
  /** First hand-over → the last recipient is final (sent or failed), from the delivery log. */
  completeSeconds: number;
  completedPerSecond: number;
  /** Completion rate between 10% and 90% of the recipients final: the steady state without ramp-up and tail. */
  steadyCompletedPerSecond: number;
  /**
   * Recipients handed over but not final yet, over the samples taken while sending: how much of the delivery's
   * 2,000-recipient window the hand-over actually uses.
   */
  inFlight: { max: number; mean: number };
  /** First hand-over → first message accepted by the sandbox MX. */
  firstMessageSeconds: number;
  sent: number;
  failed: number;
  mxAccepted: number;
  /**
   * Per recipient sent: its `handed_over_at` (the page that holds it is claimed) → its `final_at` (the accepted reply
   * recorded), from the delivery log; percentiles by Postgres' percentile_cont.
   */
  latencyMs: { sent: number; p50: number; p95: number; p99: number; mean: number; max: number };
  histories: {
    deliveryRuns: { runId: string; status: string; events: number | null; bytes: number | null }[];
    deliveryMaxEvents: number;
    /** Every run of every batch workflow of the delivery. */
    batches: { batch: number; runId: string; events: number | null; bytes: number | null }[];
    batchMaxEvents: number;
    /** Events and encoded size (bytes of the History proto) over the parents: delivery runs and batch workflows, and their sum per recipient. */
    parents: {
      deliveryRunEvents: Spread;
      deliveryRunBytes: Spread;
      batchEvents: Spread;
      batchBytes: Spread;
      totalEvents: number;
      totalBytes: number;
      eventsPerRecipient: number;
      bytesPerRecipient: number;
    };
    /**
     * Events and bytes of RECIPIENT_HISTORY_SAMPLE recipient workflows picked at random, read right after the delivery
     * completed: `stillOpen` of them were still in their feedback window (their history lacks its last few events).
     */
    recipients: { sampled: number; stillOpen: number; events: Spread; bytes: Spread };
    recipientEvents: number | null;
    recipientEventTypes: Record<string, number> | null;
  };
  postgres: { rowsWritten: number; rowsPerSecond: number; rowsPerRecipient: number; commitsPerRecipient: number; tables: Record<string, { inserted: number; updated: number; hotUpdated: number }> };
  /**
   * CPU seconds per component over the sending stage, and milliseconds per recipient (and their sum). The delivery
   * service (the API's code) runs in the bench process here: there is no separate API process to count.
   */
  cpu: { seconds: Record<string, number>; msPerRecipient: Record<string, number>; msPerRecipientTotal: number; apiInBenchProcess: true; coresBusy: number };
  /** Peak memory over the sending stage: VmHWM of the bench process and the Temporal server, summed RSS/PSS of Postgres. */
  memory: StageMemory;
  /** Per-recipient work of the worker, replayed outside Temporal on the delivery's first recipients (wall and CPU ms per call). */
  hotPath: Record<string, { wallMs: number; cpuMs: number }>;
  samples: FanoutSample[];
}

/** Times the worker's per-recipient steps one by one: the message build (a row read + render + MIME) and the DKIM signature. */
async function hotPathProfile(stack: BenchStack, deliveryId: string, ids: number[]) {
  const n = ids.length;
  const keys = await stack.deps.keys.signingKeys(BENCH_FROM.address.split('@')[1]);
  const out: Record<string, { wallMs: number; cpuMs: number }> = {};
  const measure = async (name: string, f: (rid: number) => Promise<unknown>) => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (const rid of ids) await f(rid);
    const c = process.cpuUsage(c0);
    out[name] = { wallMs: round((performance.now() - t0) / n, 2), cpuMs: round((c.user + c.system) / 1000 / n, 2) };
  };
  // A context of its own: the worker's keeps the messages it just built, and a cache hit would measure nothing.
  const messages = new MessageContext(stack.deps, { publicUrl: publicUrl(stack.settings), bounceDomain: stack.settings.BOUNCE_DOMAIN, verpSecret: stack.deps.secrets.verpSecret });
  const raws = new Map<number, Buffer>();
  await measure('buildMessage (read row, render, MIME)', async (rid) => raws.set(rid, (await messages.build(deliveryId, rid)).raw));
  await measure('dkimSign', (rid) => signMessage(raws.get(rid)!, keys, new Date()));
  await measure('kpis query (whole delivery)', () => stack.deps.log.kpis(deliveryId));
  return out;
}

function inFlightStats(samples: FanoutSample[]) {
  const during = samples.filter((x) => x.handedOver > 0).map((x) => x.handedOver - x.final);
  return { max: during.length ? Math.max(...during) : 0, mean: during.length ? Math.round(during.reduce((a, b) => a + b, 0) / during.length) : 0 };
}

export async function runFanoutBench(stack: BenchStack, opts: { recipients: number; tuning: WorkerTuning; log: (m: string) => void; maxMinutes?: number }): Promise<FanoutResult> {
  const { log, recipients: n } = opts;
  log(`fan-out ${n.toLocaleString('en')} (worker: ${opts.tuning.maxConcurrentActivities} activities, ${opts.tuning.maxConcurrentWorkflowTasks} workflow tasks): uploading the list`);
  const upload = await uploadList(stack, cleanPopulation(n), `bench fan-out ${n}`);
  await stack.startWorker(opts.tuning);
  await stack.deps.keys.ensureKey(BENCH_FROM.address.split('@')[1], stack.settings.DKIM_SELECTOR, 'rsa-sha256');

  const mx0 = stack.mx.acceptedCount();
  // CPU and row counters cover the sending stage only (from the first sight of phase sending): the copy and the
  // analysis of the delivery are measured by the analysis section.
  let pg0 = await pgCounters(stack.probe);
  let cpu0 = stack.cpu();
  let sendingT0 = performance.now();
  const memoryWatch = () => new MemoryWatch({ temporalPid: stack.temporal.process?.pid, pgDataDir: stack.pgDataDir, temporalPgDataDir: stack.temporalPgDataDir });
  let memory = memoryWatch();
  const t0 = performance.now();
  const input = createDeliverySchema.parse({ name: `bench fan-out ${n}`, from: BENCH_FROM, ...BENCH_TEMPLATE, listId: upload.listId, autoConfirm: true, validity: '1d' });
  const created = await stack.service.create(input);
  const id = created.id;
  const handle = stack.client.workflow.getHandle(deliveryWorkflowId(id));

  const samples: FanoutSample[] = [];
  const deadline = t0 + (opts.maxMinutes ?? Math.max(20, n / 600)) * 60_000;
  let view: DeliveryStateView | null = null;
  let secondsToSending = NaN;
  let lastLog = 0;
  let completed = false;
  while (performance.now() < deadline) {
    view = await handle.query(deliveryStateQuery).catch(() => view);
    const counts = await stack.probe.query<{ handed: number; final: number }>(
      `SELECT count(*) FILTER (WHERE status IN ('taken_into_account', 'sent', 'failed'))::int AS handed,
              count(*) FILTER (WHERE status IN ('sent', 'failed'))::int AS final
       FROM delivery_recipients WHERE delivery_id = $1`,
      [id],
    );
    const t = secondsSince(t0);
    samples.push({ t: round(t, 1), handedOver: counts.rows[0].handed, final: counts.rows[0].final });
    if (Number.isNaN(secondsToSending) && view && !['analysing', 'awaiting_confirmation', 'scheduled'].includes(view.phase)) {
      secondsToSending = round(t, 2);
      [pg0, cpu0, sendingT0] = [await pgCounters(stack.probe), stack.cpu(), performance.now()];
      memory = memoryWatch();
    }
    memory.sample();
    if (t - lastLog >= 15) {
      lastLog = t;
      log(`  t=${t.toFixed(0)}s phase=${view?.phase} handed over ${counts.rows[0].handed}, final ${counts.rows[0].final}, batches ${view?.batchesStarted ?? 0}`);
    }
    if (view?.phase === 'completed') {
      completed = true;
      break;
    }
    await sleep(1000);
  }
  if (!completed) log(`fan-out: not completed within the time limit; reporting what was reached`);
  await sleep(1500); // let Postgres flush its statistics counters
  const cpu1 = stack.cpu();
  const mem = memory.end();
  const pg1 = await pgCounters(stack.probe);
  const wallSeconds = secondsSince(sendingT0);

  // Exact times from the delivery log: first hand-over, last final status, first accepted message.
  const times = await stack.probe.query<{ first_handover: Date; last_final: Date; first_sent: Date; sent: number; failed: number }>(
    `SELECT min(handed_over_at) AS first_handover, max(final_at) AS last_final,
            min(final_at) FILTER (WHERE status = 'sent') AS first_sent,
            count(*) FILTER (WHERE status = 'sent')::int AS sent, count(*) FILTER (WHERE status = 'failed')::int AS failed
     FROM delivery_recipients WHERE delivery_id = $1`,
    [id],
  );
  const tm = times.rows[0];
  const firstHandover = tm.first_handover.getTime();
  const allStartedAt = view?.waves.reduce((a, w) => Math.max(a, w.handedOverAtMs ?? NaN), 0) ?? NaN;
  const startSeconds = (allStartedAt - firstHandover) / 1000;
  const completeSeconds = (tm.last_final.getTime() - firstHandover) / 1000;
  const final = tm.sent + tm.failed;
  const lat = await stack.probe.query<{ n: number; p: number[] | null; mean: number | null; max: number | null }>(
    `SELECT count(*)::int AS n,
            percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM final_at - handed_over_at) * 1000) AS p,
            avg(extract(epoch FROM final_at - handed_over_at) * 1000)::float8 AS mean,
            max(extract(epoch FROM final_at - handed_over_at) * 1000)::float8 AS max
     FROM delivery_recipients
     WHERE delivery_id = $1 AND status = 'sent' AND handed_over_at IS NOT NULL AND final_at IS NOT NULL`,
    [id],
  );
  const l = lat.rows[0];
  const latencyMs = { sent: l.n, p50: round(Number(l.p?.[0] ?? NaN), 0), p95: round(Number(l.p?.[1] ?? NaN), 0), p99: round(Number(l.p?.[2] ?? NaN), 0), mean: round(Number(l.mean ?? NaN), 0), max: round(Number(l.max ?? NaN), 0) };

  // Steady state: from the first sample with >= 10% final to the first with >= 90%.
  const a = samples.find((s) => s.final >= 0.1 * n);
  const b = samples.find((s) => s.final >= 0.9 * n);
  const steady = a && b && b.t > a.t ? (b.final - a.final) / (b.t - a.t) : NaN;

  log('fan-out: reading workflow histories');
  const deliveryRuns = await runsOf(stack.client, deliveryWorkflowId(id));
  // Every run of every batch workflow (`<delivery workflow>-batch-<n>`), listed through visibility.
  const batchPrefix = `${deliveryWorkflowId(id)}-batch-`;
  const batches = (await runsMatching(stack.client, `WorkflowId STARTS_WITH '${batchPrefix}'`))
    .map((r) => ({ batch: Number(r.workflowId.slice(batchPrefix.length)), runId: r.runId, events: r.events, bytes: r.bytes }))
    .sort((x, y) => x.batch - y.batch);
  const parentFigures = [...deliveryRuns, ...batches];
  const sum = (xs: (number | null)[]) => xs.reduce<number>((acc, x) => acc + (x ?? 0), 0);
  const parents = {
    deliveryRunEvents: spread(deliveryRuns.flatMap((r) => (r.events === null ? [] : [r.events]))),
    deliveryRunBytes: spread(deliveryRuns.flatMap((r) => (r.bytes === null ? [] : [r.bytes]))),
    batchEvents: spread(batches.flatMap((r) => (r.events === null ? [] : [r.events]))),
    batchBytes: spread(batches.flatMap((r) => (r.bytes === null ? [] : [r.bytes]))),
    totalEvents: sum(parentFigures.map((r) => r.events)),
    totalBytes: sum(parentFigures.map((r) => r.bytes)),
    eventsPerRecipient: round(sum(parentFigures.map((r) => r.events)) / Math.max(n, 1), 2),
    bytesPerRecipient: round(sum(parentFigures.map((r) => r.bytes)) / Math.max(n, 1), 0),
  };
  const sampled = await stack.probe.query<{ id: number }>(
    `SELECT recipient_id AS id FROM delivery_recipients WHERE delivery_id = $1 AND handed_over_at IS NOT NULL ORDER BY random() LIMIT ${RECIPIENT_HISTORY_SAMPLE}`,
    [id],
  );
  const sampledHistories = [];
  for (const r of sampled.rows) {
    const h = await historySummary(stack.client, recipientWorkflowId(id, r.id));
    if (h) sampledHistories.push(h);
  }
  const recipientsHist = { sampled: sampledHistories.length, stillOpen: sampledHistories.filter((h) => !h.closed).length, events: spread(sampledHistories.map((h) => h.events)), bytes: spread(sampledHistories.map((h) => h.bytes)) };
  const firstHanded = await stack.probe.query<{ id: number }>(
    `SELECT min(recipient_id) AS id FROM delivery_recipients WHERE delivery_id = $1 AND handed_over_at IS NOT NULL`,
    [id],
  );
  const recipientHistory = await historySummary(stack.client, recipientWorkflowId(id, firstHanded.rows[0]?.id ?? 1));
  const recipientEvents = recipientHistory?.events ?? null;

  const handed = await stack.probe.query<{ id: number }>(
    `SELECT recipient_id AS id FROM delivery_recipients WHERE delivery_id = $1 AND handed_over_at IS NOT NULL ORDER BY recipient_id LIMIT 200`,
    [id],
  );
  const ids = handed.rows.map((r) => r.id);
  const hotPath = ids.length ? await hotPathProfile(stack, id, ids).catch((e) => ({ error: { wallMs: NaN, cpuMs: NaN, message: String(e) } })) : {};
  const pgd = pgDelta(pg0, pg1);
  const cpu = cpuDelta(cpu0, cpu1);
  const perRecipient = (x: number) => round((x * 1000) / Math.max(final, 1), 2);
  const result: FanoutResult = {
    recipients: n,
    worker: opts.tuning,
    upload: { rows: upload.rows, seconds: upload.seconds, rowsPerSecond: upload.rowsPerSecond, megabytes: upload.megabytes },
    completed,
    secondsToSending,
    startSeconds: round(startSeconds, 1),
    startedPerSecond: round(n / startSeconds, 1),
    completeSeconds: round(completeSeconds, 1),
    completedPerSecond: round(final / completeSeconds, 1),
    steadyCompletedPerSecond: round(steady, 1),
    inFlight: inFlightStats(samples),
    firstMessageSeconds: round(((tm.first_sent?.getTime() ?? NaN) - firstHandover) / 1000, 2),
    sent: tm.sent,
    failed: tm.failed,
    mxAccepted: stack.mx.acceptedCount() - mx0,
    latencyMs,
    histories: {
      deliveryRuns,
      deliveryMaxEvents: Math.max(...deliveryRuns.map((r) => r.events ?? 0)),
      batches,
      batchMaxEvents: Math.max(...batches.map((b) => b.events ?? 0)),
      parents,
      recipients: recipientsHist,
      recipientEvents,
      recipientEventTypes: recipientHistory?.byType ?? null,
    },
    postgres: {
      rowsWritten: pgd.rowsWritten,
      rowsPerSecond: Math.round(pgd.rowsWritten / wallSeconds),
      rowsPerRecipient: round(pgd.rowsWritten / Math.max(final, 1), 1),
      commitsPerRecipient: round(pgd.commits / Math.max(final, 1), 1),
      tables: pgd.tables,
    },
    cpu: {
      seconds: { ...cpu },
      msPerRecipient: {
        benchProcess: perRecipient(cpu.benchProcess),
        temporalServer: perRecipient(cpu.temporalServer),
        postgres: perRecipient(cpu.postgres),
        ...(cpu.temporalPostgres !== undefined ? { temporalPostgres: perRecipient(cpu.temporalPostgres) } : {}),
      },
      msPerRecipientTotal: perRecipient(cpu.benchProcess + cpu.temporalServer + cpu.postgres + (cpu.temporalPostgres ?? 0)),
      apiInBenchProcess: true,
      coresBusy: round((cpu.benchProcess + cpu.temporalServer + cpu.postgres + (cpu.temporalPostgres ?? 0)) / wallSeconds, 2),
    },
    memory: mem,
    hotPath,
    samples,
  };
  log(
    `fan-out ${n}: started ${result.startedPerSecond}/s, completed ${result.completedPerSecond}/s (steady ${result.steadyCompletedPerSecond}/s); ` +
      `histories: delivery max ${result.histories.deliveryMaxEvents} events over ${deliveryRuns.length} run(s), batch max ${result.histories.batchMaxEvents}, recipient ${recipientEvents}`,
  );
  log(
    `fan-out ${n}: hand-over → sent p50 ${latencyMs.p50} ms, p95 ${latencyMs.p95} ms, p99 ${latencyMs.p99} ms; ` +
      `CPU ms/recipient ${JSON.stringify(result.cpu.msPerRecipient)} (total ${result.cpu.msPerRecipientTotal}); ` +
      `peak RSS bench ${mem.peakMb.benchProcess} MB, temporal ${mem.peakMb.temporalServer} MB (since ${mem.peakSince}), postgres Σ PSS ${mem.postgres.pssSumMbSampledPeak} MB / Σ RSS ${mem.postgres.rssSumMbSampledPeak} MB (sampled peak)`,
  );
  return result;
}
