/** The one way the stores run several statements atomically: BEGIN, the work, then COMMIT, or ROLLBACK on any error. */
import type { Pool, PoolClient } from 'pg';

export interface TransactionOptions {
  /**
   * Settings for this transaction only, each run as `SET LOCAL <setting>` right after BEGIN (e.g. 'enable_nestloop = off').
   * They are written into the SQL text, so they must be constants of the code, never input.
   */
  setLocal?: readonly string[];
}

/**
 * Runs `work` in a transaction on a client the caller holds (migrations keep one client, and its session lock, across
 * several transactions). Resolves to what `work` returns once committed; rethrows the work's error after rolling back.
 * `onRollbackFailed` hears of a rollback that failed too: the connection is then in an unknown state.
 */
export async function transactionOn<T>(
  client: PoolClient,
  work: (client: PoolClient) => Promise<T>,
  opts: TransactionOptions & { onRollbackFailed?: (error: Error) => void } = {},
): Promise<T> {
  try {
    await client.query('BEGIN');
    for (const setting of opts.setLocal ?? []) await client.query(`SET LOCAL ${setting}`);
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (e) {
    await client.query('ROLLBACK').catch((rollbackError: Error) => opts.onRollbackFailed?.(rollbackError));
    throw e;
  }
}

/**
 * Runs `work` in a transaction on a client of its own from the pool, and gives the client back. A client whose
 * rollback failed is destroyed rather than returned: the next caller must not inherit a transaction left open.
 */
export async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    return await transactionOn(client, work, {
      ...opts,
      onRollbackFailed: (e) => {
        broken = e;
      },
    });
  } finally {
    client.release(broken);
  }
}
