/** Wave planning: how a delivery's population is split over time (by size, by calendar, or a ramp-up for a new IP). */

export type WaveSpec =
  | { mode: 'single' }
  | { mode: 'size'; size?: number; percent?: number; periodSeconds: number }
  | { mode: 'calendar'; waves: { startAt: string; size?: number; percent?: number }[] }
  | { mode: 'ramp_up'; initialSize: number; growthFactor: number; periodSeconds: number; maxSize?: number };

export interface PlannedWave {
  /** 1-based. */
  index: number;
  startAtMs: number;
  size: number;
  /** Start + size at the estimated sending rate. */
  estimatedEndMs: number;
}

function fromPercent(percent: number, total: number): number {
  return Math.floor((percent / 100) * total);
}

/**
 * Splits `toDeliver` recipients into waves starting at `startMs`. Every recipient is in exactly one wave:
 * the last wave takes whatever earlier waves leave (rounding, or a calendar that adds up to less than 100%).
 */
export function planWaves(spec: WaveSpec, toDeliver: number, startMs: number, ratePerSecond: number): PlannedWave[] {
  const sizes: { startAtMs: number; size: number }[] = [];
  if (toDeliver <= 0) return [];
  switch (spec.mode) {
    case 'single':
      sizes.push({ startAtMs: startMs, size: toDeliver });
      break;
    case 'size': {
      const per = Math.max(1, spec.size ?? Math.ceil(((spec.percent ?? 100) / 100) * toDeliver));
      for (let left = toDeliver, i = 0; left > 0; i++) {
        const size = Math.min(per, left);
        sizes.push({ startAtMs: startMs + i * spec.periodSeconds * 1000, size });
        left -= size;
      }
      break;
    }
    case 'calendar': {
      const ordered = [...spec.waves].sort((a, b) => Date.parse(a.startAt) - Date.parse(b.startAt));
      let left = toDeliver;
      for (const w of ordered) {
        const size = Math.min(left, w.size ?? fromPercent(w.percent ?? 0, toDeliver));
        sizes.push({ startAtMs: Math.max(startMs, Date.parse(w.startAt)), size });
        left -= size;
      }
      if (left > 0 && sizes.length > 0) sizes[sizes.length - 1].size += left;
      break;
    }
    case 'ramp_up': {
      let per = Math.max(1, spec.initialSize);
      for (let left = toDeliver, i = 0; left > 0; i++) {
        const size = Math.min(per, left);
        sizes.push({ startAtMs: startMs + i * spec.periodSeconds * 1000, size });
        left -= size;
        per = Math.min(Math.ceil(per * spec.growthFactor), spec.maxSize ?? Number.MAX_SAFE_INTEGER);
      }
      break;
    }
  }
  return sizes
    .filter((w) => w.size > 0)
    .map((w, i) => ({ index: i + 1, startAtMs: w.startAtMs, size: w.size, estimatedEndMs: w.startAtMs + Math.ceil((w.size / ratePerSecond) * 1000) }));
}

/** Calendar waves that add up to less (or more) than the population: analysis reports it. */
export function calendarShortfall(spec: WaveSpec, toDeliver: number): number {
  if (spec.mode !== 'calendar') return 0;
  const asked = spec.waves.reduce((sum, w) => sum + (w.size ?? fromPercent(w.percent ?? 0, toDeliver)), 0);
  return toDeliver - asked;
}
