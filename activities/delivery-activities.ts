/** Activities of the delivery workflow: state, handing pages of recipients over, KPIs, cancellation. */
import type { ActivityDependencies } from './dependencies';
import type { DeliveryState } from '../db/delivery-store';
import type { DeliveryKpis } from '../domain/efs-status';
import type { LocalSendTime } from '../domain/delivery-options';
import type { WaveSpec } from '../domain/wave-plan';
import { isValidTimeZone, nextLocalTime } from '../domain/local-send-time';

/** A recipient handed to the sending stage: what its workflow needs, never its address. */
export interface HandedOverRecipient {
  recipientId: number;
  domain: string;
  /** Epoch ms before which the message must not be sent (local-time sending), or null. */
  sendAtMs: number | null;
}

/** Draft edits before confirmation (already validated by the API). */
export interface DraftChanges {
  name?: string;
  subject?: string;
  html?: string | null;
  text?: string | null;
  validitySeconds?: number;
  waves?: WaveSpec;
  localSendTime?: LocalSendTime | null;
}

export function createDeliveryActivities(deps: ActivityDependencies) {
  return {
    /** Applies draft edits; the workflow only calls it while the delivery is not confirmed yet. */
    async updateDeliveryDraft(input: { deliveryId: string; changes: DraftChanges }): Promise<void> {
      await deps.store.updateDraft(input.deliveryId, input.changes);
    },

    async setContactDate(input: { deliveryId: string; contactDateMs: number | null }): Promise<void> {
      await deps.store.setContactDate(input.deliveryId, input.contactDateMs === null ? null : new Date(input.contactDateMs));
    },

    async setDeliveryState(deliveryId: string, state: DeliveryState): Promise<void> {
      await deps.store.setState(deliveryId, state);
    },

    /** Hands the next page of recipients to the sending stage; returns their ids and domains (never addresses). */
    async claimRecipientPage(input: {
      deliveryId: string;
      afterRecipientId: number;
      limit: number;
      wave: number;
      /** Local-time sending: each message waits for this wall time in its recipient's zone, not before notBeforeMs. */
      localSendTime?: LocalSendTime;
      notBeforeMs: number;
    }): Promise<HandedOverRecipient[]> {
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

    async readDeliveryKpis(deliveryId: string): Promise<DeliveryKpis> {
      return deps.log.kpis(deliveryId);
    },

    async cancelPendingRecipients(deliveryId: string): Promise<number> {
      return deps.log.cancelPending(deliveryId);
    },
  };
}
