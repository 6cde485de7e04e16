/**
 * The dashboard on a large delivery (issue 16): how long its delivery page and the first page of its log take to be
 * usable in a browser, and what open delivery pages cost the sending.
 *
 * A delivery of N recipients (default 100,000) sends to the sandbox sink through the API process of the production
 * layout. Headless Chromium (playwright-core, /usr/bin/chromium) signed in with a read key loads:
 *   - the delivery page until its KPIs and phase are shown (the figures a campaign manager looks at first);
 *   - the log until its first page of recipients is in the table;
 * first with an empty browser cache (cold), then again (warm), each several times. Then the sending rate is measured
 * over three equal windows: no page open, P delivery pages open (each polling as a person's page does), none again;
 * the loaded window is compared with the mean of the two quiet ones, as in the API load bench.
 */
import fs from 'node:fs';
import os from 'node:os';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { createDeliverySchema } from '../api/delivery-input';
import { BENCH_FROM, BENCH_TEMPLATE, uploadList } from './analysis-bench';
import { apiCpuSeconds, finalCount, startApiProcess } from './api-load-bench';
import { cleanPopulation } from './population';
import { childrenOf, median, postgresCpuSeconds, round, sleep } from './measure';
import type { BenchStack, WorkerTuning } from './stack';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const VIEWPORT = { width: 1366, height: 900 };

export interface DashboardPagesResult {
  recipients: number;
  /** Milliseconds from navigation to usable, for each load (the first of each list with an empty cache). */
  deliveryPageMs: number[];
  logFirstPageMs: number[];
  deliveryPageMedianMs: number;
  logFirstPageMedianMs: number;
  openPages: number;
  windowSeconds: number;
  sendRate: { quietBefore: number; loaded: number; quietAfter: number };
  sendRateDrop: number;
  /** CPU the API process and Postgres spent per second with the pages open, beyond the quiet windows' mean. */
  extraCpuMsPerSecond: { api: number; postgres: number };
}

async function signedInContext(browser: Browser, baseUrl: string, key: string): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: VIEWPORT });
  const r = await context.request.post(`${baseUrl}/api/session`, { headers: { authorization: `Bearer ${key}` } });
  if (r.status() !== 201) throw new Error(`dashboard-pages: sign-in answered ${r.status()}: ${await r.text()}`);
  return context;
}

/** Loads `hash` in a new page of `context` and waits for `ready`; the elapsed milliseconds. */
async function timedLoad(context: BrowserContext, url: string, ready: string): Promise<number> {
  const page = await context.newPage();
  try {
    const t0 = performance.now();
    await page.goto(url);
    await page.locator(ready).first().waitFor({ timeout: 60_000 });
    return Math.round(performance.now() - t0);
  } finally {
    await page.close();
  }
}

/** Renices Chromium (the bench's descendant processes named chrom…) to 19; renderers started later inherit it. */
function lowestPriority(): number {
  const descendants = (pid: number): number[] => childrenOf(pid).flatMap((c) => [c, ...descendants(c)]);
  const browsers = descendants(process.pid).filter((p) => {
    try {
      return fs.readFileSync(`/proc/${p}/comm`, 'utf8').startsWith('chrom');
    } catch {
      return false;
    }
  });
  if (browsers.length === 0) throw new Error('dashboard-pages: found no Chromium process to lower the priority of');
  for (const p of browsers) os.setPriority(p, 19);
  return browsers.length;
}

export async function runDashboardPagesBench(
  stack: BenchStack,
  opts: { recipients: number; openPages: number; windowSeconds: number; loads: number; tuning: WorkerTuning; readKey: () => Promise<string>; log: (m: string) => void },
): Promise<DashboardPagesResult> {
  const { log, recipients: n, windowSeconds: w } = opts;
  log(`dashboard-pages: ${n.toLocaleString('en')} recipients, ${opts.openPages} open pages, windows of ${w} s`);
  const upload = await uploadList(stack, cleanPopulation(n), `bench dashboard ${n}`);
  await stack.startWorker(opts.tuning);
  await stack.deps.keys.ensureKey(BENCH_FROM.address.split('@')[1], stack.settings.DKIM_SELECTOR, 'rsa-sha256');
  const api = await startApiProcess(stack, log);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  try {
    const key = await opts.readKey();
    const input = createDeliverySchema.parse({ name: `bench dashboard ${n}`, from: BENCH_FROM, ...BENCH_TEMPLATE, listId: upload.listId, autoConfirm: true, validity: '1d' });
    const { id } = await stack.service.create(input);
    const warmDeadline = Date.now() + 15 * 60_000;
    while ((await finalCount(stack, id)) < 200) {
      if (Date.now() > warmDeadline) throw new Error('dashboard-pages: the delivery did not start sending within 15 minutes');
      await sleep(500);
    }

    // Usable: the delivery page shows its Sent figure (KPIs come with the phase and waves in one answer); the log shows
    // its first row of recipients.
    const deliveryUrl = `${api.url}/dashboard#/deliveries/${id}`;
    const logUrl = `${api.url}/dashboard#/deliveries/${id}/log`;
    const deliveryPageMs: number[] = [];
    const logFirstPageMs: number[] = [];
    let warm: BrowserContext | undefined;
    for (let i = 0; i < opts.loads; i++) {
      // The first load of each kind in a fresh context: nothing cached (the dashboard's modules and Chart.js included).
      const context = i === 0 ? await signedInContext(browser, api.url, key) : (warm ??= await signedInContext(browser, api.url, key));
      deliveryPageMs.push(await timedLoad(context, deliveryUrl, '[data-kpi="sent"] dd'));
      logFirstPageMs.push(await timedLoad(context, logUrl, 'table[aria-label="Recipients"] tbody tr'));
      if (i === 0) await context.close();
    }
    await warm?.close();
    log(`dashboard-pages: delivery page ${deliveryPageMs.join(', ')} ms; log first page ${logFirstPageMs.join(', ')} ms`);

    const apiPid = api.child.pid!;
    const windowRate = async (during?: () => Promise<unknown>) => {
      const c0 = await finalCount(stack, id);
      const cpu0 = { api: apiCpuSeconds(apiPid), pg: postgresCpuSeconds(stack.pgDataDir) };
      const t0 = performance.now();
      await (during ? during() : sleep(w * 1000));
      const seconds = (performance.now() - t0) / 1000;
      const rate = ((await finalCount(stack, id)) - c0) / seconds;
      return { rate: round(rate, 2), apiCpuPerS: ((apiCpuSeconds(apiPid) - cpu0.api) * 1000) / seconds, pgCpuPerS: ((postgresCpuSeconds(stack.pgDataDir) - cpu0.pg) * 1000) / seconds };
    };
    const before = await windowRate();
    log(`dashboard-pages: quiet window ${before.rate}/s`);
    // The pages are opened before the loaded window starts: it measures them polling, not loading. Their browsers
    // would run on the campaign managers' machines, not on the server: here Chromium shares the server's two cores, so
    // from now on it runs at the lowest priority and takes only what sending leaves idle. What the window measures is
    // then what the pages' requests cost the server (the API process and Postgres), which is what the target is about.
    lowestPriority();
    const context = await signedInContext(browser, api.url, key);
    const pages = [];
    for (let i = 0; i < opts.openPages; i++) {
      const page = await context.newPage();
      await page.goto(deliveryUrl);
      await page.locator('[data-kpi="sent"] dd').first().waitFor({ timeout: 60_000 });
      pages.push(page);
    }
    // A page polls only while visible: make sure these count.
    const hidden = (await Promise.all(pages.map((p) => p.evaluate(() => (globalThis as unknown as { document: { hidden: boolean } }).document.hidden)))).filter(Boolean).length;
    if (hidden > 0) throw new Error(`dashboard-pages: ${hidden} of the open pages report document.hidden, so they would not poll`);
    const loaded = await windowRate(() => sleep(w * 1000));
    await context.close();
    log(`dashboard-pages: ${opts.openPages} pages open: ${loaded.rate}/s`);
    const after = await windowRate();
    log(`dashboard-pages: quiet window ${after.rate}/s`);
    if ((await finalCount(stack, id)) >= n) log('dashboard-pages: WARNING the delivery completed during the windows; use more recipients');
    await stack.service.cancel(id, 'bench dashboard-pages done').catch(() => undefined);
    const quiet = (before.rate + after.rate) / 2;
    return {
      recipients: n,
      deliveryPageMs,
      logFirstPageMs,
      deliveryPageMedianMs: median(deliveryPageMs),
      logFirstPageMedianMs: median(logFirstPageMs),
      openPages: opts.openPages,
      windowSeconds: w,
      sendRate: { quietBefore: before.rate, loaded: loaded.rate, quietAfter: after.rate },
      sendRateDrop: round(quiet > 0 ? 1 - loaded.rate / quiet : NaN, 3),
      extraCpuMsPerSecond: {
        api: round(loaded.apiCpuPerS - (before.apiCpuPerS + after.apiCpuPerS) / 2, 1),
        postgres: round(loaded.pgCpuPerS - (before.pgCpuPerS + after.pgCpuPerS) / 2, 1),
      },
    };
  } finally {
    await browser.close().catch(() => undefined);
    api.child.kill('SIGTERM');
    await sleep(500);
    if (api.child.exitCode === null) api.child.kill('SIGKILL');
  }
}
