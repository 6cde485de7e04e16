/**
 * The webhook outbox on the real Postgres, without Temporal: writers commit events concurrently, in transactions of
 * different lengths, some rolled back; an endpoint's reader cuts messages from its cursor (the store's nextMessage and
 * recordAttempt, as the endpoint workflow's activities use them) while a second poller cuts concurrently (a retried long
 * poll still running). Every committed event must arrive exactly once, each writer's in commit order, none behind the
 * cursor. Then the long-poll activity itself (run outside Temporal): the linger turns a burst into a few full
 * messages, and still lets a lone event go out once its linger is over.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Pool } from 'pg';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createPool } from '../db/pool';
import { createStores, type Stores } from '../db/stores';
import { parseSettings } from '../config/settings';
import { createWebhookActivities } from '../activities/webhook-activities';
import type { ActivityDependencies } from '../activities/dependencies';

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

  /**
   * The endpoint workflow's long poll (awaitWebhookMessage) with the given settings, and what it hands out: each
   * message it returns is read and acknowledged at once, as the send activity would after a 2xx.
   */
  function endpoint(env: Record<string, string>) {
    const settings = parseSettings({ WEBHOOK_POLL_WAIT_SECONDS: '5', ...env });
    const activities = createWebhookActivities({ settings, webhooks: stores.webhooks } as unknown as ActivityDependencies);
    const mock = new MockActivityEnvironment();
    return {
      async poll(subscriptionId: string) {
        const next: Awaited<ReturnType<typeof activities.awaitWebhookMessage>> = await mock.run(activities.awaitWebhookMessage, { subscriptionId });
        if (next.kind !== 'message') return { kind: next.kind, events: [] };
        const m = (await stores.webhooks.messageToSend(next.messageId))!;
        await stores.webhooks.recordAttempt({ messageId: m.id, startedAt: new Date(), durationMs: 1, statusCode: 204, error: null, responseExcerpt: null, delivered: true });
        return { kind: next.kind, events: m.events };
      },
    };
  }

  it('lets a message fill for the linger: a burst goes out in a few full messages, in order', async () => {
    const id = await subscribe(['recipient.sent']);
    const tag = `burst-${Date.now()}`;
    const N = 250;
    const MAX = 100;
    const hooks = endpoint({ WEBHOOK_BATCH_MAX_EVENTS: String(MAX), WEBHOOK_BATCH_LINGER_MS: '3000' });
    const got: { data: Record<string, unknown> }[] = [];
    let messages = 0;
    const polling = (async () => {
      while (got.length < N) {
        const next = await hooks.poll(id);
        if (next.kind !== 'message') continue;
        messages++;
        got.push(...next.events.filter((e) => e.data.tag === tag));
      }
    })();
    // The poll is waiting when the burst begins: 25 transactions of 10 events, 20 ms apart (well within the linger),
    // each notifying at its commit as the triggers do, and each of which would be a message of its own without it.
    await sleep(300);
    for (let t = 0; t < N / 10; t++) {
      await pool.query(
        `WITH e AS (
           INSERT INTO webhook_events (type, occurred_at, data)
           SELECT 'recipient.sent', now(), jsonb_build_object('tag', $1::text, 'n', $2::int * 10 + i) FROM generate_series(0, 9) i RETURNING 1
         ) SELECT pg_notify('webhook_events', '') FROM e`,
        [tag, t],
      );
      await sleep(20);
    }
    await polling;
    expect(got.map((e) => e.data.n)).toEqual(Array.from({ length: N }, (_, i) => i));
    // 100 + 100 + 50, with room for one split on a slow host (without the linger: up to one message per transaction).
    expect(messages).toBeLessThanOrEqual(Math.ceil(N / MAX) + 1);
    console.log(`outbox: a burst of ${N} events in 25 transactions went out in ${messages} messages (at most ${MAX} events each)`);
  });

  it('sends a lone event once its linger is over, and an event older than the linger at once', async () => {
    const id = await subscribe(['recipient.complaint']);
    const tag = `lone-${Date.now()}`;
    const LINGER = 1500;
    const hooks = endpoint({ WEBHOOK_BATCH_LINGER_MS: String(LINGER) });
    // As the triggers write it: the event, and a notification at commit.
    const insert = () => pool.query(`SELECT webhook_emit('recipient.complaint', NULL, NULL, now(), $1)`, [{ tag }]);

    // The poll waits; one event is committed: it goes out alone, after the linger and not much later.
    const polled = hooks.poll(id);
    await sleep(200);
    const t0 = Date.now();
    await insert();
    const lone = await polled;
    const waited = Date.now() - t0;
    expect(lone.kind).toBe('message');
    expect(lone.events.map((e) => e.data.tag)).toEqual([tag]);
    // (The event's time is taken at its insert, after t0, by the database's clock on this same host.)
    expect(waited).toBeGreaterThanOrEqual(LINGER - 100);
    expect(waited).toBeLessThan(LINGER + 5_000);

    // Written while nobody polled, longer ago than the linger: the next poll cuts it at once.
    await insert();
    await sleep(LINGER + 200);
    const t1 = Date.now();
    const old = await hooks.poll(id);
    expect(old.events.map((e) => e.data.tag)).toEqual([tag]);
    expect(Date.now() - t1).toBeLessThan(LINGER);
    console.log(`outbox: a lone event went out ${waited} ms after its commit (linger ${LINGER} ms); an older one ${Date.now() - t1} ms after the poll began`);
  });
});
