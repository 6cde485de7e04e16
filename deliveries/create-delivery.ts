/**
 * The one way a delivery comes to exist, for the API and for each run of a recurring delivery alike: its From
 * domain's DKIM key, the delivery row with its population (one transaction), and the workflow input with the
 * tunables fixed now. Starting the workflow is the caller's (a client start, or a child of the recurring run).
 */
import type { Stores } from '../db/stores';
import type { Audience, NewDelivery } from '../db/delivery-store';
import { deliveryTunables, type Settings } from '../config/settings';
import type { DeliveryOptions } from '../domain/delivery-options';
import { addressDomain } from '../domain/email-address';
import { deliveryHeaderProblems } from '../domain/header-value';
import { deliveryWorkflowId, type DeliveryWorkflowInput } from '../workflows/contract';

/** The delivery row's fields, with its options typed, and where its population comes from. */
export interface NewDeliveryRequest extends Omit<NewDelivery, 'options'> {
  /** Waves and local-time sending, plus the recurring run marker (its unique run key) for recurring deliveries. */
  options: DeliveryOptions & { recurring?: { templateId: string; runKey: string } };
  audience: Audience;
}

export interface CreatedDelivery {
  id: string;
  recipientCount: number;
  workflowId: string;
  workflowInput: DeliveryWorkflowInput;
}

/** The audience names a stored list that does not exist (any more). */
export class ListNotFoundError extends Error {
  constructor(readonly listId: string) {
    super(`list ${listId} does not exist`);
  }
}

/**
 * A field that ends up in a message header holds a line break or a control character. The API's schemas refuse these
 * first; this check also covers a recurring delivery's template stored before they did.
 */
export class InvalidDeliveryFieldError extends Error {
  readonly status = 400;
  constructor(readonly issues: { path: string; message: string }[]) {
    super(issues.map((i) => i.message).join('; '));
  }
}

export interface DeliveryCreationContext {
  stores: Pick<Stores, 'deliveries' | 'keys' | 'lists'>;
  settings: Settings;
}

export async function createDelivery(ctx: DeliveryCreationContext, req: NewDeliveryRequest): Promise<CreatedDelivery> {
  const { deliveries, keys, lists } = ctx.stores;
  // Before anything is written (the DKIM key below included): a refused delivery leaves nothing behind.
  const headerProblems = deliveryHeaderProblems({ subject: req.subject, fromName: req.from.name, fromAddress: req.from.address, replyTo: req.replyTo });
  if (headerProblems.length) throw new InvalidDeliveryFieldError(headerProblems);
  if ('listId' in req.audience && !(await lists.get(req.audience.listId))) throw new ListNotFoundError(req.audience.listId);
  const fromDomain = addressDomain(req.from.address);
  // First delivery of a From domain: its RSA-2048 key is generated now, so the DNS record can be published before sending.
  await keys.ensureKey(fromDomain, ctx.settings.DKIM_SELECTOR, 'rsa-sha256');
  const { audience, options, ...row } = req;
  const created = await deliveries.create({ ...row, options: { ...options } }, audience);
  return {
    ...created,
    workflowId: deliveryWorkflowId(created.id),
    workflowInput: workflowInputFor(ctx.settings, { id: created.id, autoConfirm: req.autoConfirm, contactDate: req.contactDate ?? null, validitySeconds: req.validitySeconds }),
  };
}

/** The workflow input of a stored delivery (also for one found again after a retried creation). */
export function workflowInputFor(
  settings: Settings,
  d: { id: string; autoConfirm: boolean; contactDate: Date | null; validitySeconds: number },
): DeliveryWorkflowInput {
  return {
    deliveryId: d.id,
    autoConfirm: d.autoConfirm,
    ...(d.contactDate ? { contactDateMs: d.contactDate.getTime() } : {}),
    validitySeconds: d.validitySeconds,
    tunables: deliveryTunables(settings),
  };
}
