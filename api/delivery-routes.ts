/** HTTP API of deliveries: create, list, read (KPIs from the workflow's query), recipients, confirm, control, edit, proofs. */
import { Router, type Request } from 'express';
import { z } from 'zod';
import type { WaveSpec } from '../domain/wave-plan';
import { deliveryWorkflowId, recipientWorkflowId } from '../workflows/contract';
import { cancelSchema, confirmSchema, createDeliverySchema, pageQuerySchema, proofSchema, rescheduleSchema, updateDeliverySchema, uuidParam } from './delivery-input';
import type { DeliveryService } from './delivery-service';
import { NotFoundError } from './http-errors';
import { isEndedPhase } from '../domain/delivery-lifecycle';

export function deliveryIdParam(req: Request): string {
  return uuidParam.parse(req.params.id);
}

export function createDeliveryRouter(service: DeliveryService): Router {
  const router = Router();

  router.post('/api/deliveries', async (req, res) => {
    const input = createDeliverySchema.parse(req.body);
    const created = await service.create(input);
    res.status(201).json({
      id: created.id,
      workflowId: created.workflowId,
      recipients: created.recipientCount,
      links: { self: `/api/deliveries/${created.id}`, recipients: `/api/deliveries/${created.id}/recipients` },
    });
  });

  router.get('/api/deliveries', async (req, res) => {
    const q = z.object({ limit: z.coerce.number().int().min(1).max(200).default(50), before: z.iso.datetime().optional() }).parse(req.query);
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
    const rid = z.coerce.number().int().positive().parse(req.params.rid);
    const row = await service.log.recipient(id, rid);
    if (!row) throw new NotFoundError(`recipient ${rid} of delivery ${id} does not exist`);
    const [transitions, attempts] = await Promise.all([service.log.transitions(id, rid), service.log.attempts(id, rid)]);
    res.json({ recipient: row, transitions, attempts, workflowId: recipientWorkflowId(id, rid) });
  });

  router.post('/api/deliveries/:id/confirm', async (req, res) => {
    const id = deliveryIdParam(req);
    const body = confirmSchema.parse(req.body ?? {});
    const phase = await service.confirm(id, body.confirmedBy);
    res.json({ id, confirmed: true, phase });
  });

  router.post('/api/deliveries/:id/cancel', async (req, res) => {
    const id = deliveryIdParam(req);
    const body = cancelSchema.parse(req.body ?? {});
    const phase = await service.cancel(id, body.reason);
    res.status(202).json({ id, cancelRequested: true, phase });
  });

  router.post('/api/deliveries/:id/pause', async (req, res) => {
    const id = deliveryIdParam(req);
    const body = cancelSchema.parse(req.body ?? {});
    res.json({ id, paused: true, phase: await service.pause(id, body.reason) });
  });

  router.post('/api/deliveries/:id/resume', async (req, res) => {
    const id = deliveryIdParam(req);
    res.json({ id, paused: false, phase: await service.resume(id) });
  });

  router.put('/api/deliveries/:id/contact-date', async (req, res) => {
    const id = deliveryIdParam(req);
    const body = rescheduleSchema.parse(req.body ?? {});
    const phase = await service.reschedule(id, body.contactDate ? new Date(body.contactDate) : null);
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
    res.status(202).json({ id, reanalysing: true, phase });
  });

  router.post('/api/deliveries/:id/proofs', async (req, res) => {
    const id = deliveryIdParam(req);
    const body = proofSchema.parse(req.body ?? {});
    res.json({ id, proofs: await service.sendProofs(id, body.addresses) });
  });

  return router;
}
