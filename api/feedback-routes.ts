/**
 * HTTP API of the asynchronous feedback: POST /api/inbound (a raw RFC 5322 message forwarded by a relay or an ESP),
 * the stored inbound messages and the review table, a recipient's feedback, quarantined addresses (list, release)
 * and the denylist (list, add, remove).
 */
import express, { Router } from 'express';
import { z } from 'zod';
import type { InboundStore } from '../db/inbound-store';
import type { QuarantineStore } from '../db/quarantine-store';
import { checkEmailAddress, duplicateKey } from '../domain/email-address';
import { FAILURE_REASONS } from '../domain/failure';
import type { InboundProcessor } from '../inbound/process-inbound';
import { NotFoundError, RequestFieldError } from './http-errors';
import { uuidParam } from './delivery-input';
import { auditActor } from './auth/access-control';

export interface FeedbackRouterDependencies {
  processor: InboundProcessor;
  inbound: InboundStore;
  quarantine: QuarantineStore;
  maxMessageBytes: number;
}

export const messageIdParam = z.string().regex(/^\d{1,18}$/, 'must be the numeric id of an inbound message');
const limit = z.coerce.number().int().min(1).max(500).default(100);
export const listInboundQuery = z
  .object({
    before: messageIdParam.optional(),
    limit,
    review: z.enum(['true', 'false']).optional(),
    deliveryId: uuidParam.optional(),
    kind: z.enum(['dsn', 'bounce', 'arf', 'auto_reply', 'unknown']).optional(),
  })
  .strict();
export const listQuarantineQuery = z
  .object({
    after: z.string().max(320).optional(),
    limit,
    search: z.string().min(1).max(320).optional(),
    reason: z.enum(FAILURE_REASONS).optional(),
    /** Addresses with failures counted but not (or no longer) quarantined. */
    counting: z.enum(['true', 'false']).optional(),
  })
  .strict();
export const listDenylistQuery = z
  .object({
    after: z.string().max(320).optional(),
    limit,
    search: z.string().min(1).max(320).optional(),
    source: z.enum(['list-unsubscribe', 'complaint', 'api']).optional(),
  })
  .strict();
export const denylistBody = z
  .object({
    address: z.string().min(3).max(320),
    reason: z.string().min(1).max(200).default('manual'),
    note: z.string().max(2000).optional(),
  })
  .strict();

/** The key addresses are stored under (analysis matches on it): a 400 naming `field` when it is not an address. */
function addressKey(input: string, field: string): string {
  const check = checkEmailAddress(input);
  if (!check.ok) throw new RequestFieldError(`not a valid address: ${check.problem}`, field);
  return duplicateKey(check.address, check.domain);
}

export function createFeedbackRouter(deps: FeedbackRouterDependencies): Router {
  const router = Router();

  // A raw message as the listener would have received it. 202: stored and applied; the body says what it changed.
  router.post('/api/inbound', express.raw({ type: () => true, limit: deps.maxMessageBytes }), async (req, res) => {
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (type !== 'message/rfc822' && type !== 'text/plain') {
      res.status(415).json({ error: 'Content-Type must be message/rfc822 (a raw RFC 5322 message)' });
      return;
    }
    const raw = req.body as Buffer;
    if (!Buffer.isBuffer(raw) || raw.length === 0) throw new RequestFieldError('the message is empty', 'body');
    const outcome = await deps.processor.process(raw, { channel: 'http', envelopeFrom: null, envelopeTo: [], remoteAddress: req.ip ?? null });
    res.status(outcome.duplicate ? 200 : 202).json({ ...outcome, links: { self: `/api/inbound/${outcome.id}` } });
  });

  router.get('/api/inbound', async (req, res) => {
    const q = listInboundQuery.parse(req.query);
    const rows = await deps.inbound.list({ beforeId: q.before, limit: q.limit, review: q.review === 'true', deliveryId: q.deliveryId, kind: q.kind });
    const next = rows.length === q.limit ? rows[rows.length - 1].id : null;
    res.json({ messages: rows, next: next === null ? null : `/api/inbound?${new URLSearchParams({ ...stringEntries(q), before: next })}` });
  });

  router.get('/api/inbound/:id', async (req, res) => {
    const id = messageIdParam.parse(req.params.id);
    const row = await deps.inbound.message(id);
    if (!row) throw new NotFoundError(`inbound message ${id} does not exist`);
    res.json({ ...row, links: { raw: `/api/inbound/${id}/raw` } });
  });

  router.get('/api/inbound/:id/raw', async (req, res) => {
    const id = messageIdParam.parse(req.params.id);
    const raw = await deps.inbound.raw(id);
    if (!raw) throw new NotFoundError(`inbound message ${id} does not exist`);
    res.type('message/rfc822').send(raw);
  });

  // A person looked at an unattributed message: it leaves the review list (it stays stored).
  router.post('/api/inbound/:id/resolve', async (req, res) => {
    const id = messageIdParam.parse(req.params.id);
    if (!(await deps.inbound.resolveReview(id))) throw new NotFoundError(`inbound message ${id} is not in the review table`);
    res.json({ id, resolved: true });
  });

  router.get('/api/deliveries/:id/recipients/:recipientId/feedback', async (req, res) => {
    const deliveryId = uuidParam.parse(req.params.id);
    const recipientId = z.coerce.number().int().positive().parse(req.params.recipientId);
    res.json({ feedback: await deps.inbound.recipientFeedback(deliveryId, recipientId) });
  });

  router.get('/api/quarantine', async (req, res) => {
    const q = listQuarantineQuery.parse(req.query);
    const rows = await deps.quarantine.list({ after: q.after, limit: q.limit, search: q.search, reason: q.reason, counting: q.counting === 'true' });
    const next = rows.length === q.limit ? rows[rows.length - 1].address : null;
    res.json({ addresses: rows, next: next === null ? null : `/api/quarantine?${new URLSearchParams({ ...stringEntries(q), after: next })}` });
  });

  router.get('/api/quarantine/:address', async (req, res) => {
    const key = addressKey(req.params.address, 'address');
    const row = await deps.quarantine.get(key);
    if (!row) throw new NotFoundError(`${key} has no quarantine record`);
    res.json(row);
  });

  // Release: the address may be mailed again and its failure count starts from zero.
  router.delete('/api/quarantine/:address', async (req, res) => {
    const key = addressKey(req.params.address, 'address');
    if (!(await deps.quarantine.release(key, auditActor(res)))) throw new NotFoundError(`${key} has no quarantine record`);
    res.json({ address: key, released: true });
  });

  router.get('/api/denylist', async (req, res) => {
    const q = listDenylistQuery.parse(req.query);
    const rows = await deps.quarantine.listDenylist({ after: q.after, limit: q.limit, search: q.search, source: q.source });
    const next = rows.length === q.limit ? rows[rows.length - 1].address : null;
    res.json({ addresses: rows, next: next === null ? null : `/api/denylist?${new URLSearchParams({ ...stringEntries(q), after: next })}` });
  });

  router.post('/api/denylist', async (req, res) => {
    const body = denylistBody.parse(req.body);
    const key = addressKey(body.address, 'address');
    const { added } = await deps.quarantine.addToDenylist(key, body.reason, body.note ?? null, auditActor(res));
    res.status(added ? 201 : 200).json({ address: key, added });
  });

  router.delete('/api/denylist/:address', async (req, res) => {
    const key = addressKey(req.params.address, 'address');
    if (!(await deps.quarantine.removeFromDenylist(key, auditActor(res)))) throw new NotFoundError(`${key} is not on the denylist`);
    res.json({ address: key, removed: true });
  });

  return router;
}

function stringEntries(q: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(q).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)]));
}
