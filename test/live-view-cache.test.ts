/** The API's reuse of a delivery's live view (LIVE_VIEW_CACHE_MS): reads share one workflow query; a change through the API is seen at once. */
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
