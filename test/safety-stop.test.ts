/**
 * The delivery safety stop (docs/mx-rules.md) on the real stack: a delivery whose list is mostly unknown users pauses
 * itself once its last N attempts bounce hard above the threshold, with the reason visible through the API; no new
 * message starts while it is paused; a resume judges the next N attempts on their own; a good list is not stopped.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness';
import { apiCall, waitUntil } from './support/http';
import { deliveryWorkflowId, recipientWorkflowId } from '../workflows/contract';

const RUN = randomUUID().slice(0, 8);
const BAD = `bad-list-${RUN}.test`;
const GOOD = `good-list-${RUN}.test`;
const RULE = `safety-test-${RUN}`;
/** N: the stop judges the last 30 finished attempts. */
const WINDOW = 30;

let h: Harness;

const api = async (method: string, p: string, body?: unknown) => {
  const r = await apiCall(h.apiUrl, method, p, body);
  return { status: r.status, body: r.json };
};

beforeAll(async () => {
  h = await startHarness({
    env: {
      RETRY_TIME_SCALE: '0.01',
      SAFETY_STOP_MIN_ATTEMPTS: String(WINDOW),
      SAFETY_STOP_HARD_BOUNCE_RATE: '0.5',
      SAFETY_STOP_REFUSAL_RATE: '0.5',
      // Handed over 20 at a time within a window of 40 in flight, as a large delivery is: the delivery reads its KPIs
      // (and the safety stop's verdict) between pages, and a stop also keeps the rest of the list from being handed over.
      DELIVERY_PAGE_SIZE: '20',
      DELIVERY_MAX_IN_FLIGHT: '40',
    },
  });
  // Both lists' domains are one site sent to at 5 messages/s, so that the stop comes while most of the list is still unsent.
  const put = await api('PUT', `/api/mx-rules/${RULE}`, {
    priority: 10,
    provider: 'test',
    domains: [BAD, GOOD],
    mxHosts: [],
    scope: 'site',
    maxConnections: 4,
    messagesPerConnection: 100,
    perSecond: 5,
    perHour: null,
    note: 'safety-stop test',
  });
  expect(put.status).toBe(201);
  await h.deps.mxRules.refresh();
});

afterAll(async () => {
  await api('DELETE', `/api/mx-rules/${RULE}`).catch(() => undefined);
  await h?.stop();
});

/** Attempts of the delivery that have finished, and the latest time one started. */
async function attemptsOf(id: string): Promise<{ finished: number; lastStartMs: number }> {
  const r = await h.pool.query<{ finished: number; last_start: Date | null }>(
    'SELECT count(*) FILTER (WHERE finished_at IS NOT NULL)::int AS finished, max(started_at) AS last_start FROM send_attempts WHERE delivery_id = $1',
    [id],
  );
  return { finished: r.rows[0].finished, lastStartMs: r.rows[0].last_start?.getTime() ?? 0 };
}

describe('delivery safety stop', () => {
  it('pauses a delivery whose list is mostly unknown users, with the reason visible through the API', async () => {
    // 4 in 5 addresses are unknown users (the sandbox answers 550 5.1.1), the rest accept.
    const recipients = Array.from({ length: 200 }, (_, i) => ({ email: i % 5 === 0 ? `ok-${i}@${BAD}` : `unknown-${i}@${BAD}` }));
    const id = await h.createDelivery({ name: 'bad list', from: 'news@safety-sender.example', subject: 'x', text: 'y', recipients, autoConfirm: true });
    try {
      await h.waitForPhase(id, ['paused'], 120_000);
      const got = await api('GET', `/api/deliveries/${id}`);
      expect(got.status).toBe(200);
      expect(got.body).toMatchObject({ state: 'paused', paused: true, pauseReason: { by: 'safety_stop' } });
      const reason = got.body.pauseReason;
      expect(reason.reason).toMatch(new RegExp(`^safety stop: \\d+ hard bounces \\(\\d+(\\.\\d)?%, threshold 50%\\) in the last ${WINDOW} attempts$`));
      expect(reason.safetyStop).toMatchObject({ attempts: WINDOW, thresholds: { minAttempts: WINDOW, hardBounceRate: 0.5 } });
      expect(reason.safetyStop.hardBounces / WINDOW).toBeGreaterThan(0.5);
      expect(Date.parse(reason.at)).toBeGreaterThan(0);
      // Recorded in the delivery table too (the API answers from it when Temporal does not).
      const row = await h.service.store.get(id);
      expect(row).toMatchObject({ state: 'paused', pauseReason: { by: 'safety_stop', reason: reason.reason } });

      // It stopped the list: most of it was never tried, and no new message starts while it is paused.
      const atPause = await attemptsOf(id);
      expect(atPause.finished).toBeGreaterThanOrEqual(WINDOW);
      expect(atPause.finished).toBeLessThan(recipients.length / 2);
      await new Promise((r) => setTimeout(r, 5_000));
      const later = await attemptsOf(id);
      // Messages already in their SMTP transaction when the pause came finish, and the send re-reads the phase at most
      // a second old: at 5 messages/s, a handful more.
      expect(later.finished - atPause.finished).toBeLessThanOrEqual(15);
      expect(later.lastStartMs).toBeLessThan(Date.parse(reason.at) + 3_000);
      const kpis = got.body.kpis;
      expect(kpis.failuresByType.hard).toBeGreaterThan(0);

      // A person resumes: the next N attempts are judged on their own, and the list is still bad, so it stops again.
      const resumed = await api('POST', `/api/deliveries/${id}/resume`);
      expect(resumed.status).toBe(200);
      expect((await api('GET', `/api/deliveries/${id}`)).body).toMatchObject({ paused: false, pauseReason: null });
      const again = await waitUntil(
        'the second stop',
        async () => {
          const r = await api('GET', `/api/deliveries/${id}`);
          return r.body.pauseReason?.by === 'safety_stop' ? r.body : null;
        },
        120_000,
        250,
      );
      expect(Date.parse(again.pauseReason.at)).toBeGreaterThan(Date.parse(reason.at));
      const afterSecond = await attemptsOf(id);
      expect(afterSecond.finished - later.finished).toBeGreaterThanOrEqual(WINDOW);
      expect(afterSecond.finished).toBeLessThan(recipients.length);
    } finally {
      // A paused delivery with messages waiting never ends by itself: stop its workflows.
      const rows = await h.pool.query<{ recipient_id: number }>(`SELECT recipient_id FROM delivery_recipients WHERE delivery_id = $1 AND status IN ('taken_into_account')`, [id]);
      for (const r of rows.rows) await h.client.workflow.getHandle(recipientWorkflowId(id, r.recipient_id)).terminate('test over').catch(() => undefined);
      await h.client.workflow.getHandle(deliveryWorkflowId(id)).terminate('test over').catch(() => undefined);
    }
  });

  it('does not stop a list whose hard bounces stay under the threshold', async () => {
    // 1 in 5 unknown: 20 %, under the 50 % threshold.
    const recipients = Array.from({ length: 60 }, (_, i) => ({ email: i % 5 === 0 ? `unknown-${i}@${GOOD}` : `ok-${i}@${GOOD}` }));
    const id = await h.createDelivery({ name: 'good list', from: 'news@safety-sender.example', subject: 'x', text: 'y', recipients, autoConfirm: true });
    const done = await h.waitForPhase(id, ['completed', 'paused'], 120_000);
    expect(done.phase).toBe('completed');
    expect(done.kpis).toMatchObject({ sent: 48, failed: 12 });
    expect((await api('GET', `/api/deliveries/${id}`)).body).toMatchObject({ paused: false, pauseReason: null });
  });
});
