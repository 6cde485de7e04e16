/** Creating and controlling deliveries: the store and the workflow kept consistent (never a half-created delivery). */
import type { Client } from '@temporalio/client';
import {
  isGrpcDeadlineError,
  isGrpcServiceError,
  ServiceError,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowUpdateFailedError,
  WorkflowNotFoundError,
  type WorkflowHandle,
} from '@temporalio/client';

/** How long a read waits for the workflow's query before it answers from the delivery log. */
const LIVE_VIEW_DEADLINE_MS = 5_000;
/** How much older than LIVE_VIEW_CACHE_MS a delivery's answer may be when it is given while a new one is read. */
const SUMMARY_STALE_MS = 5_000;
/**
 * Past that, an older answer (up to SUMMARY_MAX_STALE_MS) is given when the new one takes more than SUMMARY_SLOW_READ_MS:
 * a delivery page opened after a minute without readers would otherwise wait for a workflow query queued behind a
 * sending worker's tasks (measured: hundreds of milliseconds, for every caller of that moment). The answer says how old
 * its figures are (kpisAt); a change made through this process is never answered from before it (forget).
 */
const SUMMARY_SLOW_READ_MS = 150;
const SUMMARY_MAX_STALE_MS = 2 * 60_000;
/**
 * How long the view of an ended delivery is reused, and how many are kept. Its workflow has closed: every query gives
 * the same answer, at the cost of a worker replaying the whole history (about 50 ms for a short one, far more for a
 * large delivery's). Not forever: an operator's `temporal workflow reset` would start the workflow again.
 */
const ENDED_VIEW_TTL_MS = 10 * 60_000;
const ENDED_VIEWS_MAX = 1_000;
import { randomUUID } from 'node:crypto';
import type { Settings } from '../config/settings';
import type { Stores } from '../db/stores';
import type { DeliveryStore } from '../db/delivery-store';
import type { DeliveryLog } from '../db/delivery-log';
import type { RecipientListStore } from '../db/recipient-lists';
import type { RecipientInput } from '../db/recipient-loader';
import type { WaveSpec } from '../domain/wave-plan';
import { createDelivery, ListNotFoundError, workflowInputFor } from '../deliveries/create-delivery';
import {
  cancelUpdate,
  confirmUpdate,
  deliveryStateQuery,
  deliveryWorkflowId,
  editDraftUpdate,
  pauseUpdate,
  recipientStateQuery,
  recipientWorkflowId,
  rescheduleUpdate,
  resumeUpdate,
  type DeliveryPhase,
  type DeliveryStateView,
  type DeliveryWorkflowInput,
  type DraftChanges,
  type ProofResult,
  type RecipientStateView,
} from '../workflows/contract';
import { deliveryWorkflow } from '../workflows/delivery-workflow';
import { proofWorkflow } from '../workflows/proof-workflow';
import { DeliveryIdAttribute } from '../workflows/search-attributes';
import type { CreateDeliveryInput } from './delivery-input';
import { ConflictError, NotFoundError } from './http-errors';
import { SharedReads } from './shared-reads';
import { isEndedPhase } from '../domain/delivery-lifecycle';

export interface DeliveryServiceOptions {
  client: Client;
  stores: Stores;
  settings: Settings;
  taskQueue: string;
}

export class DeliveryService {
  readonly store: DeliveryStore;
  readonly log: DeliveryLog;
  readonly lists: RecipientListStore;

  /**
   * Live views read in the last LIVE_VIEW_CACHE_MS, per delivery: a hundred open pages of one delivery cost its workflow
   * one query per interval, not a hundred.
   */
  private readonly liveViews: SharedReads<{ view: DeliveryStateView | null; temporalUnavailable: boolean }>;
  /** Views of deliveries whose workflow has ended (completed or cancelled), by delivery, oldest first. */
  private readonly endedViews = new Map<string, { atMs: number; view: DeliveryStateView }>();
  /**
   * The delivery's whole answer to `GET /api/deliveries/:id` (row, live view and KPIs, serialised), shared the same way:
   * a polled page costs neither a Postgres read nor a serialisation per call. Past the interval, an answer up to
   * SUMMARY_STALE_MS older is still given at once while a new one is read: under load the workflow query can take
   * hundreds of milliseconds (it waits for a workflow task on a busy worker), and no caller should wait for it. Older
   * still (up to SUMMARY_MAX_STALE_MS), it is given if the new one is not there within SUMMARY_SLOW_READ_MS.
   */
  readonly summaries: SharedReads<string>;
  /**
   * Deliveries known to exist. A delivery is deleted only when its workflow could not be started, right after it was
   * stored ('created'); past that it stays, so a delivery seen in another phase is remembered and the reads of its log
   * skip the existence query.
   */
  private readonly known = new Set<string>();

  constructor(private readonly o: DeliveryServiceOptions) {
    this.store = o.stores.deliveries;
    this.log = o.stores.log;
    this.lists = o.stores.lists;
    this.liveViews = new SharedReads(o.settings.LIVE_VIEW_CACHE_MS);
    this.summaries = new SharedReads(o.settings.LIVE_VIEW_CACHE_MS, { staleMs: SUMMARY_STALE_MS, slowReadMs: SUMMARY_SLOW_READ_MS, maxStaleMs: SUMMARY_MAX_STALE_MS });
  }

  /**
   * Creates a delivery and starts its workflow. `o.id` (an idempotent request's stable resource id) names the delivery:
   * a request re-run after its process died finds the delivery the first run stored, starts its workflow if that run
   * did not get that far, and answers as the first run would have.
   */
  async create(input: CreateDeliveryInput, o: { id?: string } = {}): Promise<{ id: string; recipientCount: number; workflowId: string }> {
    if (o.id) {
      const existing = await this.store.get(o.id);
      if (existing) {
        // Still 'created': its workflow may never have started. Past that, the workflow exists (or existed: a start
        // after its history was purged would send the delivery a second time, so it is never attempted).
        if (existing.state === 'created') await this.startWorkflow(existing.id, workflowInputFor(this.o.settings, existing), { alreadyStartedIsFine: true });
        return { id: existing.id, recipientCount: await this.store.recipientCount(existing.id), workflowId: deliveryWorkflowId(existing.id) };
      }
    }
    let created;
    try {
      created = await createDelivery(
        { stores: this.o.stores, settings: this.o.settings },
        {
          ...(o.id ? { id: o.id } : {}),
          name: input.name,
          from: { address: input.from.address, name: input.from.name },
          replyTo: input.replyTo,
          subject: input.subject,
          html: input.html,
          text: input.text,
          validitySeconds: input.validity,
          autoConfirm: input.autoConfirm,
          contactDate: input.contactDate,
          options: { waves: input.waves as WaveSpec, ...(input.localSendTime ? { localSendTime: input.localSendTime } : {}) },
          audience: input.listId ? { listId: input.listId } : { recipients: input.recipients as RecipientInput[] },
        },
      );
    } catch (e) {
      if (e instanceof ListNotFoundError) throw new NotFoundError(e.message);
      throw e;
    }
    try {
      await this.startWorkflow(created.id, created.workflowInput, { alreadyStartedIsFine: false });
    } catch (e) {
      // Without its workflow the delivery would never move: remove it and let the caller retry.
      await this.store.delete(created.id);
      throw e;
    }
    return { id: created.id, recipientCount: created.recipientCount, workflowId: created.workflowId };
  }

  private async startWorkflow(id: string, input: DeliveryWorkflowInput, o: { alreadyStartedIsFine: boolean }): Promise<void> {
    try {
      await this.o.client.workflow.start(deliveryWorkflow, {
        taskQueue: this.o.taskQueue,
        workflowId: deliveryWorkflowId(id),
        // A closed workflow of this id means the delivery ran: never a second run of it.
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        args: [input],
        typedSearchAttributes: [{ key: DeliveryIdAttribute, value: id }],
      });
    } catch (e) {
      if (o.alreadyStartedIsFine && e instanceof WorkflowExecutionAlreadyStartedError) return;
      throw e;
    }
  }

  private handle(id: string): WorkflowHandle<typeof deliveryWorkflow> {
    return this.o.client.workflow.getHandle<typeof deliveryWorkflow>(deliveryWorkflowId(id));
  }

  /** The workflow's view (state, analysis, KPIs); null when the workflow cannot be reached. */
  async workflowView(id: string): Promise<DeliveryStateView | null> {
    try {
      return await this.handle(id).query(deliveryStateQuery);
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) return null;
      throw e;
    }
  }

  /**
   * The workflow's live view, or why there is none: `unavailable` when Temporal does not answer within a few seconds
   * (a restart, an outage), so that a read can fall back to the delivery log at once instead of failing after the
   * client's default 20-second deadline.
   */
  /** Whether the delivery exists (its log routes answer 404 otherwise). */
  async exists(id: string): Promise<boolean> {
    if (this.known.has(id)) return true;
    const phase = await this.store.phase(id);
    if (phase === null) return false;
    if (phase !== 'created') {
      if (this.known.size >= 100_000) this.known.clear();
      this.known.add(id);
    }
    return true;
  }

  liveView(id: string): Promise<{ view: DeliveryStateView | null; temporalUnavailable: boolean }> {
    const ended = this.endedViews.get(id);
    if (ended && Date.now() - ended.atMs < ENDED_VIEW_TTL_MS) return Promise.resolve({ view: ended.view, temporalUnavailable: false });
    return this.liveViews.get(id, () => this.queryLiveView(id));
  }

  private async queryLiveView(id: string): Promise<{ view: DeliveryStateView | null; temporalUnavailable: boolean }> {
    try {
      const view = await this.o.client.withDeadline(Date.now() + LIVE_VIEW_DEADLINE_MS, () => this.workflowView(id));
      // The phase is ended only once nothing is left for the workflow to do but return: this view is its last.
      if (view && isEndedPhase(view.phase)) {
        this.endedViews.delete(id);
        if (this.endedViews.size >= ENDED_VIEWS_MAX) this.endedViews.delete(this.endedViews.keys().next().value!);
        this.endedViews.set(id, { atMs: Date.now(), view });
      }
      return { view, temporalUnavailable: false };
    } catch (e) {
      if (e instanceof ServiceError || isGrpcServiceError(e) || isGrpcDeadlineError(e)) return { view: null, temporalUnavailable: true };
      throw e;
    }
  }

  /**
   * The recipient workflow's own view (recipientStateQuery): what it waits for and until when. `workflow: 'not_found'`
   * when no such workflow exists (not started yet, or its history is gone after retention); `temporalUnavailable` when
   * Temporal does not answer within the live-view deadline, so that the page says so at once instead of a 5xx after 20 s.
   * A closed workflow still answers (a worker replays its history). Never cached: one recipient's page asks.
   */
  async recipientLiveState(id: string, recipientId: number): Promise<{ state: RecipientStateView | null; workflow: 'found' | 'not_found' | 'unknown'; temporalUnavailable: boolean }> {
    const handle = this.o.client.workflow.getHandle(recipientWorkflowId(id, recipientId));
    try {
      const state = await this.o.client.withDeadline(Date.now() + LIVE_VIEW_DEADLINE_MS, () => handle.query(recipientStateQuery));
      return { state, workflow: 'found', temporalUnavailable: false };
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) return { state: null, workflow: 'not_found', temporalUnavailable: false };
      if (e instanceof ServiceError || isGrpcServiceError(e) || isGrpcDeadlineError(e)) return { state: null, workflow: 'unknown', temporalUnavailable: true };
      throw e;
    }
  }

  /** Runs a workflow update; a refusal by its validator becomes a 409 carrying the workflow's reason. */
  private async update(id: string, verb: string, run: (h: WorkflowHandle<typeof deliveryWorkflow>) => Promise<DeliveryPhase>): Promise<DeliveryPhase> {
    if (!(await this.store.get(id))) throw new NotFoundError(`delivery ${id} does not exist`);
    try {
      return await run(this.handle(id));
    } catch (e) {
      if (e instanceof WorkflowUpdateFailedError) throw new ConflictError(`cannot ${verb}: ${e.cause?.message ?? e.message}`);
      if (e instanceof WorkflowNotFoundError || e instanceof WorkflowFailedError || (e as Error).name === 'WorkflowExecutionAlreadyCompletedError') {
        const state = (await this.store.get(id))?.state;
        throw new ConflictError(`cannot ${verb}: the delivery has ended (${state ?? 'unknown'})`);
      }
      throw e;
    } finally {
      // The next read shows what the update did (or why it was refused), not a view read before it.
      this.liveViews.forget(id);
      this.endedViews.delete(id);
      this.summaries.forget(id);
    }
  }

  confirm(id: string, confirmedBy?: string) {
    return this.update(id, 'confirm', (h) => h.executeUpdate(confirmUpdate, { args: [{ confirmedBy }] }));
  }
  cancel(id: string, reason?: string) {
    return this.update(id, 'cancel', (h) => h.executeUpdate(cancelUpdate, { args: [{ reason }] }));
  }
  pause(id: string, reason?: string) {
    return this.update(id, 'pause', (h) => h.executeUpdate(pauseUpdate, { args: [{ reason }] }));
  }
  resume(id: string) {
    return this.update(id, 'resume', (h) => h.executeUpdate(resumeUpdate, { args: [] }));
  }
  reschedule(id: string, contactDate: Date | null) {
    return this.update(id, 'reschedule', (h) => h.executeUpdate(rescheduleUpdate, { args: [{ contactDateMs: contactDate ? contactDate.getTime() : null }] }));
  }
  /** Proofs go through the worker (real rendering, DKIM, SMTP) and are not part of the delivery log. */
  async sendProofs(id: string, addresses: string[]): Promise<ProofResult[]> {
    const d = await this.store.get(id);
    if (!d) throw new NotFoundError(`delivery ${id} does not exist`);
    return this.o.client.workflow.execute(proofWorkflow, {
      taskQueue: this.o.taskQueue,
      workflowId: `${deliveryWorkflowId(id)}-proof-${randomUUID()}`,
      args: [{ deliveryId: id, addresses }],
      typedSearchAttributes: [{ key: DeliveryIdAttribute, value: id }],
    });
  }

  editDraft(id: string, changes: DraftChanges) {
    return this.update(id, 'change the delivery', (h) => h.executeUpdate(editDraftUpdate, { args: [changes] }));
  }
}
