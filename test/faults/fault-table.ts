/** The fault suite's result table: one row per fault, printed and written under test-results/ (markdown and JSON). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface FaultRow {
  fault: string;
  /** Deliveries the row covers (one, or the creations of the API fault). */
  deliveries: number;
  recipients: number;
  sent: number;
  failed: number;
  /** Recipients neither sent nor failed when the check ran (must be 0). */
  notFinal: number;
  /** Second copies at the MX, all of the documented kind (any other kind fails the row). */
  duplicates: number;
  lost: number;
  /** Fault end → first message accepted from an attempt started after it; null when nothing was left to send. */
  recoverMs: number | null;
  /** Fault end → the delivery (all of the row's deliveries) completed. */
  completedAfterMs: number;
  /** What the fault did, measured (e.g. "down 15.0 s", "412 transactions cut"). */
  detail: string;
  /** Null when every check passed; else what failed. */
  failure: string | null;
}

export interface FaultReport {
  mode: 'full' | 'reduced';
  startedAt: Date;
  finishedAt: Date;
  /** 1-minute load average at the start and at the end: timings on a shared host depend on it. */
  load: { atStart: number; atEnd: number };
  rows: FaultRow[];
}

const seconds = (ms: number | null) => (ms === null ? '–' : `${(ms / 1000).toFixed(1)} s`);
const n = (x: number) => x.toLocaleString('en-US');

export function machine(): string {
  const cpus = os.cpus();
  return `${os.hostname()}, ${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

export function renderTable(rows: FaultRow[]): string {
  const lines = [
    '| fault | recipients | final statuses | duplicates | lost | time to recover | completed after | fault, measured | result |',
    '|---|---:|---|---:|---:|---:|---:|---|---|',
  ];
  for (const r of rows) {
    const final = `${n(r.sent)} sent / ${n(r.failed)} failed${r.notFinal ? ` / ${n(r.notFinal)} NOT FINAL` : ''}`;
    const recipients = r.deliveries > 1 ? `${n(r.recipients)} (${r.deliveries} deliveries)` : n(r.recipients);
    lines.push(
      `| ${r.fault} | ${recipients} | ${final} | ${r.duplicates} | ${r.lost} | ${seconds(r.recoverMs)} | ${seconds(r.completedAfterMs)} | ${r.detail} | ${r.failure ? `FAILED: ${r.failure}` : 'ok'} |`,
    );
  }
  return lines.join('\n');
}

export function renderReport(report: FaultReport): string {
  const minutes = ((report.finishedAt.getTime() - report.startedAt.getTime()) / 60_000).toFixed(1);
  return [
    `Fault suite (${report.mode}), ${report.startedAt.toISOString()}, ${minutes} min, on ${machine()}, ` +
      `load average ${report.load.atStart.toFixed(1)} at the start, ${report.load.atEnd.toFixed(1)} at the end`,
    '',
    renderTable(report.rows),
    '',
  ].join('\n');
}

/** Writes test-results/fault-suite.md and .json; returns the markdown path. */
export function writeReport(report: FaultReport, dir = path.resolve(__dirname, '..', '..', 'test-results')): string {
  fs.mkdirSync(dir, { recursive: true });
  const md = path.join(dir, 'fault-suite.md');
  fs.writeFileSync(md, renderReport(report));
  fs.writeFileSync(path.join(dir, 'fault-suite.json'), `${JSON.stringify({ ...report, machine: machine() }, null, 2)}\n`);
  return md;
}
