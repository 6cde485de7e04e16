/**
 * Access control of the API on the real stack: every mounted route (found by walking Express's router stack) answers
 * 401 without a key and 403 with a key one scope too low; keys are created, listed and revoked without their secret
 * ever coming back or being stored; sessions; the audit log names who did what; the rate limit answers 429.
 */
import { createHash, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import express, { Router } from 'express';
import { startHarness, type Harness } from './support/harness';
import { apiCall, request, waitUntil, type ApiResult } from './support/http';
import { ROUTE_ACCESS, RouteAccessTable, assertEveryRouteDeclared, type RouteAccess } from '../api/auth/route-access';
import { scopeBelow, type ApiScope } from '../domain/api-scopes';

const u = randomUUID().slice(0, 8);
let h: Harness;
/** One key per scope: `keys.read` etc. */
const keys = {} as Record<ApiScope, { id: string; secret: string }>;

beforeAll(async () => {
  h = await startHarness();
  for (const scope of ['read', 'send', 'admin'] as const) keys[scope] = await h.createApiKey([scope], `access ${scope} ${u}`);
}, 120_000);

afterAll(async () => {
  await h?.stop();
});

interface WalkedRoute {
  method: string;
  path: string;
}

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

/** Every route of the app, walking Express 5's router stack (routers mounted with app.use included). */
function walkRoutes(stack: Layer[]): WalkedRoute[] {
  return stack.flatMap((layer) => {
    if (layer.route) return Object.keys(layer.route.methods).map((m) => ({ method: m.toUpperCase(), path: layer.route!.path }));
    return layer.handle?.stack ? walkRoutes(layer.handle.stack) : [];
  });
}

/** A concrete URL for a route pattern: plausible values for its parameters (the access check comes before them). */
function concrete(path: string): string {
  const values: Record<string, string> = {
    id: randomUUID(),
    rid: '1',
    recipientId: '1',
    token: 'not-a-token',
    address: `nobody-${u}@example.com`,
    domain: 'access-test.example',
    selector: 's1',
  };
  return path.replace(/:([A-Za-z]+)/g, (_, name: string) => values[name] ?? 'x');
}

const call = (method: string, path: string, apiKey: string | null, body: unknown = {}): Promise<ApiResult> =>
  apiCall(h.apiUrl, method, concrete(path), method === 'GET' || method === 'HEAD' ? undefined : body, { apiKey });

describe('every route', () => {
  it('is declared, answers 401 without a key and 403 with a key one scope too low', async () => {
    const routes = walkRoutes((h.app as unknown as { router: { stack: Layer[] } }).router.stack);
    // The harness mounts every router (codec, schedules and inbound included): the walk sees them all.
    expect(routes.length).toBeGreaterThanOrEqual(Object.keys(ROUTE_ACCESS).length);
    const table = new RouteAccessTable();
    const undeclared = routes.filter((r) => table.declared(r.method, r.path) === undefined);
    expect(undeclared, 'routes missing from api/auth/route-access.ts').toEqual([]);

    const checked: Record<RouteAccess, number> = { public: 0, read: 0, send: 0, admin: 0 };
    for (const r of routes) {
      const access = table.declared(r.method, r.path)!;
      checked[access]++;
      const what = `${r.method} ${r.path}`;
      if (access === 'public') {
        const open = await call(r.method, r.path, null);
        expect(open.status, what).not.toBe(401);
        expect(open.json?.reason, what).toBeUndefined();
        continue;
      }
      const none = await call(r.method, r.path, null);
      expect(none.status, `${what} without a key`).toBe(401);
      expect(none.json.reason, what).toBe('missing_key');
      expect(none.headers.get('www-authenticate'), what).toMatch(/^Bearer /);

      const unknown = await call(r.method, r.path, `ede_${'A'.repeat(43)}`);
      expect(unknown.status, `${what} with an unknown key`).toBe(401);
      expect(unknown.json.reason, what).toBe('unknown_key');

      const below = scopeBelow(access);
      if (below) {
        const low = await call(r.method, r.path, keys[below].secret);
        expect(low.status, `${what} with a ${below} key`).toBe(403);
        expect(low.json).toMatchObject({ reason: 'insufficient_scope', requiredScope: access });
        expect(low.json.error, what).toContain(`the ${access} scope`);
      }
      // The scope it needs is enough (whatever the route then says of the made-up parameters).
      const enough = await call(r.method, r.path, keys[access].secret);
      expect([401, 403], `${what} with a ${access} key: ${JSON.stringify(enough.json)}`).not.toContain(enough.status);
    }
    expect(checked.read).toBeGreaterThan(20);
    expect(checked.send).toBeGreaterThan(10);
    expect(checked.admin).toBeGreaterThan(10);
    // Only health, the unsubscribe link, the sign-in page, the API's description with its viewer and the dashboard's
    // page and files (no data) are open.
    const withAccess = (a: RouteAccess) => routes.filter((r) => table.declared(r.method, r.path) === a).map((r) => `${r.method} ${r.path}`).sort();
    expect(withAccess('public')).toEqual([
      'GET /api/openapi.json',
      'GET /dashboard',
      'GET /dashboard/assets/:file',
      'GET /docs/api',
      'GET /docs/api/assets/:file',
      'GET /health',
      'GET /session',
      'POST /u/:id/:rid/:token',
    ]);
    // The policy itself: reads need read (keys and the audit log apart); admin is rules, DKIM, keys, quarantine, denylist.
    const get = routes.filter((r) => r.method === 'GET' && /^\/api\/(deliveries|lists|recurring-deliveries|inbound|quarantine|denylist|dkim|qualification-rules|inbound-rules)\b/.test(r.path));
    expect(get.length).toBeGreaterThan(15);
    for (const r of get) expect(table.declared(r.method, r.path), r.path).toBe('read');
    expect(withAccess('admin')).toEqual(
      expect.arrayContaining([
        'DELETE /api/denylist/:address',
        'DELETE /api/keys/:id',
        'DELETE /api/quarantine/:address',
        'GET /api/audit-log',
        'GET /api/keys',
        'PATCH /api/dkim/keys/:domain/:selector',
        'POST /api/denylist',
        'POST /api/dkim/keys',
        'POST /api/keys',
      ]),
    );
    expect(withAccess('admin').filter((r) => /\/api\/(qualification|inbound)-rules\/:id$/.test(r))).toHaveLength(6);
    expect(withAccess('send')).toEqual(expect.arrayContaining(['POST /api/deliveries', 'POST /api/deliveries/:id/confirm', 'POST /api/lists', 'POST /api/inbound', 'POST /api/recurring-deliveries']));
  }, 120_000);

  it('a path no route serves needs a key too (then 404); HEAD is checked as GET', async () => {
    expect((await request(h.apiUrl, 'GET', '/api/no-such-thing', { apiKey: null })).status).toBe(401);
    expect((await request(h.apiUrl, 'GET', '/api/no-such-thing', { apiKey: keys.read.secret })).status).toBe(404);
    expect((await request(h.apiUrl, 'HEAD', '/api/deliveries', { apiKey: null })).status).toBe(401);
    expect((await request(h.apiUrl, 'GET', '/API/Keys/', { apiKey: keys.send.secret })).status).toBe(403);
  });

  it('an app with a route missing from the table refuses to start, naming it', () => {
    const app = express();
    const r = Router();
    r.get('/api/deliveries', () => {});
    r.post('/api/new-thing/:id', () => {});
    app.use(r);
    expect(() => assertEveryRouteDeclared(app)).toThrow(/POST \/api\/new-thing\/:id/);
    const prefixed = express();
    prefixed.use('/api', Router().get('/deliveries', () => {}));
    expect(() => assertEveryRouteDeclared(prefixed)).toThrow(/mount routers at \//);
  });
});

describe('keys', () => {
  it('accepts the key as Bearer or X-API-Key, and says why it refuses one', async () => {
    const ok = await fetch(`${h.apiUrl}/api/deliveries?limit=1`, { headers: { 'x-api-key': keys.read.secret } });
    expect(ok.status).toBe(200);
    const basic = await fetch(`${h.apiUrl}/api/deliveries`, { headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } });
    expect(basic.status).toBe(401);
    expect(((await basic.json()) as { reason: string }).reason).toBe('malformed_key');
    const short = await request(h.apiUrl, 'GET', '/api/deliveries', { apiKey: 'ede_short' });
    expect(short.json).toMatchObject({ reason: 'malformed_key' });
    expect(short.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
  });

  it('creates a key shown once, stores only its hash, lists it without secret, revokes it', async () => {
    const bad = await apiCall(h.apiUrl, 'POST', '/api/keys', { name: 'x', scopes: ['root'] });
    expect(bad.status).toBe(400);
    expect(bad.json.issues[0].path).toBe('scopes.0');
    expect((await apiCall(h.apiUrl, 'POST', '/api/keys', { name: 'x', scopes: [] })).json.issues[0].path).toBe('scopes');

    const created = await apiCall(h.apiUrl, 'POST', '/api/keys', { name: `integrator ${u}`, scopes: ['send'] });
    expect(created.status).toBe(201);
    const secret = created.json.secret as string;
    expect(secret).toMatch(/^ede_[A-Za-z0-9_-]{43}$/);
    expect(created.json).toMatchObject({ name: `integrator ${u}`, scopes: ['send'], prefix: secret.slice(0, 12), revokedAt: null, lastUsedAt: null });

    // The row holds the SHA-256 and a 12-character prefix, nothing else of the secret.
    const row = (await h.pool.query('SELECT * FROM api_keys WHERE id = $1', [created.json.id])).rows[0];
    expect(Buffer.compare(row.secret_sha256, createHash('sha256').update(secret).digest())).toBe(0);
    const rowText = JSON.stringify(row, (_k, v) => (v?.type === 'Buffer' ? Buffer.from(v.data).toString('hex') : v));
    expect(rowText).not.toContain(secret.slice(12, 30));
    expect(rowText).not.toContain(secret);

    // It works, and its use is recorded (at most once a minute).
    expect((await request(h.apiUrl, 'GET', '/api/deliveries?limit=1', { apiKey: secret })).status).toBe(200);
    await waitUntil('last_used_at', async () => (await h.pool.query('SELECT last_used_at FROM api_keys WHERE id = $1', [created.json.id])).rows[0].last_used_at, 10_000);

    const list = await apiCall(h.apiUrl, 'GET', '/api/keys');
    const listed = list.json.keys.find((k: { id: string }) => k.id === created.json.id);
    expect(listed).toMatchObject({ name: `integrator ${u}`, scopes: ['send'], revokedAt: null });
    expect(listed.lastUsedAt).not.toBeNull();
    const hashHex = row.secret_sha256.toString('hex');
    for (const text of [JSON.stringify(list.json), JSON.stringify((await apiCall(h.apiUrl, 'GET', '/api/audit-log?limit=500')).json)]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(hashHex);
      expect(text).not.toContain(row.secret_sha256.toString('base64'));
    }

    // Revoked through this process: refused at once.
    const revoked = await apiCall(h.apiUrl, 'DELETE', `/api/keys/${created.json.id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.json).toMatchObject({ revoked: true, alreadyRevoked: false });
    expect(revoked.json.revokedAt).not.toBeNull();
    const refused = await request(h.apiUrl, 'GET', '/api/deliveries', { apiKey: secret });
    expect(refused.status).toBe(401);
    expect(refused.json.reason).toBe('revoked_key');
    expect((await apiCall(h.apiUrl, 'DELETE', `/api/keys/${created.json.id}`)).json).toMatchObject({ alreadyRevoked: true });
    expect((await apiCall(h.apiUrl, 'GET', '/api/keys')).json.keys.map((k: { id: string }) => k.id)).not.toContain(created.json.id);
    expect((await apiCall(h.apiUrl, 'GET', '/api/keys?includeRevoked=true')).json.keys.map((k: { id: string }) => k.id)).toContain(created.json.id);
    expect((await apiCall(h.apiUrl, 'DELETE', `/api/keys/${randomUUID()}`)).status).toBe(404);
  });

  it('a key revoked by another process is refused within API_KEY_CACHE_SECONDS', async () => {
    const k = await h.createApiKey(['read'], `revoked elsewhere ${u}`);
    expect((await request(h.apiUrl, 'GET', '/api/lists', { apiKey: k.secret })).status).toBe(200); // now cached here
    // Another API process (or the api-key command) revokes it: this process's cache does not hear of it.
    await h.runtime.stores.apiKeys.revoke(k.id, { keyId: null, name: 'another process' });
    const t0 = Date.now();
    await waitUntil('the revocation to apply', async () => (await request(h.apiUrl, 'GET', '/api/lists', { apiKey: k.secret })).status === 401, 20_000, 200);
    const tookMs = Date.now() - t0;
    // Documented bound: API_KEY_CACHE_SECONDS (5 s by default), plus slack for a loaded machine.
    expect(tookMs).toBeLessThan(h.settings.API_KEY_CACHE_SECONDS * 1000 + 3_000);
  });
});

describe('sessions', () => {
  const cookieOf = (r: ApiResult) => r.headers.get('set-cookie')?.split(';')[0] ?? '';

  it('a key opens a signed HttpOnly session; it reads, and changes nothing without the CSRF token', async () => {
    expect((await request(h.apiUrl, 'GET', '/session', { apiKey: null })).status).toBe(200);
    const opened = await request(h.apiUrl, 'POST', '/api/session', { apiKey: keys.send.secret });
    expect(opened.status).toBe(201);
    const setCookie = opened.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/^ede_session=s%3A/);
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    expect(setCookie).not.toContain(keys.send.secret);
    const cookie = cookieOf(opened);
    const csrf = opened.json.csrfToken as string;

    const asSession = (method: string, path: string, headers: Record<string, string> = {}, body?: unknown) =>
      apiCall(h.apiUrl, method, path, body, { apiKey: null, headers: { cookie, ...headers } });
    const me = await asSession('GET', '/api/session');
    expect(me.json).toMatchObject({ via: 'session', key: { id: keys.send.id, scopes: ['send'] }, csrfToken: csrf });
    expect((await asSession('GET', '/api/deliveries?limit=1')).status).toBe(200);
    const noToken = await asSession('POST', `/api/deliveries/${randomUUID()}/pause`, {}, {});
    expect(noToken.status).toBe(403);
    expect(noToken.json.reason).toBe('csrf_token_required');
    // With the token the request passes access control (and the made-up delivery is a 404).
    expect((await asSession('POST', `/api/deliveries/${randomUUID()}/pause`, { 'x-csrf-token': csrf }, {})).status).toBe(404);
    // The session has the key's scopes, no more.
    expect((await asSession('GET', '/api/keys')).status).toBe(403);
    // A session does not open another one (it ends when it says).
    expect((await asSession('POST', '/api/session')).status).toBe(401);

    // A cookie changed by hand is refused, and cleared.
    const forged = cookie.replace(/%3A[0-9a-f]/, (m) => (m.endsWith('0') ? m.slice(0, -1) + '1' : m.slice(0, -1) + '0'));
    const refused = await apiCall(h.apiUrl, 'GET', '/api/deliveries', undefined, { apiKey: null, headers: { cookie: forged } });
    expect(refused.status).toBe(401);
    expect(refused.json.reason).toBe('invalid_session');
    expect(refused.headers.get('set-cookie')).toMatch(/ede_session=;.*Expires=Thu, 01 Jan 1970/);

    const out = await asSession('DELETE', '/api/session');
    expect(out.status).toBe(200);
    expect(out.headers.get('set-cookie')).toMatch(/ede_session=;/);
  });

  it('revoking the key ends its sessions', async () => {
    const k = await h.createApiKey(['read'], `session revoked ${u}`);
    const cookie = cookieOf(await request(h.apiUrl, 'POST', '/api/session', { apiKey: k.secret }));
    const read = () => request(h.apiUrl, 'GET', '/api/lists', { apiKey: null, headers: { cookie } });
    expect((await read()).status).toBe(200);
    await apiCall(h.apiUrl, 'DELETE', `/api/keys/${k.id}`);
    const after = await read();
    expect(after.status).toBe(401);
    expect(after.json.reason).toBe('revoked_key');
  });
});

describe('audit log', () => {
  it('records who created, confirmed, paused, resumed and cancelled a delivery, changed a rule and revoked a key', async () => {
    const sender = await h.createApiKey(['send'], `audit sender ${u}`);
    const created = await apiCall(
      h.apiUrl,
      'POST',
      '/api/deliveries',
      {
        name: `audited ${u}`,
        from: { address: `news@audit-${u}.example`, name: 'Audit' },
        subject: 'Hello',
        text: 'Hello',
        recipients: [{ email: `one-${u}@audit-${u}.example` }],
        // An hour ahead: confirmed, it waits (scheduled) and can be paused before anything is sent.
        contactDate: new Date(Date.now() + 3_600_000).toISOString(),
      },
      { apiKey: sender.secret },
    );
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    const id = created.json.id as string;
    await h.waitForPhase(id, ['awaiting_confirmation']);
    const as = (path: string, body: unknown = {}) => apiCall(h.apiUrl, 'POST', `/api/deliveries/${id}/${path}`, body, { apiKey: sender.secret });
    expect((await as('confirm', { confirmedBy: 'audit test' })).status).toBe(200);
    expect((await as('pause', { reason: 'checking the audit log' })).status).toBe(200);
    expect((await as('resume')).status).toBe(200);
    expect((await as('cancel', { reason: 'done' })).status).toBe(202);
    // A refused control changes nothing and records nothing.
    expect((await as('pause')).status).toBe(409);

    const trail = await apiCall(h.apiUrl, 'GET', `/api/audit-log?target=delivery:${id}`);
    expect(trail.status).toBe(200);
    const actions = (trail.json.entries as { action: string }[]).map((e) => e.action).reverse();
    expect(actions).toEqual(['delivery.create', 'delivery.confirm', 'delivery.pause', 'delivery.resume', 'delivery.cancel']);
    for (const e of trail.json.entries) {
      expect(e.actor).toEqual({ keyId: sender.id, name: `audit sender ${u}` });
      expect(e.target).toEqual({ type: 'delivery', id });
    }
    expect(trail.json.entries.find((e: { action: string }) => e.action === 'delivery.pause').details).toMatchObject({ reason: 'checking the audit log' });

    // Keyset paging: two at a time, newest first, nothing lost or repeated.
    const paged: string[] = [];
    let next: string | null = `/api/audit-log?target=delivery:${id}&limit=2`;
    while (next) {
      const page: ApiResult = await apiCall(h.apiUrl, 'GET', next);
      paged.push(...page.json.entries.map((e: { action: string }) => e.action));
      next = page.json.next;
    }
    expect(paged.reverse()).toEqual(actions);

    // A rule change, by an admin key, in the change's own transaction; a refused change records nothing.
    const admin = await h.createApiKey(['admin'], `audit admin ${u}`);
    const ruleId = `t-audit-${u}`;
    const rule = { priority: 1, provider: 'test', code: '5xx', enhancedCode: null, pattern: `audit probe ${u}`, domain: null, type: 'hard', reason: 'refused', retryClass: 'none', sample: `550 5.7.1 audit probe ${u}`, note: 'audit test' };
    const put = await apiCall(h.apiUrl, 'PUT', `/api/qualification-rules/${ruleId}`, rule, { apiKey: admin.secret });
    expect(put.status, JSON.stringify(put.json)).toBe(201);
    const refusedRule = await apiCall(h.apiUrl, 'PUT', `/api/qualification-rules/${ruleId}-bad`, { ...rule, pattern: '(unclosed' }, { apiKey: admin.secret });
    expect(refusedRule.status).toBe(400);
    expect((await apiCall(h.apiUrl, 'DELETE', `/api/qualification-rules/${ruleId}`, undefined, { apiKey: admin.secret })).status).toBe(204);
    const ruleTrail = (await apiCall(h.apiUrl, 'GET', `/api/audit-log?target=qualification_rule:${ruleId}`)).json.entries;
    expect(ruleTrail.map((e: { action: string }) => e.action)).toEqual(['qualification_rule.delete', 'qualification_rule.put']);
    expect(ruleTrail[1]).toMatchObject({ actor: { keyId: admin.id, name: `audit admin ${u}` }, details: { created: true } });
    expect((await apiCall(h.apiUrl, 'GET', `/api/audit-log?target=qualification_rule:${ruleId}-bad`)).json.entries).toEqual([]);

    // Revoking a key.
    const victim = await h.createApiKey(['read'], `audit victim ${u}`);
    await apiCall(h.apiUrl, 'DELETE', `/api/keys/${victim.id}`, undefined, { apiKey: admin.secret });
    const keyTrail = (await apiCall(h.apiUrl, 'GET', `/api/audit-log?action=api_key.revoke&target=api_key:${victim.id}`)).json.entries;
    expect(keyTrail).toHaveLength(1);
    expect(keyTrail[0]).toMatchObject({ action: 'api_key.revoke', actor: { keyId: admin.id }, details: { name: `audit victim ${u}` } });

    // Filters are validated; `since` narrows.
    expect((await apiCall(h.apiUrl, 'GET', '/api/audit-log?since=yesterday')).json.issues[0].path).toBe('since');
    const future = await apiCall(h.apiUrl, 'GET', `/api/audit-log?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`);
    expect(future.json.entries).toEqual([]);
  }, 120_000);
});

describe('rate limit', () => {
  let limited: Harness;
  beforeAll(async () => {
    limited = await startHarness({ worker: false, env: { RATE_LIMIT_PER_KEY: '5', RATE_LIMIT_WINDOW_SECONDS: '30' } });
  }, 60_000);
  afterAll(async () => {
    await limited?.stop();
  });

  it('answers 429 with Retry-After past the limit of a key; other keys and health are not affected', async () => {
    const k = await limited.createApiKey(['read'], `rate ${u}`);
    const statuses: number[] = [];
    let last: ApiResult | null = null;
    for (let i = 0; i < 7; i++) {
      last = await request(limited.apiUrl, 'GET', '/api/lists', { apiKey: k.secret });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
    const retryAfter = Number(last!.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(30);
    expect(last!.json).toMatchObject({ reason: 'rate_limited' });
    expect(last!.json.error).toContain(`rate ${u}`);
    expect((await request(limited.apiUrl, 'GET', '/api/lists', { apiKey: limited.apiKey })).status).toBe(200);
    for (let i = 0; i < 10; i++) expect((await request(limited.apiUrl, 'GET', '/health', { apiKey: null })).status).toBe(200);
  });
});
