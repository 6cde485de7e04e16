/** Per-delivery sending options stored with the delivery: its waves and local-time sending. */
import type { WaveSpec } from './wave-plan';

export interface LocalSendTime {
  /** Wall-clock time "HH:mm" at which each recipient's message is sent in the recipient's own time zone. */
  time: string;
  /** IANA zone used when a recipient has none (or an invalid one). */
  defaultTimeZone: string;
  /** Recipient field that holds the IANA zone. */
  timeZoneField: string;
}

export interface DeliveryOptions {
  waves: WaveSpec;
  localSendTime?: LocalSendTime;
}

export const DEFAULT_DELIVERY_OPTIONS: DeliveryOptions = { waves: { mode: 'single' } };
