/** HTTP API of deliveries: create, list, read (KPIs from the workflow's query), recipients, confirm, control, edit, proofs. */
import { Router, type Request } from 'express';
import { z } from 'zod';
import type { WaveSpec } from '../domain/wave-plan';
import { deliveryWorkflowId, recipientWorkflowId } from '../workflows/contract';
import { cancelSchema, confirmSchema, createDeliverySchema, pageQuerySchema, proofSchema, rescheduleSchema, updateDeliverySchema, uuidParam } from './delivery-input';
import type { DeliveryService } from './delivery-service';
import { NotFoundError } from './http-errors';
import { idempotencyOf } from './idempotency';
import { isEndedPhase } from '../domain/delivery-lifecycle';
import { recordAfterChange, type AuditRecorder } from './auth/audit';

/** The query of GET /api/deliveries (exported for the OpenAPI description, api/openapi/). */
export const listDeliveriesQuery = z.object({ limit: z.coerce.number().int().min(1).max(200).default(50), before: z.iso.datetime().optional() });
/** A recipient's number within its delivery, in a path. */
export const recipientIdParam = z.coerce.number().int().positive();

export function deliveryIdParam(req: Request): string {
  return uuidParam.parse(req.params.id);
}

/**
 * `audit`: creation and every control are recorded right after they succeeded (they are workflow updates: there is no
 * Postgres transaction to share).
 */
export function createDeliveryRouter(service: DeliveryService, audit: AuditRecorder): Router {
  const router = Router();

  router.post('/api/deliveries', async (req, res) => {
    const input = createDeliverySchema.parse(req.body);
    // Under an Idempotency-Key the delivery takes the key's stable id: a re-run after a crash finds it (api/idempotency.ts).
    const created = await service.create(input, { id: idempotencyOf(res)?.resourceId });
    await recordAfterChange(audit, res, {
      action: 'delivery.create',
      targetType: 'delivery',
      targetId: created.id,
      details: { name: input.name, recipients: created.recipientCount, autoConfirm: input.autoConfirm ?? false },
    });
    res.status(201).json({
      id: created.id,
      workflowId: created.workflowId,
      recipients: created.recipientCount,
      links: { self: `/api/deliveries/${created.id}`, recipients: `/api/deliveries/${created.id}/recipients` },
    });
  });

  router.get('/api/deliveries', async (req, res) => {
    const q = listDeliveriesQuery.parse(req.query);
    const rows = await service.store.list(q.limit, q.before ? new Date(q.before) : undefined);
    res.json({ deliveries: rows.map(({ html: _h, text: _t, ...rest }) => rest) });
  });

  router.get('/api/deliveries/:id', async (req, res) => {
    const id = deliveryIdParam(req);
    const row = await service.store.get(id);
    if (!row) throw new NotFoundError(`delivery ${id} does not exist`);
    // Temporal unreachable: the delivery log still answers (kpisSource says so), rather than a 5xx after 20 s.
    const { view, temporalUnavailable } = await service.liveView(id);
    // KPIs come from the workflow's query while it runs. Once it has ended (or its history is gone) the delivery log is
    // the truth: late bounces and relay reports still change it after the delivery workflow completed.
    const running = view !== null && !isEndedPhase(view.phase);
    const kpis = running && view.kpis ? view.kpis : await service.log.kpis(id);
    res.json({
      id: row.id,
      name: row.name,
      state: view?.phase ?? row.state,
      from: { address: row.fromAddress, name: row.fromName },
      subject: row.subject,
      validitySeconds: row.validitySeconds,
      contactDate: row.contactDate,
      createdAt: row.createdAt,
      confirmedAt: row.confirmedAt,
      sendingStartedAt: row.sendingStartedAt,
      completedAt: row.completedAt,
      kpis,
      kpisSource: running && view.kpis ? 'workflow' : 'delivery_log',
      temporalUnavailable,
      kpisAt: view?.kpisAtMs ? new Date(view.kpisAtMs).toISOString() : null,
      analysis: row.analysis,
      paused: view?.paused ?? row.state === 'paused',
      // Who paused it and why (a person, or the safety stop with what it saw); null while it is not paused.
      pauseReason: !view ? row.pauseReason : !view.paused ? null : view.pauseReason ? { ...view.pauseReason, at: new Date(view.pauseReason.atMs).toISOString() } : row.pauseReason,
      waves: (view?.waves ?? []).map((w) => ({
        index: w.index,
        plannedStart: new Date(w.plannedStartMs).toISOString(),
        size: w.size,
        handedOver: w.handedOver,
        startedAt: w.startedAtMs ? new Date(w.startedAtMs).toISOString() : null,
        handedOverAt: w.handedOverAtMs ? new Date(w.handedOverAtMs).toISOString() : null,
      })),
      workflow: view
        ? { workflowId: deliveryWorkflowId(id), batchesStarted: view.batchesStarted, handedOverUpToRecipientId: view.handedOverUpToRecipientId, validityEndsAt: view.validityEndsAtMs ? new Date(view.validityEndsAtMs).toISOString() : null }
        : null,
    });
  });

  router.get('/api/deliveries/:id/recipients', async (req, res) => {
    const id = deliveryIdParam(req);
    const q = pageQuerySchema.parse(req.query);
    if (!(await service.store.get(id))) throw new NotFoundError(`delivery ${id} does not exist`);
    const rows = await service.log.page(id, { afterRecipientId: q.after, limit: q.limit, status: q.status });
    const next = rows.length === q.limit ? rows[rows.length - 1].recipientId : null;
    res.json({ recipients: rows, next: next === null ? null : `/api/deliveries/${id}/recipients?after=${next}&limit=${q.limit}${q.status ? `&status=${q.status}` : ''}` });
  });

  router.get('/api/deliveries/:id/recipients/:rid', async (req, res) => {
    const id = deliveryIdParam(req);
    const rid = recipientIdParam.parse(req.params.rid);
    const row = await service.log.recipient(id, rid);
    if (!row) throw new NotFoundError(`recipient ${rid} of delivery ${id} does not exist`);
    const [transitions, attempts] = await Promise.all([service.log.transitions(id, rid), service.log.attempts(id, rid)]);
    res.json({ recipient: row, transitions, attempts, workflowId: recipientWorkflowId(id, rid) });
  });

  router.post('/api/deliveries/:id/confirm', async (req, res) => {
    const id = deliveryIdParam(req);
    const body = confirmSchema.parse(req.body ?? {});
    const phase = await service.confirm(id, body.confirmedBy);
    await recordAfterChange(audit, res, { action: 'delivery.confirm', targetType: 'delivery', targetId: id, details: { confirmedBy: body.confirmedBy ?? null, phase } });
    res.json({ id, confirmed: true, phase });
  });

  router.post('/api/deliveries/:id/cancel', async (req, res) => {
    const id = deliveryIdParam(req);
    const body = cancelSchema.parse(req.body ?? {});
    const phase = await service.cancel(id, body.reason);
    await recordAfterChange(audit, res, { action: 'delivery.cancel', targetType: 'delivery', targetId: id, details: { reason: body.reason ?? null, phase } });
    res.status(202).json({ id, cancelRequested: true, phase });
  });

  router.post('/api/deliveries/:id/pause', async (req, res) => {
    const id = deliveryIdParam(req);
    const body = cancelSchema.parse(req.body ?? {});
    const phase = await service.pause(id, body.reason);
    await recordAfterChange(audit, res, { action: 'delivery.pause', targetType: 'delivery', targetId: id, details: { reason: body.reason ?? null, phase } });
    res.json({ id, paused: true, phase });
  });

  router.post('/api/deliveries/:id/resume', async (req, res) => {
    const id = deliveryIdParam(req);
    const phase = await service.resume(id);
    await recordAfterChange(audit, res, { action: 'delivery.resume', targetType: 'delivery', targetId: id, details: { phase } });
    res.json({ id, paused: false, phase });
  });

  router.put('/api/deliveries/:id/contact-date', async (req, res) => {
    const id = deliveryIdParam(req);
    const body = rescheduleSchema.parse(req.body ?? {});
    const phase = await service.reschedule(id, body.contactDate ? new Date(body.contactDate) : null);
    await recordAfterChange(audit, res, { action: 'delivery.reschedule', targetType: 'delivery', targetId: id, details: { contactDate: body.contactDate ?? null, phase } });
    res.json({ id, contactDate: body.contactDate, phase });
  });

  // Content, validity and wave edits before confirmation; the workflow re-runs analysis.
  router.patch('/api/deliveries/:id', async (req, res) => {
    const id = deliveryIdParam(req);
    const body = updateDeliverySchema.parse(req.body ?? {});
    const { validity, waves, ...rest } = body;
    const phase = await service.editDraft(id, {
      ...rest,
      ...(validity !== undefined ? { validitySeconds: validity } : {}),
      ...(waves !== undefined ? { waves: waves as WaveSpec } : {}),
    });
    await recordAfterChange(audit, res, { action: 'delivery.edit', targetType: 'delivery', targetId: id, details: { fields: Object.keys(body).sort(), phase } });
    res.status(202).json({ id, reanalysing: true, phase });
  });

  router.post('/api/deliveries/:id/proofs', async (req, res) => {
    const id = deliveryIdParam(req);
    const body = proofSchema.parse(req.body ?? {});
    const proofs = await service.sendProofs(id, body.addresses);
    await recordAfterChange(audit, res, { action: 'delivery.proofs', targetType: 'delivery', targetId: id, details: { addresses: body.addresses.length } });
    res.json({ id, proofs });
  });

  return router;
}
