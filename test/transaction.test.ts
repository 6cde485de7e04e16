/** The stores' transaction helper on the real Postgres: commit, rollback on error, settings local to the transaction. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { Pool } from 'pg';
import { createPool } from '../db/pool';
import { inTransaction } from '../db/transaction';

let pool: Pool;

beforeAll(async () => {
  // One connection: the temporary table and the session settings below are that connection's.
  pool = createPool(inject('databaseUrl'), 1);
  await pool.query('CREATE TEMP TABLE tx_probe (n int)');
});

afterAll(async () => {
  await pool.end();
});

const probe = async () => (await pool.query<{ n: number }>('SELECT n FROM tx_probe ORDER BY n')).rows.map((r) => r.n);

describe('inTransaction', () => {
  it('commits the work and resolves to its result', async () => {
    const result = await inTransaction(pool, async (c) => {
      await c.query('INSERT INTO tx_probe VALUES (1), (2)');
      return 'done';
    });
    expect(result).toBe('done');
    expect(await probe()).toEqual([1, 2]);
  });

  it('rolls everything back and rethrows the work error', async () => {
    const failure = new Error('half way');
    await expect(
      inTransaction(pool, async (c) => {
        await c.query('INSERT INTO tx_probe VALUES (3)');
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await probe()).toEqual([1, 2]);
  });

  it('applies setLocal settings inside the transaction only', async () => {
    const inside = await inTransaction(pool, async (c) => (await c.query<{ enable_nestloop: string }>('SHOW enable_nestloop')).rows[0].enable_nestloop, {
      setLocal: ['enable_nestloop = off'],
    });
    expect(inside).toBe('off');
    expect((await pool.query<{ enable_nestloop: string }>('SHOW enable_nestloop')).rows[0].enable_nestloop).toBe('on');
  });

  it('gives the connection back in a usable state after a failed statement', async () => {
    await expect(inTransaction(pool, (c) => c.query('SELECT no_such_column FROM tx_probe'))).rejects.toThrow(/no_such_column/);
    expect(await probe()).toEqual([1, 2]);
  });
});
