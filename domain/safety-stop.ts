/**
 * The delivery safety stop: a delivery whose last N finished attempts bounce hard, or are refused, at more than a set
 * rate pauses itself before a bad list burns the sending domain's reputation. Pure; the delivery log counts.
 */

export interface SafetyStopPolicy {
  /** N: the check looks at the last N finished attempts, and only once there are N of them. */
  minAttempts: number;
  /** Hard bounces (user unknown, no such domain...) among them above which the delivery stops (0..1). */
  hardBounceRate: number;
  /** Final refusals (policy, spam, block list: failure reason "refused" with no retry) above which it stops (0..1). */
  refusalRate: number;
}

/** What the last N finished attempts were. */
export interface RecentAttempts {
  attempts: number;
  hardBounces: number;
  refusals: number;
}

export interface SafetyStopVerdict {
  /** One line for people: what was seen and the threshold it passed. */
  reason: string;
  attempts: number;
  hardBounces: number;
  refusals: number;
  hardBounceRate: number;
  refusalRate: number;
  thresholds: { minAttempts: number; hardBounceRate: number; refusalRate: number };
}

const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;

/** Null while the delivery may go on: fewer than N attempts looked at, or both rates at or under their thresholds. */
export function safetyStopVerdict(recent: RecentAttempts, policy: SafetyStopPolicy): SafetyStopVerdict | null {
  if (recent.attempts < policy.minAttempts || recent.attempts === 0) return null;
  const hardBounceRate = recent.hardBounces / recent.attempts;
  const refusalRate = recent.refusals / recent.attempts;
  const hard = hardBounceRate > policy.hardBounceRate;
  const refused = refusalRate > policy.refusalRate;
  if (!hard && !refused) return null;
  const parts: string[] = [];
  if (hard) parts.push(`${recent.hardBounces} hard bounces (${pct(hardBounceRate)}, threshold ${pct(policy.hardBounceRate)})`);
  if (refused) parts.push(`${recent.refusals} refusals (${pct(refusalRate)}, threshold ${pct(policy.refusalRate)})`);
  return {
    reason: `safety stop: ${parts.join(' and ')} in the last ${recent.attempts} attempts`,
    attempts: recent.attempts,
    hardBounces: recent.hardBounces,
    refusals: recent.refusals,
    hardBounceRate,
    refusalRate,
    thresholds: { ...policy },
  };
}
