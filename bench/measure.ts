/** Measuring helpers: CPU time of the stack's processes, Postgres write counters, workflow history lengths, timing. */
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

function childrenOf(ppid: number): number[] {
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

/** CPU ticks of a Postgres cluster: the postmaster, its live backends, and the backends that ended (its cutime/cstime). */
function postgresTicks(pgDataDir: string): number {
  try {
    const postmaster = Number(fs.readFileSync(path.join(pgDataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return procTicks(postmaster, true) + childrenOf(postmaster).reduce((a, pid) => a + procTicks(pid, false), 0);
  } catch {
    return 0; // no cluster
  }
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

/** Number of events of a run's history, and how many of each type (EVENT_TYPE_ prefix dropped). */
export async function historySummary(client: Client, workflowId: string, runId?: string): Promise<{ events: number; byType: Record<string, number> } | null> {
  try {
    const h = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    const byType: Record<string, number> = {};
    for (const e of h.events ?? []) {
      const name = (temporal.api.enums.v1.EventType[e.eventType ?? 0] ?? String(e.eventType)).replace(/^EVENT_TYPE_/, '').toLowerCase();
      byType[name] = (byType[name] ?? 0) + 1;
    }
    return { events: h.events?.length ?? 0, byType };
  } catch (e) {
    console.error(`history of ${workflowId}: ${(e as Error).message}`);
    return null;
  }
}

/** Every run of a workflow ID (continue-as-new chains), oldest first, each with its exact history length. */
export async function runsOf(client: Client, workflowId: string): Promise<{ runId: string; status: string; events: number | null }[]> {
  const runs: { runId: string; status: string; startTime: Date }[] = [];
  for await (const wf of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    runs.push({ runId: wf.runId, status: wf.status.name, startTime: wf.startTime });
  }
  runs.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
  const out = [];
  for (const r of runs) out.push({ runId: r.runId, status: r.status, events: await historyLength(client, workflowId, r.runId) });
  return out;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const mid = Math.floor(s.length / 2);
  // An even count has two middle values: their mean (the upper one alone would favour the larger figure).
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
