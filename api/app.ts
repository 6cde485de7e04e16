/** The HTTP API (Express): deliveries, their recipients and KPIs, confirmation and control, DKIM keys, one-click unsubscribe. */
import express, { type NextFunction, type Request, type Response } from 'express';
import { z, ZodError } from 'zod';
import type { Pool } from 'pg';
import type { DkimKeyStore } from '../db/dkim-key-store';
import { verifyUnsubscribeToken } from '../mail/unsubscribe-token';
import { cancelSchema, confirmSchema, createDeliverySchema, pageQuerySchema, proofSchema, rescheduleSchema, updateDeliverySchema, uuidParam } from './delivery-input';
import { CsvInputError } from '../db/recipient-lists';
import { createDkimRouter } from './dkim-routes';
import type { WaveSpec } from '../domain/wave-plan';
import { ConflictError, NotFoundError, type DeliveryService } from './delivery-service';
import { QualificationRuleStore } from '../db/qualification-rule-store';
import { createRulesRouter } from './rules-routes';
import type { Client } from '@temporalio/client';
import { createScheduleRouter } from './schedule-routes';

export interface ApiDependencies {
  service: DeliveryService;
  keys: DkimKeyStore;
  pool: Pool;
  verpSecret: string;
  temporalUiUrl?: string;
  /** Recurring deliveries (Temporal Schedules): mounted only when given. */
  schedules?: { client: Client; taskQueue: string };
}

function deliveryId(req: Request): string {
  return uuidParam.parse(req.params.id);
}

export function createApp(deps: ApiDependencies): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '50mb' }));

  app.get('/health', (_req, res) => {
    res.json({ ok: true });
  });

  app.post('/api/deliveries', async (req, res) => {
    const input = createDeliverySchema.parse(req.body);
    const created = await deps.service.create(input);
    res.status(201).json({
      id: created.id,
      workflowId: created.workflowId,
      recipients: created.recipientCount,
      links: { self: `/api/deliveries/${created.id}`, recipients: `/api/deliveries/${created.id}/recipients` },
    });
  });

  app.get('/api/deliveries', async (req, res) => {
    const q = z.object({ limit: z.coerce.number().int().min(1).max(200).default(50), before: z.iso.datetime().optional() }).parse(req.query);
    const rows = await deps.service.store.list(q.limit, q.before ? new Date(q.before) : undefined);
    res.json({ deliveries: rows.map(({ html: _h, text: _t, ...rest }) => rest) });
  });

  app.get('/api/deliveries/:id', async (req, res) => {
    const id = deliveryId(req);
    const row = await deps.service.store.get(id);
    if (!row) throw new NotFoundError(`delivery ${id} does not exist`);
    const view = await deps.service.workflowView(id);
    // KPIs come from the workflow's query while it runs; the log is the fallback once its history is gone.
    const kpis = view?.kpis ?? (await deps.service.log.kpis(id));
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
      kpisSource: view?.kpis ? 'workflow' : 'delivery_log',
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
        ? { workflowId: `delivery-${id}`, batchesStarted: view.batchesStarted, handedOverUpToRecipientId: view.handedOverUpToRecipientId, validityEndsAt: view.validityEndsAtMs ? new Date(view.validityEndsAtMs).toISOString() : null }
        : null,
    });
  });

  app.get('/api/deliveries/:id/recipients', async (req, res) => {
    const id = deliveryId(req);
    const q = pageQuerySchema.parse(req.query);
    if (!(await deps.service.store.get(id))) throw new NotFoundError(`delivery ${id} does not exist`);
    const rows = await deps.service.log.page(id, { afterRecipientId: q.after, limit: q.limit, status: q.status });
    const next = rows.length === q.limit ? rows[rows.length - 1].recipientId : null;
    res.json({ recipients: rows, next: next === null ? null : `/api/deliveries/${id}/recipients?after=${next}&limit=${q.limit}${q.status ? `&status=${q.status}` : ''}` });
  });

  app.get('/api/deliveries/:id/recipients/:rid', async (req, res) => {
    const id = deliveryId(req);
    const rid = z.coerce.number().int().positive().parse(req.params.rid);
    const row = await deps.service.log.recipient(id, rid);
    if (!row) throw new NotFoundError(`recipient ${rid} of delivery ${id} does not exist`);
    const [transitions, attempts] = await Promise.all([deps.service.log.transitions(id, rid), deps.service.log.attempts(id, rid)]);
    res.json({ recipient: row, transitions, attempts, workflowId: `delivery-${id}-r-${rid}` });
  });

  app.post('/api/deliveries/:id/confirm', async (req, res) => {
    const id = deliveryId(req);
    const body = confirmSchema.parse(req.body ?? {});
    const phase = await deps.service.confirm(id, body.confirmedBy);
    res.json({ id, confirmed: true, phase });
  });

  app.post('/api/deliveries/:id/cancel', async (req, res) => {
    const id = deliveryId(req);
    const body = cancelSchema.parse(req.body ?? {});
    const phase = await deps.service.cancel(id, body.reason);
    res.status(202).json({ id, cancelRequested: true, phase });
  });

  app.post('/api/deliveries/:id/pause', async (req, res) => {
    const id = deliveryId(req);
    const body = cancelSchema.parse(req.body ?? {});
    res.json({ id, paused: true, phase: await deps.service.pause(id, body.reason) });
  });

  app.post('/api/deliveries/:id/resume', async (req, res) => {
    const id = deliveryId(req);
    res.json({ id, paused: false, phase: await deps.service.resume(id) });
  });

  app.put('/api/deliveries/:id/contact-date', async (req, res) => {
    const id = deliveryId(req);
    const body = rescheduleSchema.parse(req.body ?? {});
    const phase = await deps.service.reschedule(id, body.contactDate ? new Date(body.contactDate) : null);
    res.json({ id, contactDate: body.contactDate, phase });
  });

  // Content, validity and wave edits before confirmation; the workflow re-runs analysis.
  app.patch('/api/deliveries/:id', async (req, res) => {
    const id = deliveryId(req);
    const body = updateDeliverySchema.parse(req.body ?? {});
    const { validity, waves, ...rest } = body;
    const phase = await deps.service.editDraft(id, {
      ...rest,
      ...(validity !== undefined ? { validitySeconds: validity } : {}),
      ...(waves !== undefined ? { waves: waves as WaveSpec } : {}),
    });
    res.status(202).json({ id, reanalysing: true, phase });
  });

  app.post('/api/deliveries/:id/proofs', async (req, res) => {
    const id = deliveryId(req);
    const body = proofSchema.parse(req.body ?? {});
    res.json({ id, proofs: await deps.service.sendProofs(id, body.addresses) });
  });

  // Stored lists: a CSV body (header row; an email column; other columns become personalisation fields), streamed into COPY.
  app.post('/api/lists', async (req, res) => {
    if (!req.is('text/csv')) {
      res.status(415).json({ error: 'send the list as text/csv with a header row' });
      return;
    }
    const name = z.string({ error: 'name is required (?name=...)' }).trim().min(1, 'name is required (?name=...)').max(200).parse(req.query.name);
    const list = await deps.service.lists.createFromCsv(name, req);
    res.status(201).json(list);
  });

  app.get('/api/lists', async (_req, res) => {
    res.json({ lists: await deps.service.lists.list() });
  });

  app.get('/api/lists/:id', async (req, res) => {
    const id = z.uuid({ message: 'not a list id' }).parse(req.params.id);
    const list = await deps.service.lists.get(id);
    if (!list) throw new NotFoundError(`list ${id} does not exist`);
    res.json(list);
  });

  app.use(createDkimRouter(deps.keys));

  // RFC 8058 one-click: mailbox providers POST "List-Unsubscribe=One-Click" to the URL from the header.
  app.post('/u/:id/:rid/:token', express.urlencoded({ extended: false }), async (req, res) => {
    const id = deliveryId(req);
    const rid = z.coerce.number().int().positive().parse(req.params.rid);
    const token = String(req.params.token);
    if (!verifyUnsubscribeToken(id, rid, token, deps.verpSecret)) {
      res.status(403).json({ error: 'invalid unsubscribe link' });
      return;
    }
    const r = await deps.pool.query(
      `INSERT INTO address_denylist (address_key, reason, source, delivery_id)
       SELECT address_key, 'unsubscribed', 'list-unsubscribe', delivery_id FROM delivery_recipients WHERE delivery_id = $1 AND recipient_id = $2
       ON CONFLICT (address_key) DO NOTHING`,
      [id, rid],
    );
    res.json({ unsubscribed: true, new: (r.rowCount ?? 0) > 0 });
  });

  app.use(createRulesRouter({ store: new QualificationRuleStore(deps.pool) }));
  if (deps.schedules) app.use(createScheduleRouter({ ...deps.schedules, pool: deps.pool }));

  app.use((_req, res) => {
    res.status(404).json({ error: 'no such endpoint' });
  });

  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof ZodError) {
      res.status(400).json({
        error: 'invalid request',
        issues: err.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
      });
      return;
    }
    if (err instanceof NotFoundError || err instanceof ConflictError || err instanceof CsvInputError) {
      res.status(err.status).json({ error: err.message });
      return;
    }
    const e = err as { type?: string; status?: number; message?: string };
    if (e.type === 'entity.parse.failed') {
      res.status(400).json({ error: `body is not valid JSON: ${e.message}` });
      return;
    }
    if (e.type === 'entity.too.large') {
      res.status(413).json({ error: 'body too large' });
      return;
    }
    console.error(JSON.stringify({ msg: 'api error', error: String((err as Error)?.stack ?? err) }));
    res.status(500).json({ error: 'internal error' });
  });
  return app;
}
