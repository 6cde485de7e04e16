/**
 * HTTP API of API keys (create: the secret is answered once; list: never the secret nor its hash; revoke) and of the
 * audit log (filtered, keyset-paged, newest first). All admin (api/auth/route-access.ts).
 */
import { Router } from 'express';
import { z } from 'zod';
import type { ApiKeyRecord, ApiKeyStore } from '../db/api-key-store';
import type { AuditLogStore } from '../db/audit-log-store';
import { API_SCOPES } from '../domain/api-scopes';
import { auditActor } from './auth/access-control';
import type { KeyAuthenticator } from './auth/key-authenticator';
import { NotFoundError } from './http-errors';

export const createKeyBody = z
  .object({
    name: z.string().trim().min(1, 'name is required').max(200),
    scopes: z.array(z.enum(API_SCOPES)).min(1, `scopes needs at least one of ${API_SCOPES.join(', ')}`),
  })
  .strict();

export const listKeysQuery = z.object({ includeRevoked: z.enum(['true', 'false']).optional() }).strict();

export const auditQuery = z
  .object({
    action: z.string().regex(/^[a-z_]+\.[a-z_]+$/, 'an action is like delivery.confirm').optional(),
    /** `delivery`, or `delivery:<id>` for one target. */
    target: z
      .string()
      .regex(/^[a-z_]+(:.{1,500})?$/s, 'a target is a type (delivery) or type:id (delivery:<uuid>)')
      .optional(),
    since: z.iso.datetime({ offset: true, message: 'since is an ISO 8601 date-time, e.g. 2025-01-31T00:00:00Z' }).optional(),
    before: z.coerce.number().int().positive().optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
  })
  .strict();

export const apiKeyIdParam = z.uuid({ message: 'not an API key id' });

/** What a key looks like in an answer: never its secret, never its hash. */
function keyView(k: ApiKeyRecord) {
  return {
    id: k.id,
    name: k.name,
    prefix: k.prefix,
    scopes: k.scopes,
    createdAt: k.createdAt,
    createdBy: k.createdBy,
    lastUsedAt: k.lastUsedAt,
    revokedAt: k.revokedAt,
  };
}

export function createApiKeyRouter(deps: { keys: ApiKeyStore; audit: AuditLogStore; authenticator: Pick<KeyAuthenticator, 'forget'> }): Router {
  const router = Router();

  router.post('/api/keys', async (req, res) => {
    const body = createKeyBody.parse(req.body);
    const { key, secret } = await deps.keys.create({ name: body.name, scopes: body.scopes, createdBy: auditActor(res) });
    res.status(201).json({ ...keyView(key), secret, note: 'the secret is shown this once: store it now; only its SHA-256 is kept' });
  });

  router.get('/api/keys', async (req, res) => {
    const q = listKeysQuery.parse(req.query);
    res.json({ keys: (await deps.keys.list({ includeRevoked: q.includeRevoked === 'true' })).map(keyView) });
  });

  router.delete('/api/keys/:id', async (req, res) => {
    const id = apiKeyIdParam.parse(req.params.id);
    const r = await deps.keys.revoke(id, auditActor(res));
    if (!r) throw new NotFoundError(`API key ${id} does not exist`);
    // This process stops accepting it now; other API processes within API_KEY_CACHE_SECONDS.
    deps.authenticator.forget(id);
    res.json({ ...keyView(r.key), revoked: true, alreadyRevoked: !r.revoked });
  });

  router.get('/api/audit-log', async (req, res) => {
    const q = auditQuery.parse(req.query);
    const [targetType, ...rest] = q.target?.split(':') ?? [];
    const targetId = rest.length ? rest.join(':') : undefined;
    const entries = await deps.audit.list({ action: q.action, targetType, targetId, since: q.since ? new Date(q.since) : undefined, beforeId: q.before, limit: q.limit });
    const next = entries.length === q.limit ? entries[entries.length - 1].id : null;
    const params = new URLSearchParams(Object.entries({ action: q.action, target: q.target, since: q.since, limit: String(q.limit) }).filter((e): e is [string, string] => e[1] !== undefined));
    res.json({ entries, next: next === null ? null : `/api/audit-log?${params}&before=${next}` });
  });

  return router;
}
