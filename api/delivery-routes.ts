/** HTTP API of deliveries: create, list, read (KPIs from the workflow's query), recipients, confirm, control, edit, proofs. */
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { WaveSpec } from '../domain/wave-plan';
import { deliveryWorkflowId, recipientWorkflowId } from '../workflows/contract';
import {
  cancelSchema,
  confirmSchema,
  createDeliverySchema,
  exportQuerySchema,
  listDeliveriesQuery,
  pageQuerySchema,
  previewMessageSchema,
  proofSchema,
  rescheduleSchema,
  updateDeliverySchema,
  uuidParam,
  type RecipientFilterInput,
} from './delivery-input';
import type { DeliveryService } from './delivery-service';
import { NotFoundError, RequestFieldError } from './http-errors';
import { MessageTemplateError, renderForRecipient } from '../domain/message-template';
import type { RecipientRow } from '../db/delivery-log';
import { idempotencyOf } from './idempotency';
import { isEndedPhase } from '../domain/delivery-lifecycle';
import { recordAfterChange, type AuditRecorder } from './auth/audit';

/** A recipient's number within its delivery, in a path. */
export const recipientIdParam = z.coerce.number().int().positive();

/** Rows read per statement by the CSV export: large enough that 1,000,000 recipients take 1,000 short statements. */
const CSV_EXPORT_BATCH = 1000;

/** Resolves when `res` can take more, or when the client has gone (then nothing more is written). */
function waitForDrain(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

export function deliveryIdParam(req: Request): string {
  return uuidParam.parse(req.params.id);
}

/** The filters of a log request as query parameters, in a fixed order, for the `next` link (so it narrows as the page did). */
function filterParams(f: RecipientFilterInput): [string, string][] {
  return (['status', 'address', 'domain', 'failureType', 'failureReason'] as const).flatMap((k) => (f[k] === undefined ? [] : [[k, f[k]] as [string, string]]));
}

/** The columns of the CSV export: those the dashboard's own export had, in its order (test/dashboard.test.ts reads them). */
export const CSV_COLUMNS = [
  'recipientId',
  'address',
  'domain',
  'status',
  'exclusionReason',
  'failureType',
  'failureReason',
  'attempts',
  'lastSmtpCode',
  'lastEnhancedCode',
  'lastReply',
  'lastMxHost',
  'handedOverAt',
  'finalAt',
  'updatedAt',
] as const satisfies readonly (keyof RecipientRow)[];

/**
 * One CSV cell (RFC 4180): quoted when it holds a comma, a quote or a line break. A text starting with = + - @ or a
 * tab/CR (a formula to a spreadsheet) gets a leading apostrophe, so that opening the export runs nothing: an address
 * or an SMTP reply is written by whoever controls the recipient's domain. Dates as the JSON pages give them.
 */
export function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s = v instanceof Date ? v.toISOString() : String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csvLine(row: RecipientRow): string {
  return `${CSV_COLUMNS.map((c) => csvCell(row[c])).join(',')}\r\n`;
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

  // The message rendered for one sample recipient by the engine's own renderer (the dashboard's live preview). It
  // changes nothing and reads nothing: a template error is a 400 naming the part it is in.
  router.post('/api/deliveries/preview', (req, res) => {
    const body = previewMessageSchema.parse(req.body ?? {});
    const content = { subject: body.subject, html: body.html ?? null, text: body.text ?? null };
    let rendered: ReturnType<typeof renderForRecipient>;
    try {
      rendered = renderForRecipient(content, body.fields);
    } catch (e) {
      if (e instanceof MessageTemplateError) throw new RequestFieldError(`the ${e.part} template does not compile or render: ${e.message}`, e.part);
      throw e;
    }
    // What the analysis would exclude this recipient for: a field the message reads that it lacks or has empty.
    const missingFields = rendered.fields.filter((f) => f !== 'email' && (body.fields[f] ?? '') === '');
    res.json({ ...rendered.content, fields: rendered.fields, missingFields });
  });

  router.get('/api/deliveries', async (req, res) => {
    const q = listDeliveriesQuery.parse(req.query);
    const { rows, next } = await service.store.list({
      limit: q.limit,
      before: q.before ? { at: q.before, id: q.beforeId } : undefined,
      states: q.state,
      createdFrom: q.createdFrom,
      createdBefore: q.createdTo,
      text: q.q,
    });
    // The next link repeats the filters as they were given (dates as the caller wrote them), with the new position.
    const link = new URLSearchParams();
    if (next) {
      link.set('limit', String(q.limit));
      link.set('before', next.before);
      link.set('beforeId', next.beforeId);
      for (const k of ['state', 'createdFrom', 'createdTo', 'q'] as const) {
        const given = req.query[k];
        if (typeof given === 'string') link.set(k, given);
        else if (Array.isArray(given)) link.set(k, q.state!.join(','));
      }
    }
    res.json({ deliveries: rows, next: next ? `/api/deliveries?${link}` : null });
  });

  // Polled every 2 s by each open delivery page: the answer is shared by every call for the delivery within
  // LIVE_VIEW_CACHE_MS (DeliveryService.summaries), so open pages cost no Postgres read each.
  router.get('/api/deliveries/:id', async (req, res) => {
    const id = deliveryIdParam(req);
    res.type('application/json').send(await service.summaries.get(id, async () => JSON.stringify(await deliverySummary(service, id))));
  });

  router.get('/api/deliveries/:id/recipients', async (req, res) => {
    const id = deliveryIdParam(req);
    const { after, limit, ...filter } = pageQuerySchema.parse(req.query);
    if (!(await service.exists(id))) throw new NotFoundError(`delivery ${id} does not exist`);
    const rows = await service.log.page(id, { ...filter, afterRecipientId: after, limit });
    // A full page has a next one (possibly empty): one row less to read than asking for limit + 1 on every page.
    const next = rows.length === limit ? rows[rows.length - 1].recipientId : null;
    const link = new URLSearchParams([['after', String(next)], ['limit', String(limit)], ...filterParams(filter)]);
    res.json({ recipients: rows, next: next === null ? null : `/api/deliveries/${id}/recipients?${link}` });
  });

  // The log as CSV, streamed: rows are written as they are read, a page at a time (never the whole log in memory), and
  // reading stops when the client goes away. Same filters and rows as the JSON pages above.
  router.get('/api/deliveries/:id/recipients.csv', async (req, res) => {
    const id = deliveryIdParam(req);
    const filter = exportQuerySchema.parse(req.query);
    if (!(await service.exists(id))) throw new NotFoundError(`delivery ${id} does not exist`);
    const name = [`delivery-${id}`, ...filterParams(filter).map(([, v]) => v.replace(/[^A-Za-z0-9._-]+/g, '_'))].join('-');
    res.status(200);
    res.setHeader('Content-Type', 'text/csv; charset=utf-8');
    res.setHeader('Content-Disposition', `attachment; filename="${name}.csv"`);
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.write(`${CSV_COLUMNS.join(',')}\r\n`);
    let gone = false;
    res.on('close', () => {
      gone = true;
    });
    const pages = service.log.everyRecipient(id, filter, CSV_EXPORT_BATCH);
    try {
      for await (const rows of pages) {
        if (gone) break;
        // Backpressure: the next page is read once the client has taken this one (or has gone).
        if (!res.write(rows.map(csvLine).join(''))) await waitForDrain(res);
        if (gone) break;
      }
    } catch (e) {
      // The headers are sent: the only honest answer left is a cut connection (the client sees an incomplete file, not
      // a CSV that looks whole), and the log line says why.
      console.error(JSON.stringify({ msg: 'csv export failed', deliveryId: id, error: String((e as Error)?.stack ?? e) }));
      res.destroy();
      return;
    }
    res.end();
  });

  router.get('/api/deliveries/:id/recipients/:rid', async (req, res) => {
    const id = deliveryIdParam(req);
    const rid = recipientIdParam.parse(req.params.rid);
    const detail = await service.log.recipientDetail(id, rid);
    if (!detail) throw new NotFoundError(`recipient ${rid} of delivery ${id} does not exist`);
    res.json({ ...detail, workflowId: recipientWorkflowId(id, rid) });
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

/** The delivery's row with its live view: KPIs, waves and workflow position (`GET /api/deliveries/:id`). */
async function deliverySummary(service: DeliveryService, id: string) {
  // The row, the workflow's view and, for a delivery whose row says it has ended, the delivery log's KPIs are read at
  // once rather than one after the other: the answer waits for the slowest of them, not for their sum (at 100,000
  // recipients the KPIs' aggregate takes tens of milliseconds, a closed workflow's query as much or more).
  const rowRead = service.store.get(id);
  const endedKpisRead = rowRead.then((r) => (r && isEndedPhase(r.state) ? service.log.kpis(id) : null));
  // Temporal unreachable: the delivery log still answers (kpisSource says so), rather than a 5xx after 20 s.
  const [row, { view, temporalUnavailable }, endedKpis] = await Promise.all([rowRead, service.liveView(id), endedKpisRead]);
  if (!row) throw new NotFoundError(`delivery ${id} does not exist`);
  // KPIs come from the workflow's query while it runs. Once it has ended (or its history is gone) the delivery log is
  // the truth: late bounces and relay reports still change it after the delivery workflow completed.
  const running = view !== null && !isEndedPhase(view.phase);
  const kpis = running && view.kpis ? view.kpis : (endedKpis ?? (await service.log.kpis(id)));
  return {
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
  };
}
