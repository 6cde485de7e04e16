/** The end-of-run table: the same figures as the JSON, for a person. */
import type { AnalysisBenchResult } from './analysis-bench';
import type { FanoutResult } from './fanout-bench';
import type { ExperimentResult } from './analysis-experiments';
import type { WorkerTuning } from './stack';
import type { ApiLoadResult } from './api-load-bench';
import type { DashboardPagesResult } from './dashboard-pages-bench';
import type { BareSendResult } from './bare-send';
import type { PostgresMemory, Spread } from './measure';

interface Results {
  machine: { source?: { commit: string; changedFiles: number }; cpu: string; cores: number; ramGiB: number; node: string; date: string; loadAverageAtStart: number[]; loadAverageAtEnd?: number[]; temporalCli?: string; hostBusyAtStart?: number };
  upload?: { rows: number; seconds: number; rowsPerSecond: number; megabytes: number };
  analysis?: AnalysisBenchResult;
  analysisExperiments?: ExperimentResult[];
  tuning?: { worker: WorkerTuning; recipients: number; completedPerSecond: number; startedPerSecond: number; coresBusy: number; cpuMsPerRecipient: Record<string, number> }[];
  directStart?: { childBatches: { completedPerSecond: number; cpuMsPerRecipient: Record<string, number>; coresBusy: number }; direct: { recipients: number; completedPerSecond: number; cpuMsPerRecipient: Record<string, number>; coresBusy: number } };
  fanout?: FanoutResult;
  apiLoad?: ApiLoadResult;
  dashboardPages?: DashboardPagesResult;
  ceiling?: { children: number; completeSeconds: number; completedPerSecond: number; cpuMsPerChild: Record<string, number>; coresBusy: number; fanoutShare?: number };
  bare?: BareSendResult;
  ratios?: { engineOverCeiling?: number; engineOverBare?: number };
  totalSeconds?: number;
}

const round1 = (x: number) => Number(x.toFixed(2));
const cpuLine = (c: Record<string, number>) => Object.entries(c).map(([k, v]) => `${k.replace('benchProcess', 'worker+bench').replace('temporalServer', 'temporal').replace('temporalPostgres', 'temporal postgres')} ${v}`).join(', ');
const fmt = (x: number | null | undefined, unit = '') => (x === null || x === undefined || Number.isNaN(x) ? '–' : `${x.toLocaleString('en')}${unit}`);

const kb = (bytes: number) => (Number.isFinite(bytes) ? `${(bytes / 1024).toFixed(1)} KiB` : '–');
/** A spread of history figures: events as they are, bytes in KiB. */
const spreadLine = (x: Spread | undefined, unit: 'events' | 'bytes', of = 'sampled') => {
  if (!x || !x.n) return '–';
  const v = (n: number) => (unit === 'bytes' ? kb(n) : fmt(n));
  return `p50 ${v(x.p50)}, p95 ${v(x.p95)}, max ${v(x.max)} (mean ${v(x.mean)}, ${x.n} ${of})`;
};
const pgMemLine = (p: PostgresMemory) =>
  `Σ PSS ${fmt(p.pssSumMbSampledPeak, ' MB')} peak sampled / ${fmt(p.pssSumMbAtEnd, ' MB')} at end; Σ RSS ${fmt(p.rssSumMbSampledPeak, ' MB')} / ${fmt(p.rssSumMbAtEnd, ' MB')} (${p.processes} processes)`;
const times = (x: number | undefined) => (x === undefined ? '–' : `${x.toFixed(2)}×`);

function table(rows: [string, string][]): string {
  // Section titles (rows without a value) stand on their own line: only the keys set the column's width.
  const w = Math.max(...rows.filter(([, v]) => v !== '').map(([k]) => k.length));
  return rows.map(([k, v]) => (v === '' ? `\n${k}` : `  ${k.padEnd(w)}  ${v}`)).join('\n');
}

export function printReport(r: Results): void {
  const m = r.machine;
  const rows: [string, string][] = [
    ['Machine', ''],
    ['cpu', `${m.cpu} × ${m.cores} cores, ${m.ramGiB} GiB RAM`],
    ['node / temporal', `${m.node} / ${m.temporalCli ?? ''}`.trim()],
    ['date', m.date],
    ['source', m.source ? `commit ${m.source.commit}${m.source.changedFiles ? ` + ${m.source.changedFiles} changed files` : ''}` : '?'],
    ['load average start → end', `${m.loadAverageAtStart.join(' ')} → ${m.loadAverageAtEnd?.join(' ') ?? '?'}`],
    ['host CPU busy when the bench began', m.hostBusyAtStart === undefined ? '?' : `${Math.round(m.hostBusyAtStart * 100)} %`],
  ];
  if (r.upload) {
    rows.push(['CSV list upload', '']);
    rows.push(['rows', fmt(r.upload.rows)], ['time', fmt(r.upload.seconds, ' s')], ['rate', fmt(r.upload.rowsPerSecond, ' rows/s')], ['size', fmt(r.upload.megabytes, ' MB')]);
  }
  const a = r.analysis;
  if (a) {
    const steps = (p: { steps: { step: string; seconds: number; rows: number | null; timedOut?: boolean }[] }) => {
      for (const s of p.steps.filter((x) => x.step !== 'begin')) {
        rows.push([`  ${s.step}`, `${fmt(s.seconds, ' s')}${s.timedOut ? ' TIMED OUT' : ''}${s.rows !== null ? ` (${fmt(s.rows)} rows)` : ''}`]);
      }
    };
    rows.push([`Analysis of ${a.recipients.toLocaleString('en')} recipients (created → awaiting_confirmation; target < 60 s)`, '']);
    for (const run of a.runs) {
      const total = run.wallSeconds === null ? null : round1(run.wallSeconds + (run.analyzeSeconds ?? 0));
      rows.push([
        run.scenario,
        run.timedOut
          ? `NOT REACHED in ${run.timeoutSeconds} s: MISSED${run.stuckStatement ? ` (Postgres still in "${run.stuckStatement.step}" after ${run.stuckStatement.runningSeconds} s)` : ''}`
          : `${fmt(total, ' s')}${run.analyzeSeconds !== undefined ? ` (ANALYZE ${run.analyzeSeconds} s + ${run.wallSeconds} s)` : ''}, activity ${fmt(run.activity?.runSeconds, ' s')}: ${run.withinTarget ? 'met' : 'MISSED'}${run.exclusionsMatch ? '' : ', EXCLUSIONS WRONG'}`,
      ]);
    }
    rows.push(['create delivery (copy of the list)', `${fmt(a.runs[0]?.createSeconds, ' s')} (${fmt(a.runs[0]?.createRowsPerSecond, ' rows/s')})`]);
    rows.push([`analysePopulation direct, statistics as they were`, `${fmt(a.profile.dbOnly.seconds, ' s')}${a.profile.dbOnly.timedOut ? ' (TIMED OUT)' : ''}`]);
    steps(a.profile.dbOnly);
    rows.push([`analysePopulation direct, after ANALYZE (${a.profile.analyzeSeconds} s)`, `${fmt(a.profile.dbOnlyAfterAnalyze.seconds, ' s')}${a.profile.dbOnlyAfterAnalyze.timedOut ? ' (TIMED OUT)' : ''}`]);
    steps(a.profile.dbOnlyAfterAnalyze);
    rows.push(
      ['exclusions (generated)', Object.entries(a.expectedExclusions).map(([k, v]) => `${k} ${v}`).join(', ')],
      ['KPI query (per page while sending)', fmt(a.kpiQuerySeconds, ' s')],
      ['cancel → cancelled', a.cancel ? `${fmt(a.cancel.seconds, ' s')} (${fmt(a.cancel.rowsCancelled)} recipients)` : '–'],
      ['table sizes', Object.entries(a.tableSizesMb).map(([k, v]) => `${k} ${v} MB`).join(', ')],
    );
  }
  if (r.analysisExperiments) {
    rows.push(['Analysis experiments (fresh copy each, statistics from before the copy)', '']);
    for (const e of r.analysisExperiments) {
      const dup = e.steps.find((s) => s.step === 'exclude duplicate');
      rows.push([e.variant, `${e.timedOut ? 'TIMED OUT after ' : ''}${fmt(e.analysisSeconds, ' s')} (duplicate step ${dup ? fmt(dup.seconds, ' s') : '–'}; copy ${fmt(e.copySeconds, ' s')})`]);
    }
  }
  if (r.tuning) {
    rows.push(['Worker tuning (activities × workflow tasks)', '']);
    for (const t of r.tuning) rows.push([`${t.worker.maxConcurrentActivities} × ${t.worker.maxConcurrentWorkflowTasks} (${t.recipients})`, `completed ${fmt(t.completedPerSecond, '/s')}, started ${fmt(t.startedPerSecond, '/s')}, ${t.coresBusy} cores busy, CPU ms/recipient ${cpuLine(t.cpuMsPerRecipient)}`]);
  }
  if (r.directStart) {
    const d = r.directStart;
    rows.push([`Hand-over without child workflows (${d.direct.recipients} recipients each)`, '']);
    rows.push(['child batches (product)', `completed ${fmt(d.childBatches.completedPerSecond, '/s')}, CPU ms/recipient ${cpuLine(d.childBatches.cpuMsPerRecipient)}, ${d.childBatches.coresBusy} cores busy`]);
    rows.push(['client starts (experiment)', `completed ${fmt(d.direct.completedPerSecond, '/s')}, CPU ms/recipient ${cpuLine(d.direct.cpuMsPerRecipient)}, ${d.direct.coresBusy} cores busy`]);
  }
  const f = r.fanout;
  if (f) {
    rows.push([`Fan-out of ${f.recipients.toLocaleString('en')} recipients (worker ${f.worker.maxConcurrentActivities} × ${f.worker.maxConcurrentWorkflowTasks})`, '']);
    rows.push(
      ['completed', f.completed ? 'yes' : 'NO (time limit)'],
      ['created → sending', fmt(f.secondsToSending, ' s')],
      ['all recipient workflows started', `${fmt(f.startSeconds, ' s')} → ${fmt(f.startedPerSecond, ' started/s')}`],
      ['all recipients final', `${fmt(f.completeSeconds, ' s')} → ${fmt(f.completedPerSecond, ' completed/s')}`],
      ['steady state (10% → 90% final)', fmt(f.steadyCompletedPerSecond, ' completed/s')],
      ['in flight (handed over, not final)', f.inFlight ? `max ${fmt(f.inFlight.max)}, mean ${fmt(f.inFlight.mean)} (window 2,000)` : '–'],
      ['first message accepted after', fmt(f.firstMessageSeconds, ' s')],
      ['sent / failed / MX accepted', `${fmt(f.sent)} / ${fmt(f.failed)} / ${fmt(f.mxAccepted)}`],
      ['hand-over → sent p50 / p95 / p99', f.latencyMs ? `${fmt(f.latencyMs.p50)} / ${fmt(f.latencyMs.p95)} / ${fmt(f.latencyMs.p99)} ms (mean ${fmt(f.latencyMs.mean)}, max ${fmt(f.latencyMs.max)} ms, ${fmt(f.latencyMs.sent)} sent)` : '–'],
      ['delivery history (max per run)', `${fmt(f.histories.deliveryMaxEvents)} events, ${f.histories.deliveryRuns.length} run(s)`],
      ['batch history (max of all)', `${fmt(f.histories.batchMaxEvents)} events, ${f.histories.batches.length} run(s)`],
      ['recipient history', `${fmt(f.histories.recipientEvents)} events`],
    );
    const h = f.histories;
    if (h.recipients) {
      rows.push(
        [`recipient workflow events${h.recipients.stillOpen ? ` (${h.recipients.stillOpen} still open)` : ''}`, spreadLine(h.recipients.events, 'events')],
        ['recipient workflow bytes', spreadLine(h.recipients.bytes, 'bytes')],
      );
    }
    if (h.parents) {
      rows.push(
        ['delivery run events / bytes', `${spreadLine(h.parents.deliveryRunEvents, 'events', 'run(s)')}; ${spreadLine(h.parents.deliveryRunBytes, 'bytes', 'run(s)')}`],
        ['batch workflow events / bytes', `${spreadLine(h.parents.batchEvents, 'events', 'run(s)')}; ${spreadLine(h.parents.batchBytes, 'bytes', 'run(s)')}`],
        ['parents, all runs', `${fmt(h.parents.totalEvents)} events, ${kb(h.parents.totalBytes)} → ${fmt(h.parents.eventsPerRecipient)} events, ${fmt(h.parents.bytesPerRecipient)} bytes per recipient`],
      );
    }
    rows.push(
      ['Postgres rows written', `${fmt(f.postgres.rowsWritten)} (${fmt(f.postgres.rowsPerSecond, ' rows/s')}, ${f.postgres.rowsPerRecipient}/recipient, ${f.postgres.commitsPerRecipient} commits/recipient)`],
      ['CPU ms per recipient', `${cpuLine(f.cpu.msPerRecipient)}${f.cpu.msPerRecipientTotal !== undefined ? `; total ${f.cpu.msPerRecipientTotal}` : ''}${f.cpu.apiInBenchProcess ? ' (service/API code in worker+bench)' : ''}`],
      ['cores busy (of the machine)', fmt(f.cpu.coresBusy)],
      ...Object.entries(f.hotPath ?? {}).map(([k, v]): [string, string] => [`  ${k}`, `${v.wallMs} ms wall, ${v.cpuMs} ms CPU per call`]),
    );
    if (f.memory) {
      rows.push(
        [`peak RSS (VmHWM since ${f.memory.peakSince})`, `worker+bench ${fmt(f.memory.peakMb.benchProcess, ' MB')}, temporal ${fmt(f.memory.peakMb.temporalServer, ' MB')}`],
        ['postgres memory (postmaster + backends)', pgMemLine(f.memory.postgres)],
      );
      if (f.memory.temporalPostgres) rows.push(['temporal postgres memory', pgMemLine(f.memory.temporalPostgres)]);
    }
  }
  const c = r.ceiling;
  if (c) {
    rows.push([`Temporal's no-op ceiling (${c.children.toLocaleString('en')} child workflows, 2 local activities each)`, '']);
    rows.push(
      ['completed', `${fmt(c.completeSeconds, ' s')} → ${fmt(c.completedPerSecond, ' completed/s')}`],
      ['CPU ms per child', cpuLine(c.cpuMsPerChild)],
      ['fan-out as a share of the ceiling', c.fanoutShare !== undefined ? fmt(c.fanoutShare) : '–'],
    );
  }
  const b = r.bare;
  if (b) {
    rows.push([`Bare send path (${b.messages.toLocaleString('en')} messages: engine's builder + DKIM signer, nodemailer pool of ${b.connections} → sandbox MX; no workflow, no Postgres)`, '']);
    rows.push(
      ['sent', `${fmt(b.seconds, ' s')} → ${fmt(b.messagesPerSecond, ' messages/s')} (${fmt(b.accepted)} accepted, ${fmt(b.failed)} failed, ${b.concurrency} at once)`],
      ['CPU ms per message', cpuLine(b.cpuMsPerMessage)],
      ['cores busy (of the machine)', fmt(b.coresBusy)],
      [`peak RSS (VmHWM since ${b.peakSince})`, `worker+bench ${fmt(b.benchProcessPeakMb, ' MB')}`],
    );
  }
  if (r.ratios) {
    rows.push(['Engine over its references (fan-out completed/s ÷ reference/s)', '']);
    rows.push(['engine / ceiling (a)', times(r.ratios.engineOverCeiling)], ['engine / bare send path (b)', times(r.ratios.engineOverBare)]);
  }
  const load = r.apiLoad;
  if (load) {
    rows.push([`API under read load (${load.recipients.toLocaleString('en')}-recipient delivery sending, ${load.targetRatePerSecond} reads/s asked, ${load.rounds} loaded windows of ${load.windowSeconds} s between quiet ones)`, '']);
    rows.push(
      ['reads served', `${fmt(load.load.requests)} (${fmt(load.load.perSecond, '/s')}), non-2xx ${fmt(load.load.non2xx)}, errors ${fmt(load.load.errors)}, timeouts ${fmt(load.load.timeouts)}`],
      ['latency p50 (mean) / p90 / p99 / max (worst window)', `${load.load.latencyMs.p50} / ${load.load.latencyMs.p90} / ${load.load.latencyMs.p99} / ${load.load.latencyMs.max} ms`],
      ['send rate per window (L = loaded)', `${load.windows.map((x) => `${x.rate}${x.kind === 'loaded' ? ' L' : ''}`).join(' / ')} recipients/s`],
      ['send rate drop under load, median / mean (per round)', `${fmt(load.sendRateDropMedian * 100)} % / ${fmt(load.sendRateDrop * 100)} % (${load.dropPerRound.map((d) => `${fmt(d * 100)} %`).join(', ')})`],
      ['cores busy per window: worker / Temporal / Postgres / API / load generator', ''],
      ...load.windows.map((x, i): [string, string] => [`  ${i + 1}. ${x.kind}, ${x.rate}/s`, `${x.cores.workerAndBench} / ${x.cores.temporal} / ${x.cores.postgres} / ${x.cores.api} / ${x.cores.loadGenerator} = ${x.cores.total}`]),
      ['API CPU per read (loaded windows)', `${load.apiCpuMsPerRead} ms`],
      ['load generator CPU per read', `${round1((load.load.cpuSeconds * 1000) / Math.max(1, load.load.requests))} ms`],
      ['CPU per read, each kind alone at the same rate (API + Postgres + load generator; p50 / p99)', ''],
      ...load.costPerRead.map((c): [string, string] => [`  ${c.path}`, `${c.apiCpuMs} + ${c.postgresCpuMs} + ${c.loadGeneratorCpuMs} ms; ${c.p50Ms} / ${c.p99Ms} ms (${fmt(c.reads)} reads)`]),
    );
  }
  const pages = r.dashboardPages;
  if (pages) {
    const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    rows.push([`Dashboard on a ${pages.recipients.toLocaleString('en')}-recipient delivery (headless Chromium, read key)`, '']);
    rows.push(
      ['delivery page usable, cold / warm', `${pages.deliveryPageMs.cold.join(', ')} / ${pages.deliveryPageMs.warm.join(', ')} ms (warm median ${med(pages.deliveryPageMs.warm)} ms)`],
      ['log first page usable, cold / warm', `${pages.logFirstPageMs.cold.join(', ')} / ${pages.logFirstPageMs.warm.join(', ')} ms (warm median ${med(pages.logFirstPageMs.warm)} ms)`],
      [`send rate per window (${pages.windowSeconds} s; P = ${pages.openPages} pages open, R = their requests replayed)`, pages.windows.map((x) => `${x.rate}${x.kind === 'pages' ? ' P' : x.kind === 'replay' ? ' R' : ''}`).join(' / ') + ' recipients/s'],
      ['API requests of the open pages', Object.entries(pages.pageRequestsPerSecond).map(([r, n]) => `${r} ${n}/s`).join(', ')],
      ['send rate drop: pages open in Chromium / their requests replayed', `${fmt(pages.sendRateDrop.pages * 100)} % / ${fmt(pages.sendRateDrop.replay * 100)} %`],
      ['extra CPU with the pages open', `API ${pages.extraCpuMsPerSecond.api} ms/s, Postgres ${pages.extraCpuMsPerSecond.postgres} ms/s, Chromium (idle class) ${pages.extraCpuMsPerSecond.chromium} ms/s`],
    );
  }
  if (r.totalSeconds !== undefined) rows.push(['Total', ''], ['bench run', fmt(r.totalSeconds, ' s')]);
  console.log(`\n${'='.repeat(100)}\n${table(rows)}\n${'='.repeat(100)}`);
}
