/**
 * The life of a delivery, as four phases over one state object (DeliveryRun): analyse until confirmed → wait for
 * the contact date → hand the waves over page by page → follow the log until every recipient is final.
 * Cancellation ends any phase; a sending delivery continues as new when its history grows.
 */
import { allHandlersFinished, condition, continueAsNew, executeChild, patched, proxyActivities, startChild } from '@temporalio/workflow';
import { allRecipientsFinal } from '../domain/efs-status';
import { planWaves } from '../domain/wave-plan';
import {
  deliveryWorkflowId,
  recipientBatchWorkflowId,
  type AnalysisSummary,
  type DeliveryActivities,
  type DeliveryStateView,
  type DeliveryWorkflowInput,
  type WaveProgress,
} from './contract';
import { DeliveryRun, deliveryLocalSteps } from './delivery-run';
import { registerDeliveryHandlers } from './delivery-handlers';
import { recipientBatchWorkflow } from './recipient-batch-workflow';
import { DeliveryIdAttribute } from './search-attributes';

// Analysis reads and writes the whole population in set-based SQL: under a minute even for a million recipients.
const { analyseDelivery } = proxyActivities<DeliveryActivities>({
  startToCloseTimeout: '10 minutes',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 10 },
});

// Cancelling a million pending recipients takes tens of seconds: a regular activity, in chunks, heartbeating between
// them, so a dead worker is noticed in 30 s and the retry goes on where the last chunk ended.
const { cancelPendingRecipients } = proxyActivities<DeliveryActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 20 },
});

const { claimRecipientPage } = deliveryLocalSteps;

type Ending = 'completed' | 'cancelled' | 'continue';

/**
 * Patch (2026-12-01): a page is claimed without reading the KPIs first when the last read plus what was handed over
 * since leaves room in the in-flight window; one local activity less per page. Deprecate once no delivery started
 * before it is still open (docs/workflow-versioning.md).
 */
const SKIP_KPI_READ_WHEN_WINDOW_HAS_ROOM = 'skip-kpi-read-when-window-has-room';

export async function deliveryWorkflow(input: DeliveryWorkflowInput): Promise<DeliveryStateView> {
  const run = new DeliveryRun(input);
  registerDeliveryHandlers(run);

  const ending = await runPhases(run);
  // Every update accepted so far has finished (its write is in Postgres) before this run returns or hands over.
  await condition(allHandlersFinished);
  if (ending === 'continue') {
    return continueAsNew<typeof deliveryWorkflow>({ ...input, contactDateMs: run.view.contactDateMs ?? undefined, resume: run.resumeState() });
  }
  return run.view;
}

async function runPhases(run: DeliveryRun): Promise<Ending> {
  if (!run.resumed) {
    const analysis = await analyseUntilConfirmed(run);
    if (analysis === null) return finishCancelled(run);
    if (!(await waitForContactDate(run))) return finishCancelled(run);
    await startSending(run, analysis);
  }
  const handedOver = await handOverWaves(run);
  if (handedOver !== 'completed') return handedOver === 'cancelled' ? finishCancelled(run) : 'continue';
  return followUntilFinal(run);
}

/** Analysis, again after every draft edit, until the delivery is confirmed (or confirms itself); null when cancelled. */
async function analyseUntilConfirmed(run: DeliveryRun): Promise<AnalysisSummary | null> {
  const view = run.view;
  for (;;) {
    await run.enter('analysing');
    run.analysing = true;
    run.reanalyseRequested = false;
    const analysis = await analyseDelivery({ deliveryId: run.deliveryId, plannedStartMs: view.contactDateMs ?? Date.now() });
    run.analysing = false;
    view.analysis = analysis;
    await run.refreshKpis();
    if (run.reanalyseRequested) continue;
    if (run.cancelRequested) return null;
    if (!analysis.confirmable) {
      await run.enter('analysis_failed');
      await condition(() => run.reanalyseRequested || run.cancelRequested);
      if (run.cancelRequested) return null;
      continue;
    }
    if (run.autoConfirm) {
      view.confirmedBy = 'auto';
      return analysis;
    }
    await run.enter('awaiting_confirmation');
    await condition(() => view.confirmedBy !== null || run.reanalyseRequested || run.cancelRequested);
    if (run.cancelRequested) return null;
    if (view.confirmedBy !== null) return analysis;
  }
}

/** Sleeps until the contact date, which may change (or be paused) until it comes; false when cancelled. */
async function waitForContactDate(run: DeliveryRun): Promise<boolean> {
  const view = run.view;
  await run.enter('scheduled');
  for (;;) {
    run.rescheduled = false;
    const wait = view.contactDateMs === null ? 0 : view.contactDateMs - Date.now();
    if (wait > 0) await condition(() => run.cancelRequested || run.rescheduled, wait);
    if (run.cancelRequested) return false;
    if (!run.rescheduled && !view.paused) return true;
    if (view.paused) await condition(() => !view.paused || run.cancelRequested);
  }
}

/** Fixes the validity end and the wave plan from the moment sending starts. */
async function startSending(run: DeliveryRun, analysis: AnalysisSummary): Promise<void> {
  const startMs = Date.now();
  run.view.validityEndsAtMs = startMs + analysis.validitySeconds * 1000;
  run.view.waves = planWaves(analysis.options.waves, analysis.toDeliver, startMs, analysis.ratePerSecond).map(
    (w): WaveProgress => ({ index: w.index, plannedStartMs: w.startAtMs, size: w.size, handedOver: 0, startedAtMs: null, handedOverAtMs: null }),
  );
  await run.enter('sending');
}

/**
 * Each wave hands over its share of recipients, page by page, within the in-flight window. With parallelBatches > 1 a
 * page's batch workflow is started and the next page claimed at once, up to that many batches starting their
 * recipients together; every batch has finished before this returns (a batch is the delivery's child: closing or
 * continuing the delivery as new would end a batch still starting its recipients).
 */
async function handOverWaves(run: DeliveryRun): Promise<Ending> {
  const batches = new Set<Promise<unknown>>();
  try {
    return await handOverPages(run, batches);
  } finally {
    await Promise.all(batches);
  }
}

async function handOverPages(run: DeliveryRun, batches: Set<Promise<unknown>>): Promise<Ending> {
  const view = run.view;
  // Absent in deliveries started before parallel hand-over: one batch at a time, awaited, as their histories recorded.
  const parallelBatches = run.tunables.parallelBatches ?? 1;
  const { pageSize, maxInFlight, kpiRefreshMs } = run.tunables;
  const validityEndsAtMs = view.validityEndsAtMs!;
  const localSendTime = view.analysis?.options.localSendTime;
  for (const wave of view.waves) {
    if (wave.handedOver >= wave.size) continue;
    const waited = await waitKeepingKpisCurrent(run, wave.plannedStartMs, () => run.cancelRequested);
    if (waited === 'continue') return 'continue';
    wave.startedAtMs ??= Date.now();
    while (wave.handedOver < wave.size) {
      if (view.paused) await condition(() => !view.paused || run.cancelRequested);
      if (run.cancelRequested) return 'cancelled';
      // Versioned (docs/workflow-versioning.md): deliveries started before this change read the KPIs before every page.
      if (!(patched(SKIP_KPI_READ_WHEN_WINDOW_HAS_ROOM) && run.windowSurelyHasRoomFor(pageSize))) {
        const k = await run.refreshKpis();
        if (k.awaitingFirstAttempt + pageSize > maxInFlight) {
          await condition(() => run.cancelRequested, kpiRefreshMs);
          continue;
        }
      }
      const page = await claimRecipientPage({
        deliveryId: run.deliveryId,
        afterRecipientId: view.handedOverUpToRecipientId,
        limit: Math.min(pageSize, wave.size - wave.handedOver),
        wave: wave.index,
        localSendTime,
        notBeforeMs: Date.now(),
      });
      if (page.length === 0) return 'completed'; // fewer recipients than planned (none left to hand over)
      const batchNo = view.batchesStarted + 1;
      const batch = {
        workflowId: recipientBatchWorkflowId(deliveryWorkflowId(run.deliveryId), batchNo),
        typedSearchAttributes: [{ key: DeliveryIdAttribute, value: run.deliveryId }],
        args: [{ deliveryId: run.deliveryId, validityEndsAtMs, recipients: page, feedbackWindows: run.tunables.feedbackWindows }] as const,
      };
      if (parallelBatches <= 1) {
        await executeChild(recipientBatchWorkflow, { ...batch, args: [...batch.args] });
      } else {
        // Started (the server has it, so the page is not lost), not awaited: the next page is claimed meanwhile.
        const handle = await startChild(recipientBatchWorkflow, { ...batch, args: [...batch.args] });
        const done: Promise<unknown> = handle.result().finally(() => batches.delete(done));
        // Observed here so that a failing batch is not an unhandled rejection; race and all below still see it.
        done.catch(() => undefined);
        batches.add(done);
        if (batches.size >= parallelBatches) await Promise.race(batches);
      }
      view.batchesStarted = batchNo;
      view.handedOverUpToRecipientId = page[page.length - 1].recipientId;
      wave.handedOver += page.length;
      run.handedOverSinceKpis += page.length;
      if (run.historyFull) return 'continue';
    }
    wave.handedOverAtMs ??= Date.now();
  }
  return 'completed';
}

/** Every recipient handed over: follow the log until all are final. */
async function followUntilFinal(run: DeliveryRun): Promise<Ending> {
  for (;;) {
    const k = await run.refreshKpis();
    if (allRecipientsFinal(k)) break;
    if (run.cancelRequested) return finishCancelled(run);
    // Wakes on cancel; otherwise returns after refreshing, at most maxIdleRefreshMs apart while nothing moves.
    const waited = await waitKeepingKpisCurrent(run, Date.now() + run.tunables.maxIdleRefreshMs, () => run.cancelRequested || allRecipientsFinal(run.view.kpis!));
    if (waited === 'continue') return 'continue';
  }
  await run.enter('completed');
  return 'completed';
}

/** Recipients not handed over end as cancelled; in-flight ones finish their message (and retries) first. */
async function finishCancelled(run: DeliveryRun): Promise<Ending> {
  await cancelPendingRecipients({ deliveryId: run.deliveryId });
  for (;;) {
    const k = await run.refreshKpis();
    if (allRecipientsFinal(k)) break;
    await condition(() => false, run.tunables.kpiRefreshMs);
  }
  await run.enter('cancelled');
  return 'cancelled';
}

/**
 * Waits until `untilMs` or until `wake()` holds, refreshing the KPIs while recipients are in flight, backing off
 * from kpiRefreshMs to maxIdleRefreshMs while nothing changes (soft bounces can wait hours). Returns 'continue' when
 * the history asks for a continue-as-new first.
 */
async function waitKeepingKpisCurrent(run: DeliveryRun, untilMs: number, wake: () => boolean): Promise<'done' | 'continue'> {
  const { kpiRefreshMs, maxIdleRefreshMs } = run.tunables;
  let interval = kpiRefreshMs;
  if (untilMs > Date.now() && !wake()) await run.refreshKpis(); // pages just handed over are in flight now
  for (;;) {
    const remaining = untilMs - Date.now();
    if (remaining <= 0 || wake()) return 'done';
    const before = run.view.kpis;
    const inFlight = before === null || before.takenIntoAccount > 0;
    await condition(wake, inFlight ? Math.min(interval, remaining) : remaining);
    if (wake()) return 'done';
    if (inFlight) {
      const after = await run.refreshKpis();
      const changed = !before || after.sent !== before.sent || after.failed !== before.failed || after.takenIntoAccount !== before.takenIntoAccount;
      interval = changed ? kpiRefreshMs : Math.min(interval * 2, maxIdleRefreshMs);
    }
    if (run.historyFull) return 'continue';
  }
}
