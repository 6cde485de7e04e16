/** The event types a webhook subscription can ask for, and the shape of what an endpoint receives (docs/webhooks.md). */

export const DELIVERY_EVENT_TYPES = [
  'delivery.analysed',
  'delivery.confirmed',
  'delivery.started',
  'delivery.wave_started',
  'delivery.paused',
  'delivery.resumed',
  'delivery.cancelled',
  'delivery.completed',
] as const;

export const RECIPIENT_EVENT_TYPES = [
  'recipient.sent',
  'recipient.failed',
  'recipient.soft_bounce',
  'recipient.async_bounce',
  'recipient.complaint',
  'recipient.unsubscribed',
  'recipient.quarantined',
] as const;

/** Every type, in the order the docs list them. The triggers of migration 035 write exactly these. */
export const WEBHOOK_EVENT_TYPES = [...DELIVERY_EVENT_TYPES, ...RECIPIENT_EVENT_TYPES] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** One event as an endpoint receives it (the Standard Webhooks payload structure: type, timestamp, data). */
export interface WebhookEvent {
  /** `evt_<n>`: stable, the same when the event is sent again (retry, replay); receivers deduplicate on it. */
  id: string;
  type: WebhookEventType;
  /** When the fact was recorded, ISO 8601. */
  timestamp: string;
  data: Record<string, unknown>;
}

/** The body of one POST: a batch of events in outbox order, itself in the payload structure, typed `event.batch`. */
export interface WebhookBatchBody {
  type: 'event.batch';
  /** When the batch was cut (the same on every retry of it). */
  timestamp: string;
  data: { events: WebhookEvent[] };
}

export const EVENT_ID_PREFIX = 'evt_';

export function webhookEventId(seq: number | string): string {
  return `${EVENT_ID_PREFIX}${seq}`;
}

/** The outbox sequence number of an event id (`evt_42` or `42`), or null when it is not one. */
export function eventSeqOf(id: string): number | null {
  const m = /^(?:evt_)?(\d{1,15})$/.exec(id);
  return m ? Number(m[1]) : null;
}
