/** Creating and controlling deliveries: the store and the workflow kept consistent (never a half-created delivery). */
import type { Client } from '@temporalio/client';
import { WorkflowFailedError, WorkflowUpdateFailedError, WorkflowNotFoundError } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import type { Pool } from 'pg';
import { DeliveryStore, type Audience } from '../db/delivery-store';
import { RecipientListStore } from '../db/recipient-lists';
import type { DeliveryOptions } from '../domain/delivery-options';
import type { WaveSpec } from '../domain/wave-plan';
import { DeliveryLog } from '../db/delivery-log';
import type { DkimKeyStore } from '../db/dkim-key-store';
import type { RecipientInput } from '../db/recipient-loader';
import {
  cancelUpdate,
  confirmUpdate,
  deliveryStateQuery,
  deliveryWorkflowId,
  editDraftUpdate,
  pauseUpdate,
  rescheduleUpdate,
  resumeUpdate,
  type DeliveryStateView,
} from '../workflows/definitions';
import type { DraftChanges } from '../activities/delivery-activities';
import type { ProofResult } from '../activities/proof-activities';
import { randomUUID } from 'node:crypto';
import { DeliveryIdAttribute } from '../workflows/search-attributes';
import type { CreateDeliveryInput } from './delivery-input';

/** A request that is well-formed but does not apply to the delivery in its current state. */
export class ConflictError extends Error {
  readonly status = 409;
}
export class NotFoundError extends Error {
  readonly status = 404;
}

export interface DeliveryServiceOptions {
  client: Client;
  pool: Pool;
  keys: DkimKeyStore;
  taskQueue: string;
  dkimSelector: string;
  kpiRefreshMs: number;
}

export class DeliveryService {
  readonly store: DeliveryStore;
  readonly log: DeliveryLog;
  readonly lists: RecipientListStore;

  constructor(private readonly o: DeliveryServiceOptions) {
    this.store = new DeliveryStore(o.pool);
    this.log = new DeliveryLog(o.pool);
    this.lists = new RecipientListStore(o.pool);
  }

  async create(input: CreateDeliveryInput): Promise<{ id: string; recipientCount: number; workflowId: string }> {
    if (input.listId && !(await this.lists.get(input.listId))) throw new NotFoundError(`list ${input.listId} does not exist`);
    const audience: Audience = input.listId ? { listId: input.listId } : { recipients: input.recipients as RecipientInput[] };
    const options: DeliveryOptions = { waves: input.waves as WaveSpec, ...(input.localSendTime ? { localSendTime: input.localSendTime } : {}) };
    const fromDomain = input.from.address.slice(input.from.address.lastIndexOf('@') + 1).toLowerCase();
    // First delivery of a From domain: its RSA-2048 key is generated now, so the DNS record can be published before sending.
    await this.o.keys.ensureKey(fromDomain, this.o.dkimSelector, 'rsa-sha256');
    const created = await this.store.create(
      {
        name: input.name,
        from: { address: input.from.address, name: input.from.name },
        replyTo: input.replyTo,
        subject: input.subject,
        html: input.html,
        text: input.text,
        validitySeconds: input.validity,
        autoConfirm: input.autoConfirm,
        contactDate: input.contactDate,
        options: options as unknown as Record<string, unknown>,
      },
      audience,
    );
    const workflowId = deliveryWorkflowId(created.id);
    try {
      await this.o.client.workflow.start('deliveryWorkflow', {
        taskQueue: this.o.taskQueue,
        workflowId,
        args: [
          {
            deliveryId: created.id,
            autoConfirm: input.autoConfirm,
            contactDateMs: input.contactDate?.getTime(),
            validitySeconds: input.validity,
            kpiRefreshMs: this.o.kpiRefreshMs,
          },
        ],
        typedSearchAttributes: [{ key: DeliveryIdAttribute, value: created.id }],
      });
    } catch (e) {
      // Without its workflow the delivery would never move: remove it and let the caller retry.
      await this.store.delete(created.id);
      throw e;
    }
    return { ...created, workflowId };
  }

  private handle(id: string) {
    return this.o.client.workflow.getHandle(deliveryWorkflowId(id));
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

  /** Runs a workflow update; a refusal by its validator becomes a 409 carrying the workflow's reason. */
  private async update<Ret, Args extends unknown[]>(id: string, verb: string, def: UpdateDefinition<Ret, Args>, args: Args): Promise<Ret> {
    if (!(await this.store.get(id))) throw new NotFoundError(`delivery ${id} does not exist`);
    try {
      return (await this.handle(id).executeUpdate(def.name, { args } as unknown as { args: [unknown] })) as Ret;
    } catch (e) {
      if (e instanceof WorkflowUpdateFailedError) throw new ConflictError(`cannot ${verb}: ${e.cause?.message ?? e.message}`);
      if (e instanceof WorkflowNotFoundError || e instanceof WorkflowFailedError || (e as Error).name === 'WorkflowExecutionAlreadyCompletedError') {
        const state = (await this.store.get(id))?.state;
        throw new ConflictError(`cannot ${verb}: the delivery has ended (${state ?? 'unknown'})`);
      }
      throw e;
    }
  }

  confirm(id: string, confirmedBy?: string) {
    return this.update(id, 'confirm', confirmUpdate, [{ confirmedBy }]);
  }
  cancel(id: string, reason?: string) {
    return this.update(id, 'cancel', cancelUpdate, [{ reason }]);
  }
  pause(id: string, reason?: string) {
    return this.update(id, 'pause', pauseUpdate, [{ reason }]);
  }
  resume(id: string) {
    return this.update(id, 'resume', resumeUpdate, []);
  }
  reschedule(id: string, contactDate: Date | null) {
    return this.update(id, 'reschedule', rescheduleUpdate, [{ contactDateMs: contactDate ? contactDate.getTime() : null }]);
  }
  /** Proofs go through the worker (real rendering, DKIM, SMTP) and are not part of the delivery log. */
  async sendProofs(id: string, addresses: string[]): Promise<ProofResult[]> {
    const d = await this.store.get(id);
    if (!d) throw new NotFoundError(`delivery ${id} does not exist`);
    return this.o.client.workflow.execute('proofWorkflow', {
      taskQueue: this.o.taskQueue,
      workflowId: `${deliveryWorkflowId(id)}-proof-${randomUUID()}`,
      args: [{ deliveryId: id, addresses }],
      typedSearchAttributes: [{ key: DeliveryIdAttribute, value: id }],
    }) as Promise<ProofResult[]>;
  }

  editDraft(id: string, changes: DraftChanges) {
    return this.update(id, 'change the delivery', editDraftUpdate, [changes]);
  }
}
