/** Qualifies a synchronous SMTP failure (a reply, or no reply at all) against the qualification rule table. */

import type { Qualification } from '../failure';
import type { SmtpReply } from '../smtp-reply';
import { loadQualificationRules, type CompiledRule } from './qualification-rule';
// A JSON import, not fs: this module is also bundled into the Temporal workflow sandbox.
import seed from '../../rules/smtp-qualification-rules.json';

/** Returned when no rule matches. Frozen and shared, so the fallback allocates nothing either. */
export const FALLBACK_QUALIFICATIONS = Object.freeze({
  /** Code 0, no enhanced code: no SMTP reply at all (connection, DNS, TLS). */
  noReply: Object.freeze<Qualification>({ type: 'soft', reason: 'unreachable', retryClass: 'unreachable', ruleId: 'default' }),
  temporary: Object.freeze<Qualification>({ type: 'soft', reason: 'not_defined', retryClass: 'transient', ruleId: 'default' }),
  /** A permanent failure that says nothing about the address: final for the message, the address stays usable. */
  permanent: Object.freeze<Qualification>({ type: 'soft', reason: 'not_defined', retryClass: 'none', ruleId: 'default' }),
  /** Permanent, and the enhanced code says the mailbox does not exist (X.1.1) or has moved (X.1.6). */
  badMailbox: Object.freeze<Qualification>({ type: 'hard', reason: 'user_unknown', retryClass: 'none', ruleId: 'default' }),
  /** Permanent, and the enhanced code says the domain does not exist or takes no mail (X.1.2, X.1.10). */
  badDomain: Object.freeze<Qualification>({ type: 'hard', reason: 'invalid_domain', retryClass: 'none', ruleId: 'default' }),
  /** Permanent, and the enhanced code says the address syntax is wrong (X.1.3). */
  badSyntax: Object.freeze<Qualification>({ type: 'hard', reason: 'invalid_address', retryClass: 'none', ruleId: 'default' }),
});

/** A permanent failure: hard only when the enhanced code itself says the address is invalid (RFC 3463 X.1.1-X.1.3, X.1.6, X.1.10). */
function permanentFallback(enhancedCode: string | null): Qualification {
  switch (enhancedCode) {
    case '5.1.1':
    case '5.1.6':
      return FALLBACK_QUALIFICATIONS.badMailbox;
    case '5.1.2':
    case '5.1.10':
      return FALLBACK_QUALIFICATIONS.badDomain;
    case '5.1.3':
      return FALLBACK_QUALIFICATIONS.badSyntax;
    default:
      return FALLBACK_QUALIFICATIONS.permanent;
  }
}

function fallback(code: number, enhancedCode: string | null): Qualification {
  // The basic code decides when it is a failure code: RFC 5321 makes it the one the client
  // acts on, and an enhanced code whose class disagrees (e.g. "421 5.7.1") is a server bug.
  // Losing a message to a wrongly permanent failure is worse than one extra retry.
  const basicClass = (code / 100) | 0;
  if (basicClass === 5) return permanentFallback(enhancedCode);
  if (basicClass === 4) return FALLBACK_QUALIFICATIONS.temporary;
  // No basic code: the enhanced code class, when one was found in the text.
  if (enhancedCode !== null) {
    if (enhancedCode.charCodeAt(0) === 53 /* "5" */) return permanentFallback(enhancedCode);
    if (enhancedCode.charCodeAt(0) === 52 /* "4" */) return FALLBACK_QUALIFICATIONS.temporary;
  }
  if (code === 0) return FALLBACK_QUALIFICATIONS.noReply;
  // 1xx-3xx never reach the engine as failures; if one does, retry rather than lose the message.
  return FALLBACK_QUALIFICATIONS.temporary;
}

/**
 * Returns the qualification of the first matching rule, `rules` being in evaluation order
 * (as loadQualificationRules returns them). A rule matches when every non-null condition does:
 * basic code (exact or class), enhanced code (exact or prefix), recipient domain, reply text.
 * Cheap comparisons run before the regexes. The result is the rule's shared frozen object.
 */
export function qualifySmtpReply(reply: SmtpReply, rules: readonly CompiledRule[], recipientDomain?: string): Qualification {
  const code = reply.code;
  const codeClass = (code / 100) | 0;
  const enhanced = reply.enhancedCode;
  const text = reply.text;
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i];
    if (rule.codeExact !== null && rule.codeExact !== code) continue;
    if (rule.codeClass !== null && rule.codeClass !== codeClass) continue;
    if (rule.enhancedExact !== null && rule.enhancedExact !== enhanced) continue;
    if (rule.enhancedPrefix !== null && (enhanced === null || !enhanced.startsWith(rule.enhancedPrefix))) continue;
    if (rule.domainRegex !== null && (recipientDomain === undefined || !rule.domainRegex.test(recipientDomain))) continue;
    if (rule.patternRegex !== null && !rule.patternRegex.test(text)) continue;
    return rule.result;
  }
  return fallback(code, enhanced);
}

/** Version of the seed table bundled with the code. */
export const DEFAULT_RULES_VERSION: number = seed.version;

let defaultRules: readonly CompiledRule[] | undefined;

/**
 * The seed table (rules/smtp-qualification-rules.json), validated and compiled on first use and
 * then shared. A function rather than a constant so that importing this module costs nothing and
 * cannot throw.
 */
export function getDefaultRules(): readonly CompiledRule[] {
  if (defaultRules === undefined) defaultRules = Object.freeze(loadQualificationRules(seed));
  return defaultRules;
}

/** qualifySmtpReply against the seed table. */
export function qualifyWithDefaultRules(reply: SmtpReply, recipientDomain?: string): Qualification {
  return qualifySmtpReply(reply, getDefaultRules(), recipientDomain);
}
