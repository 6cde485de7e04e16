/** A 20,000-recipient delivery on the real stack: every workflow history stays under 20,000 events and the KPIs stay current while it runs. */
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness';
import { deliveryStateQuery, deliveryWorkflowId } from '../workflows/contract';

const RECIPIENTS = Number(process.env.FANOUT_TEST_RECIPIENTS ?? 20_000);
const HISTORY_BOUND = 20_000;

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ mx: { keepRaw: false } });
});
afterAll(async () => {
  await h?.stop();
});

function* csv(n: number) {
  yield 'email,firstName\n';
  for (let i = 1; i <= n; i++) yield `user${i}@scale${i % 50}.example,U${i}\n`;
}

describe('fan-out at scale', () => {
  it(`delivers ${RECIPIENTS} recipients with bounded histories and current KPIs`, { timeout: 30 * 60_000 }, async () => {
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
    for await (const wf of h.client.workflow.list({ query: `DeliveryId = "${id}"` })) {
      count++;
      if (wf.type === 'recipientWorkflow') maxRecipient = Math.max(maxRecipient, wf.historyLength);
      else if (wf.type === 'recipientBatchWorkflow') maxBatch = Math.max(maxBatch, wf.historyLength);
      else if (wf.type === 'deliveryWorkflow') maxDelivery = Math.max(maxDelivery, wf.historyLength);
    }
    console.log(`histories: delivery ≤ ${maxDelivery}, batch ≤ ${maxBatch}, recipient ≤ ${maxRecipient} events (${count} executions)`);
    expect(count).toBeGreaterThanOrEqual(RECIPIENTS + final.batchesStarted + 1);
    for (const max of [maxRecipient, maxBatch, maxDelivery]) {
      expect(max).toBeGreaterThan(0);
      expect(max).toBeLessThan(HISTORY_BOUND);
    }
  });
});
