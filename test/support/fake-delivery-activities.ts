/**
 * An in-memory stand-in for the activities the workflows call, for fast tests of the workflows' decisions on the
 * time-skipping test server: a delivery log of N recipients, each send accepted (or what `sendOutcome` says), and a
 * record of every call in the order it reached the "database".
 */
import { kpisFromCounts, type DeliveryKpis, type EfsStatus } from '../../domain/efs-status';
import { planWaves, type WaveSpec } from '../../domain/wave-plan';
import type { Activities, AnalysisSummary, DeliveryPhase, SendInput, SendOutcome } from '../../workflows/contract';

export interface FakeDelivery {
  recipients: Map<number, { status: EfsStatus; attempts: number }>;
  /** Phases in the order the delivery table received them. */
  phaseWrites: DeliveryPhase[];
  contactDateWrites: (number | null)[];
  drafts: unknown[];
  claims: { afterRecipientId: number; limit: number; wave: number; at: number }[];
  analyses: number;
  cancelCalls: number;
}

export interface FakeOptions {
  recipients: number;
  waves?: WaveSpec;
  /** Findings that block confirmation until a draft edit arrives. */
  blockingUntilEdited?: boolean;
  /** Milliseconds (real time) each phase write takes: random in [0, n) to shuffle writes that are not serialised. */
  phaseWriteJitterMs?: number;
  /** What a send does; default: accepted. */
  sendOutcome?: (input: SendInput) => Partial<SendOutcome> | undefined;
  /** Milliseconds (real time) the analysis takes. */
  analysisMs?: number;
  /** Milliseconds (real time) a KPI read takes: keeps workflow tasks open, so updates arrive together. */
  kpiReadMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function createFakeActivities(o: FakeOptions): { activities: Activities; state: FakeDelivery } {
  const state: FakeDelivery = {
    recipients: new Map(Array.from({ length: o.recipients }, (_, i) => [i + 1, { status: 'pending' as EfsStatus, attempts: 0 }])),
    phaseWrites: [],
    contactDateWrites: [],
    drafts: [],
    claims: [],
    analyses: 0,
    cancelCalls: 0,
  };
  let edited = false;

  const kpis = (): DeliveryKpis => {
    const counts: Partial<Record<EfsStatus, number>> = {};
    let awaiting = 0;
    for (const r of state.recipients.values()) {
      counts[r.status] = (counts[r.status] ?? 0) + 1;
      if (r.status === 'taken_into_account' && r.attempts === 0) awaiting++;
    }
    return kpisFromCounts(counts, {}, {}, awaiting);
  };

  const activities: Activities = {
    async analyseDelivery(input): Promise<AnalysisSummary> {
      state.analyses++;
      if (o.analysisMs) await sleep(o.analysisMs);
      const blocked = o.blockingUntilEdited === true && !edited;
      const waves = o.waves ?? { mode: 'single' };
      return {
        targeted: o.recipients,
        toDeliver: o.recipients,
        excluded: 0,
        exclusions: {},
        findings: blocked ? [{ severity: 'error', code: 'NO_BODY', message: 'The message has neither an HTML nor a text part.' }] : [],
        confirmable: !blocked,
        options: { waves },
        ratePerSecond: 50,
        wavePlan: planWaves(waves, o.recipients, input.plannedStartMs, 50),
        validitySeconds: 86_400,
      };
    },
    async setDeliveryPhase(input) {
      if (o.phaseWriteJitterMs) await sleep(Math.random() * o.phaseWriteJitterMs);
      state.phaseWrites.push(input.phase);
    },
    async updateDeliveryDraft(input) {
      edited = true;
      state.drafts.push(input.changes);
    },
    async setContactDate(input) {
      state.contactDateWrites.push(input.contactDateMs);
    },
    async claimRecipientPage(input) {
      state.claims.push({ afterRecipientId: input.afterRecipientId, limit: input.limit, wave: input.wave, at: input.notBeforeMs });
      const page = [...state.recipients.entries()]
        .filter(([id, r]) => id > input.afterRecipientId && r.status === 'pending')
        .slice(0, input.limit);
      for (const [, r] of page) r.status = 'taken_into_account';
      return page.map(([recipientId]) => ({ recipientId, domain: 'example.test', sendAtMs: null }));
    },
    async readDeliveryKpis() {
      if (o.kpiReadMs) await sleep(o.kpiReadMs);
      return kpis();
    },
    async cancelPendingRecipients() {
      state.cancelCalls++;
      let n = 0;
      for (const r of state.recipients.values()) {
        if (r.status === 'pending') {
          r.status = 'cancelled';
          n++;
        }
      }
      return n;
    },
    async signRecipientMessage(input) {
      return { dkimSignature: 'DKIM-Signature: v=1; fake\r\n', messageId: `<${input.deliveryId}.${input.recipientId}@example.test>` };
    },
    async sendRecipientMessage(input): Promise<SendOutcome> {
      const r = state.recipients.get(input.recipientId)!;
      const override = o.sendOutcome?.(input);
      const outcome: SendOutcome = {
        attempt: input.attempt,
        outcome: 'accepted',
        status: 'sent',
        failureType: null,
        failureReason: null,
        retryClass: null,
        reply: { code: 250, enhancedCode: '2.0.0', text: 'ok', mxHost: 'mx.example.test' },
        nextRetryAt: null,
        retryInMs: null,
        replayed: false,
        ...override,
      };
      if (outcome.outcome !== 'deferred') {
        r.attempts = input.attempt;
        r.status = outcome.status;
      }
      return outcome;
    },
    // The regular activity a site-budget deferral hands over to: the fakes have no sites, so the same fake send.
    async sendRecipientMessageWhenSiteAllows(input): Promise<SendOutcome> {
      return activities.sendRecipientMessage(input);
    },
    async confirmAfterReportWindow(input) {
      const r = state.recipients.get(input.recipientId)!;
      const confirmedByWindow = r.status === 'taken_into_account';
      if (confirmedByWindow) r.status = 'sent';
      return { status: r.status, failureType: null, failureReason: null, confirmedByWindow };
    },
    async sendProofs(input) {
      return input.addresses.map((address) => ({ address, messageId: '<proof@example.test>', accepted: true, reply: { code: 250, enhancedCode: null, text: 'ok', mxHost: null } }));
    },
    async createDeliveryFromTemplate() {
      throw new Error('not used by these tests');
    },
    async awaitWebhookMessage() {
      throw new Error('not used by these tests');
    },
    async deliverWebhookMessage() {
      throw new Error('not used by these tests');
    },
    async disableWebhookEndpoint() {
      throw new Error('not used by these tests');
    },
  };
  return { activities, state };
}
