/** Synchronous qualification rules: the row shape, its zod schema, and the loader that validates and precompiles a rule table. */

import { z } from 'zod';
import { FAILURE_REASONS, FAILURE_TYPES, RETRY_CLASSES, type Qualification } from '../failure';
import { compileSafePattern, PatternSyntaxError, type SafePattern } from '../patterns/safe-pattern';

/** An exact RFC 3463 enhanced status code, e.g. "5.1.1" or "4.7.650". */
const ENHANCED_EXACT = /^[245]\.\d{1,3}\.\d{1,3}$/;
/** A prefix of one: a class ("5.") or a class and subject ("5.7."). Always ends with a dot. */
const ENHANCED_PREFIX = /^[245]\.(\d{1,3}\.)?$/;
/** Longest accepted pattern or domain regex: rules will be editable through the API, keep them reviewable. */
const MAX_REGEX_LENGTH = 1000;

const basicCode = z.union([
  z
    .number()
    .int()
    .refine((c) => c === 0 || (c >= 200 && c <= 599), 'must be 0 (no reply) or a reply code 200-599'),
  z.enum(['4xx', '5xx']),
]);

const enhancedCode = z
  .string()
  .refine(
    (s) => ENHANCED_EXACT.test(s) || ENHANCED_PREFIX.test(s),
    'must be an exact enhanced code such as "5.1.1" or a prefix ending with a dot such as "5.7."',
  );

const regexSource = z.string().min(1).max(MAX_REGEX_LENGTH);

/** A rule's id: a stable slug, referenced by delivery logs (Qualification.ruleId); never rename a published id. */
export const qualificationRuleIdSchema = z.string().regex(/^[a-z0-9][a-z0-9.-]*$/, 'must be a lowercase slug (a-z, 0-9, "-", ".")');

/** One row of the table. `null` on a condition means "any". */
export const qualificationRuleSchema = z
  .object({
    id: qualificationRuleIdSchema,
    /** Lower is evaluated first. Provider-specific rules come before generic ones. */
    priority: z.number().finite(),
    /** Who writes this wording: "gmail", "microsoft", ... or "generic" for RFC codes and common MTA texts. */
    provider: z.string().min(1),
    /** Basic reply code: exact (550, or 0 for no reply at all) or a class ("4xx", "5xx"). */
    code: basicCode.nullable(),
    /** Enhanced status code: exact ("5.1.1") or prefix ("5.7."). */
    enhancedCode: enhancedCode.nullable(),
    /** Case-insensitive regex in RE2 syntax (domain/patterns/safe-pattern.ts), tested on the reply text (codes stripped). */
    pattern: regexSource.nullable(),
    /** Case-insensitive regex in RE2 syntax, tested on the recipient domain. */
    domain: regexSource.nullable().optional(),
    type: z.enum(FAILURE_TYPES),
    reason: z.enum(FAILURE_REASONS),
    retryClass: z.enum(RETRY_CLASSES),
    /** The real reply this rule targets, codes included; multi-line replies keep their "\n". */
    sample: z.string().min(1),
    /** Recipient domain of the sample, required when `domain` is set. */
    sampleDomain: z.string().min(1).optional(),
    /** Why this qualification. */
    note: z.string().min(1),
  })
  .strict()
  .superRefine((rule, ctx) => {
    if (rule.code === null && rule.enhancedCode === null && rule.pattern === null && !rule.domain) {
      ctx.addIssue({ code: 'custom', message: 'a rule needs at least one condition (code, enhancedCode, pattern or domain)' });
    }
    // The type says what the failure means for the address, the retry class whether this message is tried again:
    // a soft failure may be final for the message (a 5xx spam refusal: soft, retryClass "none"). Two combinations
    // make no sense: an ignored failure is never retried, and a hard failure (the address will never work) leaves
    // nothing to retry.
    if (rule.type !== 'soft' && rule.retryClass !== 'none') {
      ctx.addIssue({ code: 'custom', path: ['retryClass'], message: `a ${rule.type} rule is never retried: retryClass must be "none"` });
    }
    if (rule.domain && !rule.sampleDomain) {
      ctx.addIssue({ code: 'custom', path: ['sampleDomain'], message: 'a rule with a domain condition needs the sampleDomain its sample comes from' });
    }
  });

export type QualificationRule = z.infer<typeof qualificationRuleSchema>;

/** The versioned seed file (rules/smtp-qualification-rules.json) and, later, what the API stores. */
export const qualificationRuleSetSchema = z
  .object({
    version: z.number().int().positive(),
    rules: z.array(z.unknown()),
  })
  .strict();

/**
 * A validated rule with its conditions precompiled for the hot path. The matcher fields are
 * flattened (no nested objects) and `result` is a frozen Qualification returned as is, so
 * evaluating a rule allocates nothing.
 */
export interface CompiledRule extends QualificationRule {
  /** Exact basic code to match, or null. */
  readonly codeExact: number | null;
  /** First digit of the basic code ("5xx" → 5), or null. */
  readonly codeClass: number | null;
  readonly enhancedExact: string | null;
  /** Enhanced code prefix ("5.7."), or null. */
  readonly enhancedPrefix: string | null;
  /** Compiled with RE2: linear time in the reply's length, whatever the pattern. */
  readonly patternRegex: SafePattern | null;
  readonly domainRegex: SafePattern | null;
  readonly result: Readonly<Qualification>;
}

/** A rule table that cannot be used as is; `ruleId` names the faulty rule when there is one, `field` the faulty value. */
export class QualificationRuleError extends Error {
  constructor(
    message: string,
    readonly ruleId: string | null = null,
    readonly field: string | null = null,
  ) {
    super(message);
    this.name = 'QualificationRuleError';
  }
}

function compileRegex(source: string, what: 'pattern' | 'domain', ruleId: string): SafePattern {
  try {
    return compileSafePattern(source);
  } catch (err) {
    if (!(err instanceof PatternSyntaxError)) throw err;
    throw new QualificationRuleError(`qualification rule "${ruleId}": invalid ${what} regex /${source}/: ${err.message}`, ruleId, what);
  }
}

/** Precompiles one already validated rule. */
export function compileQualificationRule(rule: QualificationRule): CompiledRule {
  const code = rule.code;
  const enhanced = rule.enhancedCode;
  const isPrefix = enhanced !== null && enhanced.endsWith('.');
  return Object.freeze({
    ...rule,
    codeExact: typeof code === 'number' ? code : null,
    codeClass: typeof code === 'string' ? Number(code[0]) : null,
    enhancedExact: enhanced !== null && !isPrefix ? enhanced : null,
    enhancedPrefix: isPrefix ? enhanced : null,
    patternRegex: rule.pattern === null ? null : compileRegex(rule.pattern, 'pattern', rule.id),
    domainRegex: rule.domain ? compileRegex(rule.domain, 'domain', rule.id) : null,
    result: Object.freeze({ type: rule.type, reason: rule.reason, retryClass: rule.retryClass, ruleId: rule.id }),
  });
}

/** The schema's complaints about a rule as one line: "path: message; ...". */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}

function parseRules(rawRules: readonly unknown[]): QualificationRule[] {
  const seen = new Set<string>();
  return rawRules.map((raw, index) => {
    const rawId = raw !== null && typeof raw === 'object' && typeof (raw as { id?: unknown }).id === 'string' ? (raw as { id: string }).id : null;
    const parsed = qualificationRuleSchema.safeParse(raw);
    if (!parsed.success) {
      const label = rawId ?? `#${index}`;
      throw new QualificationRuleError(`qualification rule "${label}": ${describeIssues(parsed.error)}`, rawId);
    }
    if (seen.has(parsed.data.id)) {
      throw new QualificationRuleError(`qualification rule "${parsed.data.id}": duplicate id`, parsed.data.id);
    }
    seen.add(parsed.data.id);
    return parsed.data;
  });
}

/**
 * Validates and precompiles a rule table, sorted by priority (rules of equal priority keep their
 * order in the table). Accepts the seed file shape `{ version, rules }` or a bare array of rules.
 * Throws a QualificationRuleError naming the rule on any bad value or regex.
 */
export function loadQualificationRules(json: unknown): CompiledRule[] {
  return loadQualificationRuleSet(json).rules;
}

/** Same as loadQualificationRules, keeping the table version (null for a bare array) for audit. */
export function loadQualificationRuleSet(json: unknown): { version: number | null; rules: CompiledRule[] } {
  let version: number | null = null;
  let rawRules: readonly unknown[];
  if (Array.isArray(json)) {
    rawRules = json;
  } else {
    const set = qualificationRuleSetSchema.safeParse(json);
    if (!set.success) {
      throw new QualificationRuleError(`qualification rule set: ${describeIssues(set.error)}`);
    }
    version = set.data.version;
    rawRules = set.data.rules;
  }
  const compiled = parseRules(rawRules).map(compileQualificationRule);
  // Array.prototype.sort is stable: equal priorities keep table order.
  compiled.sort((a, b) => a.priority - b.priority);
  return { version, rules: compiled };
}
