/** Activities of the delivery workflow: its phase in the delivery table, handing pages of recipients over, KPIs, cancellation. */
import { Context } from '@temporalio/activity';
import type { ActivityDependencies } from './dependencies';
import type { DeliveryActivities } from '../workflows/contract';
import { isValidTimeZone, nextLocalTime } from '../domain/local-send-time';
import { safetyStopVerdict } from '../domain/safety-stop';

/** Recipients cancelled per statement: about a second each on this machine, so a heartbeat goes out between them. */
const CANCEL_CHUNK = 50_000;

export function createDeliveryActivities(deps: ActivityDependencies): Omit<DeliveryActivities, 'analyseDelivery'> {
  return {
    async updateDeliveryDraft(input) {
      await deps.deliveries.updateDraft(input.deliveryId, input.changes);
    },

    async setContactDate(input) {
      await deps.deliveries.setContactDate(input.deliveryId, input.contactDateMs === null ? null : new Date(input.contactDateMs));
    },

    async setDeliveryPhase(input) {
      await deps.deliveries.setState(input.deliveryId, input.phase, input.pauseReason ?? null);
    },

    async claimRecipientPage(input) {
      const page = await deps.log.claimPage(input.deliveryId, input.afterRecipientId, input.limit, input.wave, input.localSendTime?.timeZoneField ?? null);
      const lst = input.localSendTime;
      if (!lst) return page.map((r) => ({ recipientId: r.recipientId, domain: r.domain, sendAtMs: null }));
      const handed = page.map((r) => {
        const zone = r.zone && isValidTimeZone(r.zone) ? r.zone : lst.defaultTimeZone;
        return { recipientId: r.recipientId, domain: r.domain, sendAtMs: nextLocalTime(input.notBeforeMs, lst.time, zone) };
      });
      await deps.log.setSendTimes(input.deliveryId, handed.map((h) => h.recipientId), handed.map((h) => new Date(h.sendAtMs)));
      return handed;
    },

    // The safety stop is judged with the KPIs, on the delivery's last N finished attempts (one indexed query), and only
    // while it is sending: the workflow pauses itself on the verdict (workflows/delivery-run.ts).
    async readDeliveryKpis(input) {
      const policy = deps.safetyStop;
      const [kpis, recent] = await Promise.all([deps.log.kpis(input.deliveryId), policy ? deps.log.recentAttempts(input.deliveryId, policy.minAttempts) : null]);
      const verdict = recent && policy ? safetyStopVerdict(recent, policy) : null;
      return verdict ? { ...kpis, safetyStop: verdict } : kpis;
    },

    // A regular activity, not a local one: a million pending rows take tens of seconds, far past a workflow task.
    // Each chunk commits on its own, so a retry after a crash goes on where the last one stopped.
    async cancelPendingRecipients(input) {
      let total = 0;
      for (;;) {
        const n = await deps.log.cancelPending(input.deliveryId, CANCEL_CHUNK);
        total += n;
        if (n < CANCEL_CHUNK) return total;
        Context.current().heartbeat(total);
      }
    },
  };
}
