/** The life of a delivery: analysis, confirmation, contact date, fan-out in pages, and KPIs kept current until every recipient is final. */
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
import { allRecipientsFinal, type DeliveryKpis } from '../domain/efs-status';
import {
  cancelSignal,
  confirmUpdate,
  deliveryKpisQuery,
  deliveryStateQuery,
  type DeliveryPhase,
  type DeliveryStateView,
  type DeliveryWorkflowInput,
} from './definitions';
import { recipientBatchWorkflow } from './recipient-batch-workflow';
import { DeliveryIdAttribute, DeliveryStateAttribute } from './search-attributes';

// Analysis reads and writes the whole population in set-based SQL: minutes at most, even for millions.
const { analyseDelivery } = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 10 },
});

// Small single-statement reads and writes: local activities cost one history event each.
const { setDeliveryState, claimRecipientPage, readDeliveryKpis, cancelPendingRecipients } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 20 },
});

const DEFAULT_PAGE_SIZE = 500;
const DEFAULT_MAX_IN_FLIGHT = 2_000;
const DEFAULT_KPI_REFRESH_MS = 2_000;
// Well under the ~50K-event limit: a new run starts long before the history gets slow to replay.
const HISTORY_EVENTS_BEFORE_CONTINUE = 10_000;

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
  };
  let cancelRequested = false;
  let analysing = false;

  setHandler(deliveryStateQuery, () => view);
  setHandler(deliveryKpisQuery, () => view.kpis);
  setHandler(cancelSignal, () => {
    cancelRequested = true;
  });
  setHandler(
    confirmUpdate,
    (req) => {
      view.confirmedBy = req.confirmedBy ?? 'api';
      return view.phase;
    },
    {
      validator: (_req: { confirmedBy?: string }) => {
        if (analysing) throw new Error('the delivery is still being analysed; confirm once the analysis has ended');
        if (cancelRequested || view.phase === 'cancelled') throw new Error('the delivery is cancelled');
        if (view.phase === 'analysis_failed') throw new Error('the analysis found blocking errors; fix them before confirming');
        if (view.phase !== 'awaiting_confirmation') throw new Error(`the delivery is already confirmed (phase: ${view.phase})`);
      },
    },
  );

  async function enter(phase: DeliveryPhase): Promise<void> {
    view.phase = phase;
    upsertSearchAttributes([{ key: DeliveryStateAttribute, value: phase }]);
    await setDeliveryState(input.deliveryId, phase === 'analysis_failed' ? 'analysis_failed' : phase);
  }

  async function refreshKpis(): Promise<DeliveryKpis> {
    view.kpis = await readDeliveryKpis(input.deliveryId);
    view.kpisAtMs = Date.now(); // deterministic inside workflows: the SDK replays the recorded time
    return view.kpis;
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
    // --- analysis and confirmation ---
    await enter('analysing');
    analysing = true;
    const analysis: AnalysisSummary = await analyseDelivery(input.deliveryId);
    analysing = false;
    view.analysis = analysis;
    await refreshKpis();
    if (!analysis.confirmable) {
      await enter('analysis_failed');
      await condition(() => cancelRequested);
      return finishCancelled();
    }
    if (input.autoConfirm) {
      view.confirmedBy = 'auto';
    } else {
      await enter('awaiting_confirmation');
      await condition(() => view.confirmedBy !== null || cancelRequested);
      if (cancelRequested) return finishCancelled();
    }

    // --- contact date ---
    await enter('scheduled');
    if (input.contactDateMs !== undefined) {
      const wait = input.contactDateMs - Date.now();
      if (wait > 0) await condition(() => cancelRequested, wait);
      if (cancelRequested) return finishCancelled();
    }
    view.validityEndsAtMs = Date.now() + input.validitySeconds * 1000;
    await enter('sending');
  }

  // --- sending: hand recipients over page by page, within the in-flight window ---
  const validityEndsAtMs = view.validityEndsAtMs!;
  let exhausted = false;
  while (!exhausted) {
    if (cancelRequested) return finishCancelled();
    const k = await refreshKpis();
    if (k.awaitingFirstAttempt + pageSize > maxInFlight) {
      await condition(() => cancelRequested, refreshMs);
      continue;
    }
    const page = await claimRecipientPage({ deliveryId: input.deliveryId, afterRecipientId: view.handedOverUpToRecipientId, limit: pageSize });
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
    if (workflowInfo().historyLength > HISTORY_EVENTS_BEFORE_CONTINUE || workflowInfo().continueAsNewSuggested) {
      return continueAs(input, view);
    }
  }

  // --- every recipient handed over: follow the log until all are final ---
  for (;;) {
    const k = await refreshKpis();
    if (allRecipientsFinal(k)) break;
    if (cancelRequested) return finishCancelled();
    await condition(() => cancelRequested, refreshMs);
    if (workflowInfo().historyLength > HISTORY_EVENTS_BEFORE_CONTINUE) return continueAs(input, view);
  }
  await enter('completed');
  return view;
}

function continueAs(input: DeliveryWorkflowInput, view: DeliveryStateView): Promise<never> {
  if (view.validityEndsAtMs === null) throw ApplicationFailure.nonRetryable('continue-as-new before sending started');
  return continueAsNew<typeof deliveryWorkflow>({
    ...input,
    resume: {
      phase: view.phase,
      afterRecipientId: view.handedOverUpToRecipientId,
      validityEndsAtMs: view.validityEndsAtMs,
      analysis: view.analysis,
      kpis: view.kpis,
      batchesStarted: view.batchesStarted,
      confirmedBy: view.confirmedBy,
    },
  });
}
