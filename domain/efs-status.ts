/** The Email Feedback Service status model: statuses, the transitions between them, and the KPIs they add up to. */
import type { FailureReason, FailureType, Qualification } from './failure';

export const EFS_STATUSES = ['pending', 'excluded', 'taken_into_account', 'sent', 'failed', 'cancelled'] as const;
export type EfsStatus = (typeof EFS_STATUSES)[number];

/** What one SMTP attempt ended as, in the log and in the recipient workflow's history. */
export type AttemptOutcome = 'accepted' | 'soft' | 'hard' | 'ignored';

/** What one SMTP attempt did to a recipient's status. */
export interface AttemptTransition {
  status: EfsStatus;
  failureType: FailureType | null;
  failureReason: FailureReason | null;
  /** True when the message should be tried again (a retryable failure inside the retry window). */
  retry: boolean;
}

/**
 * Applies an attempt's result. Two separate decisions (docs/bounce-classification.md): the qualification's *type*
 * says what the failure means for the address (hard: it will never work; soft: it may), and its *retry class* says
 * whether this message is tried again (`none`: final). So accepted → sent; a retryable failure stays
 * taken_into_account with its reason while the retry window is open; any other failure → failed with its type
 * (hard, or soft without quarantining the address at once); ignored → counts as accepted by the receiving side.
 */
export function transitionAfterAttempt(
  result: { accepted: true } | { accepted: false; qualification: Qualification },
  nextRetryFitsWindow: boolean,
): AttemptTransition {
  if (result.accepted) return { status: 'sent', failureType: null, failureReason: null, retry: false };
  const q = result.qualification;
  if (q.type === 'ignored') return { status: 'sent', failureType: 'ignored', failureReason: q.reason, retry: false };
  if (q.retryClass !== 'none' && nextRetryFitsWindow) return { status: 'taken_into_account', failureType: q.type, failureReason: q.reason, retry: true };
  return { status: 'failed', failureType: q.type, failureReason: q.reason, retry: false };
}

/** Relay mode: the smart host's 250 is "taken into account by the service provider"; a report or the window decides. */
export function transitionAfterRelayAccepted(): AttemptTransition {
  return { status: 'taken_into_account', failureType: null, failureReason: null, retry: false };
}

/** EFS KPIs of one delivery. */
export interface DeliveryKpis {
  targeted: number;
  excluded: number;
  /** Targeted minus excluded minus cancelled: the denominator of Success %. */
  toDeliver: number;
  pending: number;
  takenIntoAccount: number;
  sent: number;
  failed: number;
  cancelled: number;
  /** Handed over but no attempt finished yet: what the fan-out window limits. */
  awaitingFirstAttempt: number;
  /** sent / toDeliver, in percent with two decimals; 0 when there is nothing to deliver. */
  successPercent: number;
  failuresByReason: Record<string, number>;
  failuresByType: Record<string, number>;
  /** Recipients who reported the message as spam (ARF): their addresses are on the denylist. */
  complaints: number;
  /** Recipients made failed by an asynchronous report: late bounces in direct mode, relay failure reports. */
  failedByReport: number;
}

export function kpisFromCounts(
  counts: Partial<Record<EfsStatus, number>>,
  failuresByReason: Record<string, number> = {},
  failuresByType: Record<string, number> = {},
  awaitingFirstAttempt = 0,
  feedback: { complaints: number; failedByReport: number } = { complaints: 0, failedByReport: 0 },
): DeliveryKpis {
  const n = (s: EfsStatus) => counts[s] ?? 0;
  const targeted = EFS_STATUSES.reduce((sum, s) => sum + n(s), 0);
  const toDeliver = targeted - n('excluded') - n('cancelled');
  return {
    targeted,
    excluded: n('excluded'),
    toDeliver,
    pending: n('pending'),
    takenIntoAccount: n('taken_into_account'),
    sent: n('sent'),
    failed: n('failed'),
    cancelled: n('cancelled'),
    awaitingFirstAttempt,
    successPercent: toDeliver === 0 ? 0 : Math.round((n('sent') / toDeliver) * 10_000) / 100,
    failuresByReason,
    failuresByType,
    complaints: feedback.complaints,
    failedByReport: feedback.failedByReport,
  };
}

/** True when no recipient can change status any more through the sending stage. */
export function allRecipientsFinal(k: DeliveryKpis): boolean {
  return k.pending === 0 && k.takenIntoAccount === 0;
}
