/**
 * `Idempotency-Key` on state-changing requests (the IETF httpapi draft's header, with Stripe's semantics): the first
 * request with a key runs and its answer is kept; a retry with the same key and the same request gets that answer
 * again (header `Idempotent-Replayed: true`) instead of acting twice; the same key with another request is a 422; a
 * retry while the first is still running is a 409 with Retry-After. Keys are per API key and expire (settings).
 *
 * A request that fails on the server's side (5xx) keeps nothing, so its retry runs again. A request whose process
 * died mid-way is taken over by a retry once its lease lapses, with the same `resourceId`: a handler that creates
 * something names it with that id, so the re-run finds what the first run already made (see delivery creation).
 */
import { createHash } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { IdempotencyRecord, IdempotencyStore } from '../db/idempotency-store';

export const IDEMPOTENCY_HEADER = 'idempotency-key';
/** Printable ASCII, as the draft's examples and Stripe's keys (UUIDs, random tokens); long enough for any of them. */
export const KEY_FORMAT = /^[\x21-\x7e]{1,255}$/;
const LEASE_EXTEND_EVERY_MS = 5_000;

/** What a handler can learn of the idempotency of its request. */
export interface IdempotencyContext {
  key: string;
  /** Stable across retries of this key: use it as the id of what the request creates. */
  resourceId: string;
  /** This run takes over a request whose process died: look for what it already made. */
  takenOver: boolean;
  /** For a streamed body: wrap the body with it so that the fingerprint covers it (see `fingerprintStream`). */
  bodyHash: ReturnType<typeof createHash> | null;
}

export function idempotencyOf(res: Response): IdempotencyContext | undefined {
  return res.locals.idempotency as IdempotencyContext | undefined;
}

/** Canonical JSON (keys sorted at every level), so that the same object sent with another key order matches. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** Requests whose body the route streams itself (CSV uploads): its fingerprint is completed as the body is read. */
const isStreamedBody = (req: Request) => !req.is('application/json') && req.headers['content-length'] !== '0' && (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0);

function fingerprintHead(req: Request): ReturnType<typeof createHash> {
  return createHash('sha256')
    .update(req.method)
    .update('\n')
    .update(req.originalUrl)
    .update('\n')
    .update(String(req.headers['content-type'] ?? ''))
    .update('\n');
}

/** Passes a streamed body through, feeding the request's fingerprint (a no-op without an idempotency key). */
export async function* fingerprintStream(res: Response, body: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const hash = idempotencyOf(res)?.bodyHash ?? null;
  for await (const chunk of body) {
    hash?.update(chunk);
    yield chunk;
  }
}

async function drainHash(req: Request): Promise<string> {
  const h = fingerprintHead(req);
  for await (const chunk of req as AsyncIterable<Buffer>) h.update(chunk);
  return h.digest('hex');
}

function replay(res: Response, record: IdempotencyRecord): void {
  res.setHeader('Idempotent-Replayed', 'true');
  res.status(record.responseStatus ?? 200);
  if (record.responseBody === null || record.responseBody === undefined) res.end();
  else res.json(record.responseBody);
}

export interface IdempotencyOptions {
  store: IdempotencyStore;
  /** Who owns a key: the authenticated API key's id (keys of different integrators never meet). */
  ownerOf: (req: Request, res: Response) => string;
}

export function idempotencyKeys(o: IdempotencyOptions): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    const raw = req.headers[IDEMPOTENCY_HEADER];
    if (raw === undefined || !['POST', 'PUT', 'PATCH', 'DELETE'].includes(req.method)) return next();
    const key = Array.isArray(raw) ? raw[0] : raw;
    if (!KEY_FORMAT.test(key)) {
      res.status(400).json({ error: 'invalid request', issues: [{ path: 'Idempotency-Key', message: 'Idempotency-Key must be 1 to 255 printable ASCII characters' }] });
      return;
    }
    const owner = o.ownerOf(req, res);
    const streamed = isStreamedBody(req);
    const requestHash = streamed ? null : fingerprintHead(req).update(canonicalJson(req.body ?? null)).digest('hex');
    const claim = await o.store.claim({ owner, key, requestHash, method: req.method, path: req.originalUrl });

    if (claim.outcome === 'existing') {
      const r = claim.record;
      // A streamed body is read to know whether it is the same request.
      const hash = streamed ? await drainHash(req) : requestHash;
      if (r.method !== req.method || r.path !== req.originalUrl || (r.requestHash !== null && r.requestHash !== hash)) {
        res.status(422).json({ error: `Idempotency-Key ${JSON.stringify(key)} was used for another request (${r.method} ${r.path}, different body): use a new key for a new request` });
        return;
      }
      if (r.state === 'in_progress') {
        res.setHeader('Retry-After', '1');
        res.status(409).json({ error: `a request with Idempotency-Key ${JSON.stringify(key)} is still being processed: retry later` });
        return;
      }
      replay(res, r);
      return;
    }

    const ctx: IdempotencyContext = { key, resourceId: claim.record.resourceId, takenOver: claim.takenOver, bodyHash: streamed ? fingerprintHead(req) : null };
    res.locals.idempotency = ctx;
    const lease = setInterval(() => void o.store.extendLease(owner, key, ctx.resourceId).catch(() => undefined), LEASE_EXTEND_EVERY_MS);
    lease.unref();
    // The answer is recorded before it is sent, so that a client retrying the moment it has it finds it stored. A
    // client that went away does not matter: the request still runs to its end and its answer is kept for the retry.
    let settled = false;
    const settle = (status: number, body: unknown): Promise<void> => {
      settled = true;
      clearInterval(lease);
      // Only successes are kept. A refusal (4xx) changed nothing and a server failure (5xx) may be retried: both
      // forget the key, and a retry runs again (creation is safe to re-run, see the header comment).
      const done =
        status < 400
          ? o.store.complete(owner, key, ctx.resourceId, { status, body, requestHash: streamed ? ctx.bodyHash!.digest('hex') : requestHash })
          : o.store.release(owner, key, ctx.resourceId);
      return done.catch((e) => console.error(JSON.stringify({ msg: 'idempotency key not settled', key, error: String(e) })));
    };
    const json = res.json.bind(res);
    const end = res.end.bind(res) as (...a: unknown[]) => Response;
    res.json = (b: unknown) => {
      if (settled) return json(b);
      void settle(res.statusCode, b).then(() => json(b));
      return res;
    };
    res.end = ((...a: unknown[]) => {
      if (settled) return end(...a);
      void settle(res.statusCode, null).then(() => end(...a));
      return res;
    }) as Response['end'];
    next();
  };
}
