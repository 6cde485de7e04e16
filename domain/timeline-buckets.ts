/** How a delivery's timeline is cut: a round bucket width chosen from its time span, so the axis reads in whole units. */

/** Widths a person reads at a glance, in seconds; past a day, whole days. */
const NICE_WIDTHS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

export interface TimelineBuckets {
  from: Date;
  widthMs: number;
  /** How many buckets cover [from, to]: at most the number asked for, at least one. */
  count: number;
}

/** The smallest round width that covers [from, to] in at most `maxBuckets` buckets. */
export function timelineBuckets(from: Date, to: Date, maxBuckets: number): TimelineBuckets {
  const spanMs = Math.max(1000, to.getTime() - from.getTime());
  const wanted = spanMs / Math.max(1, maxBuckets);
  const niceS = NICE_WIDTHS_S.find((s) => s * 1000 >= wanted) ?? Math.ceil(wanted / 86_400_000) * 86400;
  const widthMs = niceS * 1000;
  return { from, widthMs, count: Math.max(1, Math.ceil(spanMs / widthMs)) };
}
