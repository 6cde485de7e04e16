/**
 * An engine entry point (workers/main.ts, api/main.ts) run as its own OS process, the way production runs it: its own
 * process group (a SIGKILL takes everything it started with it), configured only through its environment, its output
 * in a log file. Tests kill these processes and start new ones.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

export interface EngineProcess {
  name: string;
  child: ChildProcess;
  logFile: string;
  /** Size of the log when this process started (a log can hold earlier processes of the same name). */
  logFrom: number;
}

/** The lines the entry points print once they serve: `"worker started"`, `"api listening"`. */
export const READY_MARKERS = { worker: '"worker started"', api: '"api listening"' } as const;

export function isRunning(p: EngineProcess): boolean {
  return p.child.exitCode === null && p.child.signalCode === null;
}

/**
 * Starts `node --import tsx <entry>` and resolves once its log shows `readyMarker`. The environment is exactly `env`
 * plus PATH and HOME: nothing leaks in from the test runner's own settings.
 */
export async function startEngineProcess(o: {
  name: string;
  entry: string;
  env: Record<string, string>;
  logDir: string;
  readyMarker: string;
  timeoutMs?: number;
}): Promise<EngineProcess> {
  const logFile = path.join(o.logDir, `${o.name}.log`);
  const fd = fs.openSync(logFile, 'a');
  const logFrom = fs.fstatSync(fd).size;
  const child = spawn(process.execPath, ['--import', 'tsx', o.entry], {
    cwd: ROOT,
    detached: true, // its own process group: the kill takes everything it started with it
    stdio: ['ignore', fd, fd],
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/', ...o.env },
  });
  fs.closeSync(fd);
  const p: EngineProcess = { name: o.name, child, logFile, logFrom };
  // Detached children outlive their parent: if the test process goes down without its cleanup, take them along.
  process.once('exit', () => killEngineProcess(p));
  const deadline = Date.now() + (o.timeoutMs ?? 90_000);
  for (;;) {
    const text = logSince(p);
    if (text.includes(o.readyMarker)) return p;
    if (!isRunning(p)) throw new Error(`${o.name} exited at start (${child.exitCode ?? child.signalCode}):\n${tail(text, 30)}`);
    if (Date.now() > deadline) {
      killEngineProcess(p);
      throw new Error(`${o.name} did not start within ${(o.timeoutMs ?? 90_000) / 1000} s:\n${tail(text, 30)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** kill -9 of the whole process group (no chance to finish anything). */
export function killEngineProcess(p: EngineProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (p.child.pid === undefined || !isRunning(p)) return;
  try {
    process.kill(-p.child.pid, signal);
  } catch {
    // already gone
  }
}

export function engineProcessExited(p: EngineProcess): Promise<void> {
  if (!isRunning(p)) return Promise.resolve();
  return new Promise((resolve) => p.child.once('exit', () => resolve()));
}

/** What this process wrote to its log. */
export function logSince(p: EngineProcess): string {
  try {
    return fs.readFileSync(p.logFile).subarray(p.logFrom).toString('utf8');
  } catch {
    return '';
  }
}

export function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
