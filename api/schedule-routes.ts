/**
 * HTTP API of recurring deliveries: a delivery template stored in Postgres, sent on a Temporal Schedule
 * (`recurring-<templateId>`); each run is an ordinary, auto-confirmed delivery. Create, list, read, pause, unpause,
 * run now, delete.
 */
import { Router, type Request } from 'express';
import {
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  ServiceError,
  isGrpcServiceError,
  type Client,
  type ScheduleDescription,
  type ScheduleSpec,
} from '@temporalio/client';
import type { DeliveryTemplateRow, DeliveryTemplateStore, RecurringScheduleSpec, TemplateDeliveryRow } from '../db/delivery-templates';
import type { RecipientListStore } from '../db/recipient-lists';
import { ConflictError, NotFoundError, RequestFieldError } from './http-errors';
import { createRecurringSchema, recurringIdParam, recurringListQuery, scheduleNoteSchema } from './recurring-input';
import type { recurringDeliveryWorkflow } from '../workflows/recurring-delivery-workflow';
import { recordAfterChange, type AuditRecorder } from './auth/audit';

export interface ScheduleRouterDependencies {
  client: Client;
  templates: DeliveryTemplateStore;
  lists: RecipientListStore;
  /** The worker's task queue: where each run's workflow is started. */
  taskQueue: string;
  /** Creation, pause, unpause, run-now and deletion are recorded once Temporal accepted them. */
  audit: AuditRecorder;
}

const BASE = '/api/recurring-deliveries';
const GRPC_INVALID_ARGUMENT = 3;

/**
 * SKIP: a run never overlaps the previous one, and an occurrence due while the previous delivery is still running is
 * dropped rather than queued. BUFFER_ONE would send that occurrence late, right after the previous one ends: recipients
 * would get two messages of the same series back to back. A missed occurrence is visible (numActionsSkippedOverlap).
 */
export const RECURRING_OVERLAP_POLICY = ScheduleOverlapPolicy.SKIP;

export function recurringScheduleId(templateId: string): string {
  return `recurring-${templateId}`;
}
/** The schedule appends the scheduled time to this for each run (`recurring-<id>-run-2025-06-02T09:00:00Z`). */
export function recurringRunWorkflowIdPrefix(templateId: string): string {
  return `recurring-${templateId}-run`;
}

/** A request the schedule service refused (bad cron values and the like): the caller's mistake, not ours. */

function toSpec(s: RecurringScheduleSpec): ScheduleSpec {
  if (s.cron !== undefined) return { cronExpressions: [s.cron], ...(s.timeZone ? { timezone: s.timeZone } : {}) };
  return { intervals: [{ every: s.intervalSeconds! * 1000 }] };
}

function iso(d: Date | undefined | null): string | null {
  return d ? d.toISOString() : null;
}

/** The shortest gap between upcoming runs (ms), when it can be known. */
function periodMs(t: DeliveryTemplateRow, d: ScheduleDescription | null): number | null {
  if (t.schedule.intervalSeconds !== undefined) return t.schedule.intervalSeconds * 1000;
  const times = d?.info.nextActionTimes ?? [];
  let min: number | null = null;
  for (let i = 1; i < times.length; i++) {
    const gap = times[i].getTime() - times[i - 1].getTime();
    if (min === null || gap < min) min = gap;
  }
  return min;
}

function warnings(t: DeliveryTemplateRow, d: ScheduleDescription | null): string[] {
  const out: string[] = [];
  if (!d) out.push(`the Temporal schedule ${recurringScheduleId(t.id)} no longer exists: no run will start; delete this recurring delivery and create it again`);
  const validity = Number(t.body.validity);
  const period = periodMs(t, d);
  if (period !== null && Number.isFinite(validity) && validity * 1000 > period) {
    out.push(
      `the validity (${validity} s) is longer than the time between runs (${Math.round(period / 1000)} s): a run lasts until every recipient is final, ` +
        'soft bounces included, and an occurrence due while the previous run is still going is skipped; set a shorter validity in the template',
    );
  }
  return out;
}

export function createScheduleRouter(deps: ScheduleRouterDependencies): Router {
  const { templates, lists } = deps;
  const router = Router();

  const handle = (templateId: string) => deps.client.schedule.getHandle(recurringScheduleId(templateId));

  async function describe(templateId: string): Promise<ScheduleDescription | null> {
    try {
      return await handle(templateId).describe();
    } catch (e) {
      if (e instanceof ScheduleNotFoundError) return null;
      throw e;
    }
  }

  async function template(req: Request): Promise<DeliveryTemplateRow> {
    const id = recurringIdParam.parse(req.params.id);
    const t = await templates.get(id);
    if (!t) throw new NotFoundError(`recurring delivery ${id} does not exist`);
    return t;
  }

  /** The template, its schedule's state as Temporal has it now, and the deliveries its runs created. */
  async function view(t: DeliveryTemplateRow, d?: ScheduleDescription | null) {
    const [description, deliveries] = await Promise.all([d === undefined ? describe(t.id) : Promise.resolve(d), templates.deliveries(t.id)]);
    const byRunKey = new Map<string, TemplateDeliveryRow>(deliveries.map((r) => [r.runKey, r]));
    const deliveryOf = (workflowId: string) => byRunKey.get(workflowId)?.id ?? null;
    return {
      id: t.id,
      name: t.name,
      scheduleId: recurringScheduleId(t.id),
      schedule: t.schedule,
      template: t.body,
      createdAt: t.createdAt,
      overlapPolicy: description?.policies.overlap ?? RECURRING_OVERLAP_POLICY,
      state: description
        ? {
            exists: true,
            paused: description.state.paused,
            note: description.state.note ?? null,
            nextActionTimes: description.info.nextActionTimes.map((x) => x.toISOString()),
            recentActions: description.info.recentActions.map((a) => ({
              scheduledAt: iso(a.scheduledAt),
              takenAt: iso(a.takenAt),
              workflowId: a.action.workflow.workflowId,
              deliveryId: deliveryOf(a.action.workflow.workflowId),
            })),
            runningActions: description.info.runningActions.map((a) => ({
              workflowId: a.workflow.workflowId,
              deliveryId: deliveryOf(a.workflow.workflowId),
            })),
            numActionsTaken: description.info.numActionsTaken,
            numActionsSkippedOverlap: description.info.numActionsSkippedOverlap,
            numActionsMissedCatchupWindow: description.info.numActionsMissedCatchupWindow,
          }
        : { exists: false, paused: null, note: null, nextActionTimes: [], recentActions: [], runningActions: [] },
      deliveries: deliveries.map((r) => ({ id: r.id, name: r.name, state: r.state, runWorkflowId: r.runKey, createdAt: r.createdAt, completedAt: r.completedAt, self: `/api/deliveries/${r.id}` })),
      warnings: warnings(t, description),
      links: { self: `${BASE}/${t.id}`, pause: `${BASE}/${t.id}/pause`, unpause: `${BASE}/${t.id}/unpause`, trigger: `${BASE}/${t.id}/trigger` },
    };
  }

  router.post(BASE, async (req, res) => {
    const input = createRecurringSchema.parse(req.body);
    const listId = input.template.listId!;
    if (!(await lists.get(listId))) throw new NotFoundError(`list ${listId} does not exist`);
    const t = await templates.create({ name: input.template.name, body: { ...input.template }, schedule: input.schedule });
    try {
      await deps.client.schedule.create<typeof recurringDeliveryWorkflow>({
        scheduleId: recurringScheduleId(t.id),
        spec: toSpec(t.schedule),
        action: {
          type: 'startWorkflow',
          workflowType: 'recurringDeliveryWorkflow',
          workflowId: recurringRunWorkflowIdPrefix(t.id),
          taskQueue: deps.taskQueue,
          args: [{ templateId: t.id }],
        },
        policies: {
          overlap: RECURRING_OVERLAP_POLICY,
          catchupWindow: t.schedule.catchupWindowSeconds * 1000,
          // A run fails only when its delivery cannot be created (template or list gone): the next would fail too.
          pauseOnFailure: true,
        },
        state: { paused: input.paused, note: input.paused ? 'created paused' : undefined },
        memo: { templateId: t.id, name: t.name },
      });
    } catch (e) {
      // Never a template without its schedule.
      await templates.delete(t.id);
      if (e instanceof TypeError) throw new RequestFieldError(e.message, t.schedule.cron !== undefined ? 'schedule.cron' : 'schedule');
      const cause = e instanceof ServiceError ? e.cause : e;
      if (isGrpcServiceError(cause) && cause.code === GRPC_INVALID_ARGUMENT) throw new RequestFieldError(cause.details, 'schedule');
      throw e;
    }
    await recordAfterChange(deps.audit, res, { action: 'recurring_delivery.create', targetType: 'recurring_delivery', targetId: t.id, details: { name: t.name, schedule: t.schedule, paused: input.paused } });
    res.status(201).json(await view(t));
  });

  router.get(BASE, async (req, res) => {
    const q = recurringListQuery.parse(req.query);
    const rows = await templates.list(q.limit);
    res.json({ recurringDeliveries: await Promise.all(rows.map((t) => view(t))) });
  });

  router.get(`${BASE}/:id`, async (req, res) => {
    res.json(await view(await template(req)));
  });

  router.post(`${BASE}/:id/pause`, async (req, res) => {
    const t = await template(req);
    const body = scheduleNoteSchema.parse(req.body ?? {});
    const d = await describe(t.id);
    if (!d) throw new ConflictError(`cannot pause: the schedule ${recurringScheduleId(t.id)} no longer exists`);
    if (d.state.paused) throw new ConflictError(`the recurring delivery is already paused${d.state.note ? ` (${d.state.note})` : ''}`);
    await handle(t.id).pause(body.reason ?? 'paused through the API');
    await recordAfterChange(deps.audit, res, { action: 'recurring_delivery.pause', targetType: 'recurring_delivery', targetId: t.id, details: { reason: body.reason ?? null } });
    res.json(await view(t));
  });

  router.post(`${BASE}/:id/unpause`, async (req, res) => {
    const t = await template(req);
    const body = scheduleNoteSchema.parse(req.body ?? {});
    const d = await describe(t.id);
    if (!d) throw new ConflictError(`cannot unpause: the schedule ${recurringScheduleId(t.id)} no longer exists`);
    if (!d.state.paused) throw new ConflictError('the recurring delivery is not paused');
    await handle(t.id).unpause(body.reason ?? 'unpaused through the API');
    await recordAfterChange(deps.audit, res, { action: 'recurring_delivery.unpause', targetType: 'recurring_delivery', targetId: t.id, details: { reason: body.reason ?? null } });
    res.json(await view(t));
  });

  // Run now, outside the schedule's times (also while paused); never alongside a run still going.
  router.post(`${BASE}/:id/trigger`, async (req, res) => {
    const t = await template(req);
    const d = await describe(t.id);
    if (!d) throw new ConflictError(`cannot run: the schedule ${recurringScheduleId(t.id)} no longer exists`);
    const running = d.info.runningActions.map((a) => a.workflow.workflowId);
    if (running.length) throw new ConflictError(`a run is still going (${running.join(', ')}): runs of a recurring delivery never overlap`);
    await handle(t.id).trigger(RECURRING_OVERLAP_POLICY);
    await recordAfterChange(deps.audit, res, { action: 'recurring_delivery.trigger', targetType: 'recurring_delivery', targetId: t.id });
    res.status(202).json({ id: t.id, triggered: true, links: { self: `${BASE}/${t.id}` } });
  });

  // Removes the schedule, then the template; deliveries already created stay, and a run still going finishes.
  router.delete(`${BASE}/:id`, async (req, res) => {
    const t = await template(req);
    try {
      await handle(t.id).delete();
    } catch (e) {
      if (!(e instanceof ScheduleNotFoundError)) throw e;
    }
    await templates.delete(t.id);
    await recordAfterChange(deps.audit, res, { action: 'recurring_delivery.delete', targetType: 'recurring_delivery', targetId: t.id, details: { name: t.name } });
    res.status(204).end();
  });

  return router;
}
