/**
 * The API's reuse of a delivery's live view (LIVE_VIEW_CACHE_MS): reads share one workflow query; a change through the
 * API is seen at once. The view of an ended delivery is read once, whatever LIVE_VIEW_CACHE_MS.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness';
import { apiCall } from './support/http';
import { confirmUpdate, deliveryWorkflowId } from '../workflows/contract';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ env: { LIVE_VIEW_CACHE_MS: '60000' } });
});
afterAll(async () => {
  await h?.stop();
});

const state = async (id: string) => {
  const r = await apiCall(h.apiUrl, 'GET', `/api/deliveries/${id}`);
  expect(r.status).toBe(200);
  return r.json.state as string;
};

describe('live view reuse', () => {
  it('answers reads of one delivery from one query within the interval, and forgets it when the API changes the delivery', async () => {
    const id = await h.createDelivery({ name: 'live view', from: 'news@live-view.example', subject: 'x', text: 'y', recipients: [{ email: 'a@live-view-rcpt.example' }] });
    await h.waitForPhase(id, ['awaiting_confirmation']);
    expect(await state(id)).toBe('awaiting_confirmation');

    // Confirmed behind the API's back (another API process would do the same): this process keeps its view.
    await h.client.workflow.getHandle(deliveryWorkflowId(id)).executeUpdate(confirmUpdate, { args: [{ confirmedBy: 'elsewhere' }] });
    const moved = await h.waitForPhase(id, ['sending', 'completed']);
    expect(moved.phase).not.toBe('awaiting_confirmation');
    const reads = await Promise.all(Array.from({ length: 20 }, () => state(id)));
    expect(new Set(reads)).toEqual(new Set(['awaiting_confirmation']));

    // A change through this API process: the next read queries the workflow again.
    await h.waitForPhase(id, ['completed']);
    const cancel = await apiCall(h.apiUrl, 'POST', `/api/deliveries/${id}/cancel`, {});
    expect(cancel.status).toBe(409); // the delivery has completed: refused, and the refusal also drops the old view
    expect(await state(id)).toBe('completed');
  });
});

describe('the view of an ended delivery', () => {
  /** No reuse of live views (LIVE_VIEW_CACHE_MS 0, the harness's default): only the ended view is kept. */
  let h0: Harness;
  beforeAll(async () => {
    h0 = await startHarness();
  });
  afterAll(async () => {
    await h0?.stop();
  });

  it('is read once: with no worker left to replay the closed workflow for a query, the delivery still answers it', async () => {
    const id = await h0.createDelivery({ name: 'ended view', from: 'news@ended-view.example', subject: 'x', text: 'y', recipients: [{ email: 'a@ended-view-rcpt.example' }], autoConfirm: true });
    await h0.waitForPhase(id, ['completed']);
    const first = await apiCall(h0.apiUrl, 'GET', `/api/deliveries/${id}`);
    expect(first.json).toMatchObject({ state: 'completed', temporalUnavailable: false, kpisSource: 'delivery_log', kpis: { sent: 1 } });
    expect(first.json.workflow).not.toBeNull();
    expect(first.json.waves).toHaveLength(1);

    // A closed workflow answers a query only through a worker replaying its history: without one, a new query would
    // wait out its 5 s deadline and the answer would say Temporal does not answer.
    await h0.stopWorker();
    const t0 = performance.now();
    const again = await apiCall(h0.apiUrl, 'GET', `/api/deliveries/${id}`);
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect(again.json).toEqual(first.json);
  });
});
