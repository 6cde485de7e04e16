/**
 * The OpenAPI description (api/openapi/, docs/api.md) against the real API: the document validates with a maintained
 * OpenAPI 3.1 validator and every schema in it compiles; its operations are exactly the routes mounted (walking the
 * app's router stack), so a route without a description or a description without a route fails; docs/openapi.json is
 * the generated document; bodies the API accepts validate against the documented schemas and bodies it refuses are
 * refused by them; real answers match the documented response schemas; the document and the viewer answer without a
 * key; headless Chromium renders every operation from files served by the engine itself (screenshot in test-results/).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Validator } from '@seriousme/openapi-schema-validator';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { chromium, type Browser } from 'playwright-core';
import { startHarness, type Harness } from './support/harness';
import { apiCall, request } from './support/http';
import { ROUTE_ACCESS } from '../api/auth/route-access';
import { buildOpenApiDocument, openApiPath, type OpenApiDocument } from '../api/openapi/document';
import { OPERATIONS, type RouteKey } from '../api/openapi/operations';
import { OPENAPI_FILE, openApiFileContent } from '../scripts/generate-openapi';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const RESULTS_DIR = path.join(__dirname, '..', 'test-results');
const u = randomUUID().slice(0, 8);
const DOMAIN = `openapi-${u}.example`;
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

let h: Harness;
let browser: Browser | null = null;
const doc: OpenApiDocument = buildOpenApiDocument();
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(doc, 'openapi.json');

beforeAll(async () => {
  h = await startHarness();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await h?.stop();
});

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

/** Every route of the app, walking Express 5's router stack (routers mounted with app.use included). */
function walkRoutes(stack: Layer[]): string[] {
  return stack.flatMap((layer) => {
    if (layer.route) return Object.keys(layer.route.methods).map((m) => `${m.toUpperCase()} ${openApiPath(layer.route!.path).path}`);
    return layer.handle?.stack ? walkRoutes(layer.handle.stack) : [];
  });
}

/** "METHOD /path/{param}" of every operation of a document. */
function operationsOf(d: { paths: Record<string, Record<string, unknown>> }): string[] {
  return Object.entries(d.paths).flatMap(([p, item]) => Object.keys(item).filter((m) => METHODS.includes(m)).map((m) => `${m.toUpperCase()} ${p}`));
}

function coverage(d: { paths: Record<string, Record<string, unknown>> }, mounted: string[]) {
  const described = new Set(operationsOf(d));
  const routes = new Set(mounted);
  return { undescribed: [...routes].filter((r) => !described.has(r)).sort(), unmounted: [...described].filter((r) => !routes.has(r)).sort() };
}

/** A validator for a component schema of the document. */
function schemaOf(name: string) {
  const v = ajv.getSchema(`openapi.json#/components/schemas/${name}`);
  if (!v) throw new Error(`no component schema ${name}`);
  return v;
}

/** The documented JSON answer of `METHOD path` (express form) with `status`: its schema must accept `json`. */
function expectDocumentedAnswer(method: string, expressPath: string, status: number, json: unknown): void {
  type Response = { $ref?: string; content?: Record<string, { schema: { $ref: string } }> };
  const op = doc.paths[openApiPath(expressPath).path]?.[method.toLowerCase()] as { responses: Record<string, Response> } | undefined;
  expect(op, `${method} ${expressPath} is described`).toBeDefined();
  let response = op!.responses[String(status)];
  expect(response, `${method} ${expressPath} documents ${status}`).toBeDefined();
  // A common answer (400, 401, ...) is a reference to components.responses.
  if (response.$ref) response = doc.components.responses[response.$ref.replace('#/components/responses/', '')] as Response;
  const ref = response.content?.['application/json']?.schema.$ref;
  expect(ref, `${method} ${expressPath} ${status} has a JSON schema`).toMatch(/^#\/components\/schemas\//);
  const validate = ajv.getSchema(`openapi.json${ref}`)!;
  const ok = validate(json);
  expect(ok, `${method} ${expressPath} ${status} answer against ${ref}: ${JSON.stringify(validate.errors)}\n${JSON.stringify(json).slice(0, 1500)}`).toBe(true);
}

describe('the document', () => {
  it('is valid OpenAPI 3.1 (@seriousme/openapi-schema-validator) and every schema in it compiles as JSON Schema 2020-12', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors ?? [], String(JSON.stringify(result.errors)).slice(0, 2000)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    expect(doc.openapi).toBe('3.1.0');

    // The validator checks the document's structure; the schemas themselves (patterns, $refs) are compiled here.
    const names = Object.keys(doc.components.schemas);
    expect(names.length).toBeGreaterThan(60);
    for (const name of names) expect(() => schemaOf(name), name).not.toThrow();
    let parameters = 0;
    for (const item of Object.values(doc.paths)) {
      for (const op of Object.values(item) as { parameters?: { schema?: object }[] }[]) {
        for (const p of op.parameters ?? []) {
          if (p.schema) {
            ajv.compile(p.schema);
            parameters++;
          }
        }
      }
    }
    expect(parameters).toBeGreaterThan(40);
  });

  it('describes exactly the routes the app mounts: a route missing from it, or an operation with no route, fails', async () => {
    const mounted = walkRoutes((h.app as unknown as { router: { stack: Layer[] } }).router.stack);
    // The harness mounts every router (codec, schedules, inbound, webhooks): every declared route is there.
    expect(mounted.length).toBe(Object.keys(ROUTE_ACCESS).length);
    expect(coverage(doc, mounted)).toEqual({ undescribed: [], unmounted: [] });

    // The served document describes this process's routes: here, all of them.
    const served = await request(h.apiUrl, 'GET', '/api/openapi.json', { apiKey: null });
    expect(served.status).toBe(200);
    expect(coverage(served.json, mounted)).toEqual({ undescribed: [], unmounted: [] });

    // The check itself: one route more, one route less.
    expect(coverage(doc, [...mounted, 'POST /api/new-thing/{id}'])).toEqual({ undescribed: ['POST /api/new-thing/{id}'], unmounted: [] });
    expect(coverage(doc, mounted.filter((r) => r !== 'POST /api/deliveries'))).toEqual({ undescribed: [], unmounted: ['POST /api/deliveries'] });
    // A process without some routers describes only what it has.
    const partial = buildOpenApiDocument({ routes: ['GET /health', 'POST /api/deliveries'] });
    expect(operationsOf(partial).sort()).toEqual(['GET /health', 'POST /api/deliveries']);
  });

  it('states the scope, security and Idempotency-Key of every operation as the API applies them', () => {
    let stateChanging = 0;
    for (const key of Object.keys(ROUTE_ACCESS) as RouteKey[]) {
      const [method, expressPath] = key.split(' ');
      const op = doc.paths[openApiPath(expressPath).path][method.toLowerCase()] as {
        'x-required-scope': string;
        security: Record<string, string[]>[];
        parameters?: { $ref?: string; name?: string; in?: string }[];
        operationId: string;
      };
      const access = ROUTE_ACCESS[key];
      expect(op['x-required-scope'], key).toBe(access);
      if (access === 'public') expect(op.security, key).toEqual([]);
      else {
        expect(op.security.length, key).toBeGreaterThanOrEqual(2);
        for (const requirement of op.security) expect(Object.values(requirement), key).toEqual([[access]]);
      }
      const hasKey = (op.parameters ?? []).some((p) => p.$ref === '#/components/parameters/IdempotencyKey');
      if (['POST', 'PUT', 'PATCH', 'DELETE'].includes(method)) {
        stateChanging++;
        // The codec server is mounted before the Idempotency-Key middleware (it answers CORS preflights first).
        expect(hasKey, key).toBe(!key.includes('/codec/'));
      } else expect(hasKey, key).toBe(false);
      const pathParams = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name);
      expect(pathParams, key).toEqual(openApiPath(expressPath).params);
      expect(op.operationId).toBe(OPERATIONS[key].operationId);
    }
    expect(stateChanging).toBeGreaterThan(40);
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['ApiKeyBearer', 'ApiKeyHeader', 'SessionCookie']);
    for (const status of ['BadRequest', 'Unauthorized', 'Forbidden', 'NotFound', 'IdempotencyConflict', 'IdempotencyKeyReused', 'TooManyRequests']) {
      expect(doc.components.responses[status], status).toBeDefined();
    }
  });

  it('docs/openapi.json is the generated document (npm run openapi)', () => {
    const committed = fs.readFileSync(OPENAPI_FILE, 'utf8');
    expect(committed === openApiFileContent(), 'docs/openapi.json is out of date: run npm run openapi').toBe(true);
    expect(JSON.parse(committed)).toEqual(JSON.parse(JSON.stringify(doc)));
  });
});

describe('request schemas', () => {
  const base = { from: { address: `news@${DOMAIN}`, name: 'OpenAPI' }, subject: 'Hello {{firstName}}', text: 'Hello {{firstName}}' };

  it('bodies the API accepts validate against the documented schemas; answers match the documented responses', async () => {
    const createDelivery = schemaOf('CreateDeliveryRequest');
    const accepted = [
      { ...base, name: `openapi simple ${u}`, recipients: [{ email: `a@${DOMAIN}`, fields: { firstName: 'A' } }] },
      {
        ...base,
        from: `news@${DOMAIN}`,
        name: `openapi waves ${u}`,
        recipients: [{ email: `b@${DOMAIN}` }, { email: `c@${DOMAIN}`, fields: { firstName: 'C', vip: true, score: 3 } }],
        waves: { mode: 'size', percent: 50, periodSeconds: 3600 },
        localSendTime: { time: '09:30', defaultTimeZone: 'Europe/Paris' },
        validity: '36h',
        contactDate: new Date(Date.now() + 86_400_000).toISOString(),
      },
    ];
    const ids: string[] = [];
    for (const body of accepted) {
      expect(createDelivery(body), JSON.stringify(createDelivery.errors)).toBe(true);
      const created = await apiCall(h.apiUrl, 'POST', '/api/deliveries', body);
      expect(created.status, JSON.stringify(created.json)).toBe(201);
      expectDocumentedAnswer('POST', '/api/deliveries', 201, created.json);
      ids.push(created.json.id);
    }

    // The first one through analysis and confirmation, its answers checked on the way.
    await h.waitForPhase(ids[0], ['awaiting_confirmation']);
    const confirmBody = { confirmedBy: 'openapi test' };
    expect(schemaOf('ConfirmDeliveryRequest')(confirmBody)).toBe(true);
    const confirmed = await apiCall(h.apiUrl, 'POST', `/api/deliveries/${ids[0]}/confirm`, confirmBody);
    expect(confirmed.status, JSON.stringify(confirmed.json)).toBe(200);
    expectDocumentedAnswer('POST', '/api/deliveries/:id/confirm', 200, confirmed.json);
    const again = await apiCall(h.apiUrl, 'POST', `/api/deliveries/${ids[0]}/confirm`, {});
    expect(again.status).toBe(409);
    expectDocumentedAnswer('POST', '/api/deliveries/:id/confirm', 409, again.json);
    await h.waitForPhase(ids[0], ['completed']);
    for (const [p, status] of [
      [`/api/deliveries/${ids[0]}`, 200],
      ['/api/deliveries?limit=5', 200],
      [`/api/deliveries/${ids[0]}/recipients`, 200],
    ] as const) {
      const got = await apiCall(h.apiUrl, 'GET', p);
      expect(got.status).toBe(status);
      expectDocumentedAnswer('GET', p.replace(ids[0], ':id').replace(/\?.*$/, ''), status, got.json);
    }
    const page = await apiCall(h.apiUrl, 'GET', `/api/deliveries/${ids[0]}/recipients`);
    const rid = page.json.recipients[0].recipientId as number;
    const one = await apiCall(h.apiUrl, 'GET', `/api/deliveries/${ids[0]}/recipients/${rid}`);
    expectDocumentedAnswer('GET', '/api/deliveries/:id/recipients/:rid', 200, one.json);
    const cancel = await apiCall(h.apiUrl, 'POST', `/api/deliveries/${ids[1]}/cancel`, { reason: 'openapi test' });
    expect(cancel.status, JSON.stringify(cancel.json)).toBe(202);
    expectDocumentedAnswer('POST', '/api/deliveries/:id/cancel', 202, cancel.json);

    // A list, then a recurring delivery on it (created paused, deleted at the end).
    const list = await request(h.apiUrl, 'POST', `/api/lists?name=openapi-${u}`, { body: `email,firstName\nl@${DOMAIN},L\n`, contentType: 'text/csv' });
    expect(list.status, JSON.stringify(list.json)).toBe(201);
    expectDocumentedAnswer('POST', '/api/lists', 201, list.json);
    expectDocumentedAnswer('GET', '/api/lists', 200, (await apiCall(h.apiUrl, 'GET', '/api/lists')).json);
    const listDetail = (await apiCall(h.apiUrl, 'GET', `/api/lists/${list.json.id}`)).json;
    expect(listDetail.sample).toEqual({ email: `l@${DOMAIN}`, fields: { firstName: 'L' } });
    expectDocumentedAnswer('GET', '/api/lists/:id', 200, listDetail);
    // The preview of a message for that first member, and the refusal of a template that does not compile.
    const previewBody = { subject: base.subject, text: base.text, fields: { ...listDetail.sample.fields, email: listDetail.sample.email } };
    expect(schemaOf('MessagePreviewRequest')(previewBody)).toBe(true);
    const previewed = await apiCall(h.apiUrl, 'POST', '/api/deliveries/preview', previewBody);
    expect(previewed.status, JSON.stringify(previewed.json)).toBe(200);
    expect(previewed.json.subject).toBe('Hello L');
    expectDocumentedAnswer('POST', '/api/deliveries/preview', 200, previewed.json);
    const badTemplate = await apiCall(h.apiUrl, 'POST', '/api/deliveries/preview', { ...previewBody, text: '{{#each}}' });
    expect(badTemplate.status).toBe(400);
    expectDocumentedAnswer('POST', '/api/deliveries/preview', 400, badTemplate.json);
    const recurring = { template: { ...base, name: `openapi recurring ${u}`, listId: list.json.id, validity: '1h' }, schedule: { cron: '0 9 * * MON', timeZone: 'Europe/Paris' }, paused: true };
    const createRecurring = schemaOf('CreateRecurringDeliveryRequest');
    expect(createRecurring(recurring), JSON.stringify(createRecurring.errors)).toBe(true);
    const rec = await apiCall(h.apiUrl, 'POST', '/api/recurring-deliveries', recurring);
    expect(rec.status, JSON.stringify(rec.json)).toBe(201);
    expectDocumentedAnswer('POST', '/api/recurring-deliveries', 201, rec.json);
    expect((await apiCall(h.apiUrl, 'DELETE', `/api/recurring-deliveries/${rec.json.id}`)).status).toBe(204);

    // API keys and the audit log.
    const keyBody = { name: `openapi ${u}`, scopes: ['read'] };
    expect(schemaOf('CreateApiKeyRequest')(keyBody)).toBe(true);
    const key = await apiCall(h.apiUrl, 'POST', '/api/keys', keyBody);
    expect(key.status).toBe(201);
    expectDocumentedAnswer('POST', '/api/keys', 201, key.json);
    expectDocumentedAnswer('GET', '/api/keys', 200, (await apiCall(h.apiUrl, 'GET', '/api/keys')).json);
    const revoked = await apiCall(h.apiUrl, 'DELETE', `/api/keys/${key.json.id}`);
    expectDocumentedAnswer('DELETE', '/api/keys/:id', 200, revoked.json);
    expectDocumentedAnswer('GET', '/api/audit-log', 200, (await apiCall(h.apiUrl, 'GET', '/api/audit-log?limit=20')).json);

    // Sessions, health, the denylist, DKIM keys.
    const session = await apiCall(h.apiUrl, 'POST', '/api/session');
    expectDocumentedAnswer('POST', '/api/session', 201, session.json);
    expectDocumentedAnswer('GET', '/api/session', 200, (await apiCall(h.apiUrl, 'GET', '/api/session')).json);
    expectDocumentedAnswer('GET', '/health', 200, (await apiCall(h.apiUrl, 'GET', '/health')).json);
    const deny = { address: `deny-${u}@${DOMAIN}`, reason: 'openapi test' };
    expect(schemaOf('DenylistAddRequest')(deny)).toBe(true);
    const added = await apiCall(h.apiUrl, 'POST', '/api/denylist', deny);
    expect(added.status).toBe(201);
    expectDocumentedAnswer('POST', '/api/denylist', 201, added.json);
    expectDocumentedAnswer('DELETE', '/api/denylist/:address', 200, (await apiCall(h.apiUrl, 'DELETE', `/api/denylist/${deny.address}`)).json);
    expectDocumentedAnswer('GET', '/api/dkim/keys', 200, (await apiCall(h.apiUrl, 'GET', '/api/dkim/keys')).json);
    expectDocumentedAnswer('GET', '/api/denylist', 200, (await apiCall(h.apiUrl, 'GET', '/api/denylist?limit=5')).json);
    expectDocumentedAnswer('GET', '/api/quarantine', 200, (await apiCall(h.apiUrl, 'GET', '/api/quarantine?limit=5')).json);
  });

  it('a rule read from the API is a valid PUT body; a new rule PUT with it is answered as documented', async () => {
    const listed = await apiCall(h.apiUrl, 'GET', '/api/qualification-rules');
    expectDocumentedAnswer('GET', '/api/qualification-rules', 200, listed.json);
    expect(listed.json.rules.length).toBeGreaterThan(10);
    const write = schemaOf('QualificationRuleWrite');
    // What a GET answers can be edited and sent back (api/rule-table-routes.ts): the derived write schema says so too.
    for (const rule of listed.json.rules) expect(write(rule), `${rule.id}: ${JSON.stringify(write.errors)}`).toBe(true);
    const { id: _id, ...copy } = listed.json.rules[0];
    const id = `openapi-test-${u}`;
    // Disabled: it must not change how other tests' replies are qualified, even if this test stops half-way.
    const body = { ...copy, enabled: false, note: 'written by test/openapi.test.ts' };
    expect(write(body), JSON.stringify(write.errors)).toBe(true);
    const put = await apiCall(h.apiUrl, 'PUT', `/api/qualification-rules/${id}`, body);
    expect(put.status, JSON.stringify(put.json)).toBe(201);
    expectDocumentedAnswer('PUT', '/api/qualification-rules/:id', 201, put.json);
    expect(put.json).toMatchObject({ id, enabled: false, origin: 'api' });
    expectDocumentedAnswer('GET', '/api/qualification-rules/:id', 200, (await apiCall(h.apiUrl, 'GET', `/api/qualification-rules/${id}`)).json);
    expect((await apiCall(h.apiUrl, 'DELETE', `/api/qualification-rules/${id}`)).status).toBe(204);
    const inbound = await apiCall(h.apiUrl, 'GET', '/api/inbound-rules');
    expectDocumentedAnswer('GET', '/api/inbound-rules', 200, inbound.json);
    for (const rule of inbound.json.rules) expect(schemaOf('InboundRuleWrite')(rule), rule.id).toBe(true);
  });

  it('every body example in the document fits its schema, and the API accepts them', async () => {
    let examples = 0;
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item) as [string, { requestBody?: { content: Record<string, { schema: { $ref?: string }; example?: unknown }> } }][]) {
        const media = op.requestBody?.content['application/json'];
        if (media?.example === undefined) continue;
        examples++;
        const validate = ajv.getSchema(`openapi.json${media.schema.$ref}`)!;
        expect(validate(media.example), `${method} ${p}: ${JSON.stringify(validate.errors)}`).toBe(true);
      }
    }
    expect(examples).toBeGreaterThanOrEqual(8);
    const example = (method: string, p: string) =>
      (doc.paths[p][method] as { requestBody: { content: Record<string, { example: unknown }> } }).requestBody.content['application/json'].example;
    const created = await apiCall(h.apiUrl, 'POST', '/api/deliveries', example('post', '/api/deliveries'));
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    expect((await apiCall(h.apiUrl, 'POST', `/api/deliveries/${created.json.id}/cancel`, {})).status).toBe(202);
    const tried = await apiCall(h.apiUrl, 'POST', '/api/qualification-rules/test', example('post', '/api/qualification-rules/test'));
    expect(tried.status, JSON.stringify(tried.json)).toBe(200);
    expectDocumentedAnswer('POST', '/api/qualification-rules/test', 200, tried.json);
    expect(tried.json.qualification).toMatchObject({ type: 'hard', reason: 'user_unknown' });
  });

  it('bodies the API refuses are refused by the documented schemas', async () => {
    const valid = { ...base, name: `openapi refused ${u}`, recipients: [{ email: `r@${DOMAIN}` }] };
    const { subject: _subject, ...noSubject } = valid;
    const refused: { what: string; schema: string; method: string; path: string; body: unknown; issue: string }[] = [
      { what: 'no subject', schema: 'CreateDeliveryRequest', method: 'POST', path: '/api/deliveries', body: noSubject, issue: 'subject' },
      { what: 'an unknown field', schema: 'CreateDeliveryRequest', method: 'POST', path: '/api/deliveries', body: { ...valid, colour: 'blue' }, issue: '' },
      { what: 'a wave mode that does not exist', schema: 'CreateDeliveryRequest', method: 'POST', path: '/api/deliveries', body: { ...valid, waves: { mode: 'weekly' } }, issue: 'waves' },
      { what: 'a recipient without email', schema: 'CreateDeliveryRequest', method: 'POST', path: '/api/deliveries', body: { ...valid, recipients: [{ fields: { a: 1 } }] }, issue: 'recipients.0.email' },
      { what: 'a sender that is not an address', schema: 'CreateDeliveryRequest', method: 'POST', path: '/api/deliveries', body: { ...valid, from: 'not an address' }, issue: 'from' },
      { what: 'a validity of the wrong type', schema: 'CreateDeliveryRequest', method: 'POST', path: '/api/deliveries', body: { ...valid, validity: true }, issue: 'validity' },
      { what: 'an unknown scope', schema: 'CreateApiKeyRequest', method: 'POST', path: '/api/keys', body: { name: 'x', scopes: ['root'] }, issue: 'scopes.0' },
      { what: 'a proof list too long', schema: 'ProofRequest', method: 'POST', path: `/api/deliveries/${randomUUID()}/proofs`, body: { addresses: Array.from({ length: 21 }, (_, i) => `p${i}@${DOMAIN}`) }, issue: 'addresses' },
      {
        what: 'a recurring template with inline recipients',
        schema: 'CreateRecurringDeliveryRequest',
        method: 'POST',
        path: '/api/recurring-deliveries',
        body: { template: { ...valid, listId: randomUUID() }, schedule: { intervalSeconds: 86400 } },
        issue: 'template.recipients',
      },
    ];
    for (const c of refused) {
      const validate = schemaOf(c.schema);
      expect(validate(c.body), `${c.what}: the schema accepts it`).toBe(false);
      const answer = await apiCall(h.apiUrl, c.method, c.path, c.body);
      expect(answer.status, `${c.what}: ${JSON.stringify(answer.json)}`).toBe(400);
      expectDocumentedAnswer(c.method, c.path.replace(/[0-9a-f-]{36}/, ':id'), 400, answer.json);
      const paths: string[] = answer.json.issues.map((i: { path: string }) => i.path);
      expect(paths.some((p) => p === c.issue || p.startsWith(`${c.issue}.`)), `${c.what}: ${paths.join(', ')}`).toBe(true);
    }
  });
});

describe('serving', () => {
  it('GET /api/openapi.json and /docs/api answer without a key; the viewer is served from the engine', async () => {
    const json = await request(h.apiUrl, 'GET', '/api/openapi.json', { apiKey: null });
    expect(json.status).toBe(200);
    expect(json.headers.get('content-type')).toMatch(/^application\/json/);
    expect(json.json.openapi).toBe('3.1.0');
    const page = await request(h.apiUrl, 'GET', '/docs/api', { apiKey: null });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe');
    expect(page.json).toContain('/docs/api/assets/swagger-ui-bundle.js');
    expect(page.json).not.toMatch(/https?:\/\//);
    const bundle = await request(h.apiUrl, 'GET', '/docs/api/assets/swagger-ui-bundle.js', { apiKey: null });
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(String(bundle.json).length).toBeGreaterThan(100_000);
    const css = await request(h.apiUrl, 'GET', '/docs/api/assets/swagger-ui.css', { apiKey: null });
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    // Only the viewer's own files: nothing else of node_modules.
    for (const name of ['package.json', '..%2F..%2Fpackage.json', 'index.html']) {
      expect((await request(h.apiUrl, 'GET', `/docs/api/assets/${name}`, { apiKey: null })).status, name).toBe(404);
    }
  });

  it('headless Chromium renders every operation, loading nothing from elsewhere and breaking no CSP rule', async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const tab = await context.newPage();
    const problems: string[] = [];
    const elsewhere: string[] = [];
    tab.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    tab.on('pageerror', (e) => problems.push(String(e)));
    tab.on('response', (r) => {
      if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`);
    });
    tab.on('request', (r) => {
      if (!r.url().startsWith(h.apiUrl) && !r.url().startsWith('data:')) elsewhere.push(r.url());
    });
    await tab.goto(`${h.apiUrl}/docs/api`, { waitUntil: 'domcontentloaded' });
    const total = operationsOf(doc).length;
    const countBlocks = () => (globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }).document.querySelectorAll('.opblock').length;
    await tab.waitForFunction(countBlocks, undefined, { timeout: 60_000, polling: 250 });
    await tab.waitForFunction((n) => (globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }).document.querySelectorAll('.opblock').length >= n, total, {
      timeout: 60_000,
      polling: 250,
    });
    expect(await tab.evaluate(countBlocks)).toBe(total);
    const text = await tab.evaluate(() => (globalThis as unknown as { document: { body: { innerText: string } } }).document.body.innerText);
    expect(text).toContain('Durable email delivery engine API');
    expect(text).toContain('/api/deliveries/{id}/confirm');
    expect(text).toContain('Create a delivery');

    // One operation opened: its body schema, from the zod schema, is shown.
    await tab.click('#operations-Deliveries-createDelivery .opblock-summary-control');
    await tab.waitForSelector('#operations-Deliveries-createDelivery .opblock-body', { timeout: 20_000 });
    fs.mkdirSync(RESULTS_DIR, { recursive: true });
    await tab.screenshot({ path: path.join(RESULTS_DIR, 'openapi-docs-page.png') });
    await tab.locator('#operations-Deliveries-createDelivery').screenshot({ path: path.join(RESULTS_DIR, 'openapi-create-delivery.png') });
    const opened = await tab.locator('#operations-Deliveries-createDelivery').innerText();
    expect(opened).toContain('Idempotency-Key');
    expect(opened).toContain('x-required-scope');

    expect(elsewhere, 'requests to other origins').toEqual([]);
    expect(problems, 'console errors (a CSP violation is one)').toEqual([]);
    await context.close();
  });
});
