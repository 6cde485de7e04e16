/**
 * Filters and keyset paging of the delivery log (GET /api/deliveries/:id/recipients), its streamed CSV export
 * (GET /api/deliveries/:id/recipients.csv) and the deliveries list (GET /api/deliveries), against the real API and
 * Postgres: every filter returns exactly the rows an independent SQL query selects, following `next` walks each row
 * once, the CSV is the JSON pages row by row, a client that goes away stops the reading, a `read` key may export and
 * no key may not. No worker runs: the deliveries stay as their rows are set here.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness';
import { createPool } from '../db/pool';
import { DeliveryLog } from '../db/delivery-log';
import { namedStatementCount } from '../db/prepared-statements';
import { apiCall, authHeaders } from './support/http';

let h: Harness;
const s = randomUUID().slice(0, 8);
const ALPHA = `alpha-${s}.example`;
const BETA = `beta-${s}.example`;
const GAMMA = `gamma-${s}.example`;
/** An internationalised domain: stored as punycode, searchable as written. */
const IDN = `exämple-${s}.com`;
let deliveryId: string;
let idnAscii: string;

const api = (method: string, path: string, body?: unknown) => apiCall(h.apiUrl, method, path, body);

/** The addresses of the delivery, in recipient order (ids 1..n). */
const ADDRESSES = [
  ...Array.from({ length: 14 }, (_, i) => (i % 3 === 0 ? `Bob.Smith${i}@${ALPHA.toUpperCase()}` : `bob.smith${i}@${ALPHA}`)),
  ...Array.from({ length: 9 }, (_, i) => `carol${i}@${BETA}`),
  // LIKE's wildcards are searched as themselves: "a_b" does not find "axb", "100%" does not find "1000".
  `a_b@${GAMMA}`,
  `axb@${GAMMA}`,
  `100%real@${GAMMA}`,
  `1000real@${GAMMA}`,
  // Formula starters (a spreadsheet would run them): the CSV must defuse them.
  `=cmd@${GAMMA}`,
  `+plus@${GAMMA}`,
  `-minus@${GAMMA}`,
  `idn1@${IDN}`,
  `idn2@${IDN}`,
  `not-an-address-${s}`,
  ...Array.from({ length: 6 }, (_, i) => `Dave${i}@${ALPHA}`),
];

async function sqlIds(where: string, params: unknown[] = []): Promise<number[]> {
  const r = await h.pool.query<{ id: number }>(
    `SELECT recipient_id AS id FROM delivery_recipients WHERE delivery_id = $1 AND (${where}) ORDER BY recipient_id`,
    [deliveryId, ...params],
  );
  return r.rows.map((x) => x.id);
}

interface Walk {
  rows: Record<string, unknown>[];
  pages: number;
  links: string[];
}

/** Follows `next` from `first` to the end, gathering each page's `key` array; at most `maxPages` pages. */
async function walkPages(first: string, key: 'recipients' | 'deliveries', maxPages: number): Promise<Walk> {
  const rows: Record<string, unknown>[] = [];
  const links: string[] = [];
  let next: string | null = first;
  let pages = 0;
  while (next) {
    const res = await api('GET', next);
    expect(res.status, `${next}: ${JSON.stringify(res.json)}`).toBe(200);
    rows.push(...res.json[key]);
    pages++;
    next = res.json.next;
    if (next) links.push(next);
    expect(pages, 'pages').toBeLessThan(maxPages);
  }
  return { rows, pages, links };
}

/** The log's pages from `first` to the end. */
const walk = (first: string) => walkPages(first, 'recipients', 200);

async function csvOf(query: string, apiKey?: string | null) {
  const url = `${h.apiUrl}/api/deliveries/${deliveryId}/recipients.csv${query ? `?${query}` : ''}`;
  const headers = apiKey === null ? {} : apiKey ? { authorization: `Bearer ${apiKey}` } : authHeaders(url);
  const res = await fetch(url, { headers });
  return { res, text: await res.text() };
}

beforeAll(async () => {
  h = await startHarness({ worker: false });
  const created = await api('POST', '/api/deliveries', {
    name: `log filters ${s}`,
    from: { address: `news@${ALPHA}` },
    subject: 'Filters',
    text: 'Hello',
    recipients: ADDRESSES.map((email) => ({ email })),
  });
  expect(created.status, JSON.stringify(created.json)).toBe(201);
  deliveryId = created.json.id;
  idnAscii = (await h.pool.query<{ domain: string }>('SELECT domain FROM delivery_recipients WHERE delivery_id = $1 AND address LIKE $2', [deliveryId, 'idn1@%'])).rows[0].domain;
  // A finished delivery's log, set by hand: sent, failed hard and soft for several reasons, a soft failure still
  // waiting for its retry, an SMTP reply that needs CSV quoting, dates to the microsecond.
  await h.pool.query(
    `UPDATE delivery_recipients SET
       status = CASE WHEN status = 'excluded' THEN 'excluded' WHEN recipient_id % 5 = 0 THEN 'failed' WHEN recipient_id % 7 = 0 THEN 'taken_into_account' ELSE 'sent' END,
       failure_type = CASE WHEN status = 'excluded' THEN NULL WHEN recipient_id % 10 = 0 THEN 'hard' WHEN recipient_id % 5 = 0 OR recipient_id % 7 = 0 THEN 'soft' END,
       failure_reason = CASE WHEN status = 'excluded' THEN NULL WHEN recipient_id % 10 = 0 THEN 'user_unknown' WHEN recipient_id % 15 = 0 THEN 'refused'
         WHEN recipient_id % 5 = 0 THEN 'mailbox_full' WHEN recipient_id % 7 = 0 THEN 'unreachable' END,
       attempts = CASE WHEN status = 'excluded' THEN 0 ELSE 1 + recipient_id % 3 END,
       last_smtp_code = CASE WHEN status = 'excluded' THEN NULL WHEN recipient_id % 5 = 0 THEN 550 ELSE 250 END,
       last_enhanced_code = CASE WHEN status = 'excluded' THEN NULL WHEN recipient_id % 5 = 0 THEN '5.1.1' ELSE '2.0.0' END,
       last_reply = CASE WHEN status = 'excluded' THEN NULL WHEN recipient_id % 4 = 0 THEN E'said "no", then\\r\\nagain' WHEN recipient_id % 6 = 0 THEN '-ERR formula-looking reply' ELSE 'ok' END,
       last_mx_host = CASE WHEN status = 'excluded' THEN NULL ELSE 'mx.' || domain END,
       handed_over_at = CASE WHEN status = 'excluded' THEN NULL ELSE '2030-01-02 03:04:05.123456+00'::timestamptz + recipient_id * interval '1 second' END,
       final_at = CASE WHEN status = 'excluded' OR recipient_id % 7 = 0 THEN NULL ELSE '2030-01-02 04:00:00.999999+00'::timestamptz END,
       updated_at = '2030-01-02 05:00:00.000001+00'::timestamptz + recipient_id * interval '1 millisecond'
     WHERE delivery_id = $1`,
    [deliveryId],
  );
}, 180_000);

afterAll(async () => {
  await h?.stop();
});

describe('delivery log filters', () => {
  const CASES: [string, string, string, unknown[]][] = [
    ['no filter', '', 'true', []],
    ['status', 'status=failed', "status = 'failed'", []],
    ['address prefix, any case', 'address=BOB.SMITH1', "starts_with(lower(address), 'bob.smith1')", []],
    ['address prefix across the @', `address=${encodeURIComponent(`dave3@${ALPHA.slice(0, 8)}`)}`, 'starts_with(lower(address), $2)', [`dave3@${ALPHA.slice(0, 8)}`]],
    ['address with _ taken literally', 'address=a_b', "starts_with(address, 'a_b')", []],
    ['address with % taken literally', `address=${encodeURIComponent('100%')}`, "starts_with(address, '100%')", []],
    ['domain exactly, any case', `domain=${ALPHA.toUpperCase()}`, 'domain = $2', [ALPHA]],
    ['domain in Unicode finds the punycode rows', `domain=${encodeURIComponent(IDN.toUpperCase())}`, 'domain = $2', [`__IDN__`]],
    ['domain is not a suffix', `domain=${encodeURIComponent(ALPHA.slice(2))}`, 'false', []],
    ['failure type', 'failureType=soft', "failure_type = 'soft'", []],
    ['failure reason', 'failureReason=mailbox_full', "failure_reason = 'mailbox_full'", []],
    ['every filter together', `status=failed&failureType=hard&failureReason=user_unknown&domain=${ALPHA}&address=bob`, "status = 'failed' AND failure_type = 'hard' AND failure_reason = 'user_unknown' AND domain = $2 AND starts_with(lower(address), 'bob')", [ALPHA]],
    ['status and reason, soft still waiting', 'status=taken_into_account&failureReason=unreachable', "status = 'taken_into_account' AND failure_reason = 'unreachable'", []],
  ];

  it.each(CASES)('%s: the pages hold exactly the rows SQL selects, each once, and next carries the filters', async (_label, query, where, params) => {
    const p = params.map((v) => (v === '__IDN__' ? idnAscii : v));
    const expected = await sqlIds(where, p);
    // Each case selects some rows and leaves others out (but the two that say so): it tests its filter.
    if (where === 'false') expect(expected).toEqual([]);
    else if (where !== 'true') expect(expected.length, 'rows selected').toBeGreaterThan(0);
    if (where !== 'true') expect(expected.length, 'rows left out').toBeLessThan(ADDRESSES.length);
    for (const limit of [1, 4, 1000]) {
      const got = await walk(`/api/deliveries/${deliveryId}/recipients?limit=${limit}${query ? `&${query}` : ''}`);
      expect(got.rows.map((r) => r.recipientId)).toEqual(expected);
      // A full page has a next one: ceil(n / limit) pages, plus an empty one when n is a multiple of the limit.
      expect(got.pages).toBe(Math.floor(expected.length / limit) + 1);
      const given = new URLSearchParams(query);
      for (const link of got.links) {
        const carried = new URL(link, h.apiUrl).searchParams;
        expect(carried.get('limit')).toBe(String(limit));
        for (const k of given.keys()) expect(carried.has(k), `${k} in ${link}`).toBe(true);
      }
    }
  });

  it('a filter that matches nothing is an empty page without next', async () => {
    expect((await api('GET', `/api/deliveries/${deliveryId}/recipients?address=zzz-nobody`)).json).toEqual({ recipients: [], next: null });
  });

  it("the log's reads are prepared once per connection, then only executed, and give the rows an unprepared read gives", async () => {
    // One connection, so that pg_prepared_statements (which lists its own session's) sees what the reads prepared.
    const pool = createPool(h.settings.DATABASE_URL!, 1);
    try {
      const log = new DeliveryLog(pool);
      const pages = [];
      for (let i = 0; i < 3; i++) pages.push(await log.page(deliveryId, { afterRecipientId: 0, limit: 5, status: 'failed' }));
      const details = [await log.recipientDetail(deliveryId, 1), await log.recipientDetail(deliveryId, 2)];
      const r = await pool.query<{ name: string; statement: string; runs: number }>(
        `SELECT name, statement, (generic_plans + custom_plans)::int AS runs FROM pg_prepared_statements WHERE statement LIKE '%delivery_recipients%' ORDER BY runs DESC`,
      );
      expect(r.rows.map((x) => x.runs)).toEqual([3, 2]);
      for (const x of r.rows) expect(x.name).toMatch(/^ede_[A-Za-z0-9_-]{22}$/);
      // The same rows as the statements run unnamed (the text of each, read back from the server).
      const unprepared = await pool.query({ text: r.rows[0].statement, values: [deliveryId, 0, 5, 'failed'] });
      expect(pages[2].map((x) => x.recipientId)).toEqual(unprepared.rows.map((x) => x.recipientId));
      expect(pages[0]).toEqual(pages[2]);
      expect(details.map((d) => d?.recipient.recipientId)).toEqual([1, 2]);
      // Named texts are a bounded set (filter combinations), however many reads ran in this file.
      expect(namedStatementCount()).toBeLessThan(100);
    } finally {
      await pool.end();
    }
  });
});

describe('CSV export', () => {
  const HEADER = ['recipientId', 'address', 'domain', 'status', 'exclusionReason', 'failureType', 'failureReason', 'attempts', 'lastSmtpCode', 'lastEnhancedCode', 'lastReply', 'lastMxHost', 'handedOverAt', 'finalAt', 'updatedAt'];

  /** What a JSON value of the log becomes in the CSV: empty for null, text that a spreadsheet would run prefixed with '. */
  const cell = (v: unknown) => (v === null || v === undefined ? '' : typeof v === 'string' && /^[=+\-@\t\r]/.test(v) ? `'${v}` : String(v));

  it.each(['', 'status=failed', `domain=${ALPHA}&address=bob`, 'failureType=soft&failureReason=unreachable', `domain=${encodeURIComponent(IDN)}`, 'address=nobody-at-all'])(
    'equals the JSON pages row by row (%s)',
    async (query) => {
      const { res, text } = await csvOf(query);
      expect(res.status, text).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
      expect(res.headers.get('content-disposition')).toMatch(new RegExp(`^attachment; filename="delivery-${deliveryId}[^"/\\\\]*\\.csv"$`));
      // Streamed: no length announced up front.
      expect(res.headers.get('content-length')).toBeNull();
      expect(text.endsWith('\r\n')).toBe(true);
      const records: string[][] = parse(text, { relax_column_count: false });
      expect(records[0]).toEqual(HEADER);
      const pages = await walk(`/api/deliveries/${deliveryId}/recipients?limit=3${query ? `&${query}` : ''}`);
      expect(records.length - 1).toBe(pages.rows.length);
      pages.rows.forEach((row, i) => expect(records[i + 1], `row ${i + 1}`).toEqual(HEADER.map((c) => cell(row[c]))));
    },
  );

  it('quotes what needs quoting and defuses formulas', async () => {
    const { text } = await csvOf('address=%3D');
    expect(text).toContain(`'=cmd@${GAMMA}`);
    const quoted = await csvOf('');
    expect(quoted.text).toContain('"said ""no"", then\r\nagain"');
    expect(quoted.text).toContain(",'-ERR formula-looking reply,");
    expect(quoted.text).toContain(`,'+plus@${GAMMA},`);
  });

  it('a read key may export; no key may not; bad filters are a 400 naming the field', async () => {
    const reader = await h.createApiKey(['read']);
    expect((await csvOf('status=sent', reader.secret)).res.status).toBe(200);
    const anonymous = await csvOf('status=sent', null);
    expect(anonymous.res.status).toBe(401);
    expect(anonymous.res.headers.get('content-type')).toMatch(/json/);
    for (const [q, field] of [
      ['status=lost', 'status'],
      ['failureType=fatal', 'failureType'],
      ['failureReason=because', 'failureReason'],
      ['domain=a%20b', 'domain'],
      [`address=${'x'.repeat(321)}`, 'address'],
    ]) {
      const { res, text } = await csvOf(q);
      expect(res.status, q).toBe(400);
      expect(JSON.parse(text).issues.map((i: { path: string }) => i.path), q).toContain(field);
    }
    const unknown = `${h.apiUrl}/api/deliveries/${randomUUID()}/recipients.csv`;
    expect((await fetch(unknown, { headers: authHeaders(unknown) })).status).toBe(404);
  });

  it('streams a large export page by page, and stops reading when the client goes away', async () => {
    const big = await api('POST', '/api/deliveries', { name: `big export ${s}`, from: { address: `news@${ALPHA}` }, subject: 'Big', text: 'Hello', recipients: [{ email: `first@${ALPHA}` }] });
    expect(big.status).toBe(201);
    const bigId: string = big.json.id;
    const N = 100_000;
    await h.pool.query(
      `INSERT INTO delivery_recipients (delivery_id, recipient_id, address, domain, address_key, status, last_reply)
       SELECT $1, i, 'user' || i || '@' || $2, $2, 'user' || i || '@' || $2, 'sent', repeat('250 2.0.0 accepted ', 5) FROM generate_series(2, $3::int) i`,
      [bigId, ALPHA, N],
    );
    const log = h.service.log;
    const original = log.page.bind(log);
    let reads = 0;
    log.page = async (...args: Parameters<typeof original>) => {
      if (args[0] === bigId) reads++;
      return original(...args);
    };
    try {
      const url = `${h.apiUrl}/api/deliveries/${bigId}/recipients.csv`;
      const abort = new AbortController();
      const res = await fetch(url, { headers: authHeaders(url), signal: abort.signal });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      const first = await reader.read();
      expect(new TextDecoder().decode(first.value).startsWith('recipientId,address,')).toBe(true);
      // The client stops reading, then goes away: the server must not read the other pages of the log.
      await new Promise((r) => setTimeout(r, 500));
      const beforeAbort = reads;
      abort.abort();
      await reader.cancel().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 1500));
      const afterAbort = reads;
      await new Promise((r) => setTimeout(r, 1000));
      console.log(`export of ${N} rows: ${beforeAbort} pages of 1,000 read while the client held the stream, ${afterAbort} once it had gone`);
      // Backpressure: a client that does not read holds the server to what the socket buffers take (a few pages)...
      expect(beforeAbort).toBeLessThan(N / 1000 / 2);
      // ...and once it has gone, at most the page being read finishes, then nothing more.
      expect(afterAbort).toBeLessThanOrEqual(beforeAbort + 1);
      expect(reads).toBe(afterAbort);

      // Read to the end, the same export has every row once.
      reads = 0;
      const started = performance.now();
      const whole = await fetch(url, { headers: authHeaders(url) });
      const lines = (await whole.text()).split('\r\n');
      console.log(`export of ${N} rows read to the end in ${Math.round(performance.now() - started)} ms`);
      expect(lines.length).toBe(N + 2); // header, N rows, the empty string after the last CRLF
      expect(lines[1].startsWith('1,')).toBe(true);
      expect(lines[N].startsWith(`${N},`)).toBe(true);
      expect(reads).toBe(N / 1000 + 1);
    } finally {
      log.page = original;
    }
  });
});

describe('deliveries list', () => {
  const marker = `list-${s}`;
  const ids: string[] = [];
  /** Creation instants to the microsecond, three of them equal: paging must neither skip nor repeat a tie. */
  const CREATED = [
    '2031-03-01 10:00:00.000001+00',
    '2031-03-01 10:00:00.000900+00',
    '2031-03-01 10:00:00.000500+00',
    '2031-03-01 10:00:00.000500+00',
    '2031-03-01 10:00:00.000500+00',
    '2031-03-02 00:00:00+00',
    '2031-03-02 23:59:59.999999+00',
    '2031-03-03 00:00:00+00',
  ];
  const STATES = ['completed', 'sending', 'completed', 'paused', 'cancelled', 'completed', 'sending', 'awaiting_confirmation'];

  beforeAll(async () => {
    for (let i = 0; i < CREATED.length; i++) {
      const r = await api('POST', '/api/deliveries', {
        name: i % 2 ? `Spring ${marker} ${i}` : `Autumn ${i} ${s}`,
        from: { address: `news@${ALPHA}` },
        subject: i % 2 ? `Plain subject ${i}` : `Subject with ${marker.toUpperCase()} ${i}`,
        text: 'Hello',
        recipients: [{ email: `x${i}@${ALPHA}` }],
      });
      expect(r.status).toBe(201);
      ids.push(r.json.id);
      await h.pool.query('UPDATE deliveries SET created_at = $2, state = $3 WHERE id = $1', [r.json.id, CREATED[i], STATES[i]]);
    }
  });

  async function walkDeliveries(first: string): Promise<{ ids: string[]; pages: number }> {
    const { rows, pages } = await walkPages(first, 'deliveries', 500);
    return { ids: rows.map((d) => d.id as string), pages };
  }

  async function sqlDeliveries(where: string, params: unknown[] = []): Promise<string[]> {
    const r = await h.pool.query<{ id: string }>(`SELECT id FROM deliveries WHERE ${where} ORDER BY created_at DESC, id DESC`, params);
    return r.rows.map((x) => x.id);
  }

  it.each([
    ['text in the name or the subject, any case', `q=${marker.toUpperCase()}`, "(name ILIKE '%' || $1 || '%' OR subject ILIKE '%' || $1 || '%')", [marker]],
    ['one state', `q=${marker}&state=completed`, "(name ILIKE '%' || $1 || '%' OR subject ILIKE '%' || $1 || '%') AND state = 'completed'", [marker]],
    ['several states, comma-separated', `q=${marker}&state=sending,paused`, "(name ILIKE '%' || $1 || '%' OR subject ILIKE '%' || $1 || '%') AND state IN ('sending', 'paused')", [marker]],
    ['several states, repeated', `q=${marker}&state=sending&state=cancelled`, "(name ILIKE '%' || $1 || '%' OR subject ILIKE '%' || $1 || '%') AND state IN ('sending', 'cancelled')", [marker]],
    ['a day, from and to', 'createdFrom=2031-03-02&createdTo=2031-03-02', "created_at >= '2031-03-02Z' AND created_at < '2031-03-03Z'", []],
    ['instants', 'createdFrom=2031-03-01T10:00:00.0005Z&createdTo=2031-03-02T00:00:00Z', "created_at >= '2031-03-01 10:00:00.0005Z' AND created_at < '2031-03-02Z'", []],
    ['every state, every date', 'state=completed', "state = 'completed'", []],
    ['no filter', '', 'true', []],
  ] as [string, string, string, unknown[]][])('%s: exactly the rows SQL selects, each once, newest first', async (_label, query, where, params) => {
    const expected = await sqlDeliveries(where, params);
    for (const limit of [1, 3, 200]) {
      if (limit < 3 && expected.length > 100) continue;
      const got = await walkDeliveries(`/api/deliveries?limit=${limit}${query ? `&${query}` : ''}`);
      expect(got.ids).toEqual(expected);
      expect(got.pages).toBe(Math.max(1, Math.ceil(expected.length / limit)));
    }
  });

  it('pages through creation instants that tie or differ by a microsecond', async () => {
    const got = await walkDeliveries(`/api/deliveries?limit=1&createdFrom=2031-03-01&createdTo=2031-03-01`);
    expect(got.ids).toEqual(await sqlDeliveries(`created_at >= '2031-03-01Z' AND created_at < '2031-03-02Z'`));
    expect(new Set(got.ids)).toEqual(new Set(ids.slice(0, 5)));
  });

  it('lists each delivery with the fields of its own answer but not its content (HTML and text are not read)', async () => {
    const res = await api('GET', `/api/deliveries?limit=1&q=${marker}`);
    expect(res.status).toBe(200);
    const listed = res.json.deliveries[0] as Record<string, unknown>;
    expect(listed).not.toHaveProperty('html');
    expect(listed).not.toHaveProperty('text');
    for (const k of ['id', 'name', 'subject', 'state', 'fromAddress', 'contactDate', 'createdAt', 'analysis', 'options']) expect(listed).toHaveProperty(k);
    const one = await api('GET', `/api/deliveries/${listed.id}`);
    expect(listed.name).toBe(one.json.name);
  });

  it('refuses bad values with a 400 naming the field', async () => {
    for (const [q, field] of [
      ['state=sending,lost', 'state'],
      ['createdFrom=yesterday', 'createdFrom'],
      ['createdTo=2031-02-30', 'createdTo'],
      ['createdFrom=2031-03-02&createdTo=2031-03-01', 'createdTo'],
      ['beforeId=' + randomUUID(), 'beforeId'],
      [`before=2031-01-01T00:00:00Z&beforeId=nope`, 'beforeId'],
      [`q=${'x'.repeat(201)}`, 'q'],
      ['q=', 'q'],
    ]) {
      const res = await api('GET', `/api/deliveries?${q}`);
      expect(res.status, q).toBe(400);
      expect(res.json.issues.map((i: { path: string }) => i.path), `${q}: ${JSON.stringify(res.json)}`).toContain(field);
    }
  });
});

describe('the dashboard', () => {
  it("offers the engine's failure types and reasons (dashboard/format.js repeats them: it has no build step)", async () => {
    // A browser module without types, loaded by its path.
    const format: { FAILURE_TYPES: Record<string, string>; FAILURE_REASONS: Record<string, string> } = await import(pathToFileURL(path.join(__dirname, '..', 'dashboard', 'format.js')).href);
    const failure = await import('../domain/failure');
    expect(Object.keys(format.FAILURE_TYPES)).toEqual([...failure.FAILURE_TYPES]);
    expect(Object.keys(format.FAILURE_REASONS)).toEqual([...failure.FAILURE_REASONS]);
  });
});
