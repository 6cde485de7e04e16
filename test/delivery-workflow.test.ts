/**
 * The delivery workflow's decisions, fast: the real workflow code on the time-skipping test server, with the
 * activities replaced by an in-memory delivery log (test/support/fake-delivery-activities.ts). Days of contact dates
 * and waves pass in seconds; the integration tests keep covering the same paths on real Postgres and SMTP.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowUpdateStage, type WorkflowHandle, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import {
  cancelUpdate,
  confirmUpdate,
  deliveryStateQuery,
  deliveryWorkflowId,
  editDraftUpdate,
  pauseUpdate,
  rescheduleUpdate,
  resumeUpdate,
  type DeliveryTunables,
  type DeliveryWorkflowInput,
} from '../workflows/contract';
import { deliveryWorkflow } from '../workflows/delivery-workflow';
import { createFakeActivities, type FakeOptions } from './support/fake-delivery-activities';
import { startTimeSkippingEnv } from './support/time-skipping';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const TUNABLES: DeliveryTunables = { pageSize: 3, maxInFlight: 6, kpiRefreshMs: 1_000, maxIdleRefreshMs: 60_000, historyEventsBeforeContinue: 10_000 };

let env: TestWorkflowEnvironment;

beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  env = await startTimeSkippingEnv();
});

afterAll(async () => {
  await env?.teardown();
});

/** Runs `body` with a worker on its own task queue serving the fake activities. */
async function withDelivery<T>(
  fake: FakeOptions,
  input: Partial<DeliveryWorkflowInput>,
  body: (h: WorkflowHandleWithFirstExecutionRunId<typeof deliveryWorkflow>, state: ReturnType<typeof createFakeActivities>['state']) => Promise<T>,
): Promise<T> {
  const { activities, state } = createFakeActivities(fake);
  const taskQueue = `decisions-${randomUUID()}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    activities,
    workflowBundle: { codePath: inject('workflowBundlePath') },
  });
  const deliveryId = randomUUID();
  return worker.runUntil(async () => {
    const h = await env.client.workflow.start(deliveryWorkflow, {
      taskQueue,
      workflowId: deliveryWorkflowId(deliveryId),
      args: [{ deliveryId, autoConfirm: true, validitySeconds: 86_400, tunables: TUNABLES, ...input }],
    });
    try {
      return await body(h, state);
    } finally {
      // A workflow left open with a task nobody will complete would hold the test server's clock for every later test.
      await h.terminate('test over').catch(() => {});
    }
  });
}

/** The reason an update was refused (a validator's message travels as the failure's cause), or 'accepted'. */
async function refusal(update: Promise<unknown>): Promise<string> {
  return update.then(
    () => 'accepted',
    (e: Error & { cause?: Error }) => e.cause?.message ?? e.message,
  );
}

async function untilPhase(h: WorkflowHandle<typeof deliveryWorkflow>, phase: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await h.query(deliveryStateQuery);
    if (v.phase === phase) return v;
    if (Date.now() > deadline) throw new Error(`phase ${v.phase}, expected ${phase}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('deliveryWorkflow decisions (time-skipping server, in-memory activities)', () => {
  // First: the only test that needs the server to skip days (see the next comment).
  it('waits for the contact date on the workflow clock, and a reschedule moves it', async () => {
    const startMs = await env.currentTimeMs();
    await withDelivery({ recipients: 3 }, { contactDateMs: startMs + 3 * DAY }, async (h, state) => {
      await untilPhase(h, 'scheduled');
      await h.executeUpdate(rescheduleUpdate, { args: [{ contactDateMs: startMs + DAY }] });
      expect(state.contactDateWrites).toEqual([startMs + DAY]);
      const result = await h.result();
      expect(result.phase).toBe('completed');
      const firstClaim = state.claims[0]!.at;
      expect(firstClaim).toBeGreaterThanOrEqual(startMs + DAY);
      expect(firstClaim).toBeLessThan(startMs + 2 * DAY);
      expect(await refusal(h.executeUpdate(rescheduleUpdate, { args: [{ contactDateMs: null }] }))).not.toBe('accepted');
    });
  });

  // Two-second waves: once recipient workflows have run as children of a closed batch, the Java test server no longer
  // skips time (its clock stays locked), so only the first test of this file relies on skipping.
  it('starts each size wave at its planned time on the workflow clock', async () => {
    await withDelivery({ recipients: 5, waves: { mode: 'size', size: 2, periodSeconds: 2 } }, {}, async (h, state) => {
      const result = await h.result();
      expect(result.waves.map((w) => w.size)).toEqual([2, 2, 1]);
      const sendingAt = result.waves[0]!.plannedStartMs;
      result.waves.forEach((w, i) => {
        expect(w.plannedStartMs).toBe(sendingAt + i * 2_000);
        expect(w.startedAtMs!).toBeGreaterThanOrEqual(w.plannedStartMs);
        expect(w.startedAtMs! - w.plannedStartMs).toBeLessThan(1_500);
        expect(w.handedOver).toBe(w.size);
      });
      expect(state.claims.map((c) => c.wave)).toEqual([1, 2, 3]);
    });
  });

  it('runs analysing → scheduled → sending → completed, handing every recipient over in pages', async () => {
    await withDelivery({ recipients: 7 }, {}, async (h, state) => {
      const result = await h.result();
      expect(result.phase).toBe('completed');
      expect(result.kpis?.sent).toBe(7);
      expect(result.batchesStarted).toBe(3); // pages of 3: 3 + 3 + 1
      expect(state.phaseWrites).toEqual(['analysing', 'scheduled', 'sending', 'completed']);
      expect(state.claims.map((c) => c.afterRecipientId)).toEqual([0, 3, 6]);
    });
  });

  it('refuses confirmation until the analysis passes, re-analyses after an edit, and refuses edits once confirmed', async () => {
    // A contact date a few seconds ahead keeps the confirmed delivery waiting, so the second confirm meets it open.
    const contactDateMs = (await env.currentTimeMs()) + 5_000;
    await withDelivery({ recipients: 2, blockingUntilEdited: true }, { autoConfirm: false, contactDateMs }, async (h, state) => {
      await untilPhase(h, 'analysis_failed');
      expect(await refusal(h.executeUpdate(confirmUpdate, { args: [{}] }))).toMatch(/blocking errors/);
      await h.executeUpdate(editDraftUpdate, { args: [{ text: 'Hello again' }] });
      await untilPhase(h, 'awaiting_confirmation');
      expect(state.analyses).toBe(2);
      expect(await refusal(h.executeUpdate(editDraftUpdate, { args: [{} as never] }))).toMatch(/nothing to change/);
      expect(await h.executeUpdate(confirmUpdate, { args: [{ confirmedBy: 'ann' }] })).toBe('awaiting_confirmation');
      expect(await refusal(h.executeUpdate(confirmUpdate, { args: [{}] }))).toMatch(/already confirmed/);
      expect(await refusal(h.executeUpdate(editDraftUpdate, { args: [{ subject: 'Late' }] }))).toMatch(/confirmed/);
      const result = await h.result();
      expect(result.confirmedBy).toBe('ann');
      expect(result.phase).toBe('completed');
    });
  });

  it('keeps at most maxInFlight recipients awaiting a first attempt', async () => {
    let released = false;
    let maxAwaiting = 0;
    const fake: FakeOptions = {
      recipients: 12,
      // Nothing is sent until released: handed-over recipients pile up awaiting their first attempt.
      sendOutcome: () => (released ? undefined : { outcome: 'deferred', status: 'taken_into_account', retryInMs: 1_000 }),
    };
    await withDelivery(fake, {}, async (h, state) => {
      await untilPhase(h, 'sending');
      await new Promise((r) => setTimeout(r, 1_500));
      const awaiting = [...state.recipients.values()].filter((r) => r.status === 'taken_into_account').length;
      maxAwaiting = Math.max(maxAwaiting, awaiting);
      expect(awaiting).toBe(TUNABLES.maxInFlight);
      released = true;
      const result = await h.result();
      expect(result.kpis?.sent).toBe(12);
    });
    expect(maxAwaiting).toBe(6);
  });

  it('serialises pause and resume: after 50 back-to-back pairs the last phase written is the workflow phase, and the delivery completes', async () => {
    let released = false;
    const fake: FakeOptions = {
      recipients: 4,
      // Writes take a random 0–20 ms: unserialised, a resume's write could land before its pause's.
      phaseWriteJitterMs: 20,
      kpiReadMs: 100,
      sendOutcome: () => (released ? undefined : { outcome: 'deferred', status: 'taken_into_account', retryInMs: 1_000 }),
    };
    await withDelivery(fake, {}, async (h, state) => {
      await untilPhase(h, 'sending');
      let pairsWrittenTwice = 0;
      for (let i = 0; i < 50; i++) {
        // Sent back to back without waiting for each other: most pairs reach the workflow in one activation (a KPI
        // read keeps its task open), where both handlers start their write at once.
        const pause = h.executeUpdate(pauseUpdate, { args: [{}] });
        const resume = (async () => {
          for (;;) {
            const r = await refusal(h.executeUpdate(resumeUpdate, { args: [] }));
            if (r === 'accepted') return;
            expect(r).toMatch(/not paused/); // arrived before the pause: send it again
            await new Promise((res) => setTimeout(res, 5));
          }
        })();
        const writesBefore = state.phaseWrites.length;
        await Promise.all([pause, resume]);
        const view = await h.query(deliveryStateQuery);
        expect(view.phase).toBe('sending');
        expect(state.phaseWrites.at(-1)).toBe(view.phase);
        if (state.phaseWrites.length - writesBefore === 2) pairsWrittenTwice++;
      }
      expect(pairsWrittenTwice).toBe(50);
      released = true;
      const result = await h.result();
      expect(result.phase).toBe('completed');
      expect(state.phaseWrites.at(-1)).toBe('completed');
    });
  });

  it('cancels: recipients not handed over end cancelled, those in flight finish, the phase ends cancelled', async () => {
    let released = false;
    const fake: FakeOptions = {
      recipients: 10,
      sendOutcome: () => (released ? undefined : { outcome: 'deferred', status: 'taken_into_account', retryInMs: 1_000 }),
    };
    await withDelivery(fake, { tunables: { ...TUNABLES, pageSize: 2, maxInFlight: 2 } }, async (h, state) => {
      await untilPhase(h, 'sending');
      while (state.claims.length === 0) await new Promise((r) => setTimeout(r, 20));
      await h.executeUpdate(cancelUpdate, { args: [{ reason: 'wrong list' }] });
      expect(await refusal(h.executeUpdate(cancelUpdate, { args: [{}] }))).toMatch(/already being cancelled/);
      expect(await refusal(h.executeUpdate(pauseUpdate, { args: [{}] }))).toMatch(/being cancelled/);
      released = true;
      const result = await h.result();
      expect(result.phase).toBe('cancelled');
      expect(result.cancelReason).toBe('wrong list');
      expect(state.cancelCalls).toBe(1);
      expect(result.kpis!.sent).toBe(2);
      expect(result.kpis!.cancelled).toBe(8);
      expect(state.phaseWrites.at(-1)).toBe('cancelled');
    });
  });

  it('continues as new when its history grows, and the next runs finish the delivery where it stopped', async () => {
    await withDelivery({ recipients: 30 }, { tunables: { ...TUNABLES, pageSize: 2, historyEventsBeforeContinue: 40 } }, async (h, state) => {
      const result = await h.result();
      expect(result.phase).toBe('completed');
      expect(result.kpis?.sent).toBe(30);
      expect(result.batchesStarted).toBe(15);
      // Pages are contiguous across runs: each claim starts after the last recipient of the one before.
      expect(state.claims.map((c) => c.afterRecipientId)).toEqual(Array.from({ length: 15 }, (_, i) => i * 2));
      const latest = await env.client.workflow.getHandle(h.workflowId).describe();
      expect(latest.runId).not.toBe(h.firstExecutionRunId);
    });
  });

  it('refuses malformed update arguments in its validators (a client that bypasses the API)', async () => {
    await withDelivery({ recipients: 1, analysisMs: 0 }, { autoConfirm: false }, async (h) => {
      await untilPhase(h, 'awaiting_confirmation');
      expect(await refusal(h.executeUpdate(rescheduleUpdate, { args: [{ contactDateMs: 'tomorrow' as never }] }))).toMatch(/contactDateMs/);
      expect(await refusal(h.executeUpdate(confirmUpdate, { args: [{ confirmedBy: 42 as never }] }))).toMatch(/confirmedBy/);
      await h.executeUpdate(cancelUpdate, { args: [{}] });
      expect((await h.result()).phase).toBe('cancelled');
    });
  });
});
