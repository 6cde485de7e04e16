/**
 * What the dashboard's browser tests share: headless Chromium (playwright-core driving /usr/bin/chromium, or
 * CHROMIUM_PATH), pages that record their own errors, signing in with a key, axe-core run inside a page, and what a
 * chart drew.
 */
import fs from 'node:fs';
import { expect } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** A laptop screen. */
export const VIEWPORT = { width: 1366, height: 900 };
const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

// The project compiles without the DOM types: the few browser-side functions go through globalThis.
type AxeResult = { violations: { id: string; impact: string | null; help: string; nodes: { target: unknown }[] }[] };

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
}

/**
 * What went wrong inside the pages of the current test: uncaught exceptions, CSP refusals and script errors (console
 * errors). "Failed to load resource" is the browser's line for an answer the page expected (a 401 of a wrong key, a
 * 400 it shows, a 404 of an address without a quarantine record), not the page's fault.
 */
export class PageErrors {
  private readonly seen: string[] = [];

  watch(page: Page): Page {
    page.on('pageerror', (e) => this.seen.push(`uncaught: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) this.seen.push(`console: ${m.text()}`);
    });
    return page;
  }

  /** Run after each test: the errors of its pages, none expected. */
  expectNone(): void {
    expect(this.seen.splice(0), 'errors in the dashboard').toEqual([]);
  }
}

/** A page in a context of its own (its own cookies: one signed-in key), watched for errors. */
export async function newPage(browser: Browser, errors: PageErrors, o: { acceptDownloads?: boolean } = {}): Promise<Page> {
  const context = await browser.newContext({ viewport: VIEWPORT, acceptDownloads: o.acceptDownloads ?? false });
  return errors.watch(await context.newPage());
}

/** Signs in with `key` on the dashboard (or on one of its pages, `hash`), and waits for that page's heading. */
export async function signIn(page: Page, baseUrl: string, key: string, o: { hash?: string; heading?: string } = {}): Promise<void> {
  await page.goto(`${baseUrl}/dashboard${o.hash ?? ''}`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: o.heading ?? 'Deliveries' }).waitFor();
}

/** axe-core inside the page (evaluated through the debugging protocol, so the page's CSP stays as it is). */
export async function expectAccessible(page: Page, what: string): Promise<void> {
  await page.evaluate(AXE_SOURCE);
  const result = (await page.evaluate(() => (globalThis as unknown as { axe: { run(): Promise<unknown> } }).axe.run())) as AxeResult;
  const serious = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(serious.map((v) => `${v.impact} ${v.id}: ${v.help} at ${JSON.stringify(v.nodes.map((n) => n.target))}`), what).toEqual([]);
}

/** What a Chart.js chart holds: its labels, and each dataset's values. */
export interface DrawnChart {
  labels: string[];
  data: number[][];
}

/**
 * The chart drawn on the canvas whose label starts with `label`, once Chart.js (loaded by the page after its figures,
 * dashboard/components.js) has drawn it; with `expected`, once its labels and values are those.
 */
export async function drawnChart(page: Page, label: string, expected?: DrawnChart): Promise<DrawnChart> {
  const found = await page.waitForFunction(
    ({ label, expected }) => {
      const g = globalThis as unknown as {
        Chart?: { getChart(c: unknown): { data: { labels: unknown[]; datasets: { data: unknown[] }[] } } | undefined };
        document: { querySelectorAll(s: string): Iterable<{ getAttribute(n: string): string | null }> };
      };
      const canvas = [...g.document.querySelectorAll('canvas')].find((c) => (c.getAttribute('aria-label') ?? '').startsWith(label));
      const chart = canvas && g.Chart?.getChart(canvas);
      if (!chart) return null;
      const drawn = { labels: chart.data.labels.map(String), data: chart.data.datasets.map((d) => d.data.map(Number)) };
      return !expected || JSON.stringify(drawn) === JSON.stringify(expected) ? drawn : null;
    },
    { label, expected },
    { timeout: 15_000 },
  );
  return (await found.jsonValue()) as DrawnChart;
}

/** Waits until every chart of the page is drawn (before a screenshot that shows them). */
export async function chartsDrawn(page: Page): Promise<void> {
  await page.waitForFunction(
    () => {
      const g = globalThis as unknown as { Chart?: { getChart(c: unknown): unknown }; document: { querySelectorAll(s: string): Iterable<unknown> } };
      const canvases = [...g.document.querySelectorAll('canvas')];
      return canvases.every((c) => g.Chart?.getChart(c) !== undefined);
    },
    undefined,
    { timeout: 15_000 },
  );
}
