/**
 * Access control of the API, in three middlewares mounted before any body is parsed:
 *
 * 1. `identify`: who is calling — an API key (`Authorization: Bearer <key>` or `X-API-Key: <key>`), else a session
 *    cookie (POST /api/session). Never answers; records the key, or why there is none.
 * 2. `rateLimit`: requests per key (per client IP without a valid key), express-rate-limit; 429 with Retry-After.
 * 3. `authorize`: the scope the route needs (api/auth/route-access.ts) against the key's: 401 without a valid key
 *    (naming why, with WWW-Authenticate: Bearer), 403 with a key of too low a scope (naming the scope needed).
 *
 * A session may read; to change anything it must also send the X-CSRF-Token it was given at sign-in, so another page
 * the browser has open cannot act with the cookie.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import cookieParser from 'cookie-parser';
import { rateLimit as expressRateLimit, ipKeyGenerator } from 'express-rate-limit';
import type { ApiKeyRecord, ApiKeyStore } from '../../db/api-key-store';
import { scopeAllows, highestScope } from '../../domain/api-scopes';
import type { AuditActor } from '../../db/audit-log-store';
import { KeyAuthenticator, type AuthFailure } from './key-authenticator';
import { RouteAccessTable, type RouteAccess } from './route-access';

export const SESSION_COOKIE = 'ede_session';
export const CSRF_HEADER = 'x-csrf-token';
const REALM = 'email-delivery';

/** The caller, once identified. */
export interface ApiPrincipal {
  key: Pick<ApiKeyRecord, 'id' | 'name' | 'scopes' | 'prefix'>;
  via: 'key' | 'session';
  /** With a session: its cookie value (signed in the cookie) and when it ends. */
  session?: { value: string; expiresAt: Date };
}

interface AuthState {
  principal?: ApiPrincipal;
  failure?: AuthFailure;
  /** The credentials came from the session cookie (a bad one is cleared with the 401). */
  fromCookie?: boolean;
}

/** The key a request was made with (undefined on public routes and before `identify`). */
export function principalOf(res: Response): ApiPrincipal | undefined {
  return (res.locals.auth as AuthState | undefined)?.principal;
}

/** Who to write in the audit log for this request: its key, or "(no key)" for a router mounted without access control (tests). */
export function auditActor(res: Response): AuditActor {
  const p = principalOf(res);
  return p ? { keyId: p.key.id, name: p.key.name } : { keyId: null, name: '(no key)' };
}

const FAILURE_TEXT: Record<AuthFailure, string> = {
  missing_key: 'an API key is required: send it as "Authorization: Bearer <key>" or "X-API-Key: <key>" (a browser signs in with POST /api/session)',
  malformed_key: 'the API key is malformed: keys are "ede_" and 43 characters, sent as "Authorization: Bearer <key>" or "X-API-Key: <key>"',
  unknown_key: 'the API key is unknown (mistyped, or from another installation)',
  revoked_key: 'the API key has been revoked',
  invalid_session: 'the session cookie is not valid: sign in again (POST /api/session)',
  expired_session: 'the session has expired: sign in again (POST /api/session)',
};

export interface AccessControlOptions {
  store: Pick<ApiKeyStore, 'findBySecret' | 'get' | 'touch'>;
  /** Signs session cookies and CSRF tokens. */
  sessionSecret: string;
  sessionTtlSeconds: number;
  secureCookie: boolean;
  /** How long a key lookup is trusted (ms): the most a revocation through another process takes to apply. */
  keyCacheMs: number;
  /** Requests per key and window; 0: no limit. */
  rateLimit: { perWindow: number; windowMs: number };
  table?: RouteAccessTable;
  log?: (msg: string, fields: Record<string, unknown>) => void;
}

export interface AccessControl {
  table: RouteAccessTable;
  authenticator: KeyAuthenticator;
  /** cookie-parser, identify, rate limit: mount before any router. */
  identify: RequestHandler[];
  /** The scope check: mount after routes meant to answer CORS preflights themselves (the codec server). */
  authorize: RequestHandler;
  sessions: SessionCookies;
}

export interface SessionCookies {
  /** Opens a session for `key`: sets the cookie, returns its end and the CSRF token that goes with it. */
  open(res: Response, key: ApiKeyRecord): { expiresAt: Date; csrfToken: string };
  close(res: Response): void;
  csrfToken(sessionValue: string): string;
}

/** The session signing key: SESSION_SECRET, else derived (HKDF) from a secret every API process of the installation shares. */
export function deriveSessionSecret(sharedSecret: string): string {
  return Buffer.from(hkdfSync('sha256', sharedSecret, 'email-delivery', 'api session cookies v1', 32)).toString('base64url');
}

/** The key in the request's headers: undefined when none is sent, '' when the header is there but holds no key. */
function presentedKey(req: Request): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(auth);
    return m ? m[1] : '';
  }
  const header = req.headers['x-api-key'];
  if (header !== undefined) return Array.isArray(header) ? '' : header.trim();
  return undefined;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function createAccessControl(o: AccessControlOptions): AccessControl {
  const table = o.table ?? new RouteAccessTable();
  const authenticator = new KeyAuthenticator({ store: o.store, cacheMs: o.keyCacheMs, log: o.log });
  const cookieOptions = { httpOnly: true, sameSite: 'strict' as const, secure: o.secureCookie, path: '/' };

  const sessions: SessionCookies = {
    open(res, key) {
      const expiresAt = new Date(Date.now() + o.sessionTtlSeconds * 1000);
      // The key's id and the end of the session, signed (HMAC-SHA256, cookie-parser): the key is checked at each request,
      // so revoking it ends its sessions too.
      const value = `${key.id}.${Math.floor(expiresAt.getTime() / 1000)}`;
      res.cookie(SESSION_COOKIE, value, { ...cookieOptions, signed: true, expires: expiresAt });
      return { expiresAt, csrfToken: sessions.csrfToken(value) };
    },
    close(res) {
      res.clearCookie(SESSION_COOKIE, cookieOptions);
    },
    csrfToken(value) {
      return createHmac('sha256', o.sessionSecret).update(`csrf:${value}`).digest('base64url');
    },
  };

  async function identifyRequest(req: Request): Promise<AuthState> {
    const presented = presentedKey(req);
    if (presented !== undefined) {
      if (presented === '') return { failure: 'malformed_key' };
      const found = await authenticator.bySecret(presented);
      return found.ok ? { principal: { key: found.key, via: 'key' } } : { failure: found.failure };
    }
    const cookie = (req.signedCookies as Record<string, string | false> | undefined)?.[SESSION_COOKIE];
    if (cookie === undefined) {
      // A cookie whose signature did not check lands in signedCookies as false; a forged unsigned one in cookies.
      return req.cookies?.[SESSION_COOKIE] !== undefined ? { failure: 'invalid_session', fromCookie: true } : { failure: 'missing_key' };
    }
    const m = cookie === false ? null : /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.(\d{1,12})$/.exec(cookie);
    if (!m) return { failure: 'invalid_session', fromCookie: true };
    const expiresAt = new Date(Number(m[2]) * 1000);
    if (expiresAt.getTime() <= Date.now()) return { failure: 'expired_session', fromCookie: true };
    const found = await authenticator.byId(m[1]);
    if (!found.ok) return { failure: found.failure, fromCookie: true };
    return { principal: { key: found.key, via: 'session', session: { value: cookie as string, expiresAt } } };
  }

  const identify: RequestHandler = async (req, res, next) => {
    const access = table.required(req.method, req.path);
    res.locals.requiredAccess = access;
    // Public routes ignore credentials: a stale cookie must not break an unsubscribe click.
    if (access === 'public') return next();
    try {
      res.locals.auth = await identifyRequest(req);
    } catch (e) {
      // Postgres unreachable: say so rather than a 500; nothing was done.
      o.log?.('api key lookup failed', { error: (e as Error).message });
      res.setHeader('Retry-After', '5');
      res.status(503).json({ error: 'cannot check the API key right now (the database does not answer); retry shortly', reason: 'auth_unavailable' });
      return;
    }
    next();
  };

  const windowSeconds = Math.round(o.rateLimit.windowMs / 1000);
  const limiter = expressRateLimit({
    windowMs: o.rateLimit.windowMs,
    limit: o.rateLimit.perWindow,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    // Health probes are never limited; a limit of 0 turns limiting off.
    skip: (req) => o.rateLimit.perWindow === 0 || req.path === '/health',
    // Per key; requests without a valid key (public routes, failed attempts) share their client address's budget.
    keyGenerator: (req, res) => {
      const p = principalOf(res);
      return p ? `key:${p.key.id}` : `ip:${ipKeyGenerator(req.ip ?? 'unknown')}`;
    },
    handler: (_req, res) => {
      const p = principalOf(res);
      res.status(429).json({
        error: `too many requests ${p ? `for the API key "${p.key.name}"` : 'from this address'}: at most ${o.rateLimit.perWindow} per ${windowSeconds} s (RATE_LIMIT_PER_KEY); retry after Retry-After seconds`,
        reason: 'rate_limited',
      });
    },
  });

  const authorize: RequestHandler = (req, res, next) => {
    const access: RouteAccess = (res.locals.requiredAccess as RouteAccess | undefined) ?? table.required(req.method, req.path);
    if (access === 'public') return next();
    const state = (res.locals.auth as AuthState | undefined) ?? { failure: 'missing_key' };
    if (!state.principal) {
      const failure = state.failure ?? 'missing_key';
      if (state.fromCookie) sessions.close(res);
      res.setHeader('WWW-Authenticate', failure === 'missing_key' ? `Bearer realm="${REALM}"` : `Bearer realm="${REALM}", error="invalid_token"`);
      res.status(401).json({ error: FAILURE_TEXT[failure], reason: failure });
      return;
    }
    const { key, via, session } = state.principal;
    if (!scopeAllows(key.scopes, access)) {
      res.setHeader('WWW-Authenticate', `Bearer realm="${REALM}", error="insufficient_scope", scope="${access}"`);
      res.status(403).json({
        error: `${req.method} ${req.path} needs an API key with the ${access} scope; the key "${key.name}" has ${highestScope(key.scopes)}`,
        reason: 'insufficient_scope',
        requiredScope: access,
        keyScopes: key.scopes,
      });
      return;
    }
    if (via === 'session' && access !== 'read') {
      const token = req.headers[CSRF_HEADER];
      if (typeof token !== 'string' || !safeEqual(token, sessions.csrfToken(session!.value))) {
        res.status(403).json({
          error: `a session changes nothing without the ${CSRF_HEADER} header it got at sign-in (POST /api/session answers csrfToken); or send the API key itself`,
          reason: 'csrf_token_required',
        });
        return;
      }
    }
    next();
  };

  return {
    table,
    authenticator,
    identify: [cookieParser(o.sessionSecret), identify, limiter],
    authorize,
    sessions,
  };
}
