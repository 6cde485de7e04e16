/** Creating and controlling deliveries: the store and the workflow kept consistent (never a half-created delivery). */
import type { Client } from '@temporalio/client';
import { WorkflowUpdateFailedError, WorkflowNotFoundError } from '@temporalio/client';
import type { Pool } from 'pg';
import { DeliveryStore } from '../db/delivery-store';
import { DeliveryLog } from '../db/delivery-log';
import type { DkimKeyStore } from '../db/dkim-key-store';
import type { RecipientInput } from '../db/recipient-loader';
import { cancelSignal, confirmUpdate, deliveryStateQuery, deliveryWorkflowId, type DeliveryStateView } from '../workflows/definitions';
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

  constructor(private readonly o: DeliveryServiceOptions) {
    this.store = new DeliveryStore(o.pool);
    this.log = new DeliveryLog(o.pool);
  }

  async create(input: Omit<CreateDeliveryInput, 'recipients'>, recipients: Iterable<RecipientInput>): Promise<{ id: string; recipientCount: number; workflowId: string }> {
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
      },
      recipients,
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

  async confirm(id: string, confirmedBy?: string): Promise<string> {
    if (!(await this.store.get(id))) throw new NotFoundError(`delivery ${id} does not exist`);
    try {
      return await this.handle(id).executeUpdate(confirmUpdate, { args: [{ confirmedBy }] });
    } catch (e) {
      if (e instanceof WorkflowUpdateFailedError) throw new ConflictError(`cannot confirm: ${e.cause?.message ?? e.message}`);
      if (e instanceof WorkflowNotFoundError) throw new ConflictError('cannot confirm: the delivery has ended');
      throw e;
    }
  }

  async cancel(id: string, reason?: string): Promise<void> {
    const d = await this.store.get(id);
    if (!d) throw new NotFoundError(`delivery ${id} does not exist`);
    if (d.state === 'completed' || d.state === 'cancelled') throw new ConflictError(`cannot cancel: the delivery is already ${d.state}`);
    try {
      await this.handle(id).signal(cancelSignal, { reason });
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) throw new ConflictError('cannot cancel: the delivery has ended');
      throw e;
    }
  }
}
