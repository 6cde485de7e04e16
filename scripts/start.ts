/** `npm start`: runs the whole embedded stack, sends the sample delivery with live progress, then serves until Ctrl-C. */
import fs from 'node:fs';
import path from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { parseSettings, type Settings } from '../config/settings';
import { startEmbeddedStack, type RunningStack } from '../stack/embedded-stack';
import { explainStartupFailure } from '../stack/startup-error';
import { createDeliverySchema } from '../api/delivery-input';
import { sampleDelivery } from './sample-delivery';
import type { DeliveryKpis } from '../domain/efs-status';
import { isEndedPhase } from '../domain/delivery-lifecycle';

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

  const input = createDeliverySchema.parse(sampleDelivery());
  const created = await stack.service.create(input);
  console.log(`· sample delivery ${created.id}: ${created.recipientCount} recipients, workflow ${created.workflowId}`);

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
    const view = await stack.service.workflowView(created.id).catch(() => null);
    if (stopping) return;
    // The log once the workflow has ended: late bounces and complaints still arrive after it completed.
    kpis = view?.kpis && !isEndedPhase(view.phase) ? view.kpis : await stack.service.log.kpis(created.id);
    phase = view?.phase ?? 'unknown';
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
  console.log(`\nAPI          ${stack.apiUrl}/api/deliveries/${created.id}`);
  console.log(`Recipients   ${stack.apiUrl}/api/deliveries/${created.id}/recipients`);
  console.log(`DKIM keys    ${stack.apiUrl}/api/dkim/keys`);
  if (stack.temporalUiUrl) {
    const q = encodeURIComponent(`DeliveryId="${created.id}"`);
    console.log(`Temporal UI  ${stack.temporalUiUrl}/namespaces/${stack.settings.TEMPORAL_NAMESPACE}/workflows?query=${q}`);
    // Payloads are sealed in Temporal; the UI opens them through the API's codec server (docs/personal-data.md).
    console.log(`Codec       http://127.0.0.1:${stack.settings.API_PORT}/codec (the UI decodes payloads through it)`);
  }
  console.log('\nServing until Ctrl-C.');
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
