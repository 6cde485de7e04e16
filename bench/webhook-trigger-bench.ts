/**
 * What the webhook outbox triggers (migration 035) cost the sending path's writes, on an embedded Postgres of its own:
 *
 *   npx tsx bench/webhook-trigger-bench.ts [--recipients 4000] [--rounds 3]
 *
 * Per recipient, the writes a send makes: its share of a hand-over page (claimPage, 500 per statement), the attempt
 * row (beginAttempt) and the outcome (completeAttempt: attempt, status, transition, quarantine). Timed in three
 * conditions, interleaved round by round on fresh deliveries so drift on a shared machine hits all three alike:
 *   off  — the triggers disabled (as before migration 035);
 *   idle — the triggers on, no subscription (what every installation without webhooks pays);
 *   on   — one subscription to every event type (an event row and a NOTIFY per recipient event).
 * Every 25th recipient hard-bounces (failed + quarantined), so the quarantine trigger runs too.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startEmbeddedPostgres } from '../stack/postgres';
import { freePort } from '../stack/ports';
import { createPool } from '../db/pool';
import { migrate } from '../db/migrate';
import { createStores } from '../db/stores';
import { WEBHOOK_EVENT_TYPES } from '../domain/webhook-events';
import type { AttemptResult } from '../db/delivery-log';

const TRIGGERS = [
  ['efs_transitions', 'efs_transitions_webhook_events'],
  ['deliveries', 'deliveries_webhook_events'],
  ['address_quarantine', 'address_quarantine_webhook_events'],
  ['address_quarantine', 'address_quarantine_insert_webhook_events'],
  ['recipient_feedback', 'recipient_feedback_webhook_events'],
  ['address_denylist', 'address_denylist_webhook_events'],
] as const;
const PAGE = 500;
const CONCURRENCY = 8;

type Condition = 'off' | 'idle' | 'on';

async function main() {
  const { values } = parseArgs({ options: { recipients: { type: 'string', default: '4000' }, rounds: { type: 'string', default: '3' } } });
  const n = Number(values.recipients);
  const rounds = Number(values.rounds);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webhook-trigger-bench-'));
  fs.chmodSync(dir, 0o755);
  const pg = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), port: await freePort(), persistent: false, log: () => {} });
  const pool = createPool(pg.connectionString, CONCURRENCY + 2);
  try {
    await migrate(pool);
    const stores = createStores(pool, { keyEncryptionSecret: 'bench-secret-0123456789' });
    const setTriggers = async (on: boolean) => {
      for (const [table, trigger] of TRIGGERS) await pool.query(`ALTER TABLE ${table} ${on ? 'ENABLE' : 'DISABLE'} TRIGGER ${trigger}`);
    };
    let subscription: string | null = null;
    const setCondition = async (c: Condition) => {
      await setTriggers(c !== 'off');
      if (c === 'on' && !subscription) {
        subscription = (await stores.webhooks.create({ url: 'http://127.0.0.1:9/bench', eventTypes: [...WEBHOOK_EVENT_TYPES] })).subscription.id;
      }
      if (c !== 'on' && subscription) {
        await stores.webhooks.delete(subscription);
        subscription = null;
      }
    };

    /** One delivery of n recipients through the sending writes; ms per recipient. */
    const run = async (label: string): Promise<number> => {
      const recipients = Array.from({ length: n }, (_, i) => ({ email: `${i % 25 === 0 ? 'hard' : 'user'}-${label}-${i}@bench${i % 40}.example`, fields: {} }));
      const { id } = await stores.deliveries.create(
        { name: label, from: { address: 'news@bench.example' }, subject: 's', text: 't', validitySeconds: 86_400, autoConfirm: true },
        { recipients },
      );
      await stores.deliveries.setState(id, 'sending');
      const t0 = performance.now();
      let after = 0;
      for (;;) {
        const page = await stores.log.claimPage(id, after, PAGE, 1);
        if (page.length === 0) break;
        after = page[page.length - 1].recipientId;
        let next = 0;
        await Promise.all(
          Array.from({ length: CONCURRENCY }, async () => {
            while (next < page.length) {
              const r = page[next++];
              const hard = (r.recipientId - 1) % 25 === 0;
              await stores.log.beginAttempt(id, r.recipientId, 1, `<${id}.${r.recipientId}@bench>`);
              const result: AttemptResult = {
                deliveryId: id,
                recipientId: r.recipientId,
                attempt: 1,
                outcome: hard ? 'hard' : 'accepted',
                reply: hard ? { code: 550, enhancedCode: '5.1.1', text: 'user unknown', mxHost: 'mx.bench' } : { code: 250, enhancedCode: '2.0.0', text: 'ok', mxHost: 'mx.bench' },
                ruleId: null,
                retryClass: null,
                status: hard ? 'failed' : 'sent',
                failureType: hard ? 'hard' : null,
                failureReason: hard ? 'user_unknown' : null,
                nextRetryAt: null,
                quarantine: hard ? { kind: 'count_failure', reason: 'user_unknown', hard: true } : { kind: 'clear_count' },
              };
              await stores.log.completeAttempt(result);
            }
          }),
        );
      }
      const ms = performance.now() - t0;
      await stores.deliveries.setState(id, 'completed');
      return ms / n;
    };

    const results: Record<Condition, number[]> = { off: [], idle: [], on: [] };
    await setCondition('off');
    await run('warmup');
    for (let round = 0; round < rounds; round++) {
      for (const c of ['off', 'idle', 'on'] as const) {
        await setCondition(c);
        results[c].push(await run(`${c}-${round}`));
      }
    }
    const events = (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM webhook_events')).rows[0].n;
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const base = median(results.off);
    const line = (c: Condition) =>
      `${c.padEnd(4)} ${median(results[c]).toFixed(3)} ms/recipient (rounds: ${results[c].map((x) => x.toFixed(3)).join(', ')})` +
      (c === 'off' ? '' : `, ${(((median(results[c]) - base) / base) * 100).toFixed(1)} % vs off`);
    console.log(`webhook trigger cost: ${n} recipients per run, ${rounds} rounds, ${CONCURRENCY} concurrent writers, pages of ${PAGE}`);
    for (const c of ['off', 'idle', 'on'] as const) console.log(line(c));
    console.log(`events written with the subscription: ${events} (${(events / (rounds * n)).toFixed(2)} per recipient)`);
    await stores.webhooks.close();
  } finally {
    await pool.end();
    await pg.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
