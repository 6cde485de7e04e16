/** Sending at a given local time in each recipient's own time zone, correct across daylight-saving changes. */
import { DateTime, IANAZone } from 'luxon';

export function isValidTimeZone(zone: string): boolean {
  return IANAZone.isValidZone(zone);
}

/**
 * The first instant at or after `notBeforeMs` when the wall clock in `zone` reads `localTime` ("HH:mm").
 * On a spring-forward day a wall time inside the gap does not exist; luxon moves it forward by the gap (02:30 → 03:30).
 */
export function nextLocalTime(notBeforeMs: number, localTime: string, zone: string): number {
  const [hour, minute] = localTime.split(':').map(Number);
  const start = DateTime.fromMillis(notBeforeMs, { zone });
  let candidate = start.set({ hour, minute, second: 0, millisecond: 0 });
  if (candidate.toMillis() < notBeforeMs) candidate = start.plus({ days: 1 }).set({ hour, minute, second: 0, millisecond: 0 });
  return candidate.toMillis();
}
