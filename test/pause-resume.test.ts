/**
 * Pause and resume fired back to back on a sending delivery, on the real stack: after every pair the workflow's
 * phase and the delivery table's state (which the send activity reads to defer first attempts) must agree, and the
 * delivery must still complete with every recipient sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliveryStateQuery, deliveryWorkflowId } from '../workflows/contract';
import { startHarness, type Harness } from './support/harness';

let h: Harness;

beforeAll(async () => {
  // Greylisting retries wait 5 min × 0.2 = 60 s (±10 %): long enough to keep the delivery sending through 50 pairs.
  h = await startHarness({ env: { RETRY_TIME_SCALE: '0.2' } });
});

afterAll(async () => {
  await h?.stop();
});

/** The reason a control request was refused, or 'accepted'. */
async function outcome(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'accepted',
    (e: Error) => e.message,
  );
}

describe('pause and resume back to back', () => {
  it('leaves the workflow phase and the delivery table equal after each of 50 pairs, and the delivery completes', async () => {
    const recipients = [
      ...Array.from({ length: 8 }, (_, i) => ({ email: `grey-${i}@pause-race.example` })),
      ...Array.from({ length: 4 }, (_, i) => ({ email: `ok-${i}@pause-race.example` })),
    ];
    const id = await h.createDelivery({
      name: 'pause race',
      from: { address: 'news@pause-race-sender.example', name: 'News' },
      subject: 'Hello {{email}}',
      text: 'Hi',
      recipients,
      autoConfirm: true,
    });
    await h.waitForPhase(id, ['sending']);
    const handle = h.client.workflow.getHandle(deliveryWorkflowId(id));

    for (let i = 0; i < 50; i++) {
      // Sent without waiting for the pause to finish: both handlers can start their write in the same activation.
      const pause = h.service.pause(id, `race ${i}`);
      for (;;) {
        const r = await outcome(h.service.resume(id));
        if (r === 'accepted') break;
        expect(r).toMatch(/not paused/); // the resume overtook the pause: send it again
        await new Promise((res) => setTimeout(res, 5));
      }
      expect(await outcome(pause)).toBe('accepted');
      const view = await handle.query(deliveryStateQuery);
      const row = await h.service.store.get(id);
      expect(view.phase).toBe('sending');
      expect(row!.state).toBe(view.phase);
    }

    const final = await h.waitForPhase(id, ['completed'], 120_000);
    expect(final.kpis!.sent).toBe(12);
    // The query shows the phase as soon as the workflow enters it; the row is written by the activity that follows,
    // before the workflow returns. Once it has returned, both say completed.
    await handle.result();
    expect((await h.service.store.get(id))!.state).toBe('completed');
    // Every greylisted recipient was retried and accepted once; nothing was sent twice.
    for (const r of recipients) expect(h.mx.acceptedFor(r.email)).toHaveLength(1);
  });
});
