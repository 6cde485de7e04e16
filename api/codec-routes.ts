/**
 * The codec server: `POST /codec/encode` and `POST /codec/decode`, the remote codec protocol of the Temporal Web UI
 * and CLI (`{"payloads": [{"metadata": {key: base64}, "data": base64}]}` in and out), so people allowed to read
 * deliveries see decrypted payloads in the UI while the Temporal server keeps only sealed ones.
 *
 * The UI calls it from the browser: the page's origin must be allowed (CORS, answered before any access check since a
 * preflight carries no credentials, and set on refusals too so that the UI can show them). Access goes through one
 * middleware, `access` (see below); the body is parsed only after it.
 */
import express, { Router, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import type { Payload, PayloadCodec } from '@temporalio/common';

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Origins (scheme://host:port) whose pages may call the codec server: the Temporal Web UI's. */
  allowedOrigins: string[];
  /**
   * The access check: createApp gives the API's own (api/auth/access-control.ts), which requires a key with the `read`
   * scope, or a session cookie. The Web UI cannot add a header of its own to codec calls (its "pass access token"
   * option sends an OIDC token, and only to an HTTPS endpoint), but with "include cross-origin credentials" on it sends
   * the session cookie of a browser signed in at POST /api/session (docs/access-control.md).
   */
  access?: RequestHandler;
}

/** The default access check when none is given: refuses everything, since decoding shows recipient data in clear text. */
export const codecAccess: RequestHandler = (_req: Request, res: Response, _next: NextFunction) => {
  res.setHeader('WWW-Authenticate', 'Bearer realm="email-delivery"');
  res.status(401).json({ error: 'the codec server was mounted without an access check', reason: 'missing_key' });
};

/** Headers the Web UI sends to a codec endpoint. */
const ALLOWED_HEADERS = 'Content-Type, X-Namespace, Authorization';
const MAX_PAYLOADS = 10_000;
/** A history page's payloads, base64 in JSON. */
const MAX_BODY = '50mb';

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');
export const payloadsBody = z
  .object({
    payloads: z
      .array(z.object({ metadata: z.record(z.string(), base64).optional(), data: base64.optional() }), { error: 'payloads must be an array of payloads' })
      .max(MAX_PAYLOADS),
  })
  .strict();

type JsonPayload = { metadata?: Record<string, string>; data?: string };

const fromJson = (p: JsonPayload): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: Buffer.from(p.data ?? '', 'base64'),
});

const toJson = (p: Payload): JsonPayload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')])),
  data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
});

/** CORS for the Web UI: only the allowed origins, only what the codec protocol needs. */
function codecCors(allowedOrigins: string[]): RequestHandler {
  const allowed = new Set(allowedOrigins.map((o) => o.replace(/\/+$/, '')));
  return (req, res, next) => {
    res.vary('Origin');
    const origin = req.headers.origin;
    if (origin && allowed.has(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', ALLOWED_HEADERS);
      res.setHeader('Access-Control-Max-Age', '600');
    }
    if (req.method === 'OPTIONS') {
      res.status(origin && allowed.has(origin) ? 204 : 403).end();
      return;
    }
    next();
  };
}

export function createCodecRouter(o: CodecServerOptions): Router {
  const router = Router();
  router.use('/codec', codecCors(o.allowedOrigins), o.access ?? codecAccess, express.json({ limit: MAX_BODY }));

  router.post('/codec/encode', async (req, res) => {
    const body = payloadsBody.parse(req.body);
    const encoded = await o.codec.encode(body.payloads.map(fromJson));
    res.json({ payloads: encoded.map(toJson) });
  });

  router.post('/codec/decode', async (req, res) => {
    const body = payloadsBody.parse(req.body);
    // One payload that cannot be opened (a key rotated out) comes back as it is, still sealed: the UI shows the others.
    const decoded = await Promise.all(
      body.payloads.map(fromJson).map(async (p, i) => {
        try {
          return (await o.codec.decode([p]))[0];
        } catch (e) {
          console.error(JSON.stringify({ msg: 'codec server: payload not decoded', index: i, error: (e as Error).message }));
          return p;
        }
      }),
    );
    res.json({ payloads: decoded.map(toJson) });
  });

  return router;
}
