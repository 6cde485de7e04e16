/**
 * The Temporal Web UI decodes sealed payloads through the API's codec server: a dev server started with
 * `--ui-codec-endpoint` pointing at the API (as `npm start` does), a real delivery with a hard bounce, and headless
 * Chromium opening the recipient workflow's page. The decoded result (the SMTP reply quoting the address) must be
 * visible in the page; a screenshot is saved under test-results/.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { startDevServer, type RunningDevServer } from '../stack/temporal-dev-server';
import { freePort } from '../stack/ports';
import { recipientWorkflowId } from '../workflows/contract';
import { startHarness, type Harness } from './support/harness';
import { apiCall } from './support/http';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const RESULTS_DIR = path.join(__dirname, '..', 'test-results');
const u = randomUUID().slice(0, 8);
const DOMAIN = `codec-ui-${u}.example`;
const HARD = `hard-ui-${u}@${DOMAIN}`;

/** The page's visible text; runs in the browser (the project compiles without the DOM types). */
const pageText = () => (globalThis as unknown as { document: { body: { innerText: string } } }).document.body.innerText;

let tmp = '';
let temporal: RunningDevServer | null = null;
let h: Harness | null = null;
let browser: Browser | null = null;
let uiUrl = '';

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'codec-ui-'));
  const [apiPort, uiPort, temporalPort] = [await freePort(), await freePort(), await freePort()];
  uiUrl = `http://127.0.0.1:${uiPort}`;
  temporal = await startDevServer({
    cliPath: inject('temporalCliPath'),
    address: `127.0.0.1:${temporalPort}`,
    uiPort,
    namespace: 'default',
    logFile: path.join(tmp, 'temporal.log'),
    uiCodecEndpoint: `http://127.0.0.1:${apiPort}/codec`,
  });
  h = await startHarness({ apiPort, env: { TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`, CODEC_CORS_ORIGINS: uiUrl } });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await h?.stop();
  await temporal?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('Temporal Web UI through the codec server', () => {
  it('shows a recipient workflow result decoded (the SMTP reply quoting the address)', async () => {
    const created = await apiCall(h!.apiUrl, 'POST', '/api/deliveries', {
      name: `codec ui ${u}`,
      from: { address: `news@${DOMAIN}`, name: 'Codec UI' },
      subject: 'Hello',
      text: 'Hello',
      recipients: [{ email: HARD }],
      autoConfirm: true,
    });
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    const deliveryId = created.json.id as string;
    await h!.waitForPhase(deliveryId, ['completed'], 120_000);
    const page = await apiCall(h!.apiUrl, 'GET', `/api/deliveries/${deliveryId}/recipients`);
    const rid = page.json.recipients[0].recipientId as number;
    const handle = h!.client.workflow.getHandle(recipientWorkflowId(deliveryId, rid));
    const result = await handle.result();
    expect(JSON.stringify(result)).toContain(HARD);
    const { runId } = await handle.describe();

    // The server holds it sealed: without the codec the UI would show "binary/encrypted" and base64.
    const history = JSON.stringify(await handle.fetchHistory());
    expect(history).not.toContain(HARD);

    const tab = await browser!.newPage({ viewport: { width: 1400, height: 1800 } });
    const codecCalls: number[] = [];
    tab.on('response', (r) => {
      if (r.url().includes('/codec/decode')) codecCalls.push(r.status());
    });
    await tab.goto(`${uiUrl}/namespaces/default/workflows/${encodeURIComponent(handle.workflowId)}/${runId}/history`, { waitUntil: 'domcontentloaded' });
    let found = false;
    try {
      await tab.waitForFunction(
        (text) => (globalThis as unknown as { document: { body: { innerText: string } } }).document.body.innerText.includes(text),
        HARD,
        { timeout: 60_000, polling: 500 },
      );
      found = true;
    } finally {
      fs.mkdirSync(RESULTS_DIR, { recursive: true });
      await tab.screenshot({ path: path.join(RESULTS_DIR, 'codec-ui-recipient-workflow.png'), fullPage: true });
    }
    expect(found).toBe(true);
    const text = await tab.evaluate(pageText);
    expect(text).toContain(HARD);
    expect(text).toMatch(/user unknown/);
    expect(codecCalls.length, 'the UI called the codec server').toBeGreaterThan(0);
    expect(codecCalls.every((s) => s === 200)).toBe(true);
    await tab.close();
  });
});
