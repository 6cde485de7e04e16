/** Inbound rules as data: seeding by version, API edits, and the HTTP routes (POST /test included), on the real Postgres. */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import express from 'express';
import type { Pool } from 'pg';
import seed from '../rules/inbound-rules.json';
import { createPool } from '../db/pool';
import { migrate } from '../db/migrate';
import { InboundRuleStore } from '../db/inbound-rule-store';
import { InvalidInboundRuleError } from '../domain/bounce-rules/inbound-rule-validation';
import type { InboundRule } from '../domain/bounce-rules/inbound-rule';
import { getDefaultInboundRules } from '../domain/bounce-rules/default-inbound-rules';
import { createInboundRulesRouter } from '../api/inbound-rule-routes';
import { apiErrorMiddleware } from '../api/error-middleware';

// A schema of its own (same migrations), so that seeding other versions and editing seed rules disturbs no other test file.
const schema = `ir_test_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
let admin: Pool;
let pool: Pool;
let store: InboundRuleStore;

const seedRules = seed.rules as InboundRule[];

/** A valid API rule: a bounce whose body contains `marker` qualifies to it. */
function apiRule(id: string, marker: string, overrides: Partial<InboundRule> = {}): InboundRule {
  return {
    id,
    priority: 1,
    source: 'test',
    kind: 'bounce',
    from: null,
    subject: null,
    body: marker,
    type: 'hard',
    reason: 'refused',
    retryClass: 'none',
    sample: { body: `The message was refused: ${marker}.` },
    note: 'test rule',
    ...overrides,
  };
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
  store = new InboundRuleStore(pool);
});

afterAll(async () => {
  await pool?.end();
  await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin?.end();
});

describe('seeding', () => {
  it('applies the seed once; the same version again is a no-op', async () => {
    expect(await store.changeMarker()).toBeNull();
    expect(await store.state()).toEqual({ version: 0, revision: null, updatedAt: null });
    const first = await store.seed();
    expect(first).toMatchObject({ applied: true, previousVersion: 0, version: seed.version, updated: [], keptApiEdited: [], retired: [] });
    expect(first.inserted.length).toBe(seedRules.length);
    const marker = await store.changeMarker();
    expect(marker).not.toBeNull();

    const rows = await store.list();
    expect(rows.length).toBe(seedRules.length);
    expect(rows.every((r) => r.origin === 'seed' && r.enabled)).toBe(true);
    // Stored rules read back exactly as the seed wrote them (sample as JSON, null conditions kept).
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const r of seedRules) {
      const { enabled: _e, origin: _o, updatedAt: _u, ...stored } = byId.get(r.id)!;
      expect(stored).toEqual(r);
    }
    const compiled = await store.loadCompiled();
    expect(compiled.map((r) => r.id)).toEqual(getDefaultInboundRules().map((r) => r.id));
    const delayed = await store.list({ kind: 'delayed' });
    expect(delayed.length).toBeGreaterThan(0);
    expect(delayed.every((r) => r.kind === 'delayed')).toBe(true);

    const again = await store.seed(seed);
    expect(again).toMatchObject({ applied: false, version: seed.version, previousVersion: seed.version, inserted: [], updated: [] });
    expect(await store.changeMarker()).toBe(marker);
    expect((await store.state()).version).toBe(seed.version);
  });

  it('a newer version updates seed rules but never API-edited or API-deleted ones', async () => {
    const [changed, apiEdited, retired, disabled, apiDeleted] = seedRules.slice(0, 5).map((r) => r.id);
    const edited = seedRules[1];
    await store.upsert({ ...edited, note: 'edited through the API' });
    expect((await store.setEnabled(disabled, false))?.origin).toBe('seed');
    expect(await store.delete(apiDeleted)).toBe(true);

    const newId = `new-seed-rule-${randomUUID().slice(0, 8)}`;
    const v2 = {
      version: seed.version + 1,
      rules: [
        ...seedRules
          .filter((r) => r.id !== retired)
          .map((r) => ([changed, apiEdited, disabled, apiDeleted].includes(r.id) ? { ...r, note: `v2 note of ${r.id}` } : r)),
        apiRule(newId, 'new seed wording', { priority: 2, source: 'generic' }),
      ],
    };
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
    await store.delete(newId);
  });

  it('several processes seeding at once apply a version exactly once', async () => {
    const version = seed.version + 2;
    const results = await Promise.all([1, 2, 3, 4].map(() => new InboundRuleStore(pool).seed({ version, rules: seedRules })));
    expect(results.filter((r) => r.applied).length).toBe(1);
    expect((await store.state()).version).toBe(version);
  });

  it('refuses a seed with a bad rule, naming it, and writes nothing', async () => {
    const marker = await store.changeMarker();
    const bad = { version: seed.version + 10, rules: [...seedRules, apiRule('seed-bad-regex', '(unclosed')] };
    await expect(store.seed(bad)).rejects.toThrow(/seed-bad-regex/);
    expect(await store.changeMarker()).toBe(marker);
    expect((await store.state()).version).toBe(seed.version + 2);
  });
});

describe('API edits', () => {
  it('refuses a bad regex, a schema error and a rule that does not match its own sample, naming the field', async () => {
    const id = `t-invalid-${randomUUID().slice(0, 8)}`;
    const badRegex = (await store.upsert(apiRule(id, 'user (unknown')).catch((e: unknown) => e)) as InvalidInboundRuleError;
    expect(badRegex).toBeInstanceOf(InvalidInboundRuleError);
    expect(badRegex.message).toContain(`"${id}"`);
    expect(badRegex.issues[0].path).toBe('body');
    await expect(store.upsert({ ...apiRule(id, 'x'), type: 'medium' })).rejects.toThrow(new RegExp(`"${id}": type`));
    await expect(store.upsert(apiRule(id, 'x', { priority: 1.5 }))).rejects.toThrow(/priority: must be an integer/);
    await expect(store.upsert(apiRule(id, 'other words', { sample: { body: 'something else' } }))).rejects.toThrow(/own sample/);
    expect(await store.get(id)).toBeNull();
  });

  it('creates, replaces, disables, deletes and re-creates a rule, bumping the change marker each time', async () => {
    const id = `t-crud-${randomUUID().slice(0, 8)}`;
    const m0 = (await store.changeMarker())!;
    const created = await store.upsert(apiRule(id, 'crud marker'));
    expect(created).toMatchObject({ created: true, rule: { id, origin: 'api', enabled: true, reason: 'refused' } });
    const m1 = (await store.changeMarker())!;
    expect(m1).toBeGreaterThan(m0);
    expect((await store.upsert(apiRule(id, 'crud marker', { reason: 'user_unknown' }))).rule.reason).toBe('user_unknown');
    expect((await store.setEnabled(id, false))?.enabled).toBe(false);
    expect((await store.upsert(apiRule(id, 'crud marker'))).rule.enabled).toBe(false);
    expect(await store.setEnabled(`missing-${id}`, true)).toBeNull();
    expect(await store.delete(id)).toBe(true);
    expect(await store.delete(id)).toBe(false);
    expect(await store.get(id)).toBeNull();
    expect(await store.upsert(apiRule(id, 'crud marker'))).toMatchObject({ created: true, rule: { enabled: true } });
    expect((await store.changeMarker())!).toBeGreaterThan(m1);
    await store.delete(id);
  });
});

describe('HTTP routes', () => {
  let server: Server;
  let base: string;

  beforeAll(async () => {
    const app = express();
    app.use(express.json({ limit: '5mb' }));
    app.use(createInboundRulesRouter({ store }));
    app.use(apiErrorMiddleware);
    server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}/api/inbound-rules`;
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

  function withoutId(rule: InboundRule) {
    const { id: _id, ...rest } = rule;
    return rest;
  }

  /** A non-standard bounce: no DSN part, only the MTA's words. */
  function bounce(text: string): string {
    return ['From: MAILER-DAEMON@mx.example.org', 'To: b-1-2-abc@bounces.example.net', 'Subject: failure notice', '', 'Hi. This is the mail transport agent at mx.example.org.', '', '<alice@example.com>:', text, ''].join('\n');
  }

  it('lists the rules, optionally of one kind, and refuses an unknown kind naming the field', async () => {
    const all = await call('GET', '');
    expect(all.status).toBe(200);
    expect(all.body.rules.length).toBeGreaterThanOrEqual(seedRules.length);
    expect(typeof all.body.revision).toBe('number');
    expect(all.body.seedVersion).toBeGreaterThanOrEqual(seed.version);
    const priorities = all.body.rules.map((r: { priority: number }) => r.priority);
    expect(priorities).toEqual([...priorities].sort((a, b) => a - b));
    const replies = await call('GET', '?kind=auto_reply');
    expect(replies.body.rules.length).toBeGreaterThan(0);
    expect(replies.body.rules.every((r: { kind: string }) => r.kind === 'auto_reply')).toBe(true);
    const bad = await call('GET', '?kind=spam');
    expect(bad.status).toBe(400);
    expect(bad.body.issues[0].path).toBe('kind');
  });

  it('creates with PUT (201), replaces (200), reads back, and round-trips a GET body', async () => {
    const id = `t-http-${randomUUID().slice(0, 8)}`;
    const put = await call('PUT', `/${id}`, withoutId(apiRule(id, 'http marker')));
    expect(put.status).toBe(201);
    expect(put.body).toMatchObject({ id, origin: 'api', enabled: true });
    const get = await call('GET', `/${id}`);
    expect(get.status).toBe(200);
    const replaced = await call('PUT', `/${id}`, { ...get.body, reason: 'user_unknown' });
    expect(replaced.status).toBe(200);
    expect(replaced.body.reason).toBe('user_unknown');
    expect((await call('DELETE', `/${id}`)).status).toBe(204);
  });

  it('answers 400 naming the field for a bad rule, a bad regex, or a body id that differs', async () => {
    const id = `t-http-bad-${randomUUID().slice(0, 8)}`;
    const badType = await call('PUT', `/${id}`, { ...withoutId(apiRule(id, 'x')), type: 'medium' });
    expect(badType.status).toBe(400);
    expect(badType.body.error).toContain(`inbound rule "${id}"`);
    expect(badType.body.issues).toEqual(expect.arrayContaining([expect.objectContaining({ path: 'type' })]));

    const badRegex = await call('PUT', `/${id}`, withoutId(apiRule(id, '(unclosed')));
    expect(badRegex.status).toBe(400);
    expect(badRegex.body.error).toContain(`"${id}"`);
    expect(badRegex.body.issues).toEqual([expect.objectContaining({ path: 'body' })]);

    const noSample = await call('PUT', `/${id}`, { ...withoutId(apiRule(id, 'x')), subject: 'x' });
    expect(noSample.status).toBe(400);
    expect(noSample.body.issues).toEqual(expect.arrayContaining([expect.objectContaining({ path: 'sample.subject' })]));

    const otherId = await call('PUT', `/${id}`, apiRule('some-other-id', 'x'));
    expect(otherId.status).toBe(400);
    expect(otherId.body.issues[0].path).toBe('id');

    const notObject = await call('PUT', `/${id}`, [1]);
    expect(notObject.status).toBe(400);
    expect(notObject.body.issues[0].path).toBe('');

    expect((await call('PUT', `/${id}`, { ...withoutId(apiRule(id, 'x')), colour: 'red' })).status).toBe(400);
    expect((await call('PUT', '/Not_A_Slug', withoutId(apiRule('x', 'x')))).status).toBe(400);
    expect((await call('GET', `/${id}`)).status).toBe(404);
  });

  it('enables and disables with PATCH, deletes with DELETE, 404 for unknown ids', async () => {
    const id = `t-http-patch-${randomUUID().slice(0, 8)}`;
    await call('PUT', `/${id}`, withoutId(apiRule(id, 'patch marker')));
    const off = await call('PATCH', `/${id}`, { enabled: false });
    expect(off.status).toBe(200);
    expect(off.body.enabled).toBe(false);
    expect((await call('GET', `/${id}`)).body.enabled).toBe(false);
    const badPatch = await call('PATCH', `/${id}`, { enabled: 'no' });
    expect(badPatch.status).toBe(400);
    expect(badPatch.body.issues[0].path).toBe('enabled');
    expect((await call('PATCH', `/${id}`, { enabled: true, reason: 'refused' })).status).toBe(400);
    const missing = await call('PATCH', `/missing-${id}`, { enabled: true });
    expect(missing).toEqual({ status: 404, body: { error: `inbound rule missing-${id} does not exist` } });

    expect((await call('DELETE', `/${id}`)).status).toBe(204);
    expect((await call('GET', `/${id}`)).status).toBe(404);
    expect((await call('DELETE', `/${id}`)).status).toBe(404);
  });

  it('POST /test classifies a message with the rules as stored now', async () => {
    const id = `t-http-test-${randomUUID().slice(0, 8)}`;
    const marker = `probe ${id}`;
    const message = bounce(`The message was refused: ${marker}.`);
    const before = await call('POST', '/test', { message });
    expect(before.status).toBe(200);
    expect(before.body.rulesEvaluated).toBe((await store.loadCompiled()).length);
    expect(before.body.classification.recipients.map((r: { rule: string }) => r.rule)).not.toContain(`inbound-rule:${id}`);

    // The endpoint reads the store, not a cache: a new rule shows at once, a disabled one no longer matches.
    await call('PUT', `/${id}`, withoutId(apiRule(id, marker)));
    const hit = await call('POST', '/test', { message });
    expect(hit.status).toBe(200);
    expect(hit.body.rulesEvaluated).toBe(before.body.rulesEvaluated + 1);
    expect(hit.body.classification).toMatchObject({
      kind: 'bounce',
      recipients: [expect.objectContaining({ recipient: 'alice@example.com', type: 'hard', reason: 'refused', rule: `inbound-rule:${id}` })],
    });
    await call('PATCH', `/${id}`, { enabled: false });
    const off = await call('POST', '/test', { message });
    expect(off.body.classification.recipients.map((r: { rule: string }) => r.rule)).not.toContain(`inbound-rule:${id}`);
    await call('DELETE', `/${id}`);

    const empty = await call('POST', '/test', {});
    expect(empty.status).toBe(400);
    expect(empty.body.issues[0].path).toBe('message');
    expect((await call('POST', '/test', { message, extra: true })).status).toBe(400);
  });
});
