/**
 * A large delivery on the real stack: every workflow history stays bounded (the delivery continues as new) and the
 * KPIs stay current while it runs. The default run sends 2,000 recipients with a low continue-as-new threshold so
 * that several delivery runs happen; `npm run test:scale` sends 20,000 with the production threshold.
 */
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness';
import { deliveryStateQuery, deliveryWorkflowId } from '../workflows/contract';

const RECIPIENTS = Number(process.env.FANOUT_TEST_RECIPIENTS ?? 2_000);
// A delivery writes about 17 history events per batch of 500: below 10,000 recipients it would never reach the
// production threshold, so the reduced run lowers it until continue-as-new happens several times.
const CONTINUE_AS_NEW_EVENTS = RECIPIENTS >= 10_000 ? 10_000 : 40;
const HISTORY_BOUND = 20_000;
// This host sends about 12 recipients/s on two cores; allow a third of that.
const TIMEOUT_MS = Math.max(10 * 60_000, (RECIPIENTS / 4) * 1000);

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ mx: { keepRaw: false }, env: { DELIVERY_CONTINUE_AS_NEW_EVENTS: String(CONTINUE_AS_NEW_EVENTS) } });
});
afterAll(async () => {
  await h?.stop();
});

function* csv(n: number) {
  yield 'email,firstName\n';
  for (let i = 1; i <= n; i++) yield `user${i}@scale${i % 50}.example,U${i}\n`;
}

describe('fan-out at scale', () => {
  it(`delivers ${RECIPIENTS} recipients with bounded histories and current KPIs`, { timeout: TIMEOUT_MS }, async () => {
    const list = await h.service.lists.createFromCsv('scale', Readable.from(csv(RECIPIENTS)));
    expect(list.memberCount).toBe(RECIPIENTS);
    const id = await h.createDelivery({ name: 'scale', from: 'news@scale-brand.example', subject: 'Hi {{firstName}}', text: 'Hello {{firstName}}', listId: list.id, autoConfirm: true });
    const handle = h.client.workflow.getHandle(deliveryWorkflowId(id));
    const t0 = Date.now();

    // While it runs, the query's KPIs only grow and never lag the log by more than a few refreshes.
    let lastSent = 0;
    let samples = 0;
    for (;;) {
      const view = await handle.query(deliveryStateQuery);
      if (view.phase === 'completed') break;
      if (view.kpis && view.phase === 'sending') {
        expect(view.kpis.sent).toBeGreaterThanOrEqual(lastSent);
        lastSent = view.kpis.sent;
        const logged = await h.service.log.kpis(id);
        expect(view.kpis.sent).toBeLessThanOrEqual(logged.sent);
        // The refresh runs every 0.5 s in tests: a lag of more than ~30 s of sending would mean the KPIs are stale.
        expect(logged.sent - view.kpis.sent).toBeLessThan(3_000);
        samples++;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    const seconds = (Date.now() - t0) / 1000;
    const final = await handle.query(deliveryStateQuery);
    expect(final.kpis).toMatchObject({ targeted: RECIPIENTS, toDeliver: RECIPIENTS, sent: RECIPIENTS, failed: 0, successPercent: 100 });
    expect(samples).toBeGreaterThan(3);
    expect(h.mx.acceptedCount()).toBe(RECIPIENTS);
    console.log(`fan-out: ${RECIPIENTS} recipients in ${seconds.toFixed(0)} s (${(RECIPIENTS / seconds).toFixed(1)} recipients/s), ${final.batchesStarted} batches`);

    // Every workflow of the delivery, every run of it, listed through visibility with its history length.
    let count = 0;
    let maxRecipient = 0;
    let maxBatch = 0;
    let maxDelivery = 0;
    let deliveryRuns = 0;
    for await (const wf of h.client.workflow.list({ query: `DeliveryId = "${id}"` })) {
      count++;
      if (wf.type === 'recipientWorkflow') maxRecipient = Math.max(maxRecipient, wf.historyLength);
      else if (wf.type === 'recipientBatchWorkflow') maxBatch = Math.max(maxBatch, wf.historyLength);
      else if (wf.type === 'deliveryWorkflow') {
        deliveryRuns++;
        maxDelivery = Math.max(maxDelivery, wf.historyLength);
      }
    }
    console.log(`histories: delivery ≤ ${maxDelivery} over ${deliveryRuns} runs, batch ≤ ${maxBatch}, recipient ≤ ${maxRecipient} events (${count} executions)`);
    // The delivery's history was cut by continue-as-new at least once.
    expect(deliveryRuns).toBeGreaterThan(1);
    expect(count).toBeGreaterThanOrEqual(RECIPIENTS + final.batchesStarted + 1);
    for (const max of [maxRecipient, maxBatch, maxDelivery]) {
      expect(max).toBeGreaterThan(0);
      expect(max).toBeLessThan(HISTORY_BOUND);
    }
  });
});
