/**
 * The Temporal Web UI decodes sealed payloads through the API's codec server: a dev server started with
 * `--ui-codec-endpoint` pointing at the API (as `npm start` does), a real delivery with a hard bounce, and headless
 * Chromium opening the recipient workflow's page. The codec server needs a `read` key: the browser, not signed in,
 * gets 401s and the page shows no address; signed in through the API's sign-in page (a session cookie), the UI (with
 * "include cross-origin credentials" on, as docs/access-control.md says) decodes, and the decoded result (the SMTP
 * reply quoting the address) is visible in the page; screenshots of both are saved under test-results/.
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
import { apiCall, waitUntil } from './support/http';

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

    const context = await browser!.newContext({ viewport: { width: 1400, height: 1800 } });
    // What the UI's own "Codec Server" settings write when a user overrides the endpoint and turns on "include
    // cross-origin credentials" (the dev server has no flag for it): the browser then sends its session cookie.
    await context.addInitScript(
      ([origin, endpoint]) => {
        const w = globalThis as unknown as { location: { origin: string }; localStorage: { setItem(k: string, v: string): void } };
        if (w.location.origin !== origin) return;
        w.localStorage.setItem('overrideRemoteCodecConfiguration', 'true');
        w.localStorage.setItem('endpoint', JSON.stringify(endpoint));
        w.localStorage.setItem('includeCredentials', 'true');
      },
      [uiUrl, `${h!.apiUrl}/codec`],
    );
    const tab = await context.newPage();
    const codecCalls: number[] = [];
    tab.on('response', (r) => {
      if (r.url().includes('/codec/decode')) codecCalls.push(r.status());
    });
    const workflowPage = `${uiUrl}/namespaces/default/workflows/${encodeURIComponent(handle.workflowId)}/${runId}/history`;

    // Not signed in: the codec server refuses (401), and the page shows the payloads sealed.
    await tab.goto(workflowPage, { waitUntil: 'domcontentloaded' });
    await waitUntil('a codec call from the UI', async () => codecCalls.length > 0, 60_000, 250);
    fs.mkdirSync(RESULTS_DIR, { recursive: true });
    await tab.screenshot({ path: path.join(RESULTS_DIR, 'codec-ui-not-signed-in.png'), fullPage: true });
    expect(codecCalls.every((s) => s === 401), `codec answers without a session: ${codecCalls.join(', ')}`).toBe(true);
    expect(await tab.evaluate(pageText)).not.toContain(HARD);

    // Sign in on the API's page with a read key: the browser keeps a session cookie.
    const reader = await h!.createApiKey(['read'], `codec ui reader ${u}`);
    await tab.goto(`${h!.apiUrl}/session`, { waitUntil: 'domcontentloaded' });
    await tab.fill('#key', reader.secret);
    await tab.click('button[type=submit]');
    await tab.waitForFunction(() => (globalThis as unknown as { document: { getElementById(id: string): { textContent: string } } }).document.getElementById('out').textContent.startsWith('Signed in'), undefined, { timeout: 10_000 });
    const cookies = await context.cookies(h!.apiUrl);
    expect(cookies.find((c) => c.name === 'ede_session')).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    expect(JSON.stringify(cookies)).not.toContain(reader.secret);

    codecCalls.length = 0;
    await tab.goto(workflowPage, { waitUntil: 'domcontentloaded' });
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
    await context.close();
  });
});
