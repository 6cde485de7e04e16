/**
 * The dashboard's New delivery form (docs/dashboard.md) in headless Chromium against the real stack, and the API route
 * behind its preview (POST /api/deliveries/preview): a send key uploads a CSV file, sees the message rendered by the
 * engine for the file's first row, creates the delivery (an answer lost on the way and a double-clicked retry make
 * one delivery, under one Idempotency-Key), lands on its page, confirms it and follows it to its final KPIs without a reload. A
 * template error shows the API's message; a refused field is named next to the form; a read key gets no form. axe-core
 * runs on the form.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { simpleParser } from 'mailparser';
import { expectAccessible, launchChromium, newPage as openPage, PageErrors, signIn as signInAt } from './support/dashboard-browser';
import { startHarness, type Harness } from './support/harness';
import { apiCall, request } from './support/http';

const u = randomUUID().slice(0, 8);
const DOMAIN = `new-delivery-${u}.example`;
/** Sandbox MX conventions (docs/sandbox-mx.md): hard- is 550 5.1.1 at RCPT, spam- 554 after DATA; others are accepted. */
const CSV_ROWS = [
  [`alice-${u}@${DOMAIN}`, 'Alice', 'Europe/Paris'],
  [`bob-${u}@${DOMAIN}`, 'Bob', ''],
  [`carol-${u}@${DOMAIN}`, '"Carol, the ""third"""', 'America/New_York'],
  [`hard-dave-${u}@${DOMAIN}`, 'Dave', ''],
  [`spam-erin-${u}@${DOMAIN}`, 'Erin', ''],
];
const CSV = `email,firstName,timezone\r\n${CSV_ROWS.map((r) => r.join(',')).join('\r\n')}\r\n\r\n`;

let h: Harness;
let browser: Browser;
let sendKey = '';
let readKey = '';
let tmpDir = '';
const errors = new PageErrors();

beforeAll(async () => {
  h = await startHarness();
  sendKey = (await h.createApiKey(['send'], `new delivery send ${u}`)).secret;
  readKey = (await h.createApiKey(['read'], `new delivery read ${u}`)).secret;
  browser = await launchChromium();
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'new-delivery-'));
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await h?.stop();
  if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
});

afterEach(() => errors.expectNone());

const newPage = () => openPage(browser, errors);
const signIn = (page: Page, key: string) => signInAt(page, h.apiUrl, key);

const poll = <T>(probe: () => T | Promise<T>, timeout = 15_000) => expect.poll(probe, { timeout });
const kpi = (page: Page, id: string) => page.locator(`[data-kpi="${id}"] dd`);
const deliveriesNamed = async (name: string) =>
  (await h.pool.query<{ id: string }>('SELECT id FROM deliveries WHERE name = $1', [name])).rows.map((r) => r.id);

describe('POST /api/deliveries/preview', () => {
  const preview = (body: unknown, apiKey?: string | null) => apiCall(h.apiUrl, 'POST', '/api/deliveries/preview', body, apiKey === undefined ? {} : { apiKey });

  it("renders subject, HTML and text for the sample recipient with the engine's renderer", async () => {
    const r = await preview(
      {
        subject: 'Hello {{firstName}} {{lastName}}',
        html: '<p>Dear {{firstName}}, from <b>{{company}}</b> to {{email}}</p>',
        text: 'Dear {{firstName}} of {{company}}',
        fields: { email: `ada@${DOMAIN}`, firstName: 'Ada', lastName: 'Line\r\nBreak', company: '<ACME & Co>' },
      },
      sendKey,
    );
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    // A header cannot hold a line break a field brought in; the HTML part escapes values; the text part does not.
    expect(r.json).toEqual({
      subject: 'Hello Ada Line Break',
      html: `<p>Dear Ada, from <b>&lt;ACME &amp; Co&gt;</b> to ada@${DOMAIN}</p>`,
      text: 'Dear Ada of <ACME & Co>',
      fields: ['company', 'email', 'firstName', 'lastName'],
      missingFields: [],
    });
    // A recipient without a field the message reads: rendered empty, and named (the analysis would exclude it).
    const lacking = await preview({ subject: 'Hi {{firstName}}', text: 'Your code: {{code}}', fields: { email: `x@${DOMAIN}`, firstName: '' } }, sendKey);
    expect(lacking.status).toBe(200);
    expect(lacking.json).toMatchObject({ subject: 'Hi ', html: null, text: 'Your code: ', missingFields: ['code', 'firstName'] });
  });

  it('answers 400 naming the part whose template does not compile or render, with the template error', async () => {
    for (const [part, source, message] of [
      ['subject', 'Hello {{firstName', /Parse error on line 1/],
      ['html', '<p>{{#if vip}}Dear friend</p>', /Parse error on line 1/],
      ['text', 'Hello {{shout firstName}}', /Missing helper: "shout"/],
    ] as const) {
      const body = { subject: 'Fine {{firstName}}', html: '<p>fine</p>', text: 'fine', fields: { firstName: 'A' }, [part]: source };
      const r = await preview(body, sendKey);
      expect(r.status, `${part}: ${JSON.stringify(r.json)}`).toBe(400);
      expect(r.json.issues).toHaveLength(1);
      expect(r.json.issues[0].path).toBe(part);
      expect(r.json.issues[0].message).toMatch(message);
      expect(r.json.issues[0].message).toContain(`the ${part} template does not compile or render`);
    }
  });

  it('refuses bad input with a 400 naming the field, and a key below send', async () => {
    const cases: [unknown, string][] = [
      [{ subject: 'Hi\r\nBcc: victim@example.com' }, 'subject'],
      [{ subject: 'x'.repeat(999) }, 'subject'],
      [{ html: '<p>no subject</p>' }, 'subject'],
      [{ subject: 'Hi', fields: ['not', 'an', 'object'] }, 'fields'],
      [{ subject: 'Hi', fields: { nested: { a: 1 } } }, 'fields.nested'],
      [{ subject: 'Hi', bcc: 'victim@example.com' }, ''],
    ];
    for (const [body, field] of cases) {
      const r = await preview(body, sendKey);
      expect(r.status, JSON.stringify(r.json)).toBe(400);
      expect(r.json.issues.map((i: { path: string }) => i.path), JSON.stringify(body)).toContain(field);
    }
    expect((await preview({ subject: 'Hi' }, readKey)).status).toBe(403);
    expect((await preview({ subject: 'Hi' }, null)).status).toBe(401);
  });

  it("GET /api/lists/:id gives the list's first member as a sample", async () => {
    const list = await request(h.apiUrl, 'POST', `/api/lists?name=sample-${u}`, { body: CSV, contentType: 'text/csv' });
    expect(list.status, JSON.stringify(list.json)).toBe(201);
    const got = await apiCall(h.apiUrl, 'GET', `/api/lists/${list.json.id}`, undefined, { apiKey: readKey });
    expect(got.status).toBe(200);
    expect(got.json).toMatchObject({ memberCount: CSV_ROWS.length, sample: { email: CSV_ROWS[0][0], fields: { firstName: 'Alice', timezone: 'Europe/Paris' } } });
  });
});

describe('the New delivery form', () => {
  it('uploads a CSV, previews the first row, creates one delivery despite a lost answer, confirms it and follows it to its final KPIs', async () => {
    const name = `Spring launch ${u}`;
    const csvFile = path.join(tmpDir, `recipients-${u}.csv`);
    fs.writeFileSync(csvFile, CSV);
    const page = await newPage();
    await signIn(page, sendKey);
    await page.getByRole('link', { name: 'New delivery' }).click();
    await page.getByRole('heading', { level: 1, name: 'New delivery' }).waitFor();
    expect(page.url()).toMatch(/#\/deliveries\/new$/);

    // The file's rows and columns are shown before anything is created.
    await page.getByLabel('CSV file', { exact: true }).setInputFiles(csvFile);
    await poll(() => page.getByTestId('target-summary').textContent()).toMatch(new RegExp(`^${CSV_ROWS.length} recipients; columns: email, firstName, timezone`));
    await page.getByLabel('Delivery name').fill(name);
    await page.getByLabel('From address').fill(`news@${DOMAIN}`);
    await page.getByLabel('From name').fill('Launch team');
    await page.getByLabel('Subject').fill('Hello {{firstName}}');
    await page.getByLabel('HTML body').fill('<h1>Dear {{firstName}}</h1><p>Our spring range is here.</p>');
    await page.getByLabel('Text body').fill('Dear {{firstName}}, our spring range is here.');
    await page.getByLabel('Validity', { exact: true }).fill('2');
    await page.getByLabel('Validity unit').selectOption('d');

    // The preview: the first row's recipient, personalised by the engine; the HTML in a sandboxed frame without scripts.
    await poll(() => page.getByTestId('preview-subject').textContent()).toBe('Hello Alice');
    expect(await page.getByTestId('preview-recipient').textContent()).toContain(CSV_ROWS[0][0]);
    expect(await page.getByTestId('preview-text').textContent()).toBe('Dear Alice, our spring range is here.');
    const frame = page.locator('iframe.preview-frame');
    expect(await frame.getAttribute('sandbox')).toBe('');
    expect(await frame.getAttribute('title')).toContain(CSV_ROWS[0][0]);
    await poll(() => page.frameLocator('iframe.preview-frame').locator('h1').textContent()).toBe('Dear Alice');
    await expectAccessible(page, 'New delivery form with its preview');
    // docs/dashboard.md shows the form as this run sees it.
    const shot = path.join(__dirname, '..', 'docs', 'images', 'dashboard-new-delivery.png');
    // The viewport only: after a full-page capture (which resizes the page) the next click in this test reached the
    // form instead of the button, and nothing was submitted.
    await page.evaluate(() => (globalThis as unknown as { scrollTo(x: number, y: number): void }).scrollTo(0, 0));
    await page.screenshot({ path: shot });
    expect(fs.statSync(shot).size).toBeGreaterThan(10_000);

    // The first answer to the create is lost on the way back (the server made the delivery); the retry gets it again.
    const creates: { key: string | null }[] = [];
    const uploads: { key: string | null }[] = [];
    page.on('request', (r) => {
      const url = new URL(r.url());
      if (r.method() === 'POST' && url.pathname === '/api/deliveries') creates.push({ key: r.headers()['idempotency-key'] ?? null });
      if (r.method() === 'POST' && url.pathname === '/api/lists') uploads.push({ key: r.headers()['idempotency-key'] ?? null });
    });
    let cut: { status: number; body: string } | null = null;
    await page.route(
      (url) => url.pathname === '/api/deliveries',
      async (route) => {
        if (route.request().method() !== 'POST' || cut) return route.continue();
        cut = { status: 0, body: '' };
        try {
          const answer = await route.fetch();
          cut = { status: answer.status(), body: await answer.text() };
        } finally {
          await route.abort('failed');
        }
      },
    );
    const marker = await page.evaluate(() => ((globalThis as unknown as { __noReload: string }).__noReload = 'same document'));
    await page.getByRole('button', { name: 'Create delivery' }).click();
    await poll(() => page.getByTestId('create-error').textContent(), 30_000).toMatch(/fetch/i);
    expect(cut, 'the cut answer').toMatchObject({ status: 201 });
    expect(await deliveriesNamed(name)).toHaveLength(1);
    // Retried with a double click: one more request (the second click sends nothing), the same key, the same delivery.
    await page.getByRole('button', { name: 'Create delivery' }).dblclick();

    // Its page: the analysis report counts the CSV's recipients; then Confirm.
    await page.getByRole('heading', { level: 1, name: new RegExp(name) }).waitFor({ timeout: 30_000 });
    const ids = await deliveriesNamed(name);
    expect(ids, 'one delivery').toHaveLength(1);
    const id = ids[0];
    expect(page.url()).toMatch(new RegExp(`#/deliveries/${id}$`));
    expect(creates).toHaveLength(2);
    expect(creates[0].key).toMatch(/^dashboard-[0-9a-f]{32}-delivery$/);
    expect(creates[1].key).toBe(creates[0].key);
    // The file became one stored list, uploaded once (the retry reused it).
    expect(uploads).toHaveLength(1);
    expect(uploads[0].key).toBe(creates[0].key!.replace(/-delivery$/, '-list'));
    const stored = await h.pool.query<{ list_id: string; member_count: number; name: string }>(
      'SELECT d.list_id, l.member_count, l.name FROM deliveries d JOIN recipient_lists l ON l.id = d.list_id WHERE d.id = $1',
      [id],
    );
    expect(stored.rows[0]).toMatchObject({ member_count: CSV_ROWS.length, name: path.basename(csvFile) });
    const detail = (await apiCall(h.apiUrl, 'GET', `/api/deliveries/${id}`)).json;
    expect(detail).toMatchObject({ subject: 'Hello {{firstName}}', from: { address: `news@${DOMAIN}`, name: 'Launch team' }, validitySeconds: 2 * 86_400 });

    const confirm = page.getByRole('button', { name: 'Confirm' });
    await confirm.waitFor({ timeout: 60_000 });
    await poll(() => page.locator('section[aria-labelledby="analysis-h"]').textContent(), 30_000).toContain(`${CSV_ROWS.length} targeted, 0 excluded, ${CSV_ROWS.length} to deliver`);
    await confirm.click();
    await poll(() => page.getByTestId('control-outcome').textContent(), 30_000).toBe('Confirm: accepted.');

    // The KPIs reach their final values in the same document: every row of the CSV sent or failed.
    await poll(() => page.locator('h1 .badge').textContent(), 120_000).toBe('Completed');
    const final = (await apiCall(h.apiUrl, 'GET', `/api/deliveries/${id}`)).json;
    expect(final.kpis.sent + final.kpis.failed).toBe(CSV_ROWS.length);
    expect(final.kpis).toMatchObject({ sent: 3, failed: 2 });
    await poll(() => kpi(page, 'sent').textContent()).toBe(String(final.kpis.sent));
    expect(Number(await kpi(page, 'sent').textContent()) + Number(await kpi(page, 'failed').textContent())).toBe(CSV_ROWS.length);
    expect(await page.evaluate(() => (globalThis as unknown as { __noReload?: string }).__noReload)).toBe(marker);
    // Each recipient got its own first name (the message the sandbox MX received).
    const [carol] = h.mx.acceptedFor(CSV_ROWS[2][0]);
    const mail = await simpleParser(carol.raw!);
    expect(mail.subject).toBe('Hello Carol, the "third"');
    expect(mail.text?.trim()).toBe('Dear Carol, the "third", our spring range is here.');
    await page.context().close();
  });

  it("shows the API's message for a template error, names a refused field next to the form, and previews a stored list's first member", async () => {
    const list = await request(h.apiUrl, 'POST', `/api/lists?name=${encodeURIComponent(`stored ${u}`)}`, { body: CSV, contentType: 'text/csv' });
    expect(list.status).toBe(201);
    const name = `Refused ${u}`;
    const page = await newPage();
    await signIn(page, sendKey);
    await page.goto(`${h.apiUrl}/dashboard#/deliveries/new`);
    await page.getByRole('heading', { level: 1, name: 'New delivery' }).waitFor();
    await page.getByLabel('A stored list').check();
    await page.getByLabel('Stored list', { exact: true }).selectOption(list.json.id);
    await poll(() => page.getByTestId('target-summary').textContent()).toBe(`${CSV_ROWS.length} recipients; fields: firstName, timezone.`);

    // A subject that does not compile: the preview shows what the API answers for it.
    const subject = 'Hello {{firstName';
    await page.getByLabel('Subject').fill(subject);
    await page.getByLabel('Text body').fill('Hi {{firstName}}');
    const api = await apiCall(h.apiUrl, 'POST', '/api/deliveries/preview', { subject, html: null, text: 'Hi {{firstName}}', fields: { email: CSV_ROWS[0][0], firstName: 'Alice', timezone: 'Europe/Paris' } }, { apiKey: sendKey });
    expect(api.status).toBe(400);
    const apiMessage = api.json.issues[0].message as string;
    await poll(() => page.getByTestId('preview-error').textContent()).toContain(`subject: ${apiMessage}`);
    expect(await page.getByTestId('preview-subject').count()).toBe(0);
    await expectAccessible(page, 'New delivery form with a template error');
    // Fixed, the preview is the list's first member's.
    await page.getByLabel('Subject').fill('Hello {{firstName}}');
    await poll(() => page.getByTestId('preview-subject').textContent()).toBe('Hello Alice');
    expect(await page.getByTestId('preview-error').textContent()).toBe('');

    // A From address the API refuses: the error names the field, next to its input; nothing is created.
    await page.getByLabel('Delivery name').fill(name);
    await page.getByLabel('From address').fill('not an address');
    await page.getByRole('button', { name: 'Create delivery' }).click();
    await poll(() => page.getByTestId('create-error').textContent()).toMatch(/from/);
    await poll(() => page.getByLabel('From address').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#nd-from-address-error').textContent()).toMatch(/^from/);
    expect(await deliveriesNamed(name)).toEqual([]);
    await expectAccessible(page, 'New delivery form with a refused field');
    await page.context().close();
  });

  it('is not offered to a read key, and its link shows no form', async () => {
    const page = await newPage();
    await signIn(page, readKey);
    expect(await page.getByTestId('scopes').textContent()).toBe('read');
    expect(await page.getByRole('link', { name: 'New delivery' }).count()).toBe(0);
    await page.goto(`${h.apiUrl}/dashboard#/deliveries/new`);
    await page.getByRole('heading', { level: 1, name: 'New delivery' }).waitFor();
    expect(await page.getByTestId('no-send-scope').textContent()).toContain('send');
    expect(await page.locator('form').count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Create delivery' }).count()).toBe(0);
    await expectAccessible(page, 'New delivery page (read key)');
    await page.context().close();
  });
});
