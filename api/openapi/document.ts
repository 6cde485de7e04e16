/**
 * The OpenAPI 3.1.0 description of the API, generated: routes and scopes from ROUTE_ACCESS, what each does from
 * OPERATIONS (api/openapi/operations.ts), and every request schema from the zod schema its route validates with,
 * through zod's own z.toJSONSchema (JSON Schema 2020-12, the dialect of OpenAPI 3.1; `io: 'input'`: what a caller
 * sends, before defaults and transforms). Nothing here restates a schema by hand.
 *
 * Served at GET /api/openapi.json (the routes of the running process), written to docs/openapi.json by
 * `npm run openapi` (every route), and checked by test/openapi.test.ts.
 */
import { z } from 'zod';
import pkg from '../../package.json';
import { ROUTE_ACCESS, type RouteAccess } from '../auth/route-access';
import { CSRF_HEADER, SESSION_COOKIE } from '../auth/access-control';
import { KEY_FORMAT } from '../idempotency';
import { putEnvelope } from '../rule-table-routes';
import { REFUSED_TEMPLATE_FIELDS } from '../recurring-input';
import { OPERATIONS, REQUEST_COMPONENTS, RESPONSE_COMPONENTS, RULE_TABLES, TAGS, type BodyDoc, type OperationDoc, type ParamDoc, type RouteKey, type SchemaSource } from './operations';
import { ruleListEnvelope, storedRuleFields } from './responses';

export type JsonSchema = Record<string, unknown>;
// The document is plain JSON: typed loosely, checked by a validator in the tests.
export type OpenApiDocument = Record<string, unknown> & { paths: Record<string, Record<string, JsonSchema>>; components: Record<string, Record<string, unknown>> };

const SCHEMAS = '#/components/schemas/';
const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** One zod schema as a self-contained JSON Schema (no $schema: the document's dialect applies). */
function toJson(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, target: 'draft-2020-12' }) as JsonSchema;
  return rest;
}

/** Named zod schemas as components; a named schema inside another becomes a $ref to it. */
function componentsOf(named: Record<string, z.ZodType>, io: 'input' | 'output'): { schemas: Record<string, JsonSchema>; nameOf: Map<z.ZodType, string> } {
  const registry = z.registry<{ id: string }>();
  const nameOf = new Map<z.ZodType, string>();
  for (const [name, schema] of Object.entries(named)) {
    const other = nameOf.get(schema);
    if (other) throw new Error(`components ${other} and ${name} are the same schema: name it once`);
    registry.add(schema, { id: name });
    nameOf.set(schema, name);
  }
  const out = z.toJSONSchema(registry, { io, target: 'draft-2020-12', uri: (id) => `${SCHEMAS}${id}` }) as { schemas: Record<string, JsonSchema> };
  const schemas: Record<string, JsonSchema> = {};
  for (const [name, s] of Object.entries(out.schemas)) {
    // $id "#/components/schemas/X" is how zod names the target of its $refs; in the document the component's place says it.
    const { $schema: _dialect, $id: _id, ...rest } = s;
    schemas[name] = rest;
  }
  return { schemas, nameOf };
}

interface ObjectSchema extends JsonSchema {
  properties: Record<string, JsonSchema>;
  required?: string[];
}

function asObject(s: JsonSchema, what: string): ObjectSchema {
  if (s.type !== 'object' || typeof s.properties !== 'object') throw new Error(`${what} is not an object schema`);
  return structuredClone(s) as ObjectSchema;
}

/**
 * Components of each rule table, from the rule schema its store validates with: the stored rule, the PUT body and the
 * list. A PUT body is the rule with its id optional (the URL's) plus the read-only fields of a GET (ignored), so
 * that a GET answer can be sent back as it is (api/rule-table-routes.ts).
 */
function ruleTableComponents(): Record<string, JsonSchema> {
  const envelope = asObject(toJson(putEnvelope, 'input'), 'putEnvelope');
  const stored = asObject(toJson(storedRuleFields, 'output'), 'storedRuleFields');
  const list = asObject(toJson(ruleListEnvelope, 'output'), 'ruleListEnvelope');
  const out: Record<string, JsonSchema> = {};
  for (const [name, schema] of Object.entries(RULE_TABLES)) {
    const rule = asObject(toJson(schema, 'input'), name);
    const write = structuredClone(rule);
    write.required = (rule.required ?? []).filter((f) => f !== 'id');
    for (const [field, s] of Object.entries(envelope.properties)) write.properties[field] ??= s;
    write.description = "The rule. `id` may be left out (it is the URL's); `enabled` may be set; `origin` and `updatedAt` (what a GET answers) are ignored.";
    const storedRule = structuredClone(rule);
    Object.assign(storedRule.properties, stored.properties);
    storedRule.required = [...(rule.required ?? []), ...(stored.required ?? [])];
    const ruleList = structuredClone(list);
    ruleList.properties.rules = { type: 'array', items: { $ref: `${SCHEMAS}${name}` } };
    out[name] = storedRule;
    out[`${name}Write`] = write;
    out[`${name}List`] = ruleList;
  }
  return out;
}

/**
 * A recurring delivery's template is checked as an object first (fields that do not apply are named), then as the
 * create-delivery body; zod can only describe the first step. Its component is the create-delivery body without
 * the refused fields, with `listId` required.
 */
function recurringTemplate(createDelivery: JsonSchema): JsonSchema {
  const t = asObject(createDelivery, 'CreateDeliveryRequest');
  for (const field of Object.keys(REFUSED_TEMPLATE_FIELDS)) delete t.properties[field];
  t.required = [...new Set([...(t.required ?? []), 'listId'])];
  t.description =
    'The create-delivery body, with a stored list as audience (`listId`), always confirmed automatically. Refused: ' +
    Object.entries(REFUSED_TEMPLATE_FIELDS)
      .map(([field, why]) => `\`${field}\` (${why})`)
      .join('; ') +
    '; `autoConfirm: false`; calendar waves.';
  return t;
}

/** `/api/deliveries/:id` → `/api/deliveries/{id}`, and the parameter names. */
export function openApiPath(expressPath: string): { path: string; params: string[] } {
  if (/[*?(){}]/.test(expressPath)) throw new Error(`${expressPath}: only plain :param segments can be described`);
  const params: string[] = [];
  const path = expressPath.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, (_, name: string) => {
    params.push(name);
    return `{${name}}`;
  });
  return { path, params };
}

const jsonContent = (schema: JsonSchema) => ({ 'application/json': { schema } });
const refTo = (name: string) => ({ $ref: `${SCHEMAS}${name}` });

interface Context {
  requestNames: Map<z.ZodType, string>;
  responseNames: Map<z.ZodType, string>;
  componentNames: Set<string>;
}

function schemaRef(source: SchemaSource, ctx: Context, side: 'request' | 'response', where: string): JsonSchema {
  if ('component' in source && typeof source.component === 'string') {
    if (!ctx.componentNames.has(source.component)) throw new Error(`${where}: no component ${source.component}`);
    return refTo(source.component);
  }
  const schema = source as z.ZodType;
  // An answer may have its request's shape (the codec answers payloads as it takes them).
  const name = side === 'response' ? (ctx.responseNames.get(schema) ?? ctx.requestNames.get(schema)) : ctx.requestNames.get(schema);
  if (!name) throw new Error(`${where}: its ${side} schema is not named in ${side === 'request' ? 'REQUEST' : 'RESPONSE'}_COMPONENTS (api/openapi/operations.ts)`);
  return refTo(name);
}

function paramSchema(p: ParamDoc): JsonSchema {
  return p.schema ? toJson(p.schema, 'input') : { type: 'string' };
}

function queryParameters(query: OperationDoc['query'], where: string): JsonSchema[] {
  if (!query) return [];
  if (query instanceof z.ZodObject) {
    const s = asObject(toJson(query, 'input'), `${where} query`);
    return Object.entries(s.properties).map(([name, prop]) => {
      const { description, ...schema } = prop;
      return { name, in: 'query', required: (s.required ?? []).includes(name), schema, ...(description ? { description } : {}) };
    });
  }
  return Object.entries(query as Record<string, ParamDoc>).map(([name, p]) => ({ name, in: 'query', required: p.required ?? false, description: p.description, schema: paramSchema(p) }));
}

function requestBody(body: BodyDoc, ctx: Context, where: string): JsonSchema {
  if ('schema' in body) {
    const media = { schema: schemaRef(body.schema, ctx, 'request', where), ...(body.example !== undefined ? { example: body.example } : {}) };
    return { required: body.required ?? true, ...(body.description ? { description: body.description } : {}), content: { 'application/json': media } };
  }
  if ('openObject' in body) return { required: body.required ?? true, content: jsonContent({ type: 'object', description: body.openObject }) };
  return { required: true, description: body.description, content: { [body.contentType]: { schema: { type: 'string', ...(body.format ? { contentMediaType: body.contentType } : {}) } } } };
}

const SCOPE_TEXT: Record<RouteAccess, string> = {
  public: '**Access:** public, no key.',
  read: '**Scope:** `read` (any key).',
  send: '**Scope:** `send` (a `send` or `admin` key).',
  admin: '**Scope:** `admin`.',
};

function operation(key: RouteKey, doc: OperationDoc, ctx: Context): { path: string; method: string; op: JsonSchema } {
  const [method, expressPath] = key.split(' ') as [string, string];
  const access: RouteAccess = ROUTE_ACCESS[key];
  const { path, params } = openApiPath(expressPath);
  const documented = Object.keys(doc.params ?? {});
  if (params.join() !== documented.join()) throw new Error(`${key}: path parameters ${params.join(', ')} but documented ${documented.join(', ') || 'none'}`);
  const changes = STATE_CHANGING.has(method);
  const idempotent = changes && !doc.noIdempotencyKey;

  const parameters: JsonSchema[] = [
    ...params.map((name) => ({ name, in: 'path', required: true, description: doc.params![name].description, schema: paramSchema(doc.params![name]) })),
    ...queryParameters(doc.query, key),
  ];
  if (idempotent) parameters.push({ $ref: '#/components/parameters/IdempotencyKey' });
  if (access === 'send' || access === 'admin') parameters.push({ $ref: '#/components/parameters/CsrfToken' });

  const responses: Record<string, JsonSchema> = {};
  for (const [status, r] of Object.entries(doc.responses)) {
    const content = r.schema ? jsonContent(schemaRef(r.schema, ctx, 'response', `${key} ${status}`)) : r.contentType ? { [r.contentType]: { schema: { type: 'string' } } } : undefined;
    const replayable = idempotent && Number(status) < 300;
    responses[status] = {
      description: r.description,
      ...(replayable ? { headers: { 'Idempotent-Replayed': { $ref: '#/components/headers/IdempotentReplayed' } } } : {}),
      ...(content ? { content } : {}),
    };
  }
  const add = (status: number, response: JsonSchema) => {
    responses[status] ??= response;
  };
  const error = (description: string) => ({ description, content: jsonContent(refTo('Error')) });
  if (key !== 'GET /health') add(400, { $ref: '#/components/responses/BadRequest' });
  if (access !== 'public') {
    add(401, { $ref: '#/components/responses/Unauthorized' });
    add(403, { $ref: '#/components/responses/Forbidden' });
  }
  const notFound = doc.notFound ?? (params.length ? undefined : false);
  if (notFound !== false) add(404, notFound === undefined ? { $ref: '#/components/responses/NotFound' } : error(notFound));
  if (idempotent) add(409, doc.conflict ? error(`${doc.conflict}; or a request with the same Idempotency-Key is still running (Retry-After)`) : { $ref: '#/components/responses/IdempotencyConflict' });
  else if (doc.conflict) add(409, error(doc.conflict));
  if (doc.body) add(413, { $ref: '#/components/responses/PayloadTooLarge' });
  if (idempotent) add(422, { $ref: '#/components/responses/IdempotencyKeyReused' });
  if (key !== 'GET /health') add(429, { $ref: '#/components/responses/TooManyRequests' });
  if (access !== 'public') add(503, { $ref: '#/components/responses/AuthUnavailable' });

  const schemes = doc.keyOnly ? ['ApiKeyBearer', 'ApiKeyHeader'] : ['ApiKeyBearer', 'ApiKeyHeader', 'SessionCookie'];
  const notes = [
    doc.description,
    SCOPE_TEXT[access] + (doc.keyOnly ? ' Takes the key itself, not a session.' : ''),
    idempotent ? 'Safe to retry with an `Idempotency-Key`.' : undefined,
  ].filter(Boolean);
  const op: JsonSchema = {
    operationId: doc.operationId,
    summary: doc.summary,
    description: notes.join('\n\n'),
    tags: [doc.tag],
    'x-required-scope': access,
    security: access === 'public' ? [] : schemes.map((s) => ({ [s]: [access] })),
    ...(parameters.length ? { parameters } : {}),
    ...(doc.body ? { requestBody: requestBody(doc.body, ctx, key) } : {}),
    responses: Object.fromEntries(Object.entries(responses).sort(([a], [b]) => Number(a) - Number(b))),
  };
  return { path, method: method.toLowerCase(), op };
}

const errorResponse = (description: string, schema = 'Error', headers?: Record<string, JsonSchema>) => ({
  description,
  ...(headers ? { headers } : {}),
  content: jsonContent(refTo(schema)),
});

const INFO_DESCRIPTION = `The HTTP API of the durable email delivery engine: deliveries, recipient lists, recurring deliveries, feedback,
rules, keys and webhooks. Guide: docs/api.md in the repository.

**Keys.** Every route but the public ones needs an API key, as \`Authorization: Bearer ede_…\` or \`X-API-Key: ede_…\`;
a browser may use a cookie session opened at \`POST /api/session\` (changes then need the \`X-CSRF-Token\` it answered).
Scopes: \`read\` < \`send\` < \`admin\`, each implying the ones before; each operation names the scope it needs
(\`x-required-scope\`, and in the security requirement's role list).

**Retries.** Every \`POST\`, \`PUT\`, \`PATCH\` and \`DELETE\` honours an \`Idempotency-Key\` header: a retry with the same
key and request gets the first answer again (\`Idempotent-Replayed: true\`); the same key with another request is a 422;
while the first still runs, a 409 with \`Retry-After\`.

**Errors.** JSON: \`{"error": "...", "issues": [{"path", "message"}]}\` for invalid input (400, one issue per field);
\`{"error", "reason"}\` for refused credentials (401, 403, 429, 503).`;

export interface DocumentOptions {
  /** Describe only these routes ("METHOD /path"): the ones a running process mounted. Default: every declared route. */
  routes?: Iterable<string>;
}

export function buildOpenApiDocument(opts: DocumentOptions = {}): OpenApiDocument {
  const request = componentsOf(REQUEST_COMPONENTS, 'input');
  const response = componentsOf(RESPONSE_COMPONENTS, 'output');
  const schemas: Record<string, JsonSchema> = { ...request.schemas };
  for (const [name, s] of Object.entries({ ...response.schemas, ...ruleTableComponents() })) {
    if (schemas[name]) throw new Error(`component ${name} is named twice`);
    schemas[name] = s;
  }
  schemas.RecurringTemplate = recurringTemplate(request.schemas.CreateDeliveryRequest);
  const ctx: Context = { requestNames: request.nameOf, responseNames: response.nameOf, componentNames: new Set(Object.keys(schemas)) };

  const only = opts.routes ? new Set(opts.routes) : null;
  const paths: Record<string, Record<string, JsonSchema>> = {};
  const operationIds = new Set<string>();
  const usedTags = new Set<string>();
  for (const key of Object.keys(ROUTE_ACCESS) as RouteKey[]) {
    if (only && !only.has(key)) continue;
    const doc: OperationDoc = OPERATIONS[key];
    if (operationIds.has(doc.operationId)) throw new Error(`${key}: operationId ${doc.operationId} is used twice`);
    operationIds.add(doc.operationId);
    const { path, method, op } = operation(key, doc, ctx);
    (paths[path] ??= {})[method] = op;
    usedTags.add(doc.tag);
  }

  const retryAfter = { $ref: '#/components/headers/RetryAfter' };
  return {
    openapi: '3.1.0',
    info: {
      title: 'Durable email delivery engine API',
      version: pkg.version,
      description: INFO_DESCRIPTION,
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: '/', description: 'the engine that serves this document' }],
    tags: Object.entries(TAGS)
      .filter(([name]) => usedTags.has(name))
      .map(([name, description]) => ({ name, description })),
    security: [{ ApiKeyBearer: [] }, { ApiKeyHeader: [] }, { SessionCookie: [] }],
    paths,
    components: {
      schemas,
      securitySchemes: {
        ApiKeyBearer: { type: 'http', scheme: 'bearer', description: 'An API key: `Authorization: Bearer ede_…` (keys are `ede_` and 43 characters).' },
        ApiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'The same key, for clients that cannot set Authorization.' },
        SessionCookie: {
          type: 'apiKey',
          in: 'cookie',
          name: SESSION_COOKIE,
          description: `A browser session opened with a key at POST /api/session. It may read; a change also needs the ${CSRF_HEADER} header answered at sign-in.`,
        },
      },
      parameters: {
        IdempotencyKey: {
          name: 'Idempotency-Key',
          in: 'header',
          required: false,
          description:
            'Makes a retry safe: the same key with the same request gets the first answer again instead of acting twice. One new key ' +
            '(a UUID) per logical request; keys belong to the API key that sent them and expire after IDEMPOTENCY_KEY_TTL_HOURS (24 h).',
          schema: { type: 'string', pattern: KEY_FORMAT.source },
        },
        CsrfToken: {
          name: 'X-CSRF-Token',
          in: 'header',
          required: false,
          description: 'Only with a session cookie: the csrfToken answered by POST /api/session (not needed with a key).',
          schema: { type: 'string' },
        },
      },
      headers: {
        RetryAfter: { description: 'Seconds to wait before trying again.', schema: { type: 'integer', minimum: 0 } },
        IdempotentReplayed: { description: '`true` when this is the stored answer of an earlier request with the same Idempotency-Key.', schema: { type: 'string', enum: ['true'] } },
      },
      responses: {
        BadRequest: errorResponse('Invalid input: `issues` names each wrong field (path, query, body or header). Nothing was changed.'),
        Unauthorized: errorResponse('No usable key: `reason` says why (missing_key, malformed_key, unknown_key, revoked_key, invalid_session, expired_session).', 'AuthError', {
          'WWW-Authenticate': { description: 'Bearer realm="email-delivery"', schema: { type: 'string' } },
        }),
        Forbidden: errorResponse("The key's scope is too low (`reason: insufficient_scope`, `requiredScope`), or a session changed something without its X-CSRF-Token (`csrf_token_required`).", 'AuthError'),
        NotFound: errorResponse('What the path names does not exist.'),
        IdempotencyConflict: errorResponse('A request with the same Idempotency-Key is still running: retry after Retry-After.', 'Error', { 'Retry-After': retryAfter }),
        IdempotencyKeyReused: errorResponse('The Idempotency-Key was used for another request (another method, path or body): use a new key for a new request.'),
        PayloadTooLarge: errorResponse('The body is larger than the API accepts.'),
        TooManyRequests: errorResponse("Over the key's rate limit (per client address without a key): `reason: rate_limited`.", 'AuthError', {
          'Retry-After': retryAfter,
          RateLimit: { description: 'Remaining quota (IETF RateLimit header fields, draft 8).', schema: { type: 'string' } },
          'RateLimit-Policy': { description: 'The limit and its window.', schema: { type: 'string' } },
        }),
        AuthUnavailable: errorResponse('The key cannot be checked right now (Postgres does not answer): `reason: auth_unavailable`.', 'AuthError', { 'Retry-After': retryAfter }),
      },
    },
  };
}
