// Sandbox MX behaviour table: maps a recipient address to how a simulated receiver treats it, and decides the SMTP reply. Pure, no sockets.

/** What the sandbox does with a recipient. */
export type BehaviourName =
  | 'accept'
  | 'unknown'
  | 'full'
  | 'greylist'
  | 'throttle'
  | 'fail'
  | 'disabled'
  | 'spam'
  | 'drop'
  | 'slow'
  | 'late'
  | 'complain'
  | 'quiet';

export interface RecipientBehaviour {
  kind: BehaviourName;
  /**
   * For `fail` and `throttle`: how many attempts fail before the address is accepted.
   * Absent means "every attempt fails".
   */
  failFirst?: number;
}

export interface BehaviourRule {
  /** Tested against the lower-cased local part of the recipient. */
  pattern: RegExp;
  kind: BehaviourName;
  /** Derives parameters from the match, e.g. the N of `fail<N>-`. */
  params?: (match: RegExpExecArray) => Omit<RecipientBehaviour, 'kind'>;
  /** An address that triggers the rule, for docs and tests. */
  example: string;
  description: string;
}

const firstN = (match: RegExpExecArray): Omit<RecipientBehaviour, 'kind'> => ({ failFirst: Number(match[1]) });

/**
 * First matching rule wins, so the counted variants (`fail<N>-`, `throttle<N>-`) sit before their
 * always-on prefixes. Every pattern is a prefix of the local part, so `hard-1`, `hard+tag`, `hardbounce` all match.
 */
export const BEHAVIOUR_RULES: readonly BehaviourRule[] = [
  // Permanent bounce at RCPT: the classic "no such user" hard bounce.
  { pattern: /^(?:hard|unknown)/, kind: 'unknown', example: 'hard-bob@example.test', description: '550 5.1.1 <addr>: user unknown at RCPT TO' },
  // Transient mailbox problem: senders should retry later, then eventually give up.
  { pattern: /^full/, kind: 'full', example: 'full-bob@example.test', description: '452 4.2.2 <addr>: mailbox full at RCPT TO' },
  // Greylisting: first sighting of the address is deferred; accepted once greylistDelayMs has elapsed since then.
  { pattern: /^gr[ae]y/, kind: 'greylist', example: 'grey-bob@example.test', description: '451 4.7.1 Greylisted, please try again later on first sighting, accepted after greylistDelayMs (default 0, i.e. on the next attempt)' },
  // Rate limiting for the first N attempts on this address, then accepted.
  { pattern: /^throttle(\d+)-/, kind: 'throttle', params: firstN, example: 'throttle3-bob@example.test', description: '421 4.7.0 Too many messages, slow down (connection closed) for the first N attempts, then accepted' },
  // Rate limiting forever: exercises back-off and retry exhaustion.
  { pattern: /^throttle/, kind: 'throttle', example: 'throttle-bob@example.test', description: '421 4.7.0 Too many messages, slow down, and the connection is closed, on every attempt' },
  // Transient failure for the first N attempts on this address, then accepted.
  { pattern: /^fail(\d+)-/, kind: 'fail', params: firstN, example: 'fail2-bob@example.test', description: '451 4.3.0 Temporary failure, try again for the first N attempts, then accepted' },
  // Transient failure forever: exercises retry exhaustion.
  { pattern: /^fail/, kind: 'fail', example: 'fail-bob@example.test', description: '451 4.3.0 Temporary failure, try again on every attempt' },
  // Permanent bounce with a different enhanced code, so classifiers can tell it from "unknown user".
  { pattern: /^disabled/, kind: 'disabled', example: 'disabled-bob@example.test', description: '550 5.2.1 <addr>: account disabled at RCPT TO' },
  // Content rejection: the envelope is accepted, the message is refused after DATA is received.
  { pattern: /^(?:blocked|spam)/, kind: 'spam', example: 'spam-bob@example.test', description: '250 at RCPT TO, then 554 5.7.1 Message rejected as spam after DATA (whole transaction, nothing stored)' },
  // Network failure: the server closes the connection instead of answering RCPT TO.
  { pattern: /^drop/, kind: 'drop', example: 'drop-bob@example.test', description: 'Connection closed without a reply at RCPT TO' },
  // Late bounce: accepted with 250, then a DSN (RFC 3464, 5.1.1) is mailed to the return path, as Exchange or a filtering gateway does.
  { pattern: /^late/, kind: 'late', example: 'late-bob@example.test', description: 'Accepted with 250; a few moments later an RFC 3464 DSN "failed 5.1.1 user unknown" is mailed to the VERP return path (needs the reports option)' },
  // Complaint: accepted, then the recipient presses "report spam": an ARF report goes to the feedback address.
  { pattern: /^complain/, kind: 'complain', example: 'complain-bob@example.test', description: 'Accepted with 250; then an ARF (RFC 5965) abuse report about it is mailed to the feedback address (needs the reports option)' },
  // No report ever: a smart host whose report is lost (relay mode's confirmation window decides).
  { pattern: /^quiet/, kind: 'quiet', example: 'quiet-bob@example.test', description: 'Accepted; as a smart host (relay option) the sandbox sends no delivery report at all for it' },
  // Slow receiver: accepted, but the reply to DATA is held for slowMs.
  { pattern: /^slow/, kind: 'slow', example: 'slow-bob@example.test', description: 'Accepted; the reply to DATA is delayed by slowMs (default 2000)' },
];

export type DomainBehaviours = Readonly<Record<string, BehaviourName | RecipientBehaviour>>;

/** Splits on the last `@` because quoted local parts may themselves contain one. */
function splitAddress(address: string): { localPart: string; domain: string } {
  const at = address.lastIndexOf('@');
  if (at < 0) return { localPart: address.toLowerCase(), domain: '' };
  return { localPart: address.slice(0, at).toLowerCase(), domain: address.slice(at + 1).toLowerCase() };
}

/**
 * Maps a recipient to its behaviour. A domain override, when given for the recipient's domain,
 * wins over the local-part table so a whole "provider" can be made to misbehave.
 */
export function behaviourFor(address: string, domainBehaviours?: DomainBehaviours): RecipientBehaviour {
  const { localPart, domain } = splitAddress(address);
  const override = domainBehaviours?.[domain];
  if (override !== undefined) return typeof override === 'string' ? { kind: override } : override;
  for (const rule of BEHAVIOUR_RULES) {
    const match = rule.pattern.exec(localPart);
    if (match) return { kind: rule.kind, ...rule.params?.(match) };
  }
  return { kind: 'accept' };
}

/** An SMTP reply the sandbox sends instead of accepting. */
export interface SmtpReply {
  code: number;
  enhancedCode: string;
  text: string;
}

export type RcptVerdict = { action: 'accept' } | { action: 'reply'; reply: SmtpReply } | { action: 'drop' };

export interface RcptContext {
  /** 1-based count of RCPT attempts for this address, including the current one. */
  attempt: number;
  /** When the address was first seen (ms epoch); drives greylisting. */
  firstSeenAt: number;
  now: number;
  greylistDelayMs: number;
}

const ACCEPT: RcptVerdict = { action: 'accept' };

function reply(code: number, enhancedCode: string, text: string): RcptVerdict {
  return { action: 'reply', reply: { code, enhancedCode, text } };
}

/** Decides the reply to RCPT TO. `spam` and `slow` are accepted here and act at DATA. */
export function rcptVerdict(address: string, behaviour: RecipientBehaviour, ctx: RcptContext): RcptVerdict {
  const stillFailing = behaviour.failFirst === undefined || ctx.attempt <= behaviour.failFirst;
  switch (behaviour.kind) {
    case 'accept':
    case 'spam':
    case 'slow':
    case 'late':
    case 'complain':
    case 'quiet':
      return ACCEPT;
    case 'unknown':
      return reply(550, '5.1.1', `<${address}>: user unknown`);
    case 'full':
      return reply(452, '4.2.2', `<${address}>: mailbox full`);
    case 'greylist':
      // The first sighting is always deferred, even with a zero delay, or greylisting would be a no-op.
      return ctx.attempt > 1 && ctx.now - ctx.firstSeenAt >= ctx.greylistDelayMs
        ? ACCEPT
        : reply(451, '4.7.1', 'Greylisted, please try again later');
    case 'throttle':
      return stillFailing ? reply(421, '4.7.0', 'Too many messages, slow down') : ACCEPT;
    case 'fail':
      return stillFailing ? reply(451, '4.3.0', 'Temporary failure, try again') : ACCEPT;
    case 'disabled':
      return reply(550, '5.2.1', `<${address}>: account disabled`);
    case 'drop':
      return { action: 'drop' };
  }
}

/** The DATA-time rejection for a content-filtered transaction; one spam recipient rejects the whole message, as real filters do. */
export const SPAM_REPLY: SmtpReply = { code: 554, enhancedCode: '5.7.1', text: 'Message rejected as spam' };

export const OVERSIZE_REPLY: SmtpReply = { code: 552, enhancedCode: '5.3.4', text: 'Message size exceeds fixed maximum message size' };

/** What the sandbox mails back about an accepted recipient, after its 250. */
export type AsyncReport =
  | { kind: 'dsn'; action: 'failed' | 'delivered' | 'relayed'; status: string; diagnostic: string | null }
  | { kind: 'arf' };

/**
 * The reports an accepted recipient leads to. As a receiving MX: late bounces and complaints. As a smart host
 * (`relay`), which accepts every recipient and learns the outcome later: a failure report for what the final server
 * refuses, a success report when the sender asked for one (NOTIFY=SUCCESS), and the complaint after delivery.
 * NOTIFY=NEVER suppresses every DSN; without NOTIFY, failures are reported (RFC 3461 4.1).
 */
export function asyncReportsFor(address: string, behaviour: RecipientBehaviour, relay: boolean, notify: readonly string[] | null): AsyncReport[] {
  const wants = (what: 'SUCCESS' | 'FAILURE') => (notify === null || notify.length === 0 ? what === 'FAILURE' : notify.includes(what));
  const failed = (status: string, diagnostic: string): AsyncReport[] => (wants('FAILURE') ? [{ kind: 'dsn', action: 'failed', status, diagnostic }] : []);
  const success = (action: 'delivered' | 'relayed'): AsyncReport[] => (wants('SUCCESS') ? [{ kind: 'dsn', action, status: '2.0.0', diagnostic: '250 2.0.0 Ok: delivered' }] : []);
  if (behaviour.kind === 'late') return failed('5.1.1', `550 5.1.1 <${address}>: Recipient address rejected: User unknown in virtual mailbox table`);
  if (!relay) return behaviour.kind === 'complain' ? [{ kind: 'arf' }] : [];
  switch (behaviour.kind) {
    case 'unknown':
      return failed('5.1.1', `550 5.1.1 <${address}>: Recipient address rejected: User unknown`);
    case 'disabled':
      return failed('5.2.1', `550 5.2.1 <${address}>: account disabled`);
    case 'spam':
      return failed('5.7.1', '554 5.7.1 Message rejected as spam');
    case 'full':
      return failed('4.2.2', `452 4.2.2 <${address}>: Mailbox full (delivery time expired)`);
    case 'drop':
      return failed('4.4.1', 'connection lost with the final server (delivery time expired)');
    case 'complain':
      return [...success('delivered'), { kind: 'arf' }];
    case 'greylist':
      return success('relayed');
    case 'quiet':
      return [];
    default:
      return success('delivered');
  }
}
