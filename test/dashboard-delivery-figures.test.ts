/**
 * A delivery's figures (GET /api/deliveries/:id/timeline, /domains, /mx-sites) and a recipient workflow's live view
 * (GET /api/deliveries/:id/recipients/:rid/live), through the API and on the dashboard's pages, against the real stack
 * (Temporal dev server, Postgres, worker, the sandbox MX deciding outcomes by local part). A completed delivery with
 * sent, hard-bounced, refused and excluded recipients over two domains: the timeline's last point is the KPIs, the
 * domain and site figures add up to the KPIs and equal independent SQL over the delivery log. A delivery whose
 * `full-` recipient waits for its retry (452 mailbox full, retried hours later): the live route answers the workflow's
 * view, the timeline counts it as waiting, and the recipient page shows the view and links the recipient workflow in
 * the Temporal UI. axe-core finds no serious or critical violation on either page.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { drawnChart, expectAccessible, launchChromium, newPage as openPage, PageErrors, signIn as signInAt } from './support/dashboard-browser';
import { startHarness, type Harness } from './support/harness';
import { apiCall } from './support/http';
import { buildApi } from '../runtime/composition-root';
import { recipientWorkflowId } from '../workflows/contract';

const RESULTS_DIR = path.join(__dirname, '..', 'test-results');
const TEMPORAL_UI = 'http://127.0.0.1:8233';
const u = randomUUID().slice(0, 8);
const DOMAIN_A = `figa-${u}.example`;
const DOMAIN_B = `figb-${u}.example`;
/** Sandbox MX (docs/sandbox-mx.md): hard- 550 5.1.1, disabled- 550 5.2.1, spam- 554 after DATA, full- 452 (retried). */
const MIXED = [`alice@${DOMAIN_A}`, `bob@${DOMAIN_A}`, `hard-carl@${DOMAIN_A}`, `spam-dora@${DOMAIN_A}`, `erin@${DOMAIN_B}`, `disabled-finn@${DOMAIN_B}`, 'not-an-address'];

type Counts = { recipients: number; sent: number; failed: number; softWaiting: number; takenIntoAccount: number; excluded: number; successPercent: number };

let h: Harness;
let browser: Browser;
/** A second API of the same stack whose dashboard links workflows to a Temporal UI. */
let uiServer: Server;
let uiApi = '';
const errors = new PageErrors();

beforeAll(async () => {
  h = await startHarness({ env: { DELIVERY_FIGURES_CACHE_MS: '0' } });
  const app = buildApi(h.runtime, { service: h.service, client: h.client, taskQueue: h.taskQueue, temporalUiUrl: TEMPORAL_UI });
  uiServer = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  uiApi = `http://127.0.0.1:${(uiServer.address() as { port: number }).port}`;
  browser = await launchChromium();
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => uiServer?.close(r));
  await h?.stop();
});

afterEach(() => errors.expectNone());

/** A page signed in on the API whose dashboard links workflows to a Temporal UI. */
async function newPage(): Promise<Page> {
  const page = await openPage(browser, errors);
  await signInAt(page, uiApi, h.apiKey);
  return page;
}

const poll = <T>(probe: () => T | Promise<T>, timeout = 15_000) => expect.poll(probe, { timeout });
const sum = (rows: Counts[], k: keyof Counts) => rows.reduce((n, r) => n + (r[k] as number), 0);

describe('delivery figures', () => {
  let doneId = '';

  it('a completed delivery: the timeline ends at the KPIs, domains and sites add up to them and equal SQL over the log', async () => {
    doneId = await h.createDelivery({ name: `Figures ${u}`, from: { address: `news@${DOMAIN_A}` }, subject: 'Figures', text: 'Hello', recipients: MIXED.map((email) => ({ email })), autoConfirm: true });
    await h.waitForPhase(doneId, ['completed'], 120_000);
    const kpis = (await apiCall(h.apiUrl, 'GET', `/api/deliveries/${doneId}`)).json.kpis;
    expect(kpis).toMatchObject({ targeted: 7, excluded: 1, sent: 3, failed: 3, takenIntoAccount: 0 });

    const timeline = await apiCall(h.apiUrl, 'GET', `/api/deliveries/${doneId}/timeline?buckets=20`);
    expect(timeline.status, JSON.stringify(timeline.json)).toBe(200);
    const points = timeline.json.points as { at: string; sent: number; failed: number; takenIntoAccount: number; softWaiting: number }[];
    expect(points.length).toBeGreaterThan(0);
    expect(points.length).toBeLessThanOrEqual(20);
    expect(points[points.length - 1]).toMatchObject({ sent: kpis.sent, failed: kpis.failed, takenIntoAccount: kpis.takenIntoAccount, softWaiting: 0 });
    // Cumulative: never down for final statuses, and every point within sending's span.
    for (let i = 1; i < points.length; i++) {
      expect(points[i].sent).toBeGreaterThanOrEqual(points[i - 1].sent);
      expect(points[i].failed).toBeGreaterThanOrEqual(points[i - 1].failed);
    }
    expect(Date.parse(points[points.length - 1].at)).toBe(Date.parse(timeline.json.to));
    expect(timeline.json.bucketSeconds).toBeGreaterThan(0);

    const domains = (await apiCall(h.apiUrl, 'GET', `/api/deliveries/${doneId}/domains?limit=20`)).json;
    const domainRows = [...(domains.domains as Counts[]), domains.others as Counts];
    expect(sum(domainRows, 'recipients')).toBe(kpis.targeted);
    expect(sum(domainRows, 'sent')).toBe(kpis.sent);
    expect(sum(domainRows, 'failed')).toBe(kpis.failed);
    expect(sum(domainRows, 'excluded')).toBe(kpis.excluded);
    const sql = await h.pool.query<{ domain: string; recipients: number; sent: number; failed: number }>(
      `SELECT domain, count(*)::int AS recipients, count(*) FILTER (WHERE status = 'sent')::int AS sent, count(*) FILTER (WHERE status = 'failed')::int AS failed
       FROM delivery_recipients WHERE delivery_id = $1 GROUP BY domain ORDER BY domain`,
      [doneId],
    );
    const apiDomains = (domains.domains as ({ domain: string } & Counts)[]).map((d) => ({ domain: d.domain, recipients: d.recipients, sent: d.sent, failed: d.failed }));
    expect([...apiDomains].sort((a, b) => a.domain.localeCompare(b.domain))).toEqual(sql.rows);
    expect(domains.domains[0]).toMatchObject({ domain: DOMAIN_A, recipients: 4, sent: 2, failed: 2, successPercent: 50 });
    // limit=1: the rest added up, so the two still make the whole delivery.
    const top1 = (await apiCall(h.apiUrl, 'GET', `/api/deliveries/${doneId}/domains?limit=1`)).json;
    expect(top1.domains).toHaveLength(1);
    expect(top1.others.domains).toBe(2);
    expect(top1.domains[0].recipients + top1.others.recipients).toBe(kpis.targeted);

    const sites = (await apiCall(h.apiUrl, 'GET', `/api/deliveries/${doneId}/mx-sites`)).json.sites as ({ site: string | null; mxHosts: string[]; ruleId: string | null; domainCount: number } & Counts)[];
    expect(sum(sites, 'recipients')).toBe(kpis.targeted);
    expect(sum(sites, 'sent')).toBe(kpis.sent);
    expect(sum(sites, 'failed')).toBe(kpis.failed);
    // Every attempt went to the sandbox MX (MX_OVERRIDES): one site under the catch-all rule, keyed by that host.
    const hosts = await h.pool.query<{ host: string | null; recipients: number; sent: number; failed: number }>(
      `SELECT last_mx_host AS host, count(*)::int AS recipients, count(*) FILTER (WHERE status = 'sent')::int AS sent,
         count(*) FILTER (WHERE status = 'failed')::int AS failed
       FROM delivery_recipients WHERE delivery_id = $1 GROUP BY last_mx_host ORDER BY last_mx_host NULLS LAST`,
      [doneId],
    );
    const attempted = hosts.rows.filter((r) => r.host !== null);
    expect(attempted).toHaveLength(1);
    const site = sites.find((s) => s.site !== null)!;
    expect(site).toMatchObject({ site: `default@${attempted[0].host}`, ruleId: 'default', mxHosts: [attempted[0].host], recipients: attempted[0].recipients, sent: attempted[0].sent, failed: attempted[0].failed });
    const unattempted = hosts.rows.find((r) => r.host === null);
    expect(sites.find((s) => s.site === null)?.recipients ?? 0).toBe(unattempted?.recipients ?? 0);

    // The page: the chart with its text alternative and the two tables, equal to the API.
    const page = await newPage();
    await page.goto(`${uiApi}/dashboard#/deliveries/${doneId}`);
    await page.getByRole('heading', { level: 1, name: new RegExp(`Figures ${u}`) }).waitFor();
    const chart = page.getByTestId('timeline-chart');
    await chart.waitFor();
    expect(await chart.getAttribute('role')).toBe('img');
    const label = (await chart.getAttribute('aria-label'))!;
    expect(label).toContain(`Sent ${kpis.sent}`);
    expect(label).toContain(`Failed ${kpis.failed}`);
    expect(await page.getByTestId('timeline-table').locator('tbody tr').count()).toBe(points.length);
    const domainTable = page.getByRole('table', { name: /recipient domains/ });
    await poll(() => domainTable.locator(`tr[data-domain="${DOMAIN_A}"] td.n`).allTextContents()).toEqual(['4', '2', '2', '0', '50.00 %']);
    expect(await domainTable.locator(`tr[data-domain="${DOMAIN_B}"] td.n`).allTextContents()).toEqual(['2', '1', '1', '0', '50.00 %']);
    const siteTable = page.getByRole('table', { name: /Receiving sites/ });
    await poll(() => siteTable.locator(`tr[data-site="${site.site}"] td.n`).allTextContents()).toEqual([String(site.domainCount), String(site.recipients), String(site.sent), String(site.failed), '0', `${site.successPercent.toFixed(2)} %`]);
    // Drawn once Chart.js has loaded (after the figures): each series ends at the KPIs.
    const drawn = await drawnChart(page, 'Recipients by status over time');
    expect(drawn.labels).toHaveLength(points.length);
    expect(drawn.data.map((series) => series.at(-1))).toEqual([kpis.sent, kpis.failed, 0, kpis.takenIntoAccount]);
    await expectAccessible(page, 'delivery page with its figures');
    await page.screenshot({ path: path.join(RESULTS_DIR, 'dashboard-delivery-figures.png'), fullPage: true });
    await page.context().close();
  });

  it('a recipient waiting for its retry: the live view through the API and on its page, linked to the Temporal UI', async () => {
    const waiting = `full-gus-${u}@${DOMAIN_B}`;
    const id = await h.createDelivery({ name: `Waiting ${u}`, from: { address: `news@${DOMAIN_B}` }, subject: 'Waiting', text: 'Hello', recipients: [{ email: `hana@${DOMAIN_B}` }, { email: waiting }], autoConfirm: true });
    try {
      const find = async () => ((await apiCall(h.apiUrl, 'GET', `/api/deliveries/${id}/recipients?address=full-gus`)).json.recipients as { recipientId: number; status: string; attempts: number }[])[0];
      await poll(async () => {
        const r = await find();
        return r ? `${r.status} ${r.attempts}` : 'none';
      }, 90_000).toBe('taken_into_account 1');
      const rid = (await find()).recipientId;

      const live = await apiCall(h.apiUrl, 'GET', `/api/deliveries/${id}/recipients/${rid}/live`);
      expect(live.status, JSON.stringify(live.json)).toBe(200);
      expect(live.json.workflowId).toBe(recipientWorkflowId(id, rid));
      expect(live.json.temporalUnavailable).toBe(false);
      expect(live.json.state).toMatchObject({ status: 'taken_into_account', attempts: 1, failureReason: 'mailbox_full' });
      expect(Date.parse(live.json.state.nextRetryAt)).toBeGreaterThan(Date.now());
      expect(live.json.state.lastReply.code).toBe(452);
      // A recipient of the log whose workflow never existed: 404 naming the workflow, not a 5xx.
      const excluded = (await apiCall(h.apiUrl, 'GET', `/api/deliveries/${doneId}/recipients?status=excluded`)).json.recipients[0];
      const none = await apiCall(h.apiUrl, 'GET', `/api/deliveries/${doneId}/recipients/${excluded.recipientId}/live`);
      expect(none.status).toBe(404);
      expect(none.json.error).toContain(recipientWorkflowId(doneId, excluded.recipientId));
      expect((await apiCall(h.apiUrl, 'GET', `/api/deliveries/${doneId}/recipients/9999/live`)).status).toBe(404);

      // While it sends, the timeline's last point counts the waiting recipient as the delivery log's KPIs do (the
      // "Soft bounces waiting" tile: taken into account with an attempt behind it).
      const logKpis = await h.service.log.kpis(id);
      expect(logKpis.takenIntoAccount - logKpis.awaitingFirstAttempt).toBe(1);
      const last = (await apiCall(h.apiUrl, 'GET', `/api/deliveries/${id}/timeline`)).json.points.at(-1);
      expect(last).toMatchObject({ sent: logKpis.sent, failed: logKpis.failed, takenIntoAccount: logKpis.takenIntoAccount, softWaiting: 1 });

      const page = await newPage();
      await page.goto(`${uiApi}/dashboard#/deliveries/${id}/recipients/${rid}`);
      await page.getByRole('heading', { level: 1, name: new RegExp(waiting) }).waitFor();
      const state = page.getByTestId('live-state');
      await poll(() => page.getByTestId('live-attempts').textContent()).toBe('1');
      expect(await state.textContent()).toContain('mailbox full');
      expect(await page.getByTestId('live-next-retry').textContent()).not.toBe('—');
      expect(await state.textContent()).toContain('452');
      const link = page.getByTestId('recipient-workflow-link');
      expect(await link.getAttribute('href')).toBe(`${TEMPORAL_UI}/namespaces/default/workflows/${encodeURIComponent(recipientWorkflowId(id, rid))}`);
      await expectAccessible(page, 'recipient page with its live view');
      await page.screenshot({ path: path.join(RESULTS_DIR, 'dashboard-recipient-live.png'), fullPage: true });

      // Its delivery's page while it sends: the chart, refreshed at the figures' pace.
      await page.goto(`${uiApi}/dashboard#/deliveries/${id}`);
      await page.getByTestId('timeline-chart').waitFor();
      await poll(() => page.getByTestId('timeline-chart').getAttribute('aria-label')).toContain('Soft bounces waiting 1');
      // The chart too: its third series (soft bounces waiting) ends at the waiting recipient.
      await poll(async () => (await drawnChart(page, 'Recipients by status over time')).data[2].at(-1)).toBe(1);
      expect(await page.getByText('Refreshed every 10 s while the delivery sends.').count()).toBe(1);
      await expectAccessible(page, 'sending delivery page with its figures');
      await page.context().close();
    } finally {
      await apiCall(h.apiUrl, 'POST', `/api/deliveries/${id}/cancel`, {});
    }
  });
});
