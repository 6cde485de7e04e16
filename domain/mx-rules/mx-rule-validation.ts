/** Whether an MX site rule or an MX reply rule, a seed file or a stored row may be written or used. */
import type { z } from 'zod';
import { InvalidQualificationRuleError, type RuleIssue } from '../bounce-rules/rule-validation';
import { qualifyWithDefaultRules } from '../bounce-rules/qualify-smtp-reply';
import { mxSiteRuleSchema, mxSiteRuleSetSchema, sortRules, type MxSiteRule } from './mx-site-rule';
import { compileMxReplyRule, matchMxReplyRule, mxReplyRuleSchema, sampleReply, type CompiledMxReplyRule } from './mx-reply-rule';

/** A refused MX rule: answered 400 naming the rule and each field (the error middleware knows the base class). */
export class InvalidMxRuleError extends InvalidQualificationRuleError {
  constructor(kind: 'MX site rule' | 'MX reply rule', ruleId: string | null, issues: RuleIssue[]) {
    super(ruleId, issues);
    this.message = `${kind} "${ruleId ?? '?'}": ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')}`;
    this.name = 'InvalidMxRuleError';
  }
}

/** A seed file or a stored row that cannot be used; names the rule. */
export class MxRuleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MxRuleError';
  }
}

function issuesOf(error: z.ZodError): RuleIssue[] {
  return error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
}

function idOf(input: unknown): string | null {
  return input !== null && typeof input === 'object' && typeof (input as { id?: unknown }).id === 'string' ? (input as { id: string }).id : null;
}

export function validateMxSiteRule(input: unknown): MxSiteRule {
  const parsed = mxSiteRuleSchema.safeParse(input);
  if (!parsed.success) throw new InvalidMxRuleError('MX site rule', idOf(input), issuesOf(parsed.error));
  return parsed.data;
}

/**
 * A reply rule for writing: the schema, and the rule matching its own sample (qualified with the bundled
 * qualification rules for its retry class): a rule that does not recognise the reply it is written for has a typo.
 */
export function validateMxReplyRule(input: unknown): CompiledMxReplyRule {
  const parsed = mxReplyRuleSchema.safeParse(input);
  if (!parsed.success) throw new InvalidMxRuleError('MX reply rule', idOf(input), issuesOf(parsed.error));
  const compiled = compileMxReplyRule(parsed.data);
  const reply = sampleReply(compiled);
  const retryClass = reply.code >= 200 && reply.code < 300 ? null : qualifyWithDefaultRules(reply).retryClass;
  if (matchMxReplyRule(reply, retryClass, [compiled]) === null) {
    throw new InvalidMxRuleError('MX reply rule', compiled.id, [{ path: 'sample', message: 'the rule does not match its own sample: check its conditions or the sample' }]);
  }
  return compiled;
}

function validateSeed<R extends { id: string; priority: number }>(kind: string, seedJson: unknown, one: (raw: unknown) => R): { version: number; rules: R[] } {
  const set = mxSiteRuleSetSchema.safeParse(seedJson);
  if (!set.success) throw new MxRuleError(`${kind} seed: ${set.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const seen = new Set<string>();
  const rules = set.data.rules.map((raw, i) => {
    let rule: R;
    try {
      rule = one(raw);
    } catch (e) {
      throw new MxRuleError(`${kind} seed, rule ${idOf(raw) ?? `#${i}`}: ${(e as Error).message}`);
    }
    if (seen.has(rule.id)) throw new MxRuleError(`${kind} seed: duplicate id "${rule.id}"`);
    seen.add(rule.id);
    return rule;
  });
  return { version: set.data.version, rules: sortRules(rules) };
}

export function validateMxSiteSeed(seedJson: unknown): { version: number; rules: MxSiteRule[] } {
  const set = validateSeed('MX site rule', seedJson, validateMxSiteRule);
  // The seed must govern every site: without a catch-all, an unknown domain would be sent to unlimited.
  if (!set.rules.some((r) => r.mxHosts.includes('*') || r.domains.includes('*'))) throw new MxRuleError('MX site rule seed: needs a catch-all rule (mxHosts ["*"])');
  return set;
}

export function validateMxReplySeed(seedJson: unknown): { version: number; rules: CompiledMxReplyRule[] } {
  return validateSeed('MX reply rule', seedJson, validateMxReplyRule);
}

/** A stored row read back (only a row written around the API can fail): named, so workers keep their last good table. */
export function compileStoredMxSiteRule(raw: unknown, id: string): MxSiteRule {
  const parsed = mxSiteRuleSchema.safeParse(raw);
  if (!parsed.success) throw new MxRuleError(`MX site rule "${id}" (stored): ${issuesOf(parsed.error).map((i) => `${i.path}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

export function compileStoredMxReplyRule(raw: unknown, id: string): CompiledMxReplyRule {
  const parsed = mxReplyRuleSchema.safeParse(raw);
  if (!parsed.success) throw new MxRuleError(`MX reply rule "${id}" (stored): ${issuesOf(parsed.error).map((i) => `${i.path}: ${i.message}`).join('; ')}`);
  return compileMxReplyRule(parsed.data);
}
