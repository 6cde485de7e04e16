/**
 * `npm start`: runs the whole embedded stack, creates an admin API key for the sandbox (printed; the previous one is
 * revoked), sends the sample delivery through the API with that key and shows its live progress, then serves until
 * Ctrl-C.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { parseSettings, type Settings } from '../config/settings';
import { startEmbeddedStack, type RunningStack } from '../stack/embedded-stack';
import { explainStartupFailure } from '../stack/startup-error';
import { sampleDelivery } from './sample-delivery';
import type { DeliveryKpis } from '../domain/efs-status';
import { ApiKeyStore, createApiKey } from '../db/api-key-store';
import type { AuditActor } from '../db/audit-log-store';

/** Set by Ctrl-C / SIGTERM: from then on the shutdown owns the process. */
let stopping = false;
/** For the failure report: the settings (to name the variable behind a taken port) and the stack to stop. */
let knownSettings: Settings | undefined;
let runningStack: RunningStack | undefined;

async function main() {
  // The worker's own INFO lines (bundle, state changes) would scroll the progress bar away.
  Runtime.install({ logger: new DefaultLogger('WARN') });
  // The sandbox demo compresses soft-bounce retry delays (minutes and hours become seconds) unless told otherwise.
  const settings = parseSettings({ RETRY_TIME_SCALE: '0.002', ...process.env });
  knownSettings = settings;
  const t0 = Date.now();
  const stack = await startEmbeddedStack(settings, (m) => console.log(`· ${m}`));
  runningStack = stack;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping worker, API, sandbox MX, Postgres and Temporal...`);
    await stack.stop();
    console.log('stopped.');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  console.log(`· stack ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const apiKey = await sandboxAdminKey(stack);
  // The API listens on loopback; PUBLIC_URL (stack.apiUrl) may name the address the outside world uses.
  const api = apiClient(`http://127.0.0.1:${settings.API_PORT}`, apiKey);
  const created = await api<{ id: string; workflowId: string; recipients: number }>('POST', '/api/deliveries', sampleDelivery());
  console.log(`· sample delivery ${created.id}: ${created.recipients} recipients, workflow ${created.workflowId}`);

  const bar = new SingleBar(
    {
      format: 'sending |{bar}| {value}/{total} final · sent {sent} · failed {failed} · retrying {retrying} · {phase}',
      hideCursor: true,
      // Piped output (CI, logs) gets a line every 2 s instead of a redrawn bar.
      noTTYOutput: true,
      notTTYSchedule: 2000,
    },
    Presets.shades_classic,
  );
  let started = false;
  let kpis: DeliveryKpis | null = null;
  let phase = '';
  for (;;) {
    // Ctrl-C during the sample: the shutdown owns the process from here.
    if (stopping) return;
    // The API answers the workflow's KPIs while it runs and the delivery log's once it has ended (late bounces and
    // complaints still arrive after it completed).
    const view = await api<{ state: string; kpis: DeliveryKpis }>('GET', `/api/deliveries/${created.id}`);
    if (stopping) return;
    kpis = view.kpis;
    phase = view.state;
    // "To deliver" is only final once analysis has excluded what it excludes.
    if (phase !== 'analysing' && !started && kpis.toDeliver > 0) {
      bar.start(kpis.toDeliver, 0, { sent: 0, failed: 0, retrying: 0, phase });
      started = true;
    }
    if (started) bar.setTotal(kpis.toDeliver);
    if (started) bar.update(kpis.sent + kpis.failed, { sent: kpis.sent, failed: kpis.failed, retrying: kpis.takenIntoAccount, phase });
    if (phase === 'completed' || phase === 'cancelled' || phase === 'analysis_failed') break;
    await new Promise((r) => setTimeout(r, 500));
  }
  bar.stop();
  const k = kpis!;
  console.log('\nEFS KPIs');
  console.table({
    targeted: k.targeted,
    excluded: k.excluded,
    'to deliver': k.toDeliver,
    'taken into account': k.takenIntoAccount,
    sent: k.sent,
    failed: k.failed,
    'failed by a later report (DSN)': k.failedByReport,
    complaints: k.complaints,
    'Success %': `${k.successPercent}%`,
  });
  console.log('failures by reason:', k.failuresByReason);
  console.log(`\nAPI key      ${apiKey}  (admin, for this sandbox; the next npm start revokes it)`);
  console.log(`  curl -H "Authorization: Bearer ${apiKey}" ${stack.apiUrl}/api/deliveries/${created.id}`);
  console.log(`API          ${stack.apiUrl}/api/deliveries/${created.id}`);
  console.log(`Recipients   ${stack.apiUrl}/api/deliveries/${created.id}/recipients`);
  console.log(`DKIM keys    ${stack.apiUrl}/api/dkim/keys`);
  if (stack.temporalUiUrl) {
    const q = encodeURIComponent(`DeliveryId="${created.id}"`);
    console.log(`Temporal UI  ${stack.temporalUiUrl}/namespaces/${stack.settings.TEMPORAL_NAMESPACE}/workflows?query=${q}`);
    // Payloads are sealed in Temporal; the UI opens them through the API's codec server (docs/personal-data.md).
    console.log(`Codec        http://127.0.0.1:${stack.settings.API_PORT}/codec (the UI decodes payloads through it once this browser is signed in:`);
    console.log(`             ${stack.apiUrl}/session with the key above; docs/access-control.md says which UI setting to turn on)`);
  }
  console.log('\nServing until Ctrl-C.');
}

const SANDBOX_ACTOR: AuditActor = { keyId: null, name: 'npm start' };

/**
 * A fresh admin key for this run of the sandbox. The one the previous run printed is revoked: a sandbox key lives as
 * long as the run that printed it, so keys do not pile up in the table nor stay valid in old terminal scrollback.
 */
async function sandboxAdminKey(stack: RunningStack): Promise<string> {
  const store = new ApiKeyStore(stack.runtime.pool);
  for (const k of await store.list()) {
    if (k.createdBy.keyId === null && k.createdBy.name === SANDBOX_ACTOR.name) await store.revoke(k.id, SANDBOX_ACTOR);
  }
  const { secret } = await createApiKey(stack.runtime.pool, { name: 'sandbox admin (npm start)', scopes: ['admin'], createdBy: SANDBOX_ACTOR });
  console.log(`· API key for this sandbox (admin): ${secret}`);
  return secret;
}

/** JSON calls to the API with the key; an error answer fails with its status and message. */
function apiClient(baseUrl: string, key: string) {
  return async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(baseUrl + path, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json().catch(() => null)) as (T & { error?: string }) | null;
    if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${json?.error ?? 'no JSON body'}`);
    return json as T;
  };
}

/** Keeps the stack trace of an unexpected failure in DATA_DIR/start-error.log; returns a note pointing there. */
function saveTrace(e: unknown): string {
  if (!(e instanceof Error) || !e.stack || !knownSettings) return '';
  try {
    const file = path.join(knownSettings.DATA_DIR, 'start-error.log');
    fs.mkdirSync(knownSettings.DATA_DIR, { recursive: true });
    fs.appendFileSync(file, `${new Date().toISOString()} ${e.stack}\n`);
    return ` (stack trace in ${file})`;
  } catch {
    return '';
  }
}

// Every failure ends in one line: what failed, and what to do about it.
main().catch(async (e) => {
  if (stopping) return; // a request cut short by the shutdown
  const { line, known } = explainStartupFailure(e, knownSettings);
  console.error(`\nnpm start: ${line}${known ? '' : saveTrace(e)}`);
  await runningStack?.stop().catch(() => {});
  process.exit(1);
});
