// How numbers, dates and states read in the dashboard.
const NUMBER = new Intl.NumberFormat('en');
const PERCENT = new Intl.NumberFormat('en', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const DATE = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short' });
const DATE_SECONDS = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'medium' });

export const num = (n) => (n === null || n === undefined ? '—' : NUMBER.format(n));
export const pct = (n) => (n === null || n === undefined ? '—' : `${PERCENT.format(n)} %`);
export const date = (d) => (d ? DATE.format(new Date(d)) : '—');
export const dateSeconds = (d) => (d ? DATE_SECONDS.format(new Date(d)) : '—');

export const PHASES = {
  created: 'Created',
  analysing: 'Analysing',
  awaiting_confirmation: 'Awaiting confirmation',
  analysis_failed: 'Analysis failed',
  scheduled: 'Scheduled',
  sending: 'Sending',
  paused: 'Paused',
  completed: 'Completed',
  cancelled: 'Cancelled',
};
export const phase = (p) => PHASES[p] || p;

export const STATUSES = {
  pending: 'Pending',
  excluded: 'Excluded',
  taken_into_account: 'Taken into account',
  sent: 'Sent',
  failed: 'Failed',
  cancelled: 'Cancelled',
};
export const status = (s) => STATUSES[s] || s;

/** What a failure says about the address (domain/failure.ts FAILURE_TYPES; test/delivery-log-filters.test.ts keeps them equal). */
export const FAILURE_TYPES = { hard: 'Hard', soft: 'Soft', ignored: 'Ignored' };

/** The failure reasons of the delivery log (domain/failure.ts FAILURE_REASONS), as words. */
export const FAILURE_REASONS = Object.fromEntries(
  ['user_unknown', 'invalid_domain', 'mailbox_full', 'account_disabled', 'refused', 'unreachable', 'not_defined', 'quarantined_address', 'address_on_denylist', 'invalid_address', 'error_ignored'].map(
    (r) => [r, r.charAt(0).toUpperCase() + r.slice(1).replace(/_/g, ' ')],
  ),
);

/** Whether and how a failed message is tried again (domain/failure.ts RETRY_CLASSES; test/dashboard-rules.test.ts keeps them equal). */
export const RETRY_CLASSES = {
  none: 'None: final for this message',
  greylisting: 'Greylisting',
  throttling: 'Throttling',
  mailbox_full: 'Mailbox full',
  unreachable: 'Unreachable',
  transient: 'Transient',
};

/** What an inbound rule makes of a message (domain/bounce-rules/inbound-rule.ts INBOUND_RULE_KINDS). */
export const INBOUND_RULE_KINDS = { bounce: 'Bounce', delayed: 'Delay warning', auto_reply: 'Auto-reply' };

/** snake_case machine words (failure reasons, exclusion reasons) as words. */
export const words = (s) => (s ? String(s).replace(/_/g, ' ') : '—');

/** Success % of a KPI block, as the engine defines it: sent / to deliver. */
export const successOf = (k) => (k ? k.successPercent : null);
