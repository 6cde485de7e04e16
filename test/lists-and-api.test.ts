/**
 * Stored lists and API input handling end to end (real Temporal, Postgres, sandbox MX, HTTP API): streamed CSV uploads
 * and deliveries from lists, refused CSVs and delivery inputs that leave nothing behind, a workflow start failure that
 * leaves no half-created delivery, keyset paging, proofs, and RFC 8058 one-click unsubscribe.
 */
import { randomUUID } from 'node:crypto';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { apiCall, request as httpRequest, type RequestBody } from './support/http';
import { startHarness, type Harness } from './support/harness';
import { buildDeliveryService } from '../runtime/composition-root';
import { createDeliverySchema } from '../api/delivery-input';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});

afterAll(async () => {
  await h?.stop();
});

const request = (method: string, path: string, init: { body?: RequestBody; contentType?: string } = {}) => httpRequest(h.apiUrl, method, path, init);

const api = (method: string, path: string, body?: unknown) => apiCall(h.apiUrl, method, path, body);

const uploadCsv = (name: string, body: RequestBody, contentType = 'text/csv') => request('POST', `/api/lists?name=${encodeURIComponent(name)}`, { body, contentType });

const u = () => randomUUID().slice(0, 8);

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const r = await h.pool.query<{ n: number }>(sql, params);
  return r.rows[0].n;
}
const deliveryCount = () => count('SELECT count(*)::int AS n FROM deliveries');
const listsNamed = (name: string) => count('SELECT count(*)::int AS n FROM recipient_lists WHERE name = $1', [name]);

function base(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: `api ${u()}`, from: 'news@lists-sender.example', subject: 'Hello', text: 'Hello', validity: '3d', ...extra };
}

async function create(body: Record<string, unknown>): Promise<string> {
  const r = await api('POST', '/api/deliveries', body);
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  return r.json.id as string;
}

/** Streams `lines` as UTF-8 bytes in fixed-size chunks that ignore character boundaries (multi-byte names get split). */
function byteStream(lines: () => Generator<string>, chunkBytes: number): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  const it = lines();
  let pending = new Uint8Array(0);
  let done = false;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      while (!done && pending.length < chunkBytes) {
        let text = '';
        for (let i = 0; i < 100; i++) {
          const n = it.next();
          if (n.done) {
            done = true;
            break;
          }
          text += n.value;
        }
        const bytes = enc.encode(text);
        const merged = new Uint8Array(pending.length + bytes.length);
        merged.set(pending);
        merged.set(bytes, pending.length);
        pending = merged;
      }
      if (pending.length > 0) {
        const n = Math.min(chunkBytes, pending.length);
        controller.enqueue(pending.slice(0, n));
        pending = pending.slice(n);
      }
      if (done && pending.length === 0) controller.close();
    },
  });
}

describe('stored lists (CSV upload)', () => {
  const STREAMED = 2_500;
  const nameOf = (i: number) => (i % 3 === 0 ? `Zoë ${i}, née Müller` : i % 3 === 1 ? `He said "hi" ${i}` : `Plain${i}`);
  const zoneOf = (i: number) => (i % 2 === 0 ? 'Europe/Paris' : 'America/New_York');
  const streamedAddress = (i: number) => `m${i}@streamed.example`;

  it('streams a 2,500-row CSV (BOM, CRLF, quoted fields with commas and quotes, UTF-8 split across chunks), then a delivery gets exactly its members', async () => {
    const name = `streamed ${u()}`;
    const quote = (v: string) => `"${v.replace(/"/g, '""')}"`;
    function* lines(): Generator<string> {
      yield '\ufeffemail,firstName,timezone\r\n';
      for (let i = 1; i <= STREAMED; i++) yield `${streamedAddress(i)},${quote(nameOf(i))},${zoneOf(i)}\r\n`;
    }
    const res = await uploadCsv(name, byteStream(lines, 997));
    expect(res.status, JSON.stringify(res.json)).toBe(201);
    expect(res.json).toMatchObject({ name, memberCount: STREAMED, fields: ['firstName', 'timezone'] });
    const listId = res.json.id as string;

    const got = await api('GET', `/api/lists/${listId}`);
    expect(got.status).toBe(200);
    expect(got.json).toMatchObject({ id: listId, name, memberCount: STREAMED, fields: ['firstName', 'timezone'] });
    const all = await api('GET', '/api/lists');
    expect(all.json.lists.some((l: { id: string }) => l.id === listId)).toBe(true);

    const members = await h.pool.query<{ member_id: number; address: string; fields: Record<string, string>; syntax_problem: string | null }>(
      'SELECT member_id, address, fields, syntax_problem FROM recipient_list_members WHERE list_id = $1 ORDER BY member_id',
      [listId],
    );
    expect(members.rows).toHaveLength(STREAMED);
    members.rows.forEach((m, k) => {
      const i = k + 1;
      if (m.member_id !== i || m.address !== streamedAddress(i) || m.fields.firstName !== nameOf(i) || m.fields.timezone !== zoneOf(i) || m.syntax_problem !== null) {
        throw new Error(`member ${i} is wrong: ${JSON.stringify(m)}`);
      }
    });

    // A delivery from the list holds exactly its members, ids 1..n in list order (not sent: cancelled after analysis).
    const id = await create(base({ listId, text: 'Hello {{firstName}}' }));
    await h.waitForPhase(id, ['awaiting_confirmation'], 60_000);
    const copied = await h.pool.query<{ n: number; min: number; max: number; distinct_ids: number; mismatched: number }>(
      `SELECT count(*)::int AS n, min(r.recipient_id) AS min, max(r.recipient_id) AS max, count(DISTINCT r.recipient_id)::int AS distinct_ids,
              count(*) FILTER (WHERE m.member_id IS NULL OR m.address <> r.address OR m.fields <> r.fields)::int AS mismatched
       FROM delivery_recipients r LEFT JOIN recipient_list_members m ON m.list_id = $2 AND m.member_id = r.recipient_id
       WHERE r.delivery_id = $1`,
      [id, listId],
    );
    expect(copied.rows[0]).toEqual({ n: STREAMED, min: 1, max: STREAMED, distinct_ids: STREAMED, mismatched: 0 });
    const d = (await api('GET', `/api/deliveries/${id}`)).json;
    expect(d.analysis).toMatchObject({ targeted: STREAMED, toDeliver: STREAMED, excluded: 0, requiredFields: ['firstName'] });
    expect((await api('POST', `/api/deliveries/${id}/cancel`, {})).status).toBe(202);
    await h.waitForPhase(id, ['cancelled'], 60_000);
  });

  it('a delivery from a list (autoConfirm) completes to exactly its members, personalised from the CSV columns', async () => {
    const s = u();
    const people = Array.from({ length: 25 }, (_, i) => ({ email: `p${i + 1}-${s}@listed.example`, first: i % 5 === 0 ? `Smith, Jr. ${i + 1}` : `Person ${i + 1}`, city: i % 2 ? 'Paris' : 'Lyon' }));
    const csv = '\ufeffEmail,firstName,city\n' + people.map((p) => `${p.email},"${p.first}",${p.city}`).join('\n') + '\n';
    const res = await uploadCsv(`e2e ${s}`, csv);
    expect(res.status, JSON.stringify(res.json)).toBe(201);
    expect(res.json).toMatchObject({ memberCount: 25, fields: ['firstName', 'city'] });

    const id = await create(base({ listId: res.json.id, subject: 'For {{firstName}}', text: 'Hello {{firstName}} from {{city}}', autoConfirm: true }));
    await h.waitForPhase(id, ['completed'], 90_000);
    const d = (await api('GET', `/api/deliveries/${id}`)).json;
    expect(d.kpis).toMatchObject({ targeted: 25, toDeliver: 25, sent: 25, failed: 0, successPercent: 100 });
    const ids = await h.pool.query<{ recipient_id: number; address: string; status: string }>(
      'SELECT recipient_id, address, status FROM delivery_recipients WHERE delivery_id = $1 ORDER BY recipient_id',
      [id],
    );
    expect(ids.rows.map((r) => [r.recipient_id, r.address, r.status])).toEqual(people.map((p, i) => [i + 1, p.email, 'sent']));
    for (const p of people) {
      const msgs = h.mx.acceptedFor(p.email);
      expect(msgs, p.email).toHaveLength(1);
      const parsed = await simpleParser(msgs[0].raw!);
      expect(parsed.subject).toBe(`For ${p.first}`);
      expect(parsed.text?.trim()).toBe(`Hello ${p.first} from ${p.city}`);
    }
  });

  it('uploads a 20,000-row CSV in reasonable time', async () => {
    const rows = 20_000;
    let csv = 'email,firstName,city\n';
    for (let i = 1; i <= rows; i++) csv += `big${i}@bulk.example,Name ${i},"City, ${i % 50}"\n`;
    const t0 = performance.now();
    const res = await uploadCsv(`bulk ${u()}`, csv);
    const ms = Math.round(performance.now() - t0);
    console.log(`20,000-row CSV (${Math.round(csv.length / 1024)} KB) uploaded in ${ms} ms`);
    expect(res.status, JSON.stringify(res.json)).toBe(201);
    expect(res.json.memberCount).toBe(rows);
    expect(await count('SELECT count(*)::int AS n FROM recipient_list_members WHERE list_id = $1', [res.json.id])).toBe(rows);
    expect(ms).toBeLessThan(30_000);
  });

  it('refuses bad CSVs with the problem named, and leaves no list behind', async () => {
    const cases: { label: string; body: string; contentType?: string; status: number; error: RegExp }[] = [
      { label: 'no email column', body: 'name,city\nAnn,Paris\n', status: 400, error: /no address column/ },
      { label: 'ragged row', body: 'email,firstName\na@x.example,A\nb@x.example,B,extra\nc@x.example,C\n', status: 400, error: /line 3\b/ },
      { label: 'unclosed quote', body: 'email,firstName\n"a@x.example,A\n', status: 400, error: /CSV error at line \d+/ },
      { label: 'empty body', body: '', status: 400, error: /empty/ },
      { label: 'header only', body: 'email,firstName\n', status: 400, error: /no members/ },
      { label: 'duplicate columns', body: 'email,city,city\na@x.example,P,L\n', status: 400, error: /duplicate column names.*city/ },
      { label: 'JSON instead of CSV', body: '[{"email":"a@x.example"}]', contentType: 'application/json', status: 415, error: /text\/csv/ },
      { label: 'text/plain content type', body: 'email\na@x.example\n', contentType: 'text/plain', status: 415, error: /text\/csv/ },
    ];
    for (const c of cases) {
      const name = `bad csv ${c.label} ${u()}`;
      const res = await uploadCsv(name, c.body, c.contentType);
      expect({ label: c.label, status: res.status }).toEqual({ label: c.label, status: c.status });
      expect(res.json.error, c.label).toMatch(c.error);
      expect(await listsNamed(name), c.label).toBe(0);
    }
    // A bad line far into a streamed upload rolls back the members already copied.
    const name = `bad csv late ${u()}`;
    const before = await count('SELECT count(*)::int AS n FROM recipient_list_members');
    function* lines(): Generator<string> {
      yield 'email,firstName\n';
      for (let i = 1; i <= 3_000; i++) yield i === 2_500 ? `late${i}@x.example,A,B\n` : `late${i}@x.example,N${i}\n`;
    }
    const late = await uploadCsv(name, byteStream(lines, 4096));
    expect(late.status).toBe(400);
    expect(late.json.error).toMatch(/line 2501\b/);
    expect(await listsNamed(name)).toBe(0);
    expect(await count('SELECT count(*)::int AS n FROM recipient_list_members')).toBe(before);
    // A missing name is refused before anything is read.
    const noName = await request('POST', '/api/lists', { body: 'email\na@x.example\n', contentType: 'text/csv' });
    expect(noName.status).toBe(400);
    expect(noName.json.issues.map((i: { message: string }) => i.message).join()).toMatch(/name is required/);
    const emptyName = await request('POST', '/api/lists?name=%20', { body: 'email\na@x.example\n', contentType: 'text/csv' });
    expect(emptyName.status).toBe(400);
    expect(emptyName.json.issues.map((i: { message: string }) => i.message).join()).toMatch(/name is required/);
  });

  it('list ids: unknown → 404, malformed → 400', async () => {
    expect((await api('GET', `/api/lists/${randomUUID()}`)).status).toBe(404);
    expect((await api('GET', '/api/lists/nope')).status).toBe(400);
  });
});

describe('delivery input validation', () => {
  const listId = randomUUID();
  const good = () => base({ recipients: [{ email: 'v@valid.example' }] });
  const cases: { label: string; body: () => unknown; paths: string[]; message?: RegExp }[] = [
    {
      label: 'missing name',
      body: () => {
        const { name: _n, ...rest } = good();
        return rest;
      },
      paths: ['name'],
    },
    { label: 'bad from', body: () => ({ ...good(), from: 'not an address' }), paths: ['from'], message: /email address/ },
    { label: 'no html or text', body: () => ({ ...good(), text: undefined }), paths: ['html'], message: /html or text is required/ },
    { label: 'recipients and listId', body: () => ({ ...good(), listId }), paths: ['recipients'], message: /exactly one of recipients/ },
    { label: 'neither recipients nor listId', body: () => ({ ...good(), recipients: undefined }), paths: ['recipients'], message: /exactly one of recipients/ },
    { label: 'empty recipients', body: () => ({ ...good(), recipients: [] }), paths: ['recipients'], message: /at least one recipient/ },
    {
      label: 'too many inline recipients',
      body: () => ({ ...good(), recipients: Array.from({ length: 100_001 }, () => ({ email: 'a@b.example' })) }),
      paths: ['recipients'],
      message: /limited to 100000.*POST \/api\/lists/,
    },
    { label: 'bad validity', body: () => ({ ...good(), validity: '5 weeks' }), paths: ['validity'], message: /duration/ },
    { label: 'validity too long', body: () => ({ ...good(), validity: '31d' }), paths: ['validity'], message: /30 days/ },
    { label: 'size wave with size and percent', body: () => ({ ...good(), waves: { mode: 'size', size: 3, percent: 10, periodSeconds: 60 } }), paths: ['waves'], message: /exactly one of size or percent/ },
    { label: 'unknown wave mode', body: () => ({ ...good(), waves: { mode: 'burst' } }), paths: ['waves.mode'] },
    { label: 'bad time zone', body: () => ({ ...good(), localSendTime: { time: '09:00', defaultTimeZone: 'Mars/Olympus' } }), paths: ['localSendTime.defaultTimeZone'], message: /IANA/ },
    { label: 'bad local time', body: () => ({ ...good(), localSendTime: { time: '25:00', defaultTimeZone: 'Europe/Paris' } }), paths: ['localSendTime.time'] },
    { label: 'unknown property', body: () => ({ ...good(), colour: 'red' }), paths: [''], message: /colour/ },
    { label: 'bad recipient email type', body: () => ({ ...good(), recipients: [{ email: '' }] }), paths: ['recipients.0.email'], message: /empty/ },
    { label: 'bad contact date', body: () => ({ ...good(), contactDate: 'tomorrow' }), paths: ['contactDate'] },
    { label: 'several problems at once', body: () => ({ ...good(), name: '', from: 'nope', validity: 'soon' }), paths: ['name', 'from', 'validity'] },
  ];

  for (const c of cases) {
    it(`400 for ${c.label}, naming the field, and no delivery row`, async () => {
      const before = await deliveryCount();
      const res = await api('POST', '/api/deliveries', c.body());
      expect(res.status, JSON.stringify(res.json).slice(0, 500)).toBe(400);
      expect(res.json.error).toBe('invalid request');
      const issues = res.json.issues as { path: string; message: string }[];
      expect([...new Set(issues.map((i) => i.path))].sort()).toEqual([...c.paths].sort());
      if (c.message) expect(issues.map((i) => i.message).join(' | ')).toMatch(c.message);
      expect(await deliveryCount()).toBe(before);
    });
  }

  it('400 for a body that is not JSON, and no delivery row', async () => {
    const before = await deliveryCount();
    const res = await request('POST', '/api/deliveries', { body: '{"name": "x", ', contentType: 'application/json' });
    expect(res.status).toBe(400);
    expect(res.json.error).toMatch(/not valid JSON/);
    expect(await deliveryCount()).toBe(before);
  });

  it('404 for an unknown listId, and no delivery row', async () => {
    const before = await deliveryCount();
    const res = await api('POST', '/api/deliveries', base({ listId }));
    expect(res.status).toBe(404);
    expect(res.json.error).toContain(listId);
    expect(await deliveryCount()).toBe(before);
  });

  it('the accepted input of the same shape is created (the cases above fail for their own reason)', async () => {
    const before = await deliveryCount();
    const res = await api('POST', '/api/deliveries', good());
    expect(res.status).toBe(201);
    expect(res.json.recipients).toBe(1);
    expect(await deliveryCount()).toBe(before + 1);
    await h.waitForPhase(res.json.id, ['awaiting_confirmation'], 60_000);
  });
});

describe('never half-created', () => {
  it('removes the delivery and its recipients when its workflow cannot be started', async () => {
    const connection = await Connection.connect({ address: h.settings.TEMPORAL_ADDRESS });
    const client = new Client({ connection });
    await connection.close();
    const service = buildDeliveryService(h.runtime, client, h.taskQueue);
    const name = `half-created ${u()}`;
    const domain = `half-${u()}.example`;
    const input = createDeliverySchema.parse(base({ name, recipients: [{ email: `a@${domain}` }, { email: `b@${domain}` }] }));
    // Watch the start: the delivery and its recipients are written before it, so the failure must remove them.
    const realStart = client.workflow.start.bind(client.workflow);
    const seenAtStart: { workflowId?: string; deliveries?: number; recipients?: number } = {};
    client.workflow.start = (async (...args: Parameters<typeof realStart>) => {
      seenAtStart.workflowId = args[1].workflowId;
      seenAtStart.deliveries = await count('SELECT count(*)::int AS n FROM deliveries WHERE name = $1', [name]);
      seenAtStart.recipients = await count('SELECT count(*)::int AS n FROM delivery_recipients WHERE domain = $1', [domain]);
      return realStart(...args);
    }) as typeof realStart;
    const before = await deliveryCount();
    await expect(service.create(input)).rejects.toThrow();
    expect(seenAtStart).toMatchObject({ workflowId: expect.stringMatching(/^delivery-/), deliveries: 1, recipients: 2 });
    expect(await count('SELECT count(*)::int AS n FROM deliveries WHERE name = $1', [name])).toBe(0);
    expect(await count('SELECT count(*)::int AS n FROM delivery_recipients WHERE domain = $1', [domain])).toBe(0);
    expect(await deliveryCount()).toBe(before);
  });
});

describe('recipients paging', () => {
  let pagedId: string;
  const s = u();
  // 12 recipients, ids 3 and 8 invalid.
  const emails = Array.from({ length: 12 }, (_, i) => (i + 1 === 3 || i + 1 === 8 ? `invalid-${i + 1}` : `pg${i + 1}-${s}@paging.example`));

  beforeAll(async () => {
    pagedId = await create(base({ name: `paging ${s}`, subject: 'Paging {{firstName}}', text: 'Hi {{firstName}}', recipients: emails.map((email) => ({ email, fields: { firstName: 'Pat' } })) }));
    await h.waitForPhase(pagedId, ['awaiting_confirmation'], 60_000);
  });

  async function follow(first: string): Promise<{ ids: number[]; pages: number[] }> {
    const ids: number[] = [];
    const pages: number[] = [];
    let next: string | null = first;
    while (next) {
      const res = await api('GET', next);
      expect(res.status).toBe(200);
      pages.push(res.json.recipients.length);
      ids.push(...res.json.recipients.map((r: { recipientId: number }) => r.recipientId));
      next = res.json.next;
      expect(pages.length).toBeLessThan(20);
    }
    return { ids, pages };
  }

  it('follows next links until null: every recipient once, in order', async () => {
    const { ids, pages } = await follow(`/api/deliveries/${pagedId}/recipients?limit=5`);
    expect(ids).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(pages).toEqual([5, 5, 2]);
    const first = await api('GET', `/api/deliveries/${pagedId}/recipients?limit=5`);
    expect(first.json.next).toBe(`/api/deliveries/${pagedId}/recipients?after=5&limit=5`);
    expect(first.json.recipients[0]).toMatchObject({ recipientId: 1, address: emails[0], domain: 'paging.example', status: 'pending', exclusionReason: null });
    // An exact multiple of the page size ends with an empty page.
    const exact = await follow(`/api/deliveries/${pagedId}/recipients?limit=4`);
    expect(exact.ids).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(exact.pages).toEqual([4, 4, 4, 0]);
  });

  it('filters by status, keeping the filter in next links', async () => {
    const excluded = await follow(`/api/deliveries/${pagedId}/recipients?status=excluded&limit=1`);
    expect(excluded.ids).toEqual([3, 8]);
    const pending = await follow(`/api/deliveries/${pagedId}/recipients?status=pending&limit=3`);
    expect(pending.ids).toEqual([1, 2, 4, 5, 6, 7, 9, 10, 11, 12]);
    const one = await api('GET', `/api/deliveries/${pagedId}/recipients?status=excluded`);
    expect(one.json.recipients.map((r: { exclusionReason: string }) => r.exclusionReason)).toEqual(['invalid_address', 'invalid_address']);
    expect((await api('GET', `/api/deliveries/${pagedId}/recipients?status=sent`)).json).toEqual({ recipients: [], next: null });
  });

  it('refuses bad parameters and unknown deliveries', async () => {
    for (const q of ['limit=0', 'limit=1001', 'limit=abc', 'after=-1', 'status=bogus']) {
      const res = await api('GET', `/api/deliveries/${pagedId}/recipients?${q}`);
      expect({ q, status: res.status }).toEqual({ q, status: 400 });
    }
    expect((await api('GET', `/api/deliveries/${randomUUID()}/recipients`)).status).toBe(404);
    expect((await api('GET', '/api/deliveries/12345/recipients')).status).toBe(400);
    expect((await api('GET', `/api/deliveries/${randomUUID()}`)).status).toBe(404);
    expect((await api('GET', '/api/deliveries/not-a-uuid')).status).toBe(400);
    expect((await api('GET', `/api/deliveries/${pagedId}/recipients/99`)).status).toBe(404);
    const one = await api('GET', `/api/deliveries/${pagedId}/recipients/2`);
    expect(one.status).toBe(200);
    expect(one.json.recipient).toMatchObject({ recipientId: 2, status: 'pending' });
  });

  it('sends proofs outside the delivery log and KPIs', async () => {
    const proofs = [`proof-a-${s}@proofs.example`, `Proof-B-${s}@proofs.example`];
    const res = await api('POST', `/api/deliveries/${pagedId}/proofs`, { addresses: proofs });
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    expect(res.json.proofs).toHaveLength(2);
    for (const p of res.json.proofs) expect(p).toMatchObject({ accepted: true, reply: { code: 250 } });
    for (const addr of proofs) {
      const msgs = h.mx.acceptedFor(addr);
      expect(msgs, addr).toHaveLength(1);
      const raw = msgs[0].raw!.toString('utf8');
      const head = raw.slice(0, raw.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ');
      expect(head).toMatch(/^Subject: \[Proof\] Paging Pat$/m);
      expect(head).toMatch(/^X-Proof: yes$/m);
      expect(head).toMatch(/^DKIM-Signature: /m);
    }
    const d = (await api('GET', `/api/deliveries/${pagedId}`)).json;
    expect(d.state).toBe('awaiting_confirmation');
    expect(d.kpis).toMatchObject({ targeted: 12, excluded: 2, toDeliver: 10, pending: 10, takenIntoAccount: 0, sent: 0, failed: 0 });
    expect(await count('SELECT count(*)::int AS n FROM delivery_recipients WHERE delivery_id = $1 AND domain = $2', [pagedId, 'proofs.example'])).toBe(0);
    expect(await count('SELECT count(*)::int AS n FROM delivery_recipients WHERE delivery_id = $1', [pagedId])).toBe(12);
    const rows = await h.pool.query<{ address: string; smtp_code: number }>('SELECT address, smtp_code FROM delivery_proofs WHERE delivery_id = $1 ORDER BY id', [pagedId]);
    expect(rows.rows).toEqual(proofs.map((address) => ({ address, smtp_code: 250 })));
  });

  it('refuses bad proof requests', async () => {
    const before = await count('SELECT count(*)::int AS n FROM delivery_proofs WHERE delivery_id = $1', [pagedId]);
    const bad = await api('POST', `/api/deliveries/${pagedId}/proofs`, { addresses: ['not-an-address'] });
    expect(bad.status).toBe(400);
    expect(bad.json.issues[0].path).toBe('addresses.0');
    expect((await api('POST', `/api/deliveries/${pagedId}/proofs`, { addresses: [] })).status).toBe(400);
    expect((await api('POST', `/api/deliveries/${pagedId}/proofs`, { addresses: Array.from({ length: 21 }, (_, i) => `p${i}@proofs.example`) })).status).toBe(400);
    expect((await api('POST', `/api/deliveries/${randomUUID()}/proofs`, { addresses: ['x@proofs.example'] })).status).toBe(404);
    expect(await count('SELECT count(*)::int AS n FROM delivery_proofs WHERE delivery_id = $1', [pagedId])).toBe(before);
  });
});

describe('one-click unsubscribe (RFC 8058)', () => {
  it('unsubscribes from the List-Unsubscribe URL, refuses tampered tokens, and later deliveries exclude the address', async () => {
    const s = u();
    const leaving = `Leaving-${s}@unsub.example`;
    const staying = `staying-${s}@unsub.example`;
    const id = await create(base({ recipients: [{ email: leaving }, { email: staying }], autoConfirm: true }));
    await h.waitForPhase(id, ['completed'], 60_000);

    const unsubscribeUrl = (address: string) => {
      const msgs = h.mx.acceptedFor(address);
      expect(msgs).toHaveLength(1);
      const raw = msgs[0].raw!.toString('utf8');
      const head = raw.slice(0, raw.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ');
      expect(head).toMatch(/^List-Unsubscribe-Post: List-Unsubscribe=One-Click$/m);
      const m = /^List-Unsubscribe: <([^>]+)>/m.exec(head);
      expect(m, 'List-Unsubscribe header').not.toBeNull();
      const url = new URL(m![1]);
      // The URL's base is PUBLIC_URL (here the default http://127.0.0.1:3000): the harness API listens elsewhere.
      expect(url.origin).toBe('http://127.0.0.1:3000');
      return `${h.apiUrl}${url.pathname}`;
    };
    const oneClick = (url: string) => request('POST', url, { body: 'List-Unsubscribe=One-Click', contentType: 'application/x-www-form-urlencoded' });
    const leavingUrl = unsubscribeUrl(leaving);
    const stayingUrl = unsubscribeUrl(staying);
    expect(leavingUrl).toMatch(new RegExp(`/u/${id}/1/[A-Za-z0-9_-]{22}$`));

    // Tampered: a changed token, and a valid token moved to another recipient.
    const tampered = stayingUrl.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
    expect((await oneClick(tampered)).status).toBe(403);
    const moved = leavingUrl.replace(`/${id}/1/`, `/${id}/2/`);
    expect((await oneClick(moved)).status).toBe(403);
    const denyKey = (address: string) => count('SELECT count(*)::int AS n FROM address_denylist WHERE address_key = $1', [address.toLowerCase()]);
    expect(await denyKey(staying)).toBe(0);

    const first = await oneClick(leavingUrl);
    expect(first.status).toBe(200);
    expect(first.json).toEqual({ unsubscribed: true, new: true });
    const row = await h.pool.query('SELECT reason, source, delivery_id FROM address_denylist WHERE address_key = $1', [leaving.toLowerCase()]);
    expect(row.rows).toEqual([{ reason: 'unsubscribed', source: 'list-unsubscribe', delivery_id: id }]);
    // Mailbox providers may POST more than once.
    const again = await oneClick(leavingUrl);
    expect(again.status).toBe(200);
    expect(again.json).toEqual({ unsubscribed: true, new: false });
    expect(await denyKey(staying)).toBe(0);

    // The next delivery to both excludes the unsubscribed address only (whatever its case).
    const next = await create(base({ recipients: [{ email: leaving.toUpperCase() }, { email: staying }] }));
    await h.waitForPhase(next, ['awaiting_confirmation'], 60_000);
    const rows = await h.pool.query<{ recipient_id: number; status: string; exclusion_reason: string | null }>(
      'SELECT recipient_id, status, exclusion_reason FROM delivery_recipients WHERE delivery_id = $1 ORDER BY recipient_id',
      [next],
    );
    expect(rows.rows).toEqual([
      { recipient_id: 1, status: 'excluded', exclusion_reason: 'address_on_denylist' },
      { recipient_id: 2, status: 'pending', exclusion_reason: null },
    ]);
    const d = (await api('GET', `/api/deliveries/${next}`)).json;
    expect(d.analysis.exclusions).toEqual({ address_on_denylist: 1 });
  });
});
