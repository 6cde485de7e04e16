/**
 * The delivery dashboard (docs/dashboard.md) in headless Chromium (playwright-core driving /usr/bin/chromium) against
 * the real stack: a key signs in (cookie session); a delivery with accepted, hard-bounced and refused recipients is
 * created through the API; its page shows the analysis, Confirm is pressed, and the KPIs reach the delivery log's
 * final values without a reload; the log pages and filters by status, finds an address and exports CSV equal to what
 * the API answers; a failed recipient shows its SMTP reply and MX host; a `read` key sees no control button. axe-core
 * runs on every page (no serious or critical violation), and the screenshots of docs/images/dashboard-*.png are
 * written by this run.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import express from 'express';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { chartsDrawn, drawnChart, expectAccessible, launchChromium, newPage as openPage, PageErrors, signIn as signInAt } from './support/dashboard-browser';
import { startHarness, type Harness } from './support/harness';
import { apiCall, request } from './support/http';
import { createDashboardRouter } from '../api/dashboard-routes';
import { WebhookReceiver } from './support/webhook-receiver';
import { WEBHOOK_EVENT_TYPES } from '../domain/webhook-events';

const IMAGES_DIR = path.join(__dirname, '..', 'docs', 'images');
const RESULTS_DIR = path.join(__dirname, '..', 'test-results');
const u = randomUUID().slice(0, 8);
const DOMAIN = `dash-${u}.example`;
const NAME = `Spring newsletter ${u}`;
/** Sandbox MX conventions (docs/sandbox-mx.md): hard- is 550 5.1.1 at RCPT, disabled- 550 5.2.1, spam- 554 after DATA. */
const HARD = `hard-lea@${DOMAIN}`;
const RECIPIENTS = [`alice@${DOMAIN}`, `bob@${DOMAIN}`, `carol@${DOMAIN}`, HARD, `disabled-dan@${DOMAIN}`, `spam-eve@${DOMAIN}`, 'not-an-address'];

let h: Harness;
let browser: Browser;
let sendKey = '';
let readKey = '';
let deliveryId = '';
const errors = new PageErrors();

beforeAll(async () => {
  h = await startHarness();
  sendKey = (await h.createApiKey(['send'], `dashboard send ${u}`)).secret;
  readKey = (await h.createApiKey(['read'], `dashboard read ${u}`)).secret;
  browser = await launchChromium();
  fs.mkdirSync(IMAGES_DIR, { recursive: true });
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await h?.stop();
});

afterEach(() => errors.expectNone());

const newPage = () => openPage(browser, errors, { acceptDownloads: true });
const signIn = (page: Page, key: string) => signInAt(page, h.apiUrl, key);

async function screenshot(page: Page, name: string): Promise<void> {
  const file = path.join(IMAGES_DIR, `dashboard-${name}.png`);
  await chartsDrawn(page);
  await page.screenshot({ path: file, fullPage: true });
  expect(fs.statSync(file).size).toBeGreaterThan(10_000);
}

/** expect.poll with room for a loaded machine (its default is 1 s). */
const poll = <T>(probe: () => T | Promise<T>) => expect.poll(probe, { timeout: 15_000 });

const kpi = (page: Page, id: string) => page.locator(`[data-kpi="${id}"] dd`);

describe('the dashboard', () => {
  it('serves its page and files without a key, with a strict CSP; its settings and every datum need a key', async () => {
    const pageAnswer = await request(h.apiUrl, 'GET', '/dashboard', { apiKey: null });
    expect(pageAnswer.status).toBe(200);
    expect(pageAnswer.headers.get('content-security-policy')).toMatch(/default-src 'none'; script-src 'self' 'sha256-/);
    const js = await request(h.apiUrl, 'GET', '/dashboard/assets/app.js', { apiKey: null });
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect((await request(h.apiUrl, 'GET', '/dashboard/assets/hooks.mjs', { apiKey: null })).status).toBe(200);
    // The page names every file with its content's digest: that URL may be kept for a year, any other is revalidated.
    const page = pageAnswer.json as string;
    const appUrl = /<script type="module" src="(\/dashboard\/assets\/app\.js\?v=[\w-]+)"/.exec(page)?.[1];
    expect(appUrl).toBeDefined();
    const versioned = await request(h.apiUrl, 'GET', appUrl!, { apiKey: null });
    expect(versioned.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(versioned.json).toBe(fs.readFileSync(path.join(__dirname, '..', 'dashboard', 'app.js'), 'utf8'));
    expect(js.headers.get('cache-control')).toBe('no-cache');
    expect((await request(h.apiUrl, 'GET', '/dashboard/assets/app.js?v=stale', { apiKey: null })).headers.get('cache-control')).toBe('no-cache');
    // The app's relative imports get the same versioned URLs through the import map.
    const importMap = JSON.parse(/<script type="importmap">(.*?)<\/script>/s.exec(page)![1]) as { imports: Record<string, string> };
    expect(importMap.imports['/dashboard/assets/api.js']).toMatch(/^\/dashboard\/assets\/api\.js\?v=[\w-]{16}$/);
    // Only the listed files: nothing else of the folder or of node_modules.
    expect((await request(h.apiUrl, 'GET', '/dashboard/assets/..%2Fpackage.json', { apiKey: null })).status).toBe(404);
    expect((await request(h.apiUrl, 'GET', '/dashboard/assets/package.json', { apiKey: null })).status).toBe(404);
    expect((await request(h.apiUrl, 'GET', '/api/dashboard/config', { apiKey: null })).status).toBe(401);
    const config = await apiCall(h.apiUrl, 'GET', '/api/dashboard/config', undefined, { apiKey: readKey });
    expect(config.status).toBe(200);
    expect(config.json).toEqual({ temporalUi: null, webhookEventTypes: [...WEBHOOK_EVENT_TYPES] });

    // With the Temporal UI configured (npm start passes its address), workflows link to it.
    const app = express().use(createDashboardRouter({ temporalUiUrl: 'http://127.0.0.1:8233/', temporalNamespace: 'mail' }));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const r = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api/dashboard/config`);
      expect(await r.json()).toEqual({ temporalUi: { url: 'http://127.0.0.1:8233', namespace: 'mail' }, webhookEventTypes: [...WEBHOOK_EVENT_TYPES] });
    } finally {
      server.close();
    }
  });

  it('signs in with a send key, confirms a delivery and follows it live to its final KPIs, its log and a failed recipient', async () => {
    const page = await newPage();
    await page.goto(`${h.apiUrl}/dashboard`);
    await expectAccessible(page, 'sign-in form');
    // A wrong key is refused with the API's reason, and opens nothing.
    await page.getByLabel('API key').fill(`ede_${'A'.repeat(43)}`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await poll(() => page.getByRole('alert').textContent()).toMatch(/key/i);

    await signIn(page, sendKey);
    await poll(() => page.getByTestId('scopes').textContent()).toBe('send');

    const created = await apiCall(h.apiUrl, 'POST', '/api/deliveries', {
      name: NAME,
      from: { address: `news@${DOMAIN}`, name: 'Dashboard test' },
      subject: 'Our spring selection',
      text: 'Hello {{email}}',
      recipients: RECIPIENTS.map((email) => ({ email })),
    });
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    deliveryId = created.json.id as string;

    // The list (newest first) has it; the server's text search narrows the list to it.
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.getByLabel('Name or subject').fill(u);
    await page.getByLabel('Name or subject').press('Enter');
    const row = page.locator(`tr[data-delivery="${deliveryId}"]`);
    await row.waitFor();
    expect(await page.locator('tr[data-delivery]').count()).toBe(1);
    await row.getByRole('link', { name: NAME }).click();

    // Analysis: one invalid address excluded; then Confirm (the workflow's confirm update).
    await page.getByRole('heading', { level: 1, name: new RegExp(NAME) }).waitFor();
    const marker = await page.evaluate(() => ((globalThis as unknown as { __noReload: string }).__noReload = 'same document'));
    const polls: string[] = [];
    page.on('response', (r) => {
      if (r.url().endsWith(`/api/deliveries/${deliveryId}`)) polls.push(r.url());
    });
    const confirm = page.getByRole('button', { name: 'Confirm' });
    await confirm.waitFor({ timeout: 60_000 });
    await expect.poll(() => page.getByRole('table', { name: 'Exclusions by reason' }).textContent(), { timeout: 30_000 }).toContain('invalid address');
    await confirm.click();
    await expect.poll(() => page.getByTestId('control-outcome').textContent(), { timeout: 30_000 }).toBe('Confirm: accepted.');

    // The KPIs reach their final values by polling, in the same document (no reload).
    await expect.poll(() => page.locator('h1 .badge').textContent(), { timeout: 120_000 }).toBe('Completed');
    const final = (await apiCall(h.apiUrl, 'GET', `/api/deliveries/${deliveryId}`)).json;
    expect(final.kpis).toMatchObject({ toDeliver: 6, sent: 3, failed: 3, successPercent: 50 });
    await poll(() => kpi(page, 'sent').textContent()).toBe('3');
    expect(await kpi(page, 'toDeliver').textContent()).toBe('6');
    expect(await kpi(page, 'failed').textContent()).toBe('3');
    expect(await kpi(page, 'successPercent').textContent()).toBe('50.00 %');
    expect(await kpi(page, 'softWaiting').textContent()).toBe('0');
    expect(await page.evaluate(() => (globalThis as unknown as { __noReload?: string }).__noReload)).toBe(marker);
    // Read by polling the state endpoint while it sent, then no more once it had ended.
    expect(polls.length).toBeGreaterThanOrEqual(2);
    const settled = polls.length;
    await page.waitForTimeout(5000);
    expect(polls.length).toBe(settled);
    // Failures by reason: a chart and a table with the same figures as the API.
    const reasons = page.getByRole('table', { name: 'Failures by reason' });
    for (const [reason, n] of Object.entries(final.kpis.failuresByReason as Record<string, number>)) {
      await poll(() => reasons.locator('tr', { hasText: reason.replace(/_/g, ' ') }).locator('td.n').first().textContent()).toBe(String(n));
    }
    expect(await page.locator('canvas[role="img"][aria-label^="Failures by reason"]').count()).toBe(1);
    // Drawn once Chart.js has loaded (after the figures), with the table's reasons and counts in its order.
    const reasonNames = await reasons.locator('tbody td:nth-child(1)').allTextContents();
    const reasonCounts = (await reasons.locator('tbody td:nth-child(2)').allTextContents()).map(Number);
    await drawnChart(page, 'Failures by reason', { labels: reasonNames, data: [reasonCounts] });
    // Ended: nothing left to control.
    expect(await page.locator('button[data-action]').count()).toBe(0);
    await expectAccessible(page, 'delivery page');
    await screenshot(page, 'delivery');

    // The log: every recipient, filtered by status and failure type by the server, found by address, exported as CSV
    // by the server (a link to the streamed export, which the browser downloads with the session cookie).
    await page.getByRole('link', { name: 'Delivery log' }).click();
    await page.getByRole('heading', { level: 1, name: /Delivery log/ }).waitFor();
    await poll(() => page.locator('tr[data-recipient]').count()).toBe(RECIPIENTS.length);
    await expectAccessible(page, 'log page');
    await screenshot(page, 'log');
    const logRequests: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes(`/api/deliveries/${deliveryId}/recipients`)) logRequests.push(r.url());
    });
    await page.getByLabel('Status').selectOption('failed');
    await poll(() => page.locator('tr[data-recipient]').count()).toBe(3);
    expect(logRequests.some((url) => new URL(url).searchParams.get('status') === 'failed')).toBe(true);
    const exportLink = page.getByRole('link', { name: 'Export CSV' });
    expect(await exportLink.getAttribute('href')).toBe(`/api/deliveries/${deliveryId}/recipients.csv?status=failed`);
    const download = page.waitForEvent('download');
    await exportLink.click();
    const downloaded = await download;
    expect(downloaded.suggestedFilename()).toBe(`delivery-${deliveryId}-failed.csv`);
    const csv = fs.readFileSync(await downloaded.path(), 'utf8').trim().split('\r\n');
    const apiFailed = (await apiCall(h.apiUrl, 'GET', `/api/deliveries/${deliveryId}/recipients?status=failed`)).json.recipients as { address: string; recipientId: number; failureReason: string }[];
    expect(csv[0].split(',').slice(0, 4)).toEqual(['recipientId', 'address', 'domain', 'status']);
    expect(csv.slice(1).map((l) => l.split(',').slice(0, 2).join(','))).toEqual(apiFailed.map((r) => `${r.recipientId},${r.address}`));
    expect(csv.slice(1).map((l) => l.split(',')[6])).toEqual(apiFailed.map((r) => r.failureReason));
    // Failure type narrows further, on the server.
    const hardFailures = (apiFailed as unknown as { failureType: string }[]).filter((r) => r.failureType === 'hard').length;
    expect(hardFailures).toBeGreaterThan(0);
    expect(hardFailures).toBeLessThan(apiFailed.length);
    await page.getByLabel('Failure type').selectOption('hard');
    await poll(() => page.locator('tr[data-recipient]').count()).toBe(hardFailures);
    expect(await exportLink.getAttribute('href')).toBe(`/api/deliveries/${deliveryId}/recipients.csv?status=failed&failureType=hard`);
    await page.getByLabel('Failure type').selectOption('');
    await page.getByLabel('Status').selectOption('');
    await poll(() => page.locator('tr[data-recipient]').count()).toBe(RECIPIENTS.length);
    await page.getByLabel('Address starts with').fill('HARD-LEA');
    await page.getByRole('button', { name: 'Search' }).click();
    await poll(() => page.getByRole('table', { name: 'Recipients' }).locator('tr[data-recipient]').count()).toBe(1);
    expect(logRequests.some((url) => new URL(url).searchParams.get('address') === 'HARD-LEA')).toBe(true);

    // The hard-bounced recipient: its SMTP reply and the MX host, in its attempts and its history.
    await page.getByRole('link', { name: HARD }).click();
    await page.getByRole('heading', { level: 1, name: new RegExp(HARD) }).waitFor();
    await poll(() => page.getByTestId('last-reply').textContent()).toMatch(/^550 5\.1\.1 .*user unknown/);
    const attempt = page.locator('tr[data-attempt="1"]');
    expect(await attempt.textContent()).toContain('550 5.1.1');
    expect(await attempt.textContent()).toContain('127.0.0.1');
    await poll(() => page.getByRole('list').filter({ hasText: 'Failed' }).first().textContent()).toMatch(/user unknown/);
    await poll(() => page.getByTestId('quarantine').textContent()).toMatch(/user unknown/);
    await expectAccessible(page, 'recipient page');
    await screenshot(page, 'recipient');

    // Back to the list, the delivery with its final figures.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Deliveries' }).click();
    const listed = page.locator(`tr[data-delivery="${deliveryId}"]`);
    await poll(() => listed.locator('td.n').allTextContents()).toEqual(['6', '3', '3', '50.00 %']);
    await expectAccessible(page, 'deliveries list');
    // The state and the creation days are the server's filters: the completed delivery is under Completed, created
    // today (the browser's day), and not under Under way nor created only from tomorrow.
    const listRequests: string[] = [];
    page.on('request', (r) => {
      if (new URL(r.url()).pathname === '/api/deliveries') listRequests.push(r.url());
    });
    await page.getByLabel('State').selectOption('completed');
    await poll(() => listRequests.some((url) => new URL(url).searchParams.get('state') === 'completed')).toBe(true);
    await listed.waitFor();
    await page.getByLabel('State').selectOption('scheduled,sending,paused');
    await poll(() => listed.count()).toBe(0);
    await page.getByLabel('State').selectOption('');
    const [today, tomorrow] = await page.evaluate(() =>
      [0, 1].map((days) => {
        const d = new Date();
        d.setDate(d.getDate() + days);
        return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
      }),
    );
    await page.getByLabel('Created from').fill(tomorrow);
    await poll(() => listed.count()).toBe(0);
    await page.getByLabel('Created from').fill(today);
    await page.getByLabel('Created to').fill(today);
    // The delivery is already listed from the "Created from" request: wait for the request that carries both dates.
    const bothDates = () => listRequests.map((url) => new URL(url).searchParams).filter((q) => q.has('createdFrom') && q.has('createdTo'));
    await poll(() => bothDates().length).toBeGreaterThan(0);
    await listed.waitFor();
    const last = bothDates().pop()!;
    expect(Date.parse(last.get('createdTo')!) - Date.parse(last.get('createdFrom')!)).toBeGreaterThanOrEqual(23 * 3_600_000);
    await page.context().close();
  });

  it('shows why Confirm is refused, changes a contact date, sends proofs, and pauses, resumes and cancels a delivery sent in waves', async () => {
    const page = await newPage();
    await signIn(page, sendKey);

    // Every address invalid: the analysis blocks it, and the workflow's refusal is shown as it answered.
    const blocked = await apiCall(h.apiUrl, 'POST', '/api/deliveries', {
      name: `Blocked ${u}`,
      from: { address: `news@${DOMAIN}` },
      subject: 'Nobody',
      text: 'Hello',
      recipients: [{ email: 'nobody-at-all' }],
    });
    expect(blocked.status).toBe(201);
    await page.goto(`${h.apiUrl}/dashboard#/deliveries/${blocked.json.id}`);
    await expect.poll(() => page.locator('h1 .badge').textContent(), { timeout: 60_000 }).toBe('Analysis failed');
    expect(await page.locator('.finding.error').textContent()).toContain('NOTHING_TO_DELIVER');
    await page.getByRole('button', { name: 'Confirm' }).click();
    const refusal = await apiCall(h.apiUrl, 'POST', `/api/deliveries/${blocked.json.id}/confirm`, {});
    expect(refusal.status).toBe(409);
    await poll(() => page.getByTestId('control-outcome').textContent()).toBe(`Confirm refused: ${refusal.json.error}`);

    // Before sending: a contact date chosen in the page (local time) and proofs sent through the sandbox MX.
    const planned = await apiCall(h.apiUrl, 'POST', '/api/deliveries', {
      name: `Planned ${u}`,
      from: { address: `news@${DOMAIN}` },
      subject: 'Planned',
      text: 'Hello',
      recipients: [{ email: `pat@${DOMAIN}` }],
    });
    expect(planned.status).toBe(201);
    await page.goto(`${h.apiUrl}/dashboard#/deliveries/${planned.json.id}`);
    await page.getByRole('heading', { level: 1, name: /Planned/ }).waitFor();
    const tomorrow = new Date(Date.now() + 86_400_000);
    tomorrow.setSeconds(0, 0);
    const local = await page.evaluate((ms) => {
      const d = new Date(ms);
      return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
    }, tomorrow.getTime());
    await page.getByLabel('Contact date (your time; empty: once confirmed)', { exact: true }).fill(local);
    await page.getByRole('button', { name: 'Change contact date' }).click();
    await poll(() => page.getByTestId('reschedule-outcome').textContent()).toMatch(/^Contact date set to/);
    expect(new Date((await apiCall(h.apiUrl, 'GET', `/api/deliveries/${planned.json.id}`)).json.contactDate).getTime()).toBe(tomorrow.getTime());
    const proofTo = `proof-${u}@${DOMAIN}`;
    await page.getByLabel('Proof addresses (up to 20)', { exact: true }).fill(proofTo);
    await page.getByRole('button', { name: 'Send proofs' }).click();
    await poll(() => page.getByTestId('proof-outcome').textContent()).toMatch(new RegExp(`${proofTo}: accepted — 250`));
    expect(h.mx.acceptedFor(proofTo)).toHaveLength(1);
    expect((await apiCall(h.apiUrl, 'POST', `/api/deliveries/${planned.json.id}/cancel`, {})).status).toBe(202);

    // Waves of 2 recipients two minutes apart: the second wave waits while the test pauses, resumes and cancels.
    const waved = await apiCall(h.apiUrl, 'POST', '/api/deliveries', {
      name: `Waves ${u}`,
      from: { address: `news@${DOMAIN}` },
      subject: 'In waves',
      text: 'Hello',
      recipients: ['w1', 'w2', 'w3', 'w4', 'w5', 'w6'].map((l) => ({ email: `${l}@${DOMAIN}` })),
      waves: { mode: 'size', size: 2, periodSeconds: 120 },
      autoConfirm: true,
    });
    expect(waved.status, JSON.stringify(waved.json)).toBe(201);
    await page.goto(`${h.apiUrl}/dashboard#/deliveries/${waved.json.id}`);
    const waves = page.getByRole('table', { name: 'Wave plan and progress' });
    await expect.poll(() => waves.locator('tbody tr').count(), { timeout: 60_000 }).toBe(3);
    await expect.poll(() => kpi(page, 'sent').textContent(), { timeout: 60_000 }).toBe('2');
    expect(await waves.locator('progress').first().getAttribute('value')).toBe('2');

    await page.getByRole('button', { name: 'Pause' }).click();
    await expect.poll(() => page.locator('h1 .badge').textContent(), { timeout: 30_000 }).toBe('Paused');
    await poll(() => page.getByRole('note').textContent()).toContain('paused from the dashboard');
    await expectAccessible(page, 'paused delivery page with its controls');
    await page.screenshot({ path: path.join(RESULTS_DIR, 'dashboard-waves-paused.png'), fullPage: true });
    await page.getByRole('button', { name: 'Resume' }).click();
    await expect.poll(() => page.locator('h1 .badge').textContent(), { timeout: 30_000 }).not.toBe('Paused');
    await page.getByRole('button', { name: 'Pause' }).waitFor();

    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Cancel delivery' }).click();
    await expect.poll(() => page.locator('h1 .badge').textContent(), { timeout: 60_000 }).toBe('Cancelled');
    const audit = await apiCall(h.apiUrl, 'GET', `/api/audit-log?target=delivery:${waved.json.id}`);
    expect((audit.json.entries as { action: string }[]).map((e) => e.action).sort()).toEqual(['delivery.cancel', 'delivery.create', 'delivery.pause', 'delivery.resume']);
    await page.context().close();
  });

  it('lets an admin key release a quarantined address, change the denylist, see MX sites and manage API keys', async () => {
    // A hard bounce quarantines its address.
    const bounced = `hard-quinn-${u}@${DOMAIN}`;
    const id = await h.createDelivery({ name: `Quarantine ${u}`, from: { address: `news@${DOMAIN}` }, subject: 'Hi', text: 'Hello', recipients: [{ email: bounced }], autoConfirm: true });
    await h.waitForPhase(id, ['completed'], 60_000);

    const page = await newPage();
    await signIn(page, h.apiKey);
    const main = page.getByRole('navigation', { name: 'Main' });

    // Releasing it from the dashboard is the API's DELETE.
    await main.getByRole('link', { name: 'Quarantine and denylist' }).click();
    await page.getByLabel('Address contains').first().fill('hard-quinn');
    await page.getByRole('button', { name: 'Search' }).first().click();
    const quarantined = page.getByRole('table', { name: 'Quarantined addresses' }).locator(`tr[data-address="${bounced}"]`);
    await poll(() => quarantined.textContent()).toMatch(/Quarantined.*user unknown/);
    await expectAccessible(page, 'quarantine and denylist page');
    await page.screenshot({ path: path.join(RESULTS_DIR, 'dashboard-addresses.png'), fullPage: true });
    await page.getByRole('button', { name: `Release ${bounced}` }).click();
    await poll(async () => (await apiCall(h.apiUrl, 'GET', `/api/quarantine/${bounced}`)).status).toBe(404);
    await poll(() => page.getByRole('table', { name: 'Quarantined addresses' }).locator('tr[data-address]').count()).toBe(0);

    const denied = `denied-${u}@${DOMAIN}`;
    await page.getByLabel('Address to add').fill(denied);
    await page.getByLabel('Note (optional)').fill('asked by phone');
    await page.getByRole('button', { name: 'Add to the denylist' }).click();
    const deniedRow = page.getByRole('table', { name: 'Denylisted addresses' }).locator(`tr[data-address="${denied}"]`);
    await poll(() => deniedRow.textContent()).toContain('asked by phone');
    expect((await apiCall(h.apiUrl, 'GET', `/api/denylist?search=${encodeURIComponent(denied)}`)).json.addresses).toHaveLength(1);
    await page.getByRole('button', { name: `Remove ${denied} from the denylist` }).click();
    await poll(() => deniedRow.count()).toBe(0);
    expect((await apiCall(h.apiUrl, 'GET', `/api/denylist?search=${encodeURIComponent(denied)}`)).json.addresses).toHaveLength(0);

    // MX sites: the sandbox MX every test delivery went to, with its replies of the last hour.
    await main.getByRole('link', { name: 'MX sites' }).click();
    const sites = (await apiCall(h.apiUrl, 'GET', '/api/mx-sites')).json.sites as { site: string }[];
    expect(sites.length).toBeGreaterThan(0);
    await poll(() => page.locator('tr[data-site]').count()).toBe(sites.length);
    expect(await page.locator(`tr[data-site="${sites[0].site}"]`).textContent()).toMatch(/\d+ accepted/);
    await expectAccessible(page, 'MX sites page');
    await page.screenshot({ path: path.join(RESULTS_DIR, 'dashboard-mx-sites.png'), fullPage: true });

    // API keys: create one (its secret shown once and working), then revoke it.
    await main.getByRole('link', { name: 'API keys' }).click();
    await page.getByLabel('Name (who or what uses it)').fill(`made in the dashboard ${u}`);
    await page.getByLabel('Scope').selectOption('read');
    await page.getByRole('button', { name: 'Create key' }).click();
    const secret = await page.getByLabel('Secret').inputValue();
    expect(secret).toMatch(/^ede_[A-Za-z0-9_-]{43}$/);
    expect((await apiCall(h.apiUrl, 'GET', '/api/session', undefined, { apiKey: secret })).json.key.scopes).toEqual(['read']);
    await expectAccessible(page, 'API keys page');
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: `Revoke made in the dashboard ${u}` }).click();
    await poll(async () => (await apiCall(h.apiUrl, 'GET', '/api/session', undefined, { apiKey: secret })).status).toBe(401);
    await page.context().close();
  });

  it('lets an admin key subscribe an endpoint to events, follow its deliveries, disable, enable and delete it', async () => {
    const receiver = new WebhookReceiver();
    const url = await receiver.start();
    let subscriptionId: string | null = null;
    try {
      const page = await newPage();
      await signIn(page, h.apiKey);
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Webhooks' }).click();
      await page.getByLabel('Endpoint URL').fill(url);
      await page.getByLabel('Description').fill(`dashboard ${u}`);
      await page.getByLabel('recipient.sent').check();
      await page.getByLabel('recipient.failed').check();
      await page.getByRole('button', { name: 'Subscribe' }).click();
      receiver.secret = await page.getByLabel('Secret').inputValue();
      expect(receiver.secret).toMatch(/^whsec_/);
      const listed = ((await apiCall(h.apiUrl, 'GET', '/api/webhooks')).json.webhooks as { id: string; url: string; eventTypes: string[] }[]).find((w) => w.url === url);
      expect(listed?.eventTypes).toEqual(['recipient.failed', 'recipient.sent']);
      subscriptionId = listed!.id;
      await expectAccessible(page, 'webhooks page');

      // A delivery's two recipient events reach the endpoint, signed with the secret the page showed.
      const hard = `hard-wendy-${u}@${DOMAIN}`;
      const id = await h.createDelivery({ name: `Webhooks ${u}`, from: { address: `news@${DOMAIN}` }, subject: 'Hi', text: 'Hello', recipients: [{ email: `walt-${u}@${DOMAIN}` }, { email: hard }], autoConfirm: true });
      await h.waitForPhase(id, ['completed'], 60_000);
      await poll(() => receiver.events.filter((e) => e.data.deliveryId === id).map((e) => e.type).sort()).toEqual(['recipient.failed', 'recipient.sent']);
      expect(receiver.badSignatures).toBe(0);

      // Its page: the deliveries with the status code the endpoint answered.
      await page.getByRole('link', { name: url }).click();
      await page.getByRole('heading', { level: 1, name: url }).waitFor();
      const attempts = page.getByRole('table', { name: 'Recent deliveries to this endpoint' }).locator('tr[data-attempt]');
      await poll(async () => {
        await page.reload();
        return attempts.filter({ hasText: '204' }).count();
      }).toBeGreaterThan(0);
      await expectAccessible(page, 'webhook page');

      // Disabled with a reason, enabled again, deleted: each is what the API shows.
      page.once('dialog', (d) => void d.accept('receiver being migrated'));
      await page.getByRole('button', { name: 'Disable' }).click();
      await poll(async () => (await apiCall(h.apiUrl, 'GET', `/api/webhooks/${subscriptionId}`)).json.disabledReason).toBe('receiver being migrated');
      await page.getByRole('button', { name: 'Enable' }).click();
      await poll(async () => (await apiCall(h.apiUrl, 'GET', `/api/webhooks/${subscriptionId}`)).json.enabled).toBe(true);
      page.once('dialog', (d) => void d.accept());
      await page.getByRole('button', { name: 'Delete' }).click();
      await page.getByRole('heading', { level: 1, name: 'Webhooks' }).waitFor();
      await poll(async () => (await apiCall(h.apiUrl, 'GET', `/api/webhooks/${subscriptionId}`)).status).toBe(404);
      subscriptionId = null;
      await page.context().close();
    } finally {
      // A subscription left behind would make the event triggers write for every later test file.
      if (subscriptionId) await apiCall(h.apiUrl, 'DELETE', `/api/webhooks/${subscriptionId}`);
      await receiver.stop();
    }
  });

  it('shows no control button to a read key, and signs out', async () => {
    const running = await apiCall(h.apiUrl, 'POST', '/api/deliveries', {
      name: `Awaiting ${u}`,
      from: { address: `news@${DOMAIN}` },
      subject: 'Not confirmed',
      text: 'Hello',
      recipients: [{ email: `zoe@${DOMAIN}` }],
    });
    expect(running.status).toBe(201);
    await h.waitForPhase(running.json.id, ['awaiting_confirmation'], 60_000);

    const page = await newPage();
    await signIn(page, readKey);
    expect(await page.getByTestId('scopes').textContent()).toBe('read');
    // The list's screenshot, now that the tests before made deliveries in several states.
    // Each row's KPIs are one GET /api/deliveries/:id (a workflow query, replayed by a worker once it has ended).
    await expect.poll(() => page.locator('tr[data-delivery]').count(), { timeout: 15_000 }).toBeGreaterThanOrEqual(4);
    await expect.poll(() => page.locator('tr[data-delivery] td.n', { hasText: '—' }).count(), { timeout: 30_000 }).toBe(0);
    await screenshot(page, 'deliveries');
    await page.goto(`${h.apiUrl}/dashboard#/deliveries/${running.json.id}`);
    await expect.poll(() => page.locator('h1 .badge').textContent(), { timeout: 30_000 }).toBe('Awaiting confirmation');
    // The same page with a send key has a Confirm button (the previous test pressed it); here there is none.
    expect(await page.locator('button[data-action]').count()).toBe(0);
    expect(await page.getByRole('button', { name: /Confirm|Pause|Resume|Cancel|contact date|proofs/i }).count()).toBe(0);
    await expectAccessible(page, 'delivery page (read key)');
    // Nor on the other pages: no API keys page, no release, add, remove or suspend.
    const main = page.getByRole('navigation', { name: 'Main' });
    expect(await main.getByRole('link', { name: 'API keys' }).count()).toBe(0);
    await main.getByRole('link', { name: 'Quarantine and denylist' }).click();
    await page.getByRole('table', { name: 'Denylisted addresses' }).waitFor();
    expect(await page.getByRole('button', { name: /Release|Remove|Add to the denylist/ }).count()).toBe(0);
    await main.getByRole('link', { name: 'MX sites' }).click();
    await page.locator('tr[data-site]').first().waitFor();
    expect(await page.getByRole('button', { name: /Suspend|Resume/ }).count()).toBe(0);
    await main.getByRole('link', { name: 'Webhooks' }).click();
    await page.getByRole('heading', { level: 1, name: 'Webhooks' }).waitFor();
    await page.getByText(/No endpoint is subscribed|Webhook subscriptions/).first().waitFor();
    expect(await page.getByRole('button', { name: 'Subscribe' }).count()).toBe(0);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').waitFor();
    // The cookie is gone: a reload shows the sign-in form again.
    await page.reload();
    await page.getByLabel('API key').waitFor();
    await page.context().close();
    // Leave nothing waiting for confirmation behind.
    expect((await apiCall(h.apiUrl, 'POST', `/api/deliveries/${running.json.id}/cancel`, {})).status).toBe(202);
  });
});
