/** Whether an inbound rule, a seed table or a stored row may be written or used: the checks every store write goes through. */
import type { z } from 'zod';
import { describeIssues } from './qualification-rule';
import {
  compileInboundRule,
  inboundRuleSchema,
  InboundRuleError,
  loadInboundRuleSet,
  matchInboundRules,
  type CompiledInboundRule,
} from './inbound-rule';
import { InvalidQualificationRuleError, isStorablePriority, type RuleIssue } from './rule-validation';

/**
 * An inbound rule refused on write: bad value, bad regex, or a rule that does not match its own sample. A subclass of
 * the qualification rule error so that the API answers both the same way (400 with the issues).
 */
export class InvalidInboundRuleError extends InvalidQualificationRuleError {
  constructor(ruleId: string | null, issues: RuleIssue[]) {
    super(ruleId, issues);
    this.message = `inbound rule "${ruleId ?? '?'}": ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')}`;
    this.name = 'InvalidInboundRuleError';
  }
}

function issuesOf(error: z.ZodError): RuleIssue[] {
  return error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
}

/** True when the rule matches the sample it names (a rule that cannot recognise its own text has a typo). */
export function matchesOwnSample(rule: CompiledInboundRule): boolean {
  const s = rule.sample;
  return matchInboundRules({ from: s.from ?? '', subject: s.subject ?? '', body: s.body ?? '' }, [rule]) !== null;
}

/** Validates one rule for writing and returns it compiled; throws InvalidInboundRuleError listing every problem. */
export function validateInboundRule(input: unknown): CompiledInboundRule {
  const rawId = input !== null && typeof input === 'object' && typeof (input as { id?: unknown }).id === 'string' ? (input as { id: string }).id : null;
  const parsed = inboundRuleSchema.safeParse(input);
  if (!parsed.success) throw new InvalidInboundRuleError(rawId, issuesOf(parsed.error));
  const rule = parsed.data;
  if (!isStorablePriority(rule.priority)) throw new InvalidInboundRuleError(rule.id, [{ path: 'priority', message: 'must be an integer' }]);
  let compiled: CompiledInboundRule;
  try {
    compiled = compileInboundRule(rule);
  } catch (e) {
    if (!(e instanceof InboundRuleError)) throw e;
    throw new InvalidInboundRuleError(rule.id, [{ path: e.field ?? '', message: e.message.replace(/^inbound rule "[^"]*": /, '') }]);
  }
  if (!matchesOwnSample(compiled)) {
    throw new InvalidInboundRuleError(rule.id, [{ path: 'sample', message: 'the rule does not match its own sample: check its conditions or the sample' }]);
  }
  return compiled;
}

/** Validates a seed file for storing: the table, a version, storable priorities, every rule matching its sample. */
export function validateInboundSeedRuleSet(seedJson: unknown): { version: number; rules: CompiledInboundRule[] } {
  const set = loadInboundRuleSet(seedJson);
  if (set.version === null) throw new InboundRuleError('inbound rule seed: needs a version ({ "version": n, "rules": [...] })');
  for (const r of set.rules) {
    if (!isStorablePriority(r.priority)) throw new InboundRuleError(`inbound rule "${r.id}": priority must be an integer`, r.id, 'priority');
    if (!matchesOwnSample(r)) throw new InboundRuleError(`inbound rule "${r.id}": does not match its own sample`, r.id, 'sample');
  }
  return { version: set.version, rules: set.rules };
}

/** Compiles a rule read back from the store; an InboundRuleError names a row written around the API. */
export function compileStoredInboundRule(raw: unknown, id: string): CompiledInboundRule {
  const parsed = inboundRuleSchema.safeParse(raw);
  if (!parsed.success) throw new InboundRuleError(`inbound rule "${id}" (stored): ${describeIssues(parsed.error)}`, id);
  return compileInboundRule(parsed.data);
}
