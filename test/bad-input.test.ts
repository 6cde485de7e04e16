/**
 * The bad-input table (docs/bad-input.md), case by case against the real API over HTTP: each hostile or malformed input
 * is a 400 whose message names the field, nothing is created (row counts of every table a request could write) and
 * nothing changes (the draft delivery the edits aim at reads the same before and after). No case may produce a 5xx.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { startHarness, type Harness } from './support/harness';
import { apiCall, request, type ApiResult } from './support/http';

interface Case {
  id: string;
  what: string;
  /** `json`: a JSON body; `csv`: a text/csv body; `raw`: a body sent as it is (application/json). */
  send: (ctx: Ctx) => Promise<ApiResult>;
  /** The field the answer must name: an issue's path, or (for answers without issues) a word of the error. */
  field: string;
  /** What the message must say. */
  message: RegExp;
  status?: number;
}

interface Ctx {
  api: string;
  draftId: string;
  listId: string;
}

const u = randomUUID().slice(0, 8);
const DOMAIN = `bad-input-${u}.example`;
const good = (over: Record<string, unknown> = {}) => ({
  name: `bad input ${u}`,
  from: { address: `news@${DOMAIN}`, name: 'News' },
  subject: 'Hello {{firstName}}',
  text: 'Hello {{firstName}}',
  recipients: [{ email: `a@${DOMAIN}`, fields: { firstName: 'A' } }],
  ...over,
});
const post = (body: unknown) => (c: Ctx) => apiCall(c.api, 'POST', '/api/deliveries', body);
const past = (ms: number) => new Date(Date.now() - ms).toISOString();
const recurring = (templateOver: Record<string, unknown>, scheduleOver: Record<string, unknown> = {}) => (c: Ctx) =>
  apiCall(c.api, 'POST', '/api/recurring-deliveries', {
    template: { ...good({ recipients: undefined, listId: c.listId }), recipients: undefined, ...templateOver },
    schedule: { intervalSeconds: 86_400, ...scheduleOver },
    paused: true,
  });
const preview = (body: unknown) => (c: Ctx) => apiCall(c.api, 'POST', '/api/deliveries/preview', body);
const csv = (query: string, body: string) => (c: Ctx) => request(c.api, 'POST', `/api/lists?${query}`, { body, contentType: 'text/csv' });

/** A rule that is valid but for `over` (PUT /api/<kind>-rules/:id). */
const putRule = (kind: 'qualification' | 'inbound', id: string, over: Record<string, unknown>) => (c: Ctx) =>
  apiCall(
    c.api,
    'PUT',
    `/api/${kind}-rules/${id}`,
    kind === 'qualification'
      ? { priority: 999, provider: 'test', code: '5xx', enhancedCode: null, pattern: 'no such user', type: 'hard', reason: 'user_unknown', retryClass: 'none', sample: '550 5.1.1 no such user', note: 'bad input', ...over }
      : { priority: 999, source: 'test', kind: 'bounce', from: null, subject: null, body: 'no such user', type: 'hard', reason: 'user_unknown', retryClass: 'none', sample: { body: 'x: no such user', subject: 'Undelivered' }, note: 'bad input', ...over },
  );
const re2Refusal = (construct: string) => new RegExp(`uses ${construct} .*which the linear-time regex engine \\(RE2\\) does not support`);

const NUL = '\u0000';
const headerBreak = /must not contain a line break \(CR or LF\)/;
const nul = /must not contain a NUL character/;

export const CASES: Case[] = [
  // Header fields: CR, LF, NUL, control characters.
  { id: 'B01', what: 'subject with CRLF and an injected header', send: post(good({ subject: 'Hi\r\nBcc: victim@example.com' })), field: 'subject', message: headerBreak },
  { id: 'B02', what: 'subject with a bare LF', send: post(good({ subject: 'Hi\nthere' })), field: 'subject', message: headerBreak },
  { id: 'B03', what: 'subject with a bare CR', send: post(good({ subject: 'Hi\rthere' })), field: 'subject', message: headerBreak },
  { id: 'B04', what: 'subject with NUL (was a 500)', send: post(good({ subject: `Hi${NUL}there` })), field: 'subject', message: nul },
  { id: 'B05', what: 'subject with a BEL control character', send: post(good({ subject: 'Hi\u0007' })), field: 'subject', message: /control characters/ },
  { id: 'B06', what: 'From display name with CRLF', send: post(good({ from: { address: `news@${DOMAIN}`, name: 'News\r\nX-Evil: 1' } })), field: 'from.name', message: headerBreak },
  { id: 'B07', what: 'From display name with NUL', send: post(good({ from: { address: `news@${DOMAIN}`, name: `News${NUL}` } })), field: 'from.name', message: nul },
  { id: 'B08', what: 'From given as a string with CRLF', send: post(good({ from: `news@${DOMAIN}\r\nBcc: victim@example.com` })), field: 'from', message: /email address/ },
  { id: 'B09', what: 'From address with LF', send: post(good({ from: { address: `news@${DOMAIN}\nBcc: v@example.com` } })), field: 'from.address', message: /email address/ },
  { id: 'B10', what: 'Reply-To with CRLF', send: post(good({ replyTo: `r@${DOMAIN}\r\nBcc: victim@example.com` })), field: 'replyTo', message: /email/i },
  { id: 'B11', what: 'Reply-To with NUL', send: post(good({ replyTo: `r${NUL}@${DOMAIN}` })), field: 'replyTo', message: nul },
  // NUL anywhere else in the JSON body.
  { id: 'B12', what: 'name with NUL', send: post(good({ name: `x${NUL}` })), field: 'name', message: nul },
  { id: 'B13', what: 'html with NUL', send: post(good({ html: `<p>${NUL}</p>` })), field: 'html', message: nul },
  { id: 'B14', what: 'text with NUL', send: post(good({ text: `a${NUL}b` })), field: 'text', message: nul },
  { id: 'B15', what: 'recipient email with NUL', send: post(good({ recipients: [{ email: `a${NUL}@${DOMAIN}` }] })), field: 'recipients.0.email', message: nul },
  { id: 'B16', what: 'recipient field value with NUL', send: post(good({ recipients: [{ email: `a@${DOMAIN}`, fields: { firstName: `A${NUL}` } }] })), field: 'recipients.0.fields.firstName', message: nul },
  { id: 'B17', what: 'recipient field name with NUL', send: post(good({ recipients: [{ email: `a@${DOMAIN}`, fields: { [`first${NUL}`]: 'A' } }] })), field: 'recipients.0.fields.first\\u0000', message: nul },
  { id: 'B18', what: 'NUL deep in waves', send: post(good({ waves: { mode: `single${NUL}` } })), field: 'waves.mode', message: nul },
  // Contact date.
  { id: 'B19', what: 'contact date an hour in the past', send: post(good({ contactDate: past(3_600_000) })), field: 'contactDate', message: /contactDate is in the past/ },
  { id: 'B20', what: 'contact date in 1970', send: post(good({ contactDate: '1970-01-01T00:00:00Z' })), field: 'contactDate', message: /contactDate is in the past/ },
  { id: 'B21', what: 'contact date not a date', send: post(good({ contactDate: 'tomorrow' })), field: 'contactDate', message: /datetime/i },
  { id: 'B22', what: 'contact date without an offset', send: post(good({ contactDate: '2099-01-01T09:00:00' })), field: 'contactDate', message: /datetime/i },
  // Shape.
  { id: 'B23', what: 'no subject', send: post(good({ subject: undefined })), field: 'subject', message: /expected string|subject/i },
  { id: 'B24', what: 'subject longer than a header line (999)', send: post(good({ subject: 'x'.repeat(999) })), field: 'subject', message: /998/ },
  { id: 'B25', what: 'empty recipients', send: post(good({ recipients: [] })), field: 'recipients', message: /at least one recipient/ },
  { id: 'B26', what: 'recipients and listId both', send: post(good({ listId: randomUUID() })), field: 'recipients', message: /exactly one of recipients/ },
  { id: 'B27', what: 'unknown field (bcc)', send: post(good({ bcc: 'victim@example.com' })), field: '', message: /bcc/ },
  { id: 'B28', what: 'validity not a duration', send: post(good({ validity: 'forever' })), field: 'validity', message: /validity must be/ },
  { id: 'B29', what: 'unknown time zone', send: post(good({ localSendTime: { time: '09:00', defaultTimeZone: 'Mars/Olympus' } })), field: 'localSendTime.defaultTimeZone', message: /IANA time zone/ },
  { id: 'B30', what: 'size wave with size and percent', send: post(good({ waves: { mode: 'size', size: 10, percent: 5, periodSeconds: 60 } })), field: 'waves', message: /exactly one of size or percent/ },
  {
    id: 'B31',
    what: 'body that is not JSON',
    send: (c) => request(c.api, 'POST', '/api/deliveries', { body: '{"name": "x",', contentType: 'application/json' }),
    field: 'JSON',
    message: /body is not valid JSON/,
  },
  // Query strings and paths.
  { id: 'B32', what: 'NUL in a query parameter (limit)', send: (c) => apiCall(c.api, 'GET', '/api/deliveries?limit=%00'), field: 'limit', message: /query parameter limit must not contain a NUL/ },
  { id: 'B33', what: 'NUL in the status filter', send: (c) => apiCall(c.api, 'GET', `/api/deliveries/${c.draftId}/recipients?status=sent%00`), field: 'status', message: /NUL/ },
  { id: 'B34', what: 'before not a date', send: (c) => apiCall(c.api, 'GET', '/api/deliveries?before=yesterday'), field: 'before', message: /datetime/i },
  { id: 'B35', what: 'page limit 0', send: (c) => apiCall(c.api, 'GET', `/api/deliveries/${c.draftId}/recipients?limit=0`), field: 'limit', message: />=1|too small/i },
  { id: 'B36', what: 'NUL in the path', send: (c) => apiCall(c.api, 'GET', '/api/deliveries/%00'), field: 'path', message: /path must not contain a NUL/ },
  { id: 'B37', what: 'delivery id not a uuid', send: (c) => apiCall(c.api, 'GET', '/api/deliveries/1%20OR%201=1'), field: '', message: /not a delivery id/ },
  // Edits of an existing draft: refused, and the draft is unchanged.
  { id: 'B38', what: 'edit: subject with CRLF', send: (c) => apiCall(c.api, 'PATCH', `/api/deliveries/${c.draftId}`, { subject: 'New\r\nBcc: v@example.com' }), field: 'subject', message: headerBreak },
  { id: 'B39', what: 'edit: subject with NUL', send: (c) => apiCall(c.api, 'PATCH', `/api/deliveries/${c.draftId}`, { subject: `New${NUL}` }), field: 'subject', message: nul },
  { id: 'B40', what: 'edit: html with NUL', send: (c) => apiCall(c.api, 'PATCH', `/api/deliveries/${c.draftId}`, { html: `<b>${NUL}</b>` }), field: 'html', message: nul },
  { id: 'B41', what: 'reschedule into the past', send: (c) => apiCall(c.api, 'PUT', `/api/deliveries/${c.draftId}/contact-date`, { contactDate: past(86_400_000) }), field: 'contactDate', message: /contactDate is in the past/ },
  { id: 'B42', what: 'reschedule with NUL', send: (c) => apiCall(c.api, 'PUT', `/api/deliveries/${c.draftId}/contact-date`, { contactDate: `2099-01-01T00:00:00Z${NUL}` }), field: 'contactDate', message: nul },
  { id: 'B43', what: 'confirm with NUL in confirmedBy', send: (c) => apiCall(c.api, 'POST', `/api/deliveries/${c.draftId}/confirm`, { confirmedBy: `ops${NUL}` }), field: 'confirmedBy', message: nul },
  { id: 'B44', what: 'cancel with NUL in reason', send: (c) => apiCall(c.api, 'POST', `/api/deliveries/${c.draftId}/cancel`, { reason: `why${NUL}` }), field: 'reason', message: nul },
  { id: 'B45', what: 'pause with NUL in reason', send: (c) => apiCall(c.api, 'POST', `/api/deliveries/${c.draftId}/pause`, { reason: `why${NUL}` }), field: 'reason', message: nul },
  { id: 'B46', what: 'proof address with CRLF', send: (c) => apiCall(c.api, 'POST', `/api/deliveries/${c.draftId}/proofs`, { addresses: [`p@${DOMAIN}\r\nBcc: v@example.com`] }), field: 'addresses.0', message: /email/i },
  // CSV uploads.
  { id: 'B47', what: 'CSV with NUL in a member field', send: csv(`name=nul-${u}`, `email,firstName\na@${DOMAIN},A${NUL}\n`), field: 'NUL', message: /the CSV contains a NUL character \(line 2\)/ },
  { id: 'B48', what: 'CSV with NUL in the header row', send: csv(`name=nul-${u}`, `email,first${NUL}Name\na@${DOMAIN},A\n`), field: 'NUL', message: /NUL character \(line 1\)/ },
  { id: 'B49', what: 'list name with NUL', send: csv('name=a%00b', `email\na@${DOMAIN}\n`), field: 'name', message: /query parameter name must not contain a NUL/ },
  { id: 'B50', what: 'CSV without an address column', send: csv(`name=noaddr-${u}`, 'firstName\nA\n'), field: 'address column', message: /no address column/ },
  // Recurring deliveries: the template is a delivery.
  { id: 'B51', what: 'recurring template subject with CRLF', send: recurring({ subject: 'Weekly\r\nBcc: v@example.com' }), field: 'template.subject', message: headerBreak },
  { id: 'B52', what: 'recurring template From name with NUL', send: recurring({ from: { address: `news@${DOMAIN}`, name: `N${NUL}` } }), field: 'template.from.name', message: nul },
  { id: 'B53', what: 'recurring cron with NUL', send: recurring({}, { intervalSeconds: undefined, cron: `0 9 * * MON${NUL}` }), field: 'schedule.cron', message: nul },
  // Other resources share the guard.
  { id: 'B54', what: 'DKIM key domain with NUL', send: (c) => apiCall(c.api, 'POST', '/api/dkim/keys', { domain: `x${NUL}.example`, selector: 's9' }), field: 'domain', message: nul },
  { id: 'B55', what: 'unsubscribe path with NUL', send: (c) => apiCall(c.api, 'POST', `/u/${c.draftId}/1/%00`), field: 'path', message: /path must not contain a NUL/ },
  // Rule patterns run on RE2 (linear time): what RE2 cannot run is refused, naming the rule, the field and the construct.
  { id: 'B56', what: 'qualification rule pattern with a look-ahead', send: putRule('qualification', `la-${u}`, { pattern: '(?=no such)no such user' }), field: 'pattern', message: re2Refusal('a look-ahead') },
  {
    id: 'B57',
    what: 'look-behind written over a shipped rule (generic-mailbox-full), which stays as it was',
    send: async (c) => {
      const current = await apiCall(c.api, 'GET', '/api/qualification-rules/generic-mailbox-full');
      expect(current.status).toBe(200);
      return apiCall(c.api, 'PUT', '/api/qualification-rules/generic-mailbox-full', { ...current.json, pattern: '(?<!sending )\\bquota exceeded\\b' });
    },
    field: 'pattern',
    message: re2Refusal('a look-behind'),
  },
  { id: 'B58', what: 'qualification rule pattern with a backreference', send: putRule('qualification', `br-${u}`, { pattern: '(no) such user \\1' }), field: 'pattern', message: re2Refusal('a backreference') },
  {
    id: 'B59',
    what: 'qualification rule domain with a possessive quantifier',
    send: putRule('qualification', `pq-${u}`, { domain: '(example)++\\.org$', sampleDomain: 'example.org' }),
    field: 'domain',
    message: re2Refusal('a possessive quantifier'),
  },
  { id: 'B60', what: 'qualification rule pattern compiling to too large a program', send: putRule('qualification', `big-${u}`, { pattern: '(?:no|such){500}' }), field: 'pattern', message: /RE2 instructions, more than the 3000 allowed/ },
  { id: 'B61', what: 'inbound rule body with a look-behind', send: putRule('inbound', `ilb-${u}`, { body: '(?<!not )no such user' }), field: 'body', message: re2Refusal('a look-behind') },
  { id: 'B62', what: 'inbound rule subject with an atomic group', send: putRule('inbound', `iag-${u}`, { subject: '(?>Undelivered)' }), field: 'subject', message: re2Refusal('an atomic group') },
  {
    id: 'B63',
    what: '"try a reply" with a reply over 100,000 characters',
    send: (c) => apiCall(c.api, 'POST', '/api/qualification-rules/test', { reply: `550 ${'a'.repeat(100_000)}` }),
    field: 'reply',
    message: /<=100000 characters/,
  },
  // Filters of the delivery log (its pages and its CSV export) and of the deliveries list.
  { id: 'B64', what: 'log: address search longer than an address', send: (c) => apiCall(c.api, 'GET', `/api/deliveries/${c.draftId}/recipients?address=${'a'.repeat(321)}`), field: 'address', message: /address is longer than 320 characters/ },
  { id: 'B65', what: 'log: unknown failure type', send: (c) => apiCall(c.api, 'GET', `/api/deliveries/${c.draftId}/recipients?failureType=fatal`), field: 'failureType', message: /expected one of "hard"\|"soft"\|"ignored"/ },
  { id: 'B66', what: 'log: unknown failure reason', send: (c) => apiCall(c.api, 'GET', `/api/deliveries/${c.draftId}/recipients?failureReason=because`), field: 'failureReason', message: /expected one of "user_unknown"/ },
  { id: 'B67', what: 'log: domain that is not a domain name', send: (c) => apiCall(c.api, 'GET', `/api/deliveries/${c.draftId}/recipients?domain=a%20b`), field: 'domain', message: /domain is not a domain name/ },
  { id: 'B68', what: 'CSV export: unknown status', send: (c) => apiCall(c.api, 'GET', `/api/deliveries/${c.draftId}/recipients.csv?status=lost`), field: 'status', message: /expected one of "pending"/ },
  { id: 'B69', what: 'deliveries: unknown state among several', send: (c) => apiCall(c.api, 'GET', '/api/deliveries?state=sending,lost'), field: 'state', message: /state "lost" is not a delivery state/ },
  { id: 'B70', what: 'deliveries: createdFrom not a date', send: (c) => apiCall(c.api, 'GET', '/api/deliveries?createdFrom=yesterday'), field: 'createdFrom', message: /createdFrom must be an ISO date/ },
  { id: 'B71', what: 'deliveries: createdTo before createdFrom', send: (c) => apiCall(c.api, 'GET', '/api/deliveries?createdFrom=2031-03-02&createdTo=2031-03-01'), field: 'createdTo', message: /createdTo must come after createdFrom/ },
  { id: 'B72', what: 'deliveries: beforeId without before', send: (c) => apiCall(c.api, 'GET', `/api/deliveries?beforeId=${c.draftId}`), field: 'beforeId', message: /beforeId goes with before/ },
  // The message preview (the dashboard's New delivery form): a template error names its part; fields are flat values.
  { id: 'B73', what: 'preview: subject template that does not compile', send: preview({ subject: 'Hello {{firstName' }), field: 'subject', message: /the subject template does not compile or render: Parse error on line 1/ },
  { id: 'B74', what: 'preview: html calling a helper that does not exist', send: preview({ subject: 'Hi', html: '<p>{{shout firstName}}</p>' }), field: 'html', message: /the html template does not compile or render: Missing helper: "shout"/ },
  { id: 'B75', what: 'preview: subject with CRLF', send: preview({ subject: 'Hi\r\nBcc: victim@example.com' }), field: 'subject', message: headerBreak },
  { id: 'B76', what: 'preview: a field whose value is an object', send: preview({ subject: 'Hi {{plan.name}}', fields: { plan: { name: 'gold' } } }), field: 'fields.plan', message: /Invalid input/ },
  { id: 'B77', what: 'preview: a field value with NUL', send: preview({ subject: 'Hi {{firstName}}', fields: { firstName: `A${NUL}` } }), field: 'fields.firstName', message: nul },
  { id: 'B78', what: 'preview: unknown field (listId)', send: preview({ subject: 'Hi', listId: randomUUID() }), field: '', message: /listId/ },
  { id: 'B79', what: 'timeline: delivery id not a uuid', send: (c) => apiCall(c.api, 'GET', '/api/deliveries/42/timeline'), field: '', message: /not a delivery id/ },
  { id: 'B80', what: 'timeline: fewer than 2 buckets', send: (c) => apiCall(c.api, 'GET', `/api/deliveries/${c.draftId}/timeline?buckets=1`), field: 'buckets', message: /expected number to be >=2/ },
  { id: 'B81', what: 'timeline: buckets not a number', send: (c) => apiCall(c.api, 'GET', `/api/deliveries/${c.draftId}/timeline?buckets=many`), field: 'buckets', message: /expected number, received NaN/ },
  { id: 'B82', what: 'timeline: more than 500 buckets', send: (c) => apiCall(c.api, 'GET', `/api/deliveries/${c.draftId}/timeline?buckets=100000`), field: 'buckets', message: /expected number to be <=500/ },
  { id: 'B83', what: 'domains: limit 0', send: (c) => apiCall(c.api, 'GET', `/api/deliveries/${c.draftId}/domains?limit=0`), field: 'limit', message: /expected number to be >=1/ },
  { id: 'B84', what: 'domains: limit not a whole number', send: (c) => apiCall(c.api, 'GET', `/api/deliveries/${c.draftId}/domains?limit=2.5`), field: 'limit', message: /expected int/ },
  { id: 'B85', what: 'MX sites: delivery id not a uuid', send: (c) => apiCall(c.api, 'GET', '/api/deliveries/abc/mx-sites'), field: '', message: /not a delivery id/ },
  { id: 'B86', what: 'live recipient: recipient id not a number', send: (c) => apiCall(c.api, 'GET', `/api/deliveries/${c.draftId}/recipients/first/live`), field: 'rid', message: /expected number, received NaN/ },
  { id: 'B87', what: 'live recipient: delivery id not a uuid', send: (c) => apiCall(c.api, 'GET', '/api/deliveries/x%27/recipients/1/live'), field: '', message: /not a delivery id/ },
];

let h: Harness;
let ctx: Ctx;
const apiErrors: string[] = [];
const originalError = console.error;

const TABLES = [
  'deliveries',
  'delivery_recipients',
  'recipient_lists',
  'recipient_list_members',
  'delivery_templates',
  'dkim_keys',
  'delivery_proofs',
  'address_denylist',
  'smtp_qualification_rules',
  'inbound_rules',
];

async function counts(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of TABLES) out[t] = (await h.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${t}`)).rows[0].n;
  // Every write to a rule table bumps its revision: an unchanged revision means no rule was created, edited or deleted.
  for (const r of (await h.pool.query<{ name: string; revision: string }>('SELECT name, revision FROM rule_set_versions')).rows) out[`revision of ${r.name}`] = Number(r.revision);
  return out;
}

/** What an edit could change on the draft: its row and its workflow's view. */
async function draftSnapshot() {
  const r = await apiCall(h.apiUrl, 'GET', `/api/deliveries/${ctx.draftId}`);
  const { kpisAt: _at, ...rest } = r.json;
  return rest;
}

beforeAll(async () => {
  console.error = (...args: unknown[]) => {
    if (args.some((a) => typeof a === 'string' && a.includes('"api error"'))) apiErrors.push(args.join(' '));
    originalError(...args);
  };
  h = await startHarness();
  const draft = await apiCall(h.apiUrl, 'POST', '/api/deliveries', good({ name: `draft ${u}`, contactDate: new Date(Date.now() + 7 * 86_400_000).toISOString() }));
  expect(draft.status, JSON.stringify(draft.json)).toBe(201);
  const list = await request(h.apiUrl, 'POST', `/api/lists?name=bad-input-${u}`, { body: `email,firstName\nl@${DOMAIN},L\n`, contentType: 'text/csv' });
  expect(list.status).toBe(201);
  ctx = { api: h.apiUrl, draftId: draft.json.id, listId: list.json.id };
  await h.waitForPhase(ctx.draftId, ['awaiting_confirmation'], 60_000);
});

afterAll(async () => {
  console.error = originalError;
  await h?.stop();
});

describe('bad-input table', () => {
  it('has at least 40 cases, with unique IDs, every one listed in docs/bad-input.md', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40);
    expect(new Set(CASES.map((c) => c.id)).size).toBe(CASES.length);
    const doc = fs.readFileSync(path.join(__dirname, '..', 'docs', 'bad-input.md'), 'utf8');
    const missing = CASES.filter((c) => !doc.includes(`| ${c.id} |`)).map((c) => c.id);
    expect(missing, 'cases missing from docs/bad-input.md').toEqual([]);
  });

  it.each(CASES.map((c) => [`${c.id} ${c.what}`, c] as const))('%s', async (_label, c) => {
    const before = await counts();
    const draftBefore = await draftSnapshot();
    const res = await c.send(ctx);
    expect(res.status, JSON.stringify(res.json)).toBe(c.status ?? 400);
    const issues: { path: string; message: string }[] = res.json?.issues ?? [];
    if (issues.length) {
      const issue = issues.find((i) => i.path === c.field);
      expect(issue, `an issue on "${c.field}" in ${JSON.stringify(res.json)}`).toBeTruthy();
      expect(`${issue!.message} ${res.json.error}`).toMatch(c.message);
    } else {
      expect(String(res.json?.error)).toMatch(c.message);
      expect(String(res.json?.error)).toContain(c.field);
    }
    expect(await counts(), 'nothing created').toEqual(before);
    expect(await draftSnapshot(), 'the draft delivery unchanged').toEqual(draftBefore);
  });

  it('no case produced a 5xx or an "api error" log line', () => {
    expect(apiErrors).toEqual([]);
  });

  it('the same requests without the hostile part are accepted (the cases fail for their own reason)', async () => {
    const ok = await apiCall(h.apiUrl, 'POST', '/api/deliveries', good({ subject: 'Hi there', from: { address: `news@${DOMAIN}`, name: 'News\tDesk' }, contactDate: new Date(Date.now() + 3_600_000).toISOString() }));
    expect(ok.status, JSON.stringify(ok.json)).toBe(201);
    const edit = await apiCall(h.apiUrl, 'PATCH', `/api/deliveries/${ctx.draftId}`, { subject: 'New subject' });
    expect(edit.status, JSON.stringify(edit.json)).toBe(202);
    const list = await request(h.apiUrl, 'POST', `/api/lists?name=ok-${u}`, { body: `email,firstName\nok@${DOMAIN},A\n`, contentType: 'text/csv' });
    expect(list.status).toBe(201);
  });
});

/**
 * Hostile but accepted (docs/bad-input.md, "Accepted, bounded"): a catastrophic-backtracking pattern is a valid RE2 rule,
 * and RE2 evaluates it in linear time, so the API takes it and "try a reply" stays fast on a 100,000-character reply.
 * With JavaScript's RegExp, `^(a|aa)+$` took 3.4 s on 43 characters (issue 15).
 */
describe('catastrophic-backtracking rule patterns, accepted and evaluated in linear time', () => {
  const HOSTILE = [
    { id: 'H01', pattern: '^(a|aa)+$', sample: '550 aaaa', miss: `550 ${'a'.repeat(99_995)}!`, hit: `550 ${'a'.repeat(99_996)}` },
    { id: 'H02', pattern: '(x+x+)+y', sample: '550 xxy', miss: `550 y${'x'.repeat(99_995)}`, hit: `550 ${'x'.repeat(99_995)}y` },
  ];

  it('lists the cases in docs/bad-input.md', () => {
    const doc = fs.readFileSync(path.join(__dirname, '..', 'docs', 'bad-input.md'), 'utf8');
    for (const c of HOSTILE) expect(doc, c.id).toContain(`| ${c.id} |`);
  });

  it.each(HOSTILE.map((c) => [`${c.id} ${c.pattern}`, c] as const))('%s', async (_label, c) => {
    const ruleId = `hostile-${c.id.toLowerCase()}-${u}`;
    const created = await apiCall(h.apiUrl, 'PUT', `/api/qualification-rules/${ruleId}`, {
      priority: 999,
      provider: 'test',
      code: '5xx',
      enhancedCode: null,
      pattern: c.pattern,
      type: 'soft',
      reason: 'refused',
      retryClass: 'none',
      sample: c.sample,
      note: 'hostile pattern, accepted: RE2 runs it in linear time',
    });
    try {
      expect(created.status, JSON.stringify(created.json)).toBe(201);
      // "Try a reply" evaluates the whole stored table, this rule included, on 100,000 characters and reports how long
      // qualifying took: once to warm the compiled patterns up, then timed. The best of three keeps one scheduling
      // hiccup of a loaded machine out.
      for (const [reply, expected] of [
        [c.miss, 'default'],
        [c.hit, ruleId],
      ] as const) {
        expect(reply.length).toBe(100_000);
        const wall: number[] = [];
        const evaluation: number[] = [];
        for (let i = 0; i < 4; i++) {
          const start = performance.now();
          const res = await apiCall(h.apiUrl, 'POST', '/api/qualification-rules/test', { reply });
          const ms = performance.now() - start;
          expect(res.status, JSON.stringify(res.json).slice(0, 300)).toBe(200);
          expect(res.json.ruleId).toBe(expected);
          expect(res.json.reply.text.length).toBeGreaterThan(99_990);
          expect(res.json.rulesEvaluated).toBeGreaterThan(100);
          // The whole round trip (parse, load and validate the stored table, qualify, answer) on a shared machine.
          expect(ms, 'one call, wall clock').toBeLessThan(2_000);
          if (i > 0) {
            wall.push(ms);
            evaluation.push(res.json.evaluationMs);
          }
        }
        const list = (xs: number[]) => xs.map((t) => t.toFixed(1)).join(', ');
        console.log(`${c.id} ${c.pattern}: "try a reply" on 100,000 characters (${expected}): qualifying ${list(evaluation)} ms, round trip ${list(wall)} ms`);
        // Qualifying the 100,000-character reply against the whole table (what a worker does with it): best of three
        // measured 3-11 ms on the 2-core test machine at load average 9-11, so 100 ms leaves a margin of 9x or more.
        expect(Math.min(...evaluation), `best of ${list(evaluation)} ms`).toBeLessThan(100);
      }
    } finally {
      await apiCall(h.apiUrl, 'DELETE', `/api/qualification-rules/${ruleId}`);
    }
  });
});
