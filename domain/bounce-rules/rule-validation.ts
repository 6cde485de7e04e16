/** Whether a qualification rule, a seed table or a stored row may be written or used: the checks every store write goes through. */
import type { z } from 'zod';
import {
  compileQualificationRule,
  describeIssues,
  loadQualificationRuleSet,
  qualificationRuleSchema,
  QualificationRuleError,
  type CompiledRule,
} from './qualification-rule';
import { qualifySmtpReply } from './qualify-smtp-reply';
import { parseSmtpReply } from '../smtp-reply';

/** Rules are stored with an integer priority column (Postgres `integer`). */
const INT32_MAX = 2_147_483_647;

export interface RuleIssue {
  path: string;
  message: string;
}

/** A rule refused on write: bad value, bad regex, or a rule that does not match its own sample. Names the rule. */
export class InvalidQualificationRuleError extends Error {
  readonly status = 400;
  constructor(
    readonly ruleId: string | null,
    readonly issues: RuleIssue[],
  ) {
    super(`qualification rule "${ruleId ?? '?'}": ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')}`);
    this.name = 'InvalidQualificationRuleError';
  }
}

/** True when the priority fits the stored column: a fraction or a huge number would fail the write, not the validation. */
export function isStorablePriority(priority: number): boolean {
  return Number.isInteger(priority) && Math.abs(priority) <= INT32_MAX;
}

function issuesOf(error: z.ZodError): RuleIssue[] {
  return error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
}

/**
 * Validates one rule for writing: the zod schema, a storable priority, regexes that compile, and the rule matching its
 * own sample (a rule that cannot qualify the reply it is written for has a typo). Returns it compiled, or throws
 * InvalidQualificationRuleError naming the rule and listing every problem.
 */
export function validateQualificationRule(input: unknown): CompiledRule {
  const rawId = input !== null && typeof input === 'object' && typeof (input as { id?: unknown }).id === 'string' ? (input as { id: string }).id : null;
  const parsed = qualificationRuleSchema.safeParse(input);
  if (!parsed.success) throw new InvalidQualificationRuleError(rawId, issuesOf(parsed.error));
  const rule = parsed.data;
  if (!isStorablePriority(rule.priority)) {
    throw new InvalidQualificationRuleError(rule.id, [{ path: 'priority', message: 'must be an integer' }]);
  }
  let compiled: CompiledRule;
  try {
    compiled = compileQualificationRule(rule);
  } catch (e) {
    if (!(e instanceof QualificationRuleError)) throw e;
    // The message already reads `qualification rule "id": invalid pattern regex /.../: ...`; keep its detail.
    throw new InvalidQualificationRuleError(rule.id, [{ path: e.field ?? '', message: e.message.replace(/^qualification rule "[^"]*": /, '') }]);
  }
  const own = qualifySmtpReply(parseSmtpReply(rule.sample), [compiled], rule.sampleDomain);
  if (own.ruleId !== rule.id) {
    throw new InvalidQualificationRuleError(rule.id, [
      {
        path: 'sample',
        message: `the rule does not match its own sample${rule.sampleDomain ? ` (to ${rule.sampleDomain})` : ''}: check its conditions or the sample`,
      },
    ]);
  }
  return compiled;
}

/**
 * Validates a seed file for storing: the table itself (as loadQualificationRuleSet checks it), a version (seeds are
 * applied by version), and storable priorities. Throws a QualificationRuleError naming the first faulty rule.
 */
export function validateSeedRuleSet(seedJson: unknown): { version: number; rules: CompiledRule[] } {
  const set = loadQualificationRuleSet(seedJson);
  if (set.version === null) throw new QualificationRuleError('qualification rule seed: needs a version ({ "version": n, "rules": [...] })');
  const unstorable = set.rules.find((r) => !isStorablePriority(r.priority));
  if (unstorable) throw new QualificationRuleError(`qualification rule "${unstorable.id}": priority must be an integer`, unstorable.id, 'priority');
  return { version: set.version, rules: set.rules };
}

/**
 * Compiles a rule read back from the store. Only a row written around the API can fail here; the QualificationRuleError
 * names it, so that workers keep their last good table and the log says which row to fix.
 */
export function compileStoredRule(raw: unknown, id: string): CompiledRule {
  const parsed = qualificationRuleSchema.safeParse(raw);
  if (!parsed.success) throw new QualificationRuleError(`qualification rule "${id}" (stored): ${describeIssues(parsed.error)}`, id);
  return compileQualificationRule(parsed.data);
}
