/** How long a whole receiving site is held back after it throttles us: doubling per consecutive throttle, capped. */

const BASE_MS = 60_000;
const MAX_MS = 30 * 60_000;

/** Back-off for the `level`-th consecutive throttling reply (1-based): 1, 2, 4, ... minutes, at most 30. */
export function siteBackoffMs(level: number): number {
  return Math.min(BASE_MS * 2 ** Math.max(0, level - 1), MAX_MS);
}
