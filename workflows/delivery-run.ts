/** The one state object of a delivery workflow run: its view (what queries return), the requests handlers leave for the phases, and the serialised writes of its phase. */
import { log, patched, proxyActivities, proxyLocalActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { Mutex } from 'async-mutex';
import type { DeliveryKpis } from '../domain/efs-status';
import { isEndedPhase } from '../domain/delivery-lifecycle';
import type { SafetyStopVerdict } from '../domain/safety-stop';
import type { DeliveryActivities, DeliveryPhase, DeliveryResumeState, DeliveryStateView, DeliveryTunables, DeliveryWorkflowInput } from './contract';
import { DeliveryStateAttribute } from './search-attributes';

const SHORT_STEP = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 20 },
} as const;

/**
 * Single-statement reads and writes of the delivery workflow (KPIs, claiming a page): a local activity costs one
 * history event and no activity task round trip.
 */
export const deliveryLocalSteps = proxyLocalActivities<DeliveryActivities>(SHORT_STEP);

// The writes that update handlers wait for. As regular activities their completions are history events of their own,
// so an update's completion replays in the place it had: a handler waiting on a local activity (whose result is a
// marker written with the task's other commands) could complete, on replay, after a command it originally preceded
// (seen as "[TMPRL1100] Child workflow machine does not handle this event: WorkflowExecutionUpdateCompleted").
// A handful per delivery (phase changes, edits), so the extra events do not matter.
const ACTIVITY_WRITES = proxyActivities<DeliveryActivities>(SHORT_STEP);
// Deliveries started before the patch below replay their writes as the local activities they recorded.
const LOCAL_WRITES = deliveryLocalSteps;
/** Patch (2026-12-01): handler-awaited writes as regular activities (docs/workflow-versioning.md). */
const WRITES_AS_ACTIVITIES = 'delivery-writes-as-activities';
/**
 * Patch (2026-12-02): a sending delivery whose KPI read carries a safety-stop verdict pauses itself (docs/mx-rules.md).
 * Only asked when a verdict is there, which no history recorded before it carries.
 */
const SAFETY_STOP = 'delivery-safety-stop';

export class DeliveryRun {
  readonly deliveryId: string;
  readonly autoConfirm: boolean;
  readonly tunables: DeliveryTunables;
  readonly view: DeliveryStateView;
  /** Set when this run continues a sending delivery (continue-as-new). */
  readonly resumed: DeliveryResumeState | undefined;

  // Requests left by update handlers for the phases to act on.
  cancelRequested: boolean;
  /** A draft edit arrived: the analysis must run again before anyone confirms. */
  reanalyseRequested = false;
  /** The contact date changed while the delivery waited for it. */
  rescheduled = false;
  analysing = false;
  editsInProgress = 0;
  /**
   * Recipients this run handed over since it last read the KPIs. Unknown (infinite) until this run's first read:
   * a new run of a continued delivery does not know what its predecessor handed over after its last read.
   */
  handedOverSinceKpis = Number.POSITIVE_INFINITY;

  /**
   * Serialises every database write that handlers and phases make, in the order they were asked for: two handlers
   * (pause then resume) can never land in Postgres in the other order, so the delivery table always ends with the
   * phase the workflow has. A workflow-safe mutex: it only chains promises.
   */
  private readonly writes = new Mutex();

  constructor(input: DeliveryWorkflowInput) {
    const r = input.resume;
    this.deliveryId = input.deliveryId;
    this.autoConfirm = input.autoConfirm;
    this.tunables = input.tunables;
    this.resumed = r;
    this.cancelRequested = r?.cancelRequested ?? false;
    this.view = {
      deliveryId: input.deliveryId,
      phase: r?.phase ?? 'analysing',
      analysis: r?.analysis ?? null,
      kpis: r?.kpis ?? null,
      kpisAtMs: null,
      validityEndsAtMs: r?.validityEndsAtMs ?? null,
      contactDateMs: input.contactDateMs ?? null,
      handedOverUpToRecipientId: r?.afterRecipientId ?? 0,
      batchesStarted: r?.batchesStarted ?? 0,
      confirmedBy: r?.confirmedBy ?? null,
      paused: r?.paused ?? false,
      cancelReason: r?.cancelReason ?? null,
      waves: r?.waves ?? [],
      pauseReason: r?.pauseReason ?? null,
    };
  }

  get ended(): boolean {
    return isEndedPhase(this.view.phase);
  }

  /** Changes the phase now (queries see it at once) and writes it to the delivery table after every earlier write. */
  async enter(phase: DeliveryPhase): Promise<void> {
    if (this.view.phase !== phase) log.info('delivery phase', { deliveryId: this.deliveryId, from: this.view.phase, to: phase });
    this.view.phase = phase;
    upsertSearchAttributes([{ key: DeliveryStateAttribute, value: phase }]);
    const pauseReason = phase === 'paused' ? (this.view.pauseReason ?? null) : null;
    await this.serialised((w) => w.setDeliveryPhase({ deliveryId: this.deliveryId, phase, pauseReason }));
  }

  setContactDate(contactDateMs: number | null): Promise<void> {
    return this.serialised((w) => w.setContactDate({ deliveryId: this.deliveryId, contactDateMs }));
  }

  updateDraft(changes: Parameters<DeliveryActivities['updateDeliveryDraft']>[0]['changes']): Promise<void> {
    return this.serialised((w) => w.updateDeliveryDraft({ deliveryId: this.deliveryId, changes }));
  }

  async refreshKpis(): Promise<DeliveryKpis> {
    const { safetyStop, ...kpis } = await deliveryLocalSteps.readDeliveryKpis({ deliveryId: this.deliveryId });
    this.view.kpis = kpis;
    this.view.kpisAtMs = Date.now(); // the workflow clock inside the sandbox: replays the recorded time
    this.handedOverSinceKpis = 0;
    if (safetyStop && this.view.phase === 'sending' && !this.view.paused && !this.cancelRequested && patched(SAFETY_STOP)) await this.safetyStop(safetyStop);
    return this.view.kpis;
  }

  /**
   * The delivery pauses itself, as a person pausing it would (no new message starts; retries already planned go on),
   * with the safety stop's figures as the reason, shown by the state query and written to the delivery table.
   */
  private async safetyStop(verdict: SafetyStopVerdict): Promise<void> {
    log.warn('delivery safety stop', { deliveryId: this.deliveryId, reason: verdict.reason });
    this.view.paused = true;
    this.view.pauseReason = { by: 'safety_stop', reason: verdict.reason, atMs: Date.now(), safetyStop: verdict };
    await this.enter('paused');
  }

  /**
   * True when another page surely fits in the in-flight window without reading the KPIs again: the count of
   * recipients awaiting a first attempt only falls between two reads, except for what this run handed over itself.
   */
  windowSurelyHasRoomFor(pageSize: number): boolean {
    const k = this.view.kpis;
    return k !== null && k.awaitingFirstAttempt + this.handedOverSinceKpis + pageSize <= this.tunables.maxInFlight;
  }

  /** The history has grown enough that the next run should take over (checked between pages and refreshes). */
  get historyFull(): boolean {
    const info = workflowInfo();
    return info.historyLength > this.tunables.historyEventsBeforeContinue || info.continueAsNewSuggested;
  }

  /** What the next run of a sending delivery starts from. */
  resumeState(): DeliveryResumeState {
    const v = this.view;
    return {
      phase: v.phase,
      paused: v.paused,
      afterRecipientId: v.handedOverUpToRecipientId,
      validityEndsAtMs: v.validityEndsAtMs!,
      analysis: v.analysis,
      kpis: v.kpis,
      batchesStarted: v.batchesStarted,
      confirmedBy: v.confirmedBy,
      waves: v.waves,
      cancelRequested: this.cancelRequested,
      cancelReason: v.cancelReason,
      pauseReason: v.pauseReason ?? null,
    };
  }

  private serialised<T>(write: (writes: Pick<DeliveryActivities, 'setDeliveryPhase' | 'setContactDate' | 'updateDeliveryDraft'>) => Promise<T>): Promise<T> {
    // patched() is asked inside the lock, in the order the writes run: the same order on replay.
    return this.writes.runExclusive(() => write(patched(WRITES_AS_ACTIVITIES) ? ACTIVITY_WRITES : LOCAL_WRITES));
  }
}
