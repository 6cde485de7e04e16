/** The process's Postgres connection pool. */
import { Pool, types } from 'pg';

// bigint counts come back as strings by default; every count here fits in a JS number.
types.setTypeParser(types.builtins.INT8, (v) => Number(v));

export function createPool(connectionString: string, max = 20): Pool {
  // keepAlive: a peer gone without closing (host down, network cut) is noticed by TCP instead of never.
  const pool = new Pool({ connectionString, max, idleTimeoutMillis: 30_000, keepAlive: true });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  return pool;
}
