/**
 * The webhook outbox on the real Postgres, without Temporal: writers commit events concurrently, in transactions of
 * different lengths, some rolled back; an endpoint's reader cuts messages from its cursor (the store's nextMessage and
 * recordAttempt, as the endpoint workflow's activities use them) while a second poller cuts concurrently (a retried long
 * poll still running). Every committed event must arrive exactly once, each writer's in commit order, none behind the
 * cursor.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Pool } from 'pg';
import { createPool } from '../db/pool';
import { createStores, type Stores } from '../db/stores';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let pool: Pool;
let stores: Stores;
const subscriptions: string[] = [];

beforeAll(async () => {
  pool = createPool(inject('databaseUrl'), 16);
  stores = createStores(pool, { keyEncryptionSecret: 'test-key-secret-0123456789' });
});
afterAll(async () => {
  // No subscription left: the triggers write nothing for the test files that run after this one.
  for (const id of subscriptions) await stores.webhooks.delete(id);
  await stores.webhooks.close();
  await pool.end();
});

async function subscribe(eventTypes: ('recipient.sent' | 'recipient.complaint')[]) {
  const { subscription } = await stores.webhooks.create({ url: 'http://127.0.0.1:9/outbox-test', eventTypes });
  subscriptions.push(subscription.id);
  return subscription.id;
}

/** Takes every message the endpoint would be sent, until `done()` and nothing is left; the events' data, in order. */
async function drain(subscriptionId: string, done: () => boolean): Promise<{ data: Record<string, unknown>; type: string; id: string }[]> {
  const got: { data: Record<string, unknown>; type: string; id: string }[] = [];
  for (;;) {
    const next = await stores.webhooks.nextMessage(subscriptionId, 50);
    if (next.kind === 'message') {
      const m = (await stores.webhooks.messageToSend(next.messageId))!;
      got.push(...m.events);
      await stores.webhooks.recordAttempt({ messageId: m.id, startedAt: new Date(), durationMs: 1, statusCode: 204, error: null, responseExcerpt: null, delivered: true });
    } else if (done()) {
      // Every writer has returned (no transaction of theirs is open): one more look.
      const last = await stores.webhooks.nextMessage(subscriptionId, 50);
      if (last.kind !== 'message') return got;
    } else {
      await sleep(2);
    }
  }
}

describe('webhook outbox', () => {
  it('delivers every committed event once, each writer in commit order, under concurrent writers and pollers', async () => {
    const id = await subscribe(['recipient.sent']);
    const tag = `outbox-${Date.now()}`;
    let stop = false;
    const committed = new Map<number, number>();
    const writer = async (w: number) => {
      let n = 0;
      while (!stop) {
        const c = await pool.connect();
        try {
          await c.query('BEGIN');
          const count = 1 + Math.floor(Math.random() * 3);
          for (let i = 0; i < count; i++) {
            await c.query(`INSERT INTO webhook_events (type, occurred_at, data) VALUES ('recipient.sent', now(), $1)`, [{ tag, w, n: n + i }]);
            // Some transactions stay open a while: events of later ones must wait for them, not overtake them.
            if (Math.random() < 0.3) await sleep(Math.random() * 40);
          }
          if (Math.random() < 0.1) {
            await c.query('ROLLBACK');
          } else {
            await c.query('COMMIT');
            n += count;
            committed.set(w, n);
          }
        } finally {
          c.release();
        }
      }
    };
    const writers = Array.from({ length: 8 }, (_, w) => writer(w));
    // A second poller cuts messages from the same cursor and never delivers them.
    const poller = (async () => {
      while (!stop) {
        await stores.webhooks.nextMessage(id, 50);
        await sleep(3);
      }
    })();
    const t0 = performance.now();
    // The drain ends only once every writer has returned: `stop` alone would let its last look run while a writer's
    // last transaction is still open (not yet readable), and that transaction's events would be counted but not read.
    let writersDone = false;
    const received = drain(id, () => writersDone);
    await sleep(6_000);
    stop = true;
    await Promise.all([...writers, poller]);
    writersDone = true;
    const got = (await received).filter((e) => e.data.tag === tag);
    const seconds = (performance.now() - t0) / 1000;

    const expected = [...committed.values()].reduce((a, b) => a + b, 0);
    expect(expected).toBeGreaterThan(500);
    expect(new Set(got.map((e) => e.id)).size).toBe(got.length);
    expect(got).toHaveLength(expected);
    for (const [w, n] of committed) {
      const mine = got.filter((e) => e.data.w === w).map((e) => e.data.n);
      expect(mine, `writer ${w}`).toEqual(Array.from({ length: n }, (_, i) => i));
    }
    console.log(`outbox: ${expected} events committed by 8 writers in ${seconds.toFixed(1)} s, every one read back once and in order`);
  });

  it('holds events back behind a transaction still running, and skips types the subscription does not want', async () => {
    const id = await subscribe(['recipient.complaint']);
    const tag = `rare-${Date.now()}`;
    const insert = (c: Pool | import('pg').PoolClient, type: string, n: number) =>
      c.query(`INSERT INTO webhook_events (type, occurred_at, data) VALUES ($1, now(), $2)`, [type, { tag, n }]);
    const early = await pool.connect();
    try {
      await early.query('BEGIN');
      await insert(early, 'recipient.complaint', 1);
      // Committed after `early` began writing: not sent while `early` runs, though visible.
      for (let i = 0; i < 30; i++) await insert(pool, 'recipient.sent', 100 + i);
      await insert(pool, 'recipient.complaint', 2);
      const waiting = await stores.webhooks.nextMessage(id, 50);
      expect(waiting).toEqual({ kind: 'none', unsafePending: true });
      await early.query('COMMIT');
    } finally {
      early.release();
    }
    const got = (await drain(id, () => true)).filter((e) => e.data.tag === tag);
    expect(got.map((e) => [e.type, e.data.n])).toEqual([
      ['recipient.complaint', 1],
      ['recipient.complaint', 2],
    ]);
  });
});
