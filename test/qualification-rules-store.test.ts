/** Qualification rules as data: seeding by version, API edits, the workers' cache, and the HTTP routes, on the real Postgres. */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import express from 'express';
import type { Pool } from 'pg';
import seed from '../rules/smtp-qualification-rules.json';
import { createPool } from '../db/pool';
import { migrate } from '../db/migrate';
import { QualificationRuleStore } from '../db/qualification-rule-store';
import { InvalidQualificationRuleError } from '../domain/bounce-rules/rule-validation';
import { QualificationRulesCache } from '../activities/qualification-rules-cache';
import { createRulesRouter } from '../api/rules-routes';
import { createApp } from '../api/app';
import { apiErrorMiddleware } from '../api/error-middleware';
import { createStores } from '../db/stores';
import { createApiKey } from '../db/api-key-store';
import { getDefaultRules } from '../domain/bounce-rules/qualify-smtp-reply';
import type { QualificationRule } from '../domain/bounce-rules/qualification-rule';
import { parseSmtpReply } from '../domain/smtp-reply';

// The database is shared with the other test files, whose workers read smtp_qualification_rules: this file works in
// a schema of its own (same migrations), so that seeding other versions and editing seed rules cannot disturb them.
const schema = `qr_test_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
let admin: Pool;
let pool: Pool;
let store: QualificationRuleStore;

const seedRules = seed.rules as QualificationRule[];
const quiet = () => {};

/** A valid API rule: "550 5.7.1 <marker>" qualifies to it. */
function apiRule(id: string, marker: string, overrides: Partial<QualificationRule> = {}): QualificationRule {
  return {
    id,
    priority: 1,
    provider: 'test',
    code: '5xx',
    enhancedCode: null,
    pattern: marker,
    domain: null,
    type: 'hard',
    reason: 'refused',
    retryClass: 'none',
    sample: `550 5.7.1 ${marker}`,
    note: 'test rule',
    ...overrides,
  };
}

function seedVersion(version: number, rules: QualificationRule[]) {
  return { version, rules };
}

function withSearchPath(url: string, path: string): string {
  const u = new URL(url);
  u.searchParams.set('options', `-c search_path=${path}`);
  return u.toString();
}

beforeAll(async () => {
  const url = inject('databaseUrl');
  admin = createPool(url, 1);
  await admin.query(`CREATE SCHEMA ${schema}`);
  pool = createPool(withSearchPath(url, schema), 6);
  await migrate(pool);
  store = new QualificationRuleStore(pool);
});

afterAll(async () => {
  await pool?.end();
  await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin?.end();
});

describe('seeding', () => {
  it('applies the seed once; the same version again is a no-op', async () => {
    expect(await store.changeMarker()).toBeNull();
    const first = await store.seed(seed);
    expect(first.applied).toBe(true);
    expect(first.previousVersion).toBe(0);
    expect(first.inserted.length).toBe(seedRules.length);
    const marker = await store.changeMarker();
    expect(marker).not.toBeNull();

    const rows = await store.list();
    expect(rows.length).toBe(seedRules.length);
    expect(rows.every((r) => r.origin === 'seed' && r.enabled)).toBe(true);
    // Stored rules read back exactly as the seed wrote them (codes as numbers or classes, no empty sampleDomain).
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const r of seedRules) {
      const { enabled: _e, origin: _o, updatedAt: _u, ...stored } = byId.get(r.id)!;
      expect(stored).toEqual({ domain: null, ...r });
    }
    // The compiled table equals the bundled one, in the same order.
    const compiled = await store.loadCompiled();
    expect(compiled.map((r) => r.id)).toEqual(getDefaultRules().map((r) => r.id));

    const again = await store.seed(seed);
    expect(again).toMatchObject({ applied: false, version: seed.version, previousVersion: seed.version, inserted: [], updated: [] });
    expect(await store.changeMarker()).toBe(marker);
    expect((await store.state()).version).toBe(seed.version);
  });

  it('a newer version updates seed rules but never API-edited or API-deleted ones', async () => {
    const [changed, apiEdited, retired, disabled, apiDeleted] = seedRules.slice(0, 5).map((r) => r.id);
    // Through the API: one rule edited, one disabled (still a seed rule), one deleted.
    const edited = seedRules[1];
    await store.upsert({ ...edited, note: 'edited through the API' });
    expect((await store.setEnabled(disabled, false))?.origin).toBe('seed');
    expect(await store.delete(apiDeleted)).toBe(true);

    const newId = `new-seed-rule-${randomUUID().slice(0, 8)}`;
    const v2 = seedVersion(seed.version + 1, [
      ...seedRules
        .filter((r) => r.id !== retired)
        .map((r) => (r.id === changed || r.id === apiEdited || r.id === disabled || r.id === apiDeleted ? { ...r, note: `v2 note of ${r.id}` } : r)),
      apiRule(newId, 'new seed wording', { priority: 2, provider: 'generic' }),
    ]);
    const before = await store.changeMarker();
    const result = await store.seed(v2);
    expect(result.applied).toBe(true);
    expect(result.inserted).toEqual([newId]);
    expect(result.updated.sort()).toEqual([changed, disabled].sort());
    expect(result.keptApiEdited.sort()).toEqual([apiEdited, apiDeleted].sort());
    expect(result.retired).toEqual([retired]);
    expect(await store.changeMarker()).toBeGreaterThan(before!);

    expect((await store.get(changed))?.note).toBe(`v2 note of ${changed}`);
    expect(await store.get(apiEdited)).toMatchObject({ note: 'edited through the API', origin: 'api' });
    expect(await store.get(disabled)).toMatchObject({ note: `v2 note of ${disabled}`, enabled: false, origin: 'seed' });
    expect(await store.get(apiDeleted)).toBeNull();
    expect(await store.get(retired)).toBeNull();
    expect(await store.get(newId)).toMatchObject({ origin: 'seed', enabled: true });
    const compiledIds = (await store.loadCompiled()).map((r) => r.id);
    expect(compiledIds).not.toContain(disabled);
    expect(compiledIds).not.toContain(retired);

    // An older or equal version changes nothing.
    expect((await store.seed(seed)).applied).toBe(false);
    expect((await store.seed(v2)).applied).toBe(false);
    expect((await store.state()).version).toBe(seed.version + 1);

    // Put things back for the tests below (the seed rules must be as in the file).
    await store.upsert(edited);
    await store.setEnabled(disabled, true);
    await store.upsert(seedRules[4]);
    await store.upsert(seedRules[2]);
  });

  it('several processes seeding at once apply a version exactly once', async () => {
    const version = seed.version + 2;
    const rules = seedRules.slice();
    const results = await Promise.all([1, 2, 3, 4].map(() => new QualificationRuleStore(pool).seed(seedVersion(version, rules))));
    expect(results.filter((r) => r.applied).length).toBe(1);
    expect((await store.state()).version).toBe(version);
  });

  it('refuses a seed with a bad rule, naming it, and writes nothing', async () => {
    const marker = await store.changeMarker();
    const bad = seedVersion(seed.version + 10, [...seedRules, apiRule('seed-bad-regex', '(unclosed')]);
    await expect(store.seed(bad)).rejects.toThrow(/"seed-bad-regex": invalid pattern regex/);
    expect(await store.changeMarker()).toBe(marker);
  });
});

describe('API edits', () => {
  it('upsert refuses a bad regex with a message naming the rule', async () => {
    const id = `t-bad-regex-${randomUUID().slice(0, 8)}`;
    const err = await store.upsert(apiRule(id, 'user (unknown')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidQualificationRuleError);
    expect((err as Error).message).toContain(`"${id}"`);
    expect((err as Error).message).toMatch(/invalid pattern regex/);
    expect((err as InvalidQualificationRuleError).issues[0].path).toBe('pattern');

    const domainErr = (await store
      .upsert(apiRule(id, 'fine', { domain: '[a-', sampleDomain: 'a.test' }))
      .catch((e: unknown) => e)) as InvalidQualificationRuleError;
    expect(domainErr.message).toContain(`"${id}"`);
    expect(domainErr.issues[0].path).toBe('domain');
    expect(await store.get(id)).toBeNull();
  });

  it('upsert refuses schema errors, non-integer priorities and a rule that does not match its own sample', async () => {
    const id = `t-invalid-${randomUUID().slice(0, 8)}`;
    await expect(store.upsert({ ...apiRule(id, 'x'), type: 'medium' })).rejects.toThrow(new RegExp(`"${id}": type`));
    await expect(store.upsert({ ...apiRule(id, 'x'), type: 'hard', retryClass: 'transient' })).rejects.toThrow(/retryClass/);
    await expect(store.upsert(apiRule(id, 'x', { priority: 1.5 }))).rejects.toThrow(/priority: must be an integer/);
    await expect(store.upsert(apiRule(id, 'other words', { sample: '550 5.7.1 something else' }))).rejects.toThrow(/own sample/);
    expect(await store.get(id)).toBeNull();
  });

  it('creates, replaces, disables, deletes and re-creates a rule, bumping the change marker each time', async () => {
    const id = `t-crud-${randomUUID().slice(0, 8)}`;
    const m0 = (await store.changeMarker())!;
    const created = await store.upsert(apiRule(id, 'crud marker'));
    expect(created.created).toBe(true);
    expect(created.rule).toMatchObject({ id, origin: 'api', enabled: true, reason: 'refused' });
    const m1 = (await store.changeMarker())!;
    expect(m1).toBeGreaterThan(m0);

    const replaced = await store.upsert(apiRule(id, 'crud marker', { reason: 'user_unknown' }));
    expect(replaced.created).toBe(false);
    expect(replaced.rule.reason).toBe('user_unknown');
    expect((await store.setEnabled(id, false))?.enabled).toBe(false);
    // A replacement keeps the enabled flag unless told otherwise.
    expect((await store.upsert(apiRule(id, 'crud marker'))).rule.enabled).toBe(false);
    expect(await store.setEnabled(`missing-${id}`, true)).toBeNull();

    expect(await store.delete(id)).toBe(true);
    expect(await store.delete(id)).toBe(false);
    expect(await store.get(id)).toBeNull();
    expect((await store.list()).some((r) => r.id === id)).toBe(false);
    const again = await store.upsert(apiRule(id, 'crud marker'));
    expect(again).toMatchObject({ created: true, rule: { enabled: true } });
    expect((await store.changeMarker())!).toBeGreaterThan(m1);
    await store.delete(id);
  });
});

describe('workers cache', () => {
  it('uses the bundled rules until the first load succeeds', async () => {
    const broken = { changeMarker: async () => Promise.reject(new Error('database down')), loadCompiled: async () => [] };
    const logs: Record<string, unknown>[] = [];
    const cache = new QualificationRulesCache(broken, { refreshSeconds: 3600, log: (e) => logs.push(e) });
    await cache.start();
    expect(cache.source).toBe('fallback');
    expect(cache.current).toBe(getDefaultRules());
    const reply = parseSmtpReply(seedRules[0].sample);
    expect(cache.qualify(reply, 'gmail.com').ruleId).toBe(seedRules[0].id);
    await cache.refresh();
    expect(logs.filter((l) => l.level === 'error').length).toBe(1); // the same error is logged once
    cache.stop();
  });

  it('picks up an edited rule when the change marker moves', async () => {
    const id = `t-cache-${randomUUID().slice(0, 8)}`;
    const marker = `cache marker ${id}`;
    await store.upsert(apiRule(id, marker));
    const cache = new QualificationRulesCache(store, { refreshSeconds: 3600, log: quiet });
    await cache.start();
    try {
      expect(cache.source).toBe('store');
      const reply = parseSmtpReply(`550 5.7.1 ${marker}`);
      expect(cache.qualify(reply, 'example.com')).toMatchObject({ ruleId: id, type: 'hard', reason: 'refused' });

      // Nothing changed: no reload.
      expect(await cache.refresh()).toBe(false);

      await store.upsert(apiRule(id, marker, { reason: 'user_unknown' }));
      // Until the next check the workers keep the table they have.
      expect(cache.qualify(reply, 'example.com').reason).toBe('refused');
      expect(await cache.refresh()).toBe(true);
      expect(cache.qualify(reply, 'example.com')).toMatchObject({ ruleId: id, reason: 'user_unknown' });

      await store.setEnabled(id, false);
      await cache.refresh();
      expect(cache.qualify(reply, 'example.com').ruleId).not.toBe(id);
    } finally {
      cache.stop();
      await store.delete(id);
    }
  });

  it('refreshes on its own timer', async () => {
    const id = `t-timer-${randomUUID().slice(0, 8)}`;
    const cache = new QualificationRulesCache(store, { refreshSeconds: 0.1, log: quiet });
    await cache.start();
    try {
      const reply = parseSmtpReply(`550 5.7.1 timer ${id}`);
      expect(cache.qualify(reply).ruleId).not.toBe(id);
      await store.upsert(apiRule(id, `timer ${id}`));
      const deadline = Date.now() + 5000;
      while (cache.qualify(reply).ruleId !== id && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(cache.qualify(reply).ruleId).toBe(id);
    } finally {
      cache.stop();
      await store.delete(id);
    }
  });
});

describe('HTTP routes', () => {
  let server: Server;
  let base: string;

  beforeAll(async () => {
    const app = express();
    app.use(express.json());
    app.use(createRulesRouter({ store }));
    app.use(apiErrorMiddleware);
    server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}/api/qualification-rules`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => {
      server?.close(() => r());
      server?.closeAllConnections();
    });
  });

  async function call(method: string, path: string, body?: unknown) {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  function withoutId(rule: QualificationRule) {
    const { id: _id, ...rest } = rule;
    return rest;
  }

  it('lists the rules, optionally of one provider', async () => {
    const all = await call('GET', '');
    expect(all.status).toBe(200);
    expect(all.body.rules.length).toBeGreaterThanOrEqual(seedRules.length - 1);
    expect(typeof all.body.revision).toBe('number');
    expect(all.body.seedVersion).toBeGreaterThanOrEqual(seed.version);
    const gmail = await call('GET', '?provider=gmail');
    expect(gmail.body.rules.length).toBeGreaterThan(0);
    expect(gmail.body.rules.every((r: { provider: string }) => r.provider === 'gmail')).toBe(true);
    const priorities = all.body.rules.map((r: { priority: number }) => r.priority);
    expect(priorities).toEqual([...priorities].sort((a, b) => a - b));
  });

  it('creates with PUT (201), replaces (200), reads back, and round-trips a GET body', async () => {
    const id = `t-http-${randomUUID().slice(0, 8)}`;
    const put = await call('PUT', `/${id}`, withoutId(apiRule(id, 'http marker')));
    expect(put.status).toBe(201);
    expect(put.body).toMatchObject({ id, origin: 'api', enabled: true });
    const get = await call('GET', `/${id}`);
    expect(get.status).toBe(200);
    // What GET returns can be edited and PUT back as is.
    const replaced = await call('PUT', `/${id}`, { ...get.body, reason: 'user_unknown' });
    expect(replaced.status).toBe(200);
    expect(replaced.body.reason).toBe('user_unknown');
    expect((await call('DELETE', `/${id}`)).status).toBe(204);
  });

  it('answers 400 with the issues for a bad rule, a bad regex, or a body id that differs', async () => {
    const id = `t-http-bad-${randomUUID().slice(0, 8)}`;
    const badType = await call('PUT', `/${id}`, { ...withoutId(apiRule(id, 'x')), type: 'medium' });
    expect(badType.status).toBe(400);
    expect(badType.body.error).toContain(`"${id}"`);
    expect(badType.body.issues).toEqual(expect.arrayContaining([expect.objectContaining({ path: 'type' })]));

    const badRegex = await call('PUT', `/${id}`, withoutId(apiRule(id, '(unclosed')));
    expect(badRegex.status).toBe(400);
    expect(badRegex.body.error).toMatch(new RegExp(`"${id}".*invalid pattern regex`));
    expect(badRegex.body.issues).toEqual([expect.objectContaining({ path: 'pattern' })]);

    const otherId = await call('PUT', `/${id}`, apiRule('some-other-id', 'x'));
    expect(otherId.status).toBe(400);
    expect(otherId.body.issues[0].path).toBe('id');

    const unknownKey = await call('PUT', `/${id}`, { ...withoutId(apiRule(id, 'x')), colour: 'red' });
    expect(unknownKey.status).toBe(400);

    const badId = await call('PUT', '/Not_A_Slug', withoutId(apiRule('x', 'x')));
    expect(badId.status).toBe(400);
    expect((await call('GET', `/${id}`)).status).toBe(404);
  });

  it('enables and disables with PATCH, deletes with DELETE, 404 for unknown ids', async () => {
    const id = `t-http-patch-${randomUUID().slice(0, 8)}`;
    await call('PUT', `/${id}`, withoutId(apiRule(id, 'patch marker')));
    const off = await call('PATCH', `/${id}`, { enabled: false });
    expect(off.status).toBe(200);
    expect(off.body.enabled).toBe(false);
    expect((await call('GET', `/${id}`)).body.enabled).toBe(false);
    expect((await call('PATCH', `/${id}`, { enabled: 'no' })).status).toBe(400);
    expect((await call('PATCH', `/${id}`, { enabled: true, reason: 'refused' })).status).toBe(400);
    expect((await call('PATCH', `/missing-${id}`, { enabled: true })).status).toBe(404);

    expect((await call('DELETE', `/${id}`)).status).toBe(204);
    expect((await call('GET', `/${id}`)).status).toBe(404);
    expect((await call('DELETE', `/${id}`)).status).toBe(404);
  });

  it('tests a reply against the stored rules', async () => {
    const gmail = seedRules.find((r) => r.id === 'gmail-user-unknown')!;
    const hit = await call('POST', '/test', { reply: gmail.sample, domain: 'gmail.com' });
    expect(hit.status).toBe(200);
    expect(hit.body).toMatchObject({
      ruleId: 'gmail-user-unknown',
      matched: true,
      qualification: { type: 'hard', reason: 'user_unknown', retryClass: 'none', ruleId: 'gmail-user-unknown' },
      reply: { code: 550, enhancedCode: '5.1.1' },
    });

    // The endpoint reads the store, not a cache: an edit shows at once, a disabled rule no longer matches.
    const id = `t-http-test-${randomUUID().slice(0, 8)}`;
    await call('PUT', `/${id}`, withoutId(apiRule(id, `probe ${id}`)));
    expect((await call('POST', '/test', { reply: `550 5.7.1 probe ${id}` })).body.ruleId).toBe(id);
    await call('PATCH', `/${id}`, { enabled: false });
    expect((await call('POST', '/test', { reply: `550 5.7.1 probe ${id}` })).body.ruleId).not.toBe(id);
    const miss = await call('POST', '/test', { reply: `299 nothing known ${id}` });
    expect(miss.body).toMatchObject({ matched: false, ruleId: 'default', qualification: { type: 'soft', reason: 'not_defined' } });
    await call('DELETE', `/${id}`);

    expect((await call('POST', '/test', {})).status).toBe(400);
  });

  it('answers 409 naming a stored rule that RE2 refuses (written when rules were JavaScript regexes), until it is disabled', async () => {
    const id = `t-http-legacy-${randomUUID().slice(0, 8)}`;
    await call('PUT', `/${id}`, withoutId(apiRule(id, 'legacy quota exceeded')));
    // What a row written before RE2 may hold: JavaScript's look-behind, written here around the API.
    await pool.query('UPDATE smtp_qualification_rules SET pattern = $2 WHERE id = $1', [id, '(?<!sending )legacy quota exceeded']);
    const logs: Record<string, unknown>[] = [];
    const cache = new QualificationRulesCache(store, { refreshSeconds: 3600, log: (e) => logs.push(e) });
    await cache.refresh({ force: true });
    // The workers keep the table they have and say which row to fix.
    expect(cache.source).toBe('fallback');
    expect(JSON.stringify(logs)).toMatch(new RegExp(`${id}.*look-behind`));

    const refused = await call('POST', '/test', { reply: '550 5.7.1 legacy quota exceeded' });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatch(new RegExp(`"${id}".*invalid pattern regex.*look-behind.*disable it`));
    expect((await call('PATCH', `/${id}`, { enabled: false })).status).toBe(200);
    expect((await call('POST', '/test', { reply: '550 5.7.1 legacy quota exceeded' })).status).toBe(200);
    expect(await cache.refresh({ force: true })).toBe(true);
    expect(cache.source).toBe('store');
    expect((await call('DELETE', `/${id}`)).status).toBe(204);
  });

  it('is mounted by createApp before its 404 handler, behind the API key check', async () => {
    const app = createApp({
      service: {} as never,
      stores: createStores(pool, { keyEncryptionSecret: 'unused-unused-unused' }),
      verpSecret: 'unused',
      access: { sessionSecret: 'test-session-secret-0123456789abcdef', sessionTtlSeconds: 600, secureCookie: false, keyCacheMs: 0, rateLimit: { perWindow: 0, windowMs: 1000 } },
    });
    const { secret } = await createApiKey(pool, { name: 'qualification rules test', scopes: ['admin'] });
    const auth = { authorization: `Bearer ${secret}` };
    const s: Server = await new Promise((resolve) => {
      const srv = app.listen(0, '127.0.0.1', () => resolve(srv));
    });
    try {
      const url = `http://127.0.0.1:${(s.address() as { port: number }).port}`;
      expect((await fetch(`${url}/api/qualification-rules?provider=gmail`)).status).toBe(401);
      const list = await fetch(`${url}/api/qualification-rules?provider=gmail`, { headers: auth });
      expect(list.status).toBe(200);
      const bad = await fetch(`${url}/api/qualification-rules/t-app-bad`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', ...auth },
        body: JSON.stringify(withoutId(apiRule('t-app-bad', '(unclosed'))),
      });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { issues: { path: string }[] }).issues[0].path).toBe('pattern');
      expect((await fetch(`${url}/api/no-such-thing`, { headers: auth })).status).toBe(404);
    } finally {
      await new Promise<void>((r) => {
        s.close(() => r());
        s.closeAllConnections();
      });
    }
  });
});
