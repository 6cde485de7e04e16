/**
 * Measuring helpers: CPU time and memory of the stack's processes, Postgres write counters, workflow history lengths and
 * sizes, percentiles, timing.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { Pool } from 'pg';

const CLOCK_TICKS = 100; // USER_HZ on Linux

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const secondsSince = (t0: number) => (performance.now() - t0) / 1000;
export const round = (x: number, digits = 1) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);

function procTicks(pid: number, withReapedChildren: boolean): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const [utime, stime, cutime, cstime] = [f[11], f[12], f[13], f[14]].map(Number);
    return utime + stime + (withReapedChildren ? cutime + cstime : 0);
  } catch {
    return 0;
  }
}

/** CPU seconds used so far by one process (user + system), its reaped children included or not. */
export function processCpuSeconds(pid: number, withReapedChildren = false): number {
  return procTicks(pid, withReapedChildren) / CLOCK_TICKS;
}

export function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) === ppid) out.push(Number(name));
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

/** CPU seconds used so far by the bench process (worker, activities, sandbox MX), the Temporal server, and Postgres. */
export interface CpuSnapshot {
  benchProcess: number;
  temporalServer: number;
  postgres: number;
  /** Temporal's own Postgres (cluster layout only; the dev server keeps its SQLite file inside its process). */
  temporalPostgres?: number;
}

/** CPU seconds used so far by a Postgres cluster (postmaster, live backends, backends that ended). */
export function postgresCpuSeconds(pgDataDir: string): number {
  return postgresTicks(pgDataDir) / CLOCK_TICKS;
}

/** CPU ticks of a Postgres cluster: the postmaster, its live backends, and the backends that ended (its cutime/cstime). */
function postgresTicks(pgDataDir: string): number {
  const [postmaster, ...children] = postgresPids(pgDataDir);
  if (postmaster === undefined) return 0; // no cluster
  return procTicks(postmaster, true) + children.reduce((a, pid) => a + procTicks(pid, false), 0);
}

export function cpuSnapshot(temporalPid: number | undefined, pgDataDir: string, temporalPgDataDir?: string): CpuSnapshot {
  const u = process.cpuUsage();
  return {
    benchProcess: (u.user + u.system) / 1e6,
    temporalServer: temporalPid ? procTicks(temporalPid, true) / CLOCK_TICKS : 0,
    postgres: postgresTicks(pgDataDir) / CLOCK_TICKS,
    ...(temporalPgDataDir ? { temporalPostgres: postgresTicks(temporalPgDataDir) / CLOCK_TICKS } : {}),
  };
}

export function cpuDelta(a: CpuSnapshot, b: CpuSnapshot): CpuSnapshot {
  return {
    benchProcess: round(b.benchProcess - a.benchProcess, 2),
    temporalServer: round(b.temporalServer - a.temporalServer, 2),
    postgres: round(b.postgres - a.postgres, 2),
    ...(b.temporalPostgres !== undefined ? { temporalPostgres: round(b.temporalPostgres - (a.temporalPostgres ?? 0), 2) } : {}),
  };
}

/** Rows inserted/updated per table and committed transactions, from Postgres' cumulative statistics. */
export interface PgCounters {
  tables: Record<string, { ins: number; upd: number; hotUpd: number; del: number }>;
  commits: number;
}

export async function pgCounters(pool: Pool): Promise<PgCounters> {
  const client = await pool.connect();
  try {
    // Cumulative statistics are flushed by each backend about once a second; a fresh snapshot per call.
    await client.query('SELECT pg_stat_clear_snapshot()');
    const t = await client.query<{ relname: string; ins: number; upd: number; hot: number; del: number }>(
      `SELECT relname, n_tup_ins::int8 AS ins, n_tup_upd::int8 AS upd, n_tup_hot_upd::int8 AS hot, n_tup_del::int8 AS del FROM pg_stat_user_tables`,
    );
    const d = await client.query<{ commits: number }>(`SELECT xact_commit::int8 AS commits FROM pg_stat_database WHERE datname = current_database()`);
    const tables: PgCounters['tables'] = {};
    for (const r of t.rows) tables[r.relname] = { ins: Number(r.ins), upd: Number(r.upd), hotUpd: Number(r.hot), del: Number(r.del) };
    return { tables, commits: Number(d.rows[0].commits) };
  } finally {
    client.release();
  }
}

export function pgDelta(a: PgCounters, b: PgCounters) {
  const tables: Record<string, { inserted: number; updated: number; hotUpdated: number }> = {};
  let written = 0;
  for (const [name, v] of Object.entries(b.tables)) {
    const o = a.tables[name] ?? { ins: 0, upd: 0, hotUpd: 0, del: 0 };
    const ins = v.ins - o.ins;
    const upd = v.upd - o.upd;
    if (ins === 0 && upd === 0) continue;
    tables[name] = { inserted: ins, updated: upd, hotUpdated: v.hotUpd - o.hotUpd };
    written += ins + upd + (v.del - o.del);
  }
  return { rowsWritten: written, commits: b.commits - a.commits, tables };
}

/** Number of events in a workflow run's history (the run the handle names, else the latest). */
export async function historyLength(client: Client, workflowId: string, runId?: string): Promise<number | null> {
  return (await historySummary(client, workflowId, runId))?.events ?? null;
}

/**
 * Number of events of a run's history, how many of each type (EVENT_TYPE_ prefix dropped), and its size: the encoded
 * `temporal.api.history.v1.History` proto, payloads as the server stores them (sealed by the engine's codec).
 */
export async function historySummary(
  client: Client,
  workflowId: string,
  runId?: string,
): Promise<{ events: number; bytes: number; byType: Record<string, number>; closed: boolean } | null> {
  try {
    const h = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    const byType: Record<string, number> = {};
    for (const e of h.events ?? []) {
      const name = (temporal.api.enums.v1.EventType[e.eventType ?? 0] ?? String(e.eventType)).replace(/^EVENT_TYPE_/, '').toLowerCase();
      byType[name] = (byType[name] ?? 0) + 1;
    }
    const last = h.events?.length ? h.events[h.events.length - 1].eventType : null;
    const E = temporal.api.enums.v1.EventType;
    const closing = [E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT, E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED, E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW];
    return { events: h.events?.length ?? 0, bytes: temporal.api.history.v1.History.encode(h).finish().length, byType, closed: last !== null && last !== undefined && closing.includes(last) };
  } catch (e) {
    console.error(`history of ${workflowId}: ${(e as Error).message}`);
    return null;
  }
}

/** Distribution of a list of figures: count, mean, p50, p95, max (nearest rank). */
export interface Spread {
  n: number;
  mean: number;
  p50: number;
  p95: number;
  max: number;
}

export function spread(xs: number[]): Spread {
  const s = [...xs].sort((a, b) => a - b);
  const rank = (q: number) => (s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] : NaN);
  return { n: s.length, mean: s.length ? round(s.reduce((a, b) => a + b, 0) / s.length, 1) : NaN, p50: rank(0.5), p95: rank(0.95), max: s.length ? s[s.length - 1] : NaN };
}

/** Every run of a workflow ID (continue-as-new chains), oldest first, each with its exact history length and size. */
export async function runsOf(client: Client, workflowId: string): Promise<{ runId: string; status: string; events: number | null; bytes: number | null }[]> {
  return (await runsMatching(client, `WorkflowId = '${workflowId}'`)).map(({ workflowId: _, ...r }) => r);
}

/** Every run a visibility query lists, oldest first, each with its history length and size. */
export async function runsMatching(client: Client, query: string): Promise<{ workflowId: string; runId: string; status: string; events: number | null; bytes: number | null }[]> {
  const runs: { workflowId: string; runId: string; status: string; startTime: Date }[] = [];
  for await (const wf of client.workflow.list({ query })) {
    runs.push({ workflowId: wf.workflowId, runId: wf.runId, status: wf.status.name, startTime: wf.startTime });
  }
  runs.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
  const out = [];
  for (const r of runs) {
    const h = await historySummary(client, r.workflowId, r.runId);
    out.push({ workflowId: r.workflowId, runId: r.runId, status: r.status, events: h?.events ?? null, bytes: h?.bytes ?? null });
  }
  return out;
}

// ---- Memory of the stack's processes (Linux /proc) ----

const MB = 1024; // /proc reports kB

/** A `kB` field of a /proc/<pid> file, in kB; null when unreadable. */
function procKb(pid: number, file: 'status' | 'smaps_rollup', field: string): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/${file}`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** A `kB` field of /proc/<pid>/status (VmHWM: peak resident set; VmRSS: current), in kB; null when unreadable. */
export function procStatusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number | null {
  return procKb(pid, 'status', field);
}

/** Proportional set size (shared pages divided among the processes sharing them), in kB; null when unreadable. */
function pssKb(pid: number): number | null {
  return procKb(pid, 'smaps_rollup', 'Pss');
}

/** Resets a process's VmHWM to its current RSS (writes 5 to /proc/<pid>/clear_refs); false when not allowed. */
export function resetPeakRss(pid: number): boolean {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** The postmaster of a Postgres cluster and its live children (backends, background workers). */
export function postgresPids(pgDataDir: string): number[] {
  try {
    const postmaster = Number(fs.readFileSync(path.join(pgDataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return [postmaster, ...childrenOf(postmaster)];
  } catch {
    return [];
  }
}

/** Summed memory of a Postgres cluster's processes now: RSS (counts each shared page once per process) and PSS. */
export function postgresMemory(pgDataDir: string): { processes: number; rssMb: number; pssMb: number | null } {
  const pids = postgresPids(pgDataDir);
  let rss = 0;
  let pss: number | null = 0;
  for (const pid of pids) {
    rss += procStatusKb(pid, 'VmRSS') ?? 0;
    const p = pssKb(pid);
    pss = p === null || pss === null ? null : pss + p;
  }
  return { processes: pids.length, rssMb: round(rss / MB, 1), pssMb: pss === null ? null : round(pss / MB, 1) };
}

export interface PostgresMemory {
  processes: number;
  /** Sum of the current RSS of the postmaster and its children at the end of the stage (shared_buffers counted once per process that touched them: an overcount). */
  rssSumMbAtEnd: number;
  /** Sum of their PSS at the end (shared pages split among the processes: what the cluster really holds); null when /proc hides it. */
  pssSumMbAtEnd: number | null;
  /** Highest RSS sum and PSS sum over the samples taken during the stage (every few seconds: a lower bound of the true peak). */
  rssSumMbSampledPeak: number;
  pssSumMbSampledPeak: number | null;
}

export interface StageMemory {
  /** Peak RSS (VmHWM) of the bench process (worker, activities, sandbox MX, service) and of the Temporal server, MB. */
  peakMb: { benchProcess: number | null; temporalServer: number | null };
  /** Where those peaks start: the stage's start when the kernel let the bench reset them, else the process's start. */
  peakSince: 'stage start' | 'process start';
  postgres: PostgresMemory;
  /** Temporal's own Postgres (cluster layout). */
  temporalPostgres?: PostgresMemory;
}

/** Watches memory over one stage: resets the peaks at the start, samples the Postgres sums, reports at the end. */
export class MemoryWatch {
  private readonly resetOk: boolean;
  private readonly pg = { rss: 0, pss: 0 as number | null };
  private readonly tpg = { rss: 0, pss: 0 as number | null };
  private lastSample = 0;

  constructor(private readonly p: { temporalPid?: number; pgDataDir: string; temporalPgDataDir?: string }) {
    const pids = [process.pid, ...(p.temporalPid ? [p.temporalPid] : [])];
    this.resetOk = pids.map(resetPeakRss).every(Boolean);
    this.sample(true);
  }

  /** Samples the Postgres sums (at most every `everyMs`; reading smaps_rollup of every backend is not free). */
  sample(force = false, everyMs = 5_000): void {
    if (!force && performance.now() - this.lastSample < everyMs) return;
    this.lastSample = performance.now();
    const take = (acc: { rss: number; pss: number | null }, dir: string) => {
      const m = postgresMemory(dir);
      acc.rss = Math.max(acc.rss, m.rssMb);
      acc.pss = m.pssMb === null || acc.pss === null ? null : Math.max(acc.pss, m.pssMb);
      return m;
    };
    take(this.pg, this.p.pgDataDir);
    if (this.p.temporalPgDataDir) take(this.tpg, this.p.temporalPgDataDir);
  }

  end(): StageMemory {
    const atEnd = (acc: { rss: number; pss: number | null }, dir: string): PostgresMemory => {
      const m = postgresMemory(dir);
      return {
        processes: m.processes,
        rssSumMbAtEnd: m.rssMb,
        pssSumMbAtEnd: m.pssMb,
        rssSumMbSampledPeak: Math.max(acc.rss, m.rssMb),
        pssSumMbSampledPeak: m.pssMb === null || acc.pss === null ? null : Math.max(acc.pss, m.pssMb),
      };
    };
    const mb = (kb: number | null) => (kb === null ? null : round(kb / MB, 1));
    return {
      peakMb: { benchProcess: mb(procStatusKb(process.pid, 'VmHWM')), temporalServer: this.p.temporalPid ? mb(procStatusKb(this.p.temporalPid, 'VmHWM')) : null },
      peakSince: this.resetOk ? 'stage start' : 'process start',
      postgres: atEnd(this.pg, this.p.pgDataDir),
      ...(this.p.temporalPgDataDir ? { temporalPostgres: atEnd(this.tpg, this.p.temporalPgDataDir) } : {}),
    };
  }
}

/** The share of the host's CPU time (all cores) that was busy over the next `ms`, from /proc/stat. */
export async function hostBusyShare(ms: number): Promise<number> {
  const read = () => {
    // cpu  user nice system idle iowait irq softirq steal ...
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + (f[4] ?? 0);
    return { idle, total: f.slice(0, 8).reduce((a, b) => a + b, 0) };
  };
  const a = read();
  await sleep(ms);
  const b = read();
  return b.total > a.total ? 1 - (b.idle - a.idle) / (b.total - a.total) : 0;
}

/**
 * Waits (at most `maxMs`) until the host is quiet, less than `share` of its CPU busy over 3 s: a bench started just after
 * another (a stack still shutting down, a test run ending) measured that instead for its first minute. Returns the
 * last busy share read.
 */
export async function untilHostQuiet(log: (m: string) => void, share = 0.15, maxMs = 120_000): Promise<number> {
  const deadline = Date.now() + maxMs;
  let busy = await hostBusyShare(3_000);
  if (busy >= share) log(`host ${Math.round(busy * 100)} % busy: waiting (up to ${maxMs / 1000} s) for it to be under ${Math.round(share * 100)} % before measuring`);
  while (busy >= share && Date.now() < deadline) busy = await hostBusyShare(3_000);
  if (busy >= share) log(`WARNING the host stayed ${Math.round(busy * 100)} % busy; measuring anyway, on a busy host`);
  return busy;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const mid = Math.floor(s.length / 2);
  // An even count has two middle values: their mean (the upper one alone would favour the larger figure).
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
