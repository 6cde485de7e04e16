/** The life of a delivery: analysis, confirmation, contact date, waves handed over page by page, and KPIs kept current until every recipient is final. */
import {
  ApplicationFailure,
  condition,
  continueAsNew,
  executeChild,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities, AnalysisSummary } from '../activities';
import type { DraftChanges } from '../activities/delivery-activities';
import { allRecipientsFinal, type DeliveryKpis } from '../domain/efs-status';
import { planWaves } from '../domain/wave-plan';
import {
  cancelUpdate,
  confirmUpdate,
  deliveryKpisQuery,
  deliveryStateQuery,
  editDraftUpdate,
  pauseUpdate,
  rescheduleUpdate,
  resumeUpdate,
  type DeliveryPhase,
  type DeliveryStateView,
  type DeliveryWorkflowInput,
  type WaveProgress,
} from './definitions';
import { recipientBatchWorkflow } from './recipient-batch-workflow';
import { DeliveryIdAttribute, DeliveryStateAttribute } from './search-attributes';

// Analysis reads and writes the whole population in set-based SQL: under a minute even for a million recipients.
const { analyseDelivery } = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 10 },
});

// Small single-statement reads and writes: local activities cost one history event each.
const { setDeliveryState, claimRecipientPage, readDeliveryKpis, cancelPendingRecipients, updateDeliveryDraft, setContactDate } =
  proxyLocalActivities<Activities>({
    startToCloseTimeout: '1 minute',
    retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 20 },
  });

const DEFAULT_PAGE_SIZE = 500;
const DEFAULT_MAX_IN_FLIGHT = 2_000;
const DEFAULT_KPI_REFRESH_MS = 2_000;
const MAX_IDLE_REFRESH_MS = 60_000;
// Well under the ~50K-event limit: a new run starts long before the history gets slow to replay.
const HISTORY_EVENTS_BEFORE_CONTINUE = 10_000;

const BEFORE_CONFIRMATION: DeliveryPhase[] = ['analysing', 'awaiting_confirmation', 'analysis_failed'];

export async function deliveryWorkflow(input: DeliveryWorkflowInput): Promise<DeliveryStateView> {
  const pageSize = input.pageSize ?? DEFAULT_PAGE_SIZE;
  const maxInFlight = input.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  const refreshMs = input.kpiRefreshMs ?? DEFAULT_KPI_REFRESH_MS;
  const resumed = input.resume;

  const view: DeliveryStateView = {
    deliveryId: input.deliveryId,
    phase: resumed?.phase ?? 'analysing',
    analysis: resumed?.analysis ?? null,
    kpis: resumed?.kpis ?? null,
    kpisAtMs: null,
    validityEndsAtMs: resumed?.validityEndsAtMs ?? null,
    contactDateMs: input.contactDateMs ?? null,
    handedOverUpToRecipientId: resumed?.afterRecipientId ?? 0,
    batchesStarted: resumed?.batchesStarted ?? 0,
    confirmedBy: resumed?.confirmedBy ?? null,
    paused: resumed?.paused ?? false,
    cancelReason: null,
    waves: resumed?.waves ?? [],
  };
  let cancelRequested = false;
  let analysing = false;
  let reanalyse = false;
  let rescheduled = false;
  let editing = 0;

  const isEnded = () => view.phase === 'completed' || view.phase === 'cancelled';

  setHandler(deliveryStateQuery, () => view);
  setHandler(deliveryKpisQuery, () => view.kpis);

  setHandler(
    confirmUpdate,
    (req) => {
      view.confirmedBy = req.confirmedBy ?? 'api';
      return view.phase;
    },
    {
      validator: (_req: { confirmedBy?: string }) => {
        if (cancelRequested || view.phase === 'cancelled') throw new Error('the delivery is cancelled');
        if (analysing || reanalyse || editing > 0 || view.phase === 'analysing') throw new Error('the delivery is still being analysed; confirm once the analysis has ended');
        if (view.phase === 'analysis_failed') throw new Error('the analysis found blocking errors; fix them before confirming');
        if (view.phase !== 'awaiting_confirmation' || view.confirmedBy !== null) throw new Error(`the delivery is already confirmed (phase: ${view.phase})`);
      },
    },
  );
  setHandler(
    cancelUpdate,
    (req) => {
      cancelRequested = true;
      view.cancelReason = req.reason ?? null;
      return view.phase;
    },
    {
      validator: (_req: { reason?: string }) => {
        if (isEnded()) throw new Error(`the delivery is already ${view.phase}`);
        if (cancelRequested) throw new Error('the delivery is already being cancelled');
      },
    },
  );
  setHandler(
    pauseUpdate,
    async () => {
      view.paused = true;
      if (view.phase === 'sending') await enter('paused');
      return view.phase;
    },
    {
      validator: (_req: { reason?: string }) => {
        if (isEnded() || cancelRequested) throw new Error(`the delivery is ${cancelRequested ? 'being cancelled' : view.phase}`);
        if (view.paused) throw new Error('the delivery is already paused');
        if (BEFORE_CONFIRMATION.includes(view.phase)) throw new Error('only a confirmed delivery can be paused; it is not confirmed yet');
      },
    },
  );
  setHandler(
    resumeUpdate,
    async () => {
      view.paused = false;
      if (view.phase === 'paused') await enter('sending');
      return view.phase;
    },
    {
      validator: () => {
        if (!view.paused) throw new Error('the delivery is not paused');
      },
    },
  );
  setHandler(
    rescheduleUpdate,
    async (req) => {
      await setContactDate({ deliveryId: input.deliveryId, contactDateMs: req.contactDateMs });
      view.contactDateMs = req.contactDateMs;
      rescheduled = true;
      return view.phase;
    },
    {
      validator: (_req: { contactDateMs: number | null }) => {
        if (cancelRequested || isEnded()) throw new Error(`the delivery is ${cancelRequested ? 'being cancelled' : view.phase}`);
        if (![...BEFORE_CONFIRMATION, 'scheduled'].includes(view.phase)) throw new Error('the contact date cannot change once sending has started');
      },
    },
  );
  setHandler(
    editDraftUpdate,
    async (changes) => {
      editing++;
      try {
        await updateDeliveryDraft({ deliveryId: input.deliveryId, changes });
        reanalyse = true;
      } finally {
        editing--;
      }
      return view.phase;
    },
    {
      validator: (_changes: DraftChanges) => {
        if (cancelRequested || isEnded()) throw new Error(`the delivery is ${cancelRequested ? 'being cancelled' : view.phase}`);
        if (!BEFORE_CONFIRMATION.includes(view.phase) || view.confirmedBy !== null) throw new Error('the delivery is confirmed: its content and target can no longer change');
      },
    },
  );

  async function enter(phase: DeliveryPhase): Promise<void> {
    view.phase = phase;
    upsertSearchAttributes([{ key: DeliveryStateAttribute, value: phase }]);
    await setDeliveryState(input.deliveryId, phase);
  }

  async function refreshKpis(): Promise<DeliveryKpis> {
    view.kpis = await readDeliveryKpis(input.deliveryId);
    view.kpisAtMs = Date.now(); // deterministic inside workflows: the SDK replays the recorded time
    return view.kpis;
  }

  /**
   * Waits until `untilMs` or until `wake()` holds, refreshing the KPIs while recipients are in flight, backing off
   * from `refreshMs` to a minute while nothing changes (soft bounces can wait hours). Returns false when the history
   * asks for a continue-as-new first.
   */
  async function waitKeepingKpisCurrent(untilMs: number, wake: () => boolean): Promise<boolean> {
    let interval = refreshMs;
    if (untilMs > Date.now() && !wake()) await refreshKpis(); // pages just handed over are in flight now
    for (;;) {
      const remaining = untilMs - Date.now();
      if (remaining <= 0 || wake()) return true;
      const before = view.kpis;
      const inFlight = before === null || before.takenIntoAccount > 0;
      await condition(wake, inFlight ? Math.min(interval, remaining) : remaining);
      if (wake()) return true;
      if (inFlight) {
        const after = await refreshKpis();
        const changed = !before || after.sent !== before.sent || after.failed !== before.failed || after.takenIntoAccount !== before.takenIntoAccount;
        interval = changed ? refreshMs : Math.min(interval * 2, MAX_IDLE_REFRESH_MS);
      }
      if (workflowInfo().historyLength > HISTORY_EVENTS_BEFORE_CONTINUE) return false;
    }
  }

  async function finishCancelled(): Promise<DeliveryStateView> {
    await cancelPendingRecipients(input.deliveryId);
    // In-flight recipients finish their current message (and retries); the delivery ends when they are final.
    for (;;) {
      const k = await refreshKpis();
      if (allRecipientsFinal(k)) break;
      await condition(() => false, refreshMs);
    }
    await enter('cancelled');
    return view;
  }

  if (!resumed) {
    // --- analysis and confirmation (again after every draft edit) ---
    let analysis: AnalysisSummary;
    for (;;) {
      await enter('analysing');
      analysing = true;
      reanalyse = false;
      analysis = await analyseDelivery({ deliveryId: input.deliveryId, plannedStartMs: view.contactDateMs ?? Date.now() });
      analysing = false;
      view.analysis = analysis;
      await refreshKpis();
      if (reanalyse) continue;
      if (cancelRequested) return finishCancelled();
      if (!analysis.confirmable) {
        await enter('analysis_failed');
        await condition(() => reanalyse || cancelRequested);
        if (cancelRequested) return finishCancelled();
        continue;
      }
      if (input.autoConfirm) {
        view.confirmedBy = 'auto';
        break;
      }
      await enter('awaiting_confirmation');
      await condition(() => view.confirmedBy !== null || reanalyse || cancelRequested);
      if (cancelRequested) return finishCancelled();
      if (view.confirmedBy !== null) break;
    }

    // --- contact date (changeable until sending starts) ---
    await enter('scheduled');
    for (;;) {
      rescheduled = false;
      const wait = view.contactDateMs === null ? 0 : view.contactDateMs - Date.now();
      if (wait > 0) await condition(() => cancelRequested || rescheduled, wait);
      if (cancelRequested) return finishCancelled();
      if (!rescheduled && !view.paused) break;
      if (view.paused) await condition(() => !view.paused || cancelRequested);
    }
    const startMs = Date.now();
    view.validityEndsAtMs = startMs + analysis.validitySeconds * 1000;
    view.waves = planWaves(analysis.options.waves, analysis.toDeliver, startMs, analysis.ratePerSecond).map((w) => ({
      index: w.index,
      plannedStartMs: w.startAtMs,
      size: w.size,
      handedOver: 0,
      startedAtMs: null,
      handedOverAtMs: null,
    }));
    await enter('sending');
  }

  // --- waves: each hands over its share of recipients page by page, within the in-flight window ---
  const validityEndsAtMs = view.validityEndsAtMs!;
  const localSendTime = view.analysis?.options.localSendTime;
  let exhausted = false;
  for (const wave of view.waves) {
    if (exhausted) break;
    if (wave.handedOver >= wave.size) continue;
    if (!(await waitKeepingKpisCurrent(wave.plannedStartMs, () => cancelRequested))) return continueAs(input, view);
    wave.startedAtMs ??= Date.now();
    while (wave.handedOver < wave.size) {
      if (view.paused) await condition(() => !view.paused || cancelRequested);
      if (cancelRequested) return finishCancelled();
      const k = await refreshKpis();
      if (k.awaitingFirstAttempt + pageSize > maxInFlight) {
        await condition(() => cancelRequested, refreshMs);
        continue;
      }
      const page = await claimRecipientPage({
        deliveryId: input.deliveryId,
        afterRecipientId: view.handedOverUpToRecipientId,
        limit: Math.min(pageSize, wave.size - wave.handedOver),
        wave: wave.index,
        localSendTime,
        notBeforeMs: Date.now(),
      });
      if (page.length === 0) {
        exhausted = true;
        break;
      }
      const batchNo = view.batchesStarted + 1;
      await executeChild(recipientBatchWorkflow, {
        workflowId: `${workflowInfo().workflowId}-batch-${batchNo}`,
        typedSearchAttributes: [{ key: DeliveryIdAttribute, value: input.deliveryId }],
        args: [{ deliveryId: input.deliveryId, validityEndsAtMs, recipients: page }],
      });
      view.batchesStarted = batchNo;
      view.handedOverUpToRecipientId = page[page.length - 1].recipientId;
      wave.handedOver += page.length;
      if (workflowInfo().historyLength > HISTORY_EVENTS_BEFORE_CONTINUE || workflowInfo().continueAsNewSuggested) {
        return continueAs(input, view);
      }
    }
    wave.handedOverAtMs ??= Date.now();
  }

  // --- every recipient handed over: follow the log until all are final ---
  for (;;) {
    const k = await refreshKpis();
    if (allRecipientsFinal(k)) break;
    if (cancelRequested) return finishCancelled();
    // Wakes on cancel; otherwise returns after refreshing, at most a minute apart while nothing moves.
    if (!(await waitKeepingKpisCurrent(Date.now() + MAX_IDLE_REFRESH_MS, () => cancelRequested || allRecipientsFinal(view.kpis!)))) {
      return continueAs(input, view);
    }
  }
  await enter('completed');
  return view;
}

function continueAs(input: DeliveryWorkflowInput, view: DeliveryStateView): Promise<never> {
  if (view.validityEndsAtMs === null) throw ApplicationFailure.nonRetryable('continue-as-new before sending started');
  return continueAsNew<typeof deliveryWorkflow>({
    ...input,
    contactDateMs: view.contactDateMs ?? undefined,
    resume: {
      phase: view.phase,
      paused: view.paused,
      afterRecipientId: view.handedOverUpToRecipientId,
      validityEndsAtMs: view.validityEndsAtMs,
      analysis: view.analysis,
      kpis: view.kpis,
      batchesStarted: view.batchesStarted,
      confirmedBy: view.confirmedBy,
      waves: view.waves,
    },
  });
}
