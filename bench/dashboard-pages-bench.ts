/**
 * The dashboard on a large delivery (issue 16): how long its delivery page and the first page of its log take to be
 * usable in a browser, and what open delivery pages cost the sending.
 *
 * A delivery of N recipients (default 100,000) sends to the sandbox sink through the API process of the production
 * layout. Headless Chromium (playwright-core, /usr/bin/chromium) signed in with a read key loads:
 *   - the delivery page until its KPIs are shown (the figures a campaign manager looks at first);
 *   - the log until its first page of recipients is in the table;
 * with an empty browser cache (cold) and as a returning browser (warm). Then the sending rate is measured over nine
 * equal windows: quiet windows in turn with windows where P delivery pages are open (each polling as a person's page
 * does) and windows where the same API requests are replayed at the same rate by a plain HTTP client (so that the
 * browsers' own CPU, which would be on the campaign managers' machines, is not counted), each compared with the quiet
 * ones.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { createDeliverySchema } from '../api/delivery-input';
import { BENCH_FROM, BENCH_TEMPLATE, uploadList } from './analysis-bench';
import { apiCpuSeconds, finalCount, runLoadClient, startApiProcess } from './api-load-bench';
import { cleanPopulation } from './population';
import { childrenOf, postgresCpuSeconds, processCpuSeconds, round, sleep } from './measure';
import type { BenchStack, WorkerTuning } from './stack';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const VIEWPORT = { width: 1366, height: 900 };
/** What shows a page usable: the delivery's Sent figure; the log's first row of recipients. */
const DELIVERY_READY = '[data-kpi="sent"] dd';
const LOG_READY = 'table[aria-label="Recipients"] tbody tr';

export interface DashboardPagesResult {
  recipients: number;
  /** Milliseconds from navigation to usable: with an empty browser cache (each in a new context), then warm. */
  deliveryPageMs: { cold: number[]; warm: number[] };
  logFirstPageMs: { cold: number[]; warm: number[] };
  openPages: number;
  windowSeconds: number;
  /**
   * Each window in order: none (quiet), pages (the pages open in Chromium) or replay (the same requests the pages made,
   * at the same rate, from a plain HTTP client in its own process: the server's share without the browsers' CPU).
   */
  windows: { kind: WindowKind; rate: number; apiCpuMsPerS: number; postgresCpuMsPerS: number; chromiumCpuMsPerS: number }[];
  /** The API requests the open pages made per second, by path (routes with the delivery's id as :id). */
  pageRequestsPerSecond: Record<string, number>;
  /** 1 − mean(windows of that kind) ÷ mean(quiet windows). */
  sendRateDrop: { pages: number; replay: number };
  /** CPU per second in the windows with the pages open, beyond the quiet windows' mean. */
  extraCpuMsPerSecond: { api: number; postgres: number; chromium: number };
}

type WindowKind = 'none' | 'pages' | 'replay';
const WINDOWS: WindowKind[] = ['none', 'pages', 'none', 'replay', 'none', 'pages', 'none', 'replay', 'none'];

async function signedInContext(browser: Browser, baseUrl: string, key: string): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: VIEWPORT });
  const r = await context.request.post(`${baseUrl}/api/session`, { headers: { authorization: `Bearer ${key}` } });
  if (r.status() !== 201) throw new Error(`dashboard-pages: sign-in answered ${r.status()}: ${await r.text()}`);
  return context;
}

/** Loads `url` in a new page of `context` and waits for `ready`; the elapsed milliseconds. */
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

/** Chromium's processes: the bench's descendants named chrom…. */
function chromiumPids(): number[] {
  const descendants = (pid: number): number[] => childrenOf(pid).flatMap((c) => [c, ...descendants(c)]);
  return descendants(process.pid).filter((p) => {
    try {
      return fs.readFileSync(`/proc/${p}/comm`, 'utf8').startsWith('chrom');
    } catch {
      return false;
    }
  });
}

const chromiumCpuSeconds = () => chromiumPids().reduce((a, p) => a + processCpuSeconds(p), 0);

/**
 * Puts every Chromium process and thread in the idle scheduling class (SCHED_IDLE: it runs only on a core nothing else
 * wants); renderers started later inherit it from the zygote. The pages' browsers would run on the campaign managers'
 * machines, not on the server: the windows then measure what the pages' requests cost the server.
 */
function idleScheduling(): void {
  const pids = chromiumPids();
  if (pids.length === 0) throw new Error('dashboard-pages: found no Chromium process');
  for (const p of pids) execFileSync('chrt', ['--all-tasks', '--idle', '--pid', '0', String(p)]);
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
    const deliveryUrl = `${api.url}/dashboard#/deliveries/${id}`;
    const logUrl = `${api.url}/dashboard#/deliveries/${id}/log`;

    // Cold: a new context for each load, nothing cached (the dashboard's modules and Chart.js included).
    const deliveryPageMs = { cold: [] as number[], warm: [] as number[] };
    const logFirstPageMs = { cold: [] as number[], warm: [] as number[] };
    for (let i = 0; i < 2; i++) {
      for (const [url, ready, out] of [[deliveryUrl, DELIVERY_READY, deliveryPageMs.cold], [logUrl, LOG_READY, logFirstPageMs.cold]] as const) {
        const context = await signedInContext(browser, api.url, key);
        out.push(await timedLoad(context, url, ready));
        await context.close();
      }
    }
    // Warm: a returning browser (its files cached by one unmeasured load of each page).
    const warm = await signedInContext(browser, api.url, key);
    await timedLoad(warm, deliveryUrl, DELIVERY_READY);
    await timedLoad(warm, logUrl, LOG_READY);
    for (let i = 0; i < opts.loads; i++) {
      deliveryPageMs.warm.push(await timedLoad(warm, deliveryUrl, DELIVERY_READY));
      logFirstPageMs.warm.push(await timedLoad(warm, logUrl, LOG_READY));
    }
    await warm.close();
    log(`dashboard-pages: delivery page cold ${deliveryPageMs.cold.join(', ')} ms, warm ${deliveryPageMs.warm.join(', ')} ms`);
    log(`dashboard-pages: log first page cold ${logFirstPageMs.cold.join(', ')} ms, warm ${logFirstPageMs.warm.join(', ')} ms`);

    // The pages stay open throughout; between the windows with the pages open they show a blank page (no polling).
    // Windows alternate so that the delivery's own drift in rate falls on both kinds.
    const apiPid = api.child.pid!;
    idleScheduling();
    const context = await signedInContext(browser, api.url, key);
    const pages = await Promise.all(Array.from({ length: opts.openPages }, () => context.newPage()));
    const windows: DashboardPagesResult['windows'] = [];
    // What the pages ask of the API while they are open, to replay it without them.
    const asked = new Map<string, number>();
    let counting = false;
    context.on('request', (r) => {
      const url = new URL(r.url());
      if (counting && url.pathname.startsWith('/api/')) asked.set(url.pathname + url.search, (asked.get(url.pathname + url.search) ?? 0) + 1);
    });
    let pageSeconds = 0;
    for (const kind of WINDOWS) {
      if (kind === 'pages') {
        // Loaded before the window starts: it measures the pages polling, not loading.
        for (const page of pages) {
          await page.goto(deliveryUrl);
          await page.locator(DELIVERY_READY).first().waitFor({ timeout: 120_000 });
        }
        const hidden = (await Promise.all(pages.map((p) => p.evaluate(() => (globalThis as unknown as { document: { hidden: boolean } }).document.hidden)))).filter(Boolean).length;
        if (hidden > 0) throw new Error(`dashboard-pages: ${hidden} of the open pages report document.hidden, so they would not poll`);
      } else {
        for (const page of pages) await page.goto('about:blank');
      }
      const c0 = await finalCount(stack, id);
      const cpu0 = { api: apiCpuSeconds(apiPid), pg: postgresCpuSeconds(stack.pgDataDir), chromium: chromiumCpuSeconds() };
      const t0 = performance.now();
      if (kind === 'replay') {
        // The pages' requests in their proportions, at their rate (autocannon cycles through the list in order).
        const paths = [...asked].flatMap(([path, count]) => Array.from({ length: count }, () => path));
        const rate = Math.max(1, Math.round(paths.length / pageSeconds));
        await runLoadClient({ baseUrl: api.url, apiKey: key, paths, ratePerSecond: rate, seconds: w, connections: opts.openPages });
      } else {
        counting = kind === 'pages';
        await sleep(w * 1000);
        counting = false;
      }
      const seconds = (performance.now() - t0) / 1000;
      if (kind === 'pages') pageSeconds += seconds;
      const perS = (x: number) => round((x * 1000) / seconds, 1);
      const win = {
        kind,
        rate: round(((await finalCount(stack, id)) - c0) / seconds, 2),
        apiCpuMsPerS: perS(apiCpuSeconds(apiPid) - cpu0.api),
        postgresCpuMsPerS: perS(postgresCpuSeconds(stack.pgDataDir) - cpu0.pg),
        chromiumCpuMsPerS: perS(chromiumCpuSeconds() - cpu0.chromium),
      };
      windows.push(win);
      log(`dashboard-pages: ${kind === 'pages' ? `${opts.openPages} pages open` : kind === 'replay' ? "their requests replayed" : 'no page open'}: ${win.rate}/s (CPU ms/s: API ${win.apiCpuMsPerS}, Postgres ${win.postgresCpuMsPerS}, Chromium ${win.chromiumCpuMsPerS})`);
    }
    await context.close();
    if ((await finalCount(stack, id)) >= n) log('dashboard-pages: WARNING the delivery completed during the windows; use more recipients');
    await stack.service.cancel(id, 'bench dashboard-pages done').catch(() => undefined);

    const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
    const of = (kind: WindowKind, f: (x: DashboardPagesResult['windows'][number]) => number) => mean(windows.filter((x) => x.kind === kind).map(f));
    const quiet = of('none', (x) => x.rate);
    const drop = (kind: WindowKind) => round(quiet > 0 ? 1 - of(kind, (x) => x.rate) / quiet : NaN, 3);
    const byRoute = new Map<string, number>();
    for (const [path, count] of asked) {
      const route = path.split('?')[0].replaceAll(id, ':id');
      byRoute.set(route, (byRoute.get(route) ?? 0) + count);
    }
    return {
      recipients: n,
      deliveryPageMs,
      logFirstPageMs,
      openPages: opts.openPages,
      windowSeconds: w,
      windows,
      pageRequestsPerSecond: Object.fromEntries([...byRoute].map(([route, count]) => [route, round(count / pageSeconds, 2)])),
      sendRateDrop: { pages: drop('pages'), replay: drop('replay') },
      extraCpuMsPerSecond: {
        api: round(of('pages', (x) => x.apiCpuMsPerS) - of('none', (x) => x.apiCpuMsPerS), 1),
        postgres: round(of('pages', (x) => x.postgresCpuMsPerS) - of('none', (x) => x.postgresCpuMsPerS), 1),
        chromium: round(of('pages', (x) => x.chromiumCpuMsPerS) - of('none', (x) => x.chromiumCpuMsPerS), 1),
      },
    };
  } finally {
    await browser.close().catch(() => undefined);
    api.child.kill('SIGTERM');
    await sleep(500);
    if (api.child.exitCode === null) api.child.kill('SIGKILL');
  }
}
