/**
 * Health checks of the engine's containers (docker-compose.yml), one per process kind; exits 0 when healthy.
 *   api      GET /health of the API in this container answers 200
 *   worker   a worker of this container (identity <pid>@<host name>) polls the task queue
 *   inbound  the inbound SMTP listener of this container greets with 220
 */
import net from 'node:net';
import os from 'node:os';
import { Connection } from '@temporalio/client';
import { parseSettings } from '../../config/settings';

const TIMEOUT_MS = 8_000;

async function api(): Promise<string | null> {
  const s = parseSettings(process.env);
  const res = await fetch(`http://127.0.0.1:${s.API_PORT}/health`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  return res.ok ? null : `GET /health answered ${res.status}`;
}

async function worker(): Promise<string | null> {
  const s = parseSettings(process.env);
  const connection = await Connection.connect({ address: s.TEMPORAL_ADDRESS, connectTimeout: TIMEOUT_MS });
  try {
    const suffix = `@${os.hostname()}`;
    // Workflow and activity pollers both count: a worker that polls one of them is alive.
    for (const taskQueueType of [1, 2] as const) {
      const d = await connection.workflowService.describeTaskQueue({ namespace: s.TEMPORAL_NAMESPACE, taskQueue: { name: s.TASK_QUEUE }, taskQueueType });
      if ((d.pollers ?? []).some((p) => p.identity?.endsWith(suffix))) return null;
    }
    return `no poller of host ${os.hostname()} on task queue ${s.TASK_QUEUE}`;
  } finally {
    await connection.close();
  }
}

function inbound(): Promise<string | null> {
  const port = Number(process.env.INBOUND_SMTP_PORT ?? 2525);
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (why: string | null) => {
      socket.destroy();
      resolve(why);
    };
    socket.setTimeout(TIMEOUT_MS, () => done(`no SMTP greeting on :${port} within ${TIMEOUT_MS} ms`));
    socket.once('data', (b: Buffer) => {
      socket.write('QUIT\r\n');
      done(b.toString().startsWith('220') ? null : `unexpected greeting: ${b.toString().trim()}`);
    });
    socket.once('error', (e) => done(e.message));
  });
}

const checks: Record<string, () => Promise<string | null>> = { api, worker, inbound };
const kind = process.argv[2] ?? '';
const check = checks[kind];
if (!check) {
  console.error(`usage: healthcheck.ts ${Object.keys(checks).join('|')}`);
  process.exit(2);
}
check().then(
  (problem) => {
    if (problem) console.error(`unhealthy: ${problem}`);
    process.exit(problem ? 1 : 0);
  },
  (e: Error) => {
    console.error(`unhealthy: ${e.message}`);
    process.exit(1);
  },
);
