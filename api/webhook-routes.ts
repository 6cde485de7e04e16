/**
 * HTTP API of event webhooks (docs/webhooks.md): subscriptions (create, list, read, change, delete), the signing
 * secret, an endpoint's delivery log, replay of one event, and enabling an endpoint again. Each subscription has
 * its endpoint workflow (`webhook-endpoint-<id>`); the subscription row is written first, then the workflow is told.
 */
import { Router, type Response } from 'express';
import { z } from 'zod';
import {
  isGrpcDeadlineError,
  isGrpcServiceError,
  ServiceError,
  WorkflowNotFoundError,
  type Client,
} from '@temporalio/client';
import type { WebhookStore, WebhookSubscription } from '../db/webhook-store';
import { eventSeqOf, WEBHOOK_EVENT_TYPES, webhookEventId } from '../domain/webhook-events';
import {
  webhookDisableSignal,
  webhookEnableSignal,
  webhookEndpointStateQuery,
  webhookEndpointWorkflowId,
  type WebhookEndpointInput,
  type WebhookEndpointView,
} from '../workflows/contract';
import type { webhookEndpointWorkflow } from '../workflows/webhook-endpoint-workflow';
import { auditActor } from './auth/access-control';
import { ConflictError, NotFoundError } from './http-errors';

export interface WebhookRouterDependencies {
  store: WebhookStore;
  client: Client;
  /** The worker's task queue: where endpoint workflows run. */
  taskQueue: string;
}

const BASE = '/api/webhooks';
/** A read of the endpoint's live state gives up after this and answers from Postgres alone. */
const LIVE_STATE_DEADLINE_MS = 3_000;

const idParam = z.uuid({ message: 'not a webhook subscription id' });
const eventIdParam = z
  .string()
  .max(40)
  .transform((s, ctx) => {
    const seq = eventSeqOf(s);
    if (seq === null) {
      ctx.addIssue({ code: 'custom', message: 'not an event id (evt_<number>)' });
      return z.NEVER;
    }
    return seq;
  });

const webhookUrl = z
  .string()
  .max(2_000)
  .refine((s) => {
    try {
      const u = new URL(s);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
    } catch {
      return false;
    }
  }, 'must be an absolute http:// or https:// URL');

const eventTypes = z
  .array(z.enum(WEBHOOK_EVENT_TYPES))
  .min(1, 'subscribe to at least one event type')
  .transform((types) => [...new Set(types)].sort());

/** POST /api/webhooks (exported for the OpenAPI description). */
export const createWebhookSchema = z
  .object({
    url: webhookUrl,
    /** Default: every event type. */
    eventTypes: eventTypes.optional(),
    description: z.string().max(500).optional(),
    enabled: z.boolean().default(true),
  })
  .strict();

/** PATCH /api/webhooks/:id. */
export const updateWebhookSchema = z
  .object({
    url: webhookUrl.optional(),
    eventTypes: eventTypes.optional(),
    description: z.string().max(500).nullable().optional(),
    enabled: z.boolean().optional(),
    /** Why it is disabled (with enabled: false), shown by the API. */
    disabledReason: z.string().min(1).max(500).optional(),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, 'nothing to change')
  .refine((b) => b.disabledReason === undefined || b.enabled === false, { message: 'disabledReason goes with enabled: false', path: ['disabledReason'] });

/** GET /api/webhooks/:id/deliveries. */
export const webhookDeliveriesQuery = z
  .object({
    before: z.coerce.number().int().positive().optional(),
    limit: z.coerce.number().int().min(1).max(200).default(50),
  })
  .strict();

export function createWebhookRouter(deps: WebhookRouterDependencies): Router {
  const router = Router();
  const { store, client } = deps;
  const handle = (id: string) => client.workflow.getHandle<typeof webhookEndpointWorkflow>(webhookEndpointWorkflowId(id));

  async function subscriptionOr404(id: string): Promise<WebhookSubscription> {
    const s = await store.get(id);
    if (!s) throw new NotFoundError(`webhook subscription ${id} does not exist`);
    return s;
  }

  /** The subscription as the API shows it: never its secret. */
  function view(s: WebhookSubscription) {
    return {
      id: s.id,
      url: s.url,
      description: s.description,
      eventTypes: s.eventTypes,
      enabled: s.enabled,
      disabledReason: s.disabledReason,
      disabledAt: s.disabledAt,
      createdAt: s.createdAt,
      updatedAt: s.updatedAt,
      workflowId: webhookEndpointWorkflowId(s.id),
      links: { self: `${BASE}/${s.id}`, deliveries: `${BASE}/${s.id}/deliveries`, secret: `${BASE}/${s.id}/secret` },
    };
  }

  async function liveState(id: string): Promise<{ endpoint: WebhookEndpointView | null; temporalUnavailable: boolean }> {
    try {
      const endpoint = await client.withDeadline(Date.now() + LIVE_STATE_DEADLINE_MS, () => handle(id).query(webhookEndpointStateQuery));
      return { endpoint, temporalUnavailable: false };
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) return { endpoint: null, temporalUnavailable: false };
      if (e instanceof ServiceError || isGrpcServiceError(e) || isGrpcDeadlineError(e)) return { endpoint: null, temporalUnavailable: true };
      throw e;
    }
  }

  /** Starts the endpoint's workflow, or signals it to go on when it runs (or starts it when it has ended). */
  async function enableWorkflow(id: string): Promise<void> {
    await client.workflow.signalWithStart<typeof webhookEndpointWorkflow, []>('webhookEndpointWorkflow', {
      taskQueue: deps.taskQueue,
      workflowId: webhookEndpointWorkflowId(id),
      args: [{ subscriptionId: id } satisfies WebhookEndpointInput],
      signal: webhookEnableSignal,
      signalArgs: [],
    });
  }

  async function signalDisable(id: string, reason: string): Promise<void> {
    try {
      await handle(id).signal(webhookDisableSignal, { reason });
    } catch (e) {
      // No workflow: nothing is being sent; the subscription row already says disabled.
      if (!(e instanceof WorkflowNotFoundError)) throw e;
    }
  }

  const respond = async (res: Response, s: WebhookSubscription, status = 200) => {
    res.status(status).json({ ...view(s), status: await store.status(s.id) });
  };

  router.post(BASE, async (req, res) => {
    const body = createWebhookSchema.parse(req.body);
    const types = body.eventTypes ?? [...WEBHOOK_EVENT_TYPES].sort();
    const { subscription, secret } = await store.create({ url: body.url, eventTypes: types, description: body.description, enabled: body.enabled }, auditActor(res));
    try {
      await client.workflow.start<typeof webhookEndpointWorkflow>('webhookEndpointWorkflow', {
        taskQueue: deps.taskQueue,
        workflowId: webhookEndpointWorkflowId(subscription.id),
        // The id is the subscription's: a retried start finds the running workflow and leaves it be.
        workflowIdConflictPolicy: 'USE_EXISTING',
        args: [
          {
            subscriptionId: subscription.id,
            resume: body.enabled ? undefined : { disabled: true, disabledReason: subscription.disabledReason, messagesDelivered: 0, eventsDelivered: 0 },
          },
        ],
      });
    } catch (e) {
      // Without its workflow nothing would ever be sent: remove the subscription and let the caller retry.
      await store.delete(subscription.id);
      throw e;
    }
    // The secret is in this answer, and afterwards only at GET …/secret (admin).
    res.status(201).json({ ...view(subscription), secret });
  });

  router.get(BASE, async (_req, res) => {
    res.json({ webhooks: (await store.list()).map(view) });
  });

  router.get(`${BASE}/:id`, async (req, res) => {
    const s = await subscriptionOr404(idParam.parse(req.params.id));
    const [status, live] = await Promise.all([store.status(s.id), liveState(s.id)]);
    res.json({ ...view(s), status, ...live });
  });

  router.get(`${BASE}/:id/secret`, async (req, res) => {
    const id = idParam.parse(req.params.id);
    const secret = await store.secret(id, auditActor(res));
    if (secret === null) throw new NotFoundError(`webhook subscription ${id} does not exist`);
    res.json({ id, secret });
  });

  router.patch(`${BASE}/:id`, async (req, res) => {
    const id = idParam.parse(req.params.id);
    const body = updateWebhookSchema.parse(req.body);
    const actor = auditActor(res);
    let s = await subscriptionOr404(id);
    if (body.url !== undefined || body.eventTypes !== undefined || body.description !== undefined) {
      s = (await store.update(id, { url: body.url, eventTypes: body.eventTypes, description: body.description }, actor)) ?? s;
    }
    if (body.enabled !== undefined) {
      const reason = body.disabledReason ?? 'disabled through the API';
      const r = await store.setEnabled(id, body.enabled, body.enabled ? null : reason, actor);
      if (!r) throw new NotFoundError(`webhook subscription ${id} does not exist`);
      s = r.subscription;
      if (r.changed) await (body.enabled ? enableWorkflow(id) : signalDisable(id, reason));
    }
    await respond(res, s);
  });

  router.delete(`${BASE}/:id`, async (req, res) => {
    const id = idParam.parse(req.params.id);
    if (!(await store.delete(id, auditActor(res)))) throw new NotFoundError(`webhook subscription ${id} does not exist`);
    try {
      // Its loop ends; an attempt in flight finds the subscription gone and stops there.
      await handle(id).cancel();
    } catch (e) {
      // The subscription is gone either way: the workflow's next poll finds that out and ends it.
      if (!(e instanceof WorkflowNotFoundError)) console.error(JSON.stringify({ msg: 'webhook workflow not cancelled', subscriptionId: id, error: (e as Error).message }));
    }
    res.status(204).end();
  });

  router.post(`${BASE}/:id/enable`, async (req, res) => {
    const id = idParam.parse(req.params.id);
    const r = await store.setEnabled(id, true, null, auditActor(res));
    if (!r) throw new NotFoundError(`webhook subscription ${id} does not exist`);
    if (!r.changed) throw new ConflictError('the subscription is already enabled');
    // It goes on from its cursor: what happened while it was disabled (within the retention) is sent first.
    await enableWorkflow(id);
    await respond(res, r.subscription);
  });

  router.get(`${BASE}/:id/deliveries`, async (req, res) => {
    const id = idParam.parse(req.params.id);
    const q = webhookDeliveriesQuery.parse(req.query);
    await subscriptionOr404(id);
    const attempts = await store.attempts(id, { beforeId: q.before, limit: q.limit });
    const last = attempts.at(-1);
    res.json({
      attempts,
      next: attempts.length === q.limit && last ? `${BASE}/${id}/deliveries?before=${last.id}&limit=${q.limit}` : null,
    });
  });

  router.post(`${BASE}/:id/events/:eventId/replay`, async (req, res) => {
    const id = idParam.parse(req.params.id);
    const seq = eventIdParam.parse(req.params.eventId);
    const s = await subscriptionOr404(id);
    const queued = await store.replay(id, seq, auditActor(res));
    if (!queued) throw new NotFoundError(`event ${webhookEventId(seq)} does not exist (or is older than the retention)`);
    // Sent by the endpoint's workflow, before the events that follow the cursor; after enable when disabled.
    res.status(202).json({ eventId: webhookEventId(seq), messageId: queued.messageId, enabled: s.enabled });
  });

  return router;
}
