/** The fixed vocabulary of failure qualification: types, reasons and retry classes shared by every stage. */

/**
 * What a failure says about the ADDRESS: hard, it will never work (user unknown, no such domain, moved, invalid
 * syntax); soft, anything else (spam or policy refusal, blocklist, authentication, size, mailbox full, account
 * disabled, expired, unreachable...); ignored, nothing at all (auto-reply). Whether THIS MESSAGE is tried again is the
 * retry class, not the type: a soft failure with retry class "none" is final for the message and leaves the address
 * alone (docs/bounce-classification.md).
 */
export const FAILURE_TYPES = ['hard', 'soft', 'ignored'] as const;
export type FailureType = (typeof FAILURE_TYPES)[number];

/** The one fixed list of failure reasons (design: "Failure qualification"). */
export const FAILURE_REASONS = [
  'user_unknown',
  'invalid_domain',
  'mailbox_full',
  'account_disabled',
  'refused',
  'unreachable',
  'not_defined',
  'quarantined_address',
  'address_on_denylist',
  'invalid_address',
  'error_ignored',
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/**
 * Whether and how the message is tried again ("none": final for this message, whatever its type). Each class has its own schedule in `retry-schedule.ts`,
 * as a modern MTA does, instead of one fixed interval for everything.
 */
export const RETRY_CLASSES = [
  'none', // final for this message: every hard or ignored failure, and soft ones such as a 5xx policy refusal
  'greylisting', // the receiver asks to come back in a few minutes
  'throttling', // the receiving site is rate limiting us: back off the whole site
  'mailbox_full', // the mailbox may be emptied within hours
  'unreachable', // connection/DNS/timeout problems: exponential backoff with jitter
  'transient', // any other temporary failure
] as const;
export type RetryClass = (typeof RETRY_CLASSES)[number];

/** A qualified failure: what the rules engine returns for an SMTP reply or a DSN. */
export interface Qualification {
  type: FailureType;
  reason: FailureReason;
  retryClass: RetryClass;
  /** Identifier of the rule that matched, for audit ("default" when none did). */
  ruleId: string;
}
