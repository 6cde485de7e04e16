/**
 * Inbound rules: the row shape, its zod schema, the loader that validates and precompiles a table, and the matcher.
 * They qualify what an SMTP reply cannot: bounce bodies without a status code, subjects, senders, auto-replies.
 */
import { z } from 'zod';
import { FAILURE_REASONS, FAILURE_TYPES, RETRY_CLASSES, type FailureReason, type FailureType, type RetryClass } from '../failure';
import { describeIssues, qualificationRuleIdSchema, type CompiledRule } from './qualification-rule';
import { compileSafePattern, PatternSyntaxError, type SafePattern } from '../patterns/safe-pattern';

const MAX_REGEX_LENGTH = 1000;
const regexSource = z.string().min(1).max(MAX_REGEX_LENGTH);

/** What a matching rule makes of the message: a failed delivery (`bounce`), a delay warning (`delayed`), or an auto-reply. */
export const INBOUND_RULE_KINDS = ['bounce', 'delayed', 'auto_reply'] as const;
export type InboundRuleKind = (typeof INBOUND_RULE_KINDS)[number];

/** The real message a rule targets: only the parts it has conditions on are needed. */
const inboundSampleSchema = z
  .object({
    from: z.string().min(1).optional(),
    subject: z.string().min(1).optional(),
    body: z.string().min(1).optional(),
  })
  .strict();

export const inboundRuleIdSchema = qualificationRuleIdSchema;

/** One row of the table. A null condition means "any"; every non-null condition must match. */
export const inboundRuleSchema = z
  .object({
    id: inboundRuleIdSchema,
    /** Lower is evaluated first. */
    priority: z.number().finite(),
    /** The family of software or site whose wording this is ("qmail", "exim", "generic", ...). */
    source: z.string().min(1),
    kind: z.enum(INBOUND_RULE_KINDS),
    /** Case-insensitive regex on the From header of the inbound message (display name and address). */
    from: regexSource.nullable(),
    /** Case-insensitive regex on its Subject. */
    subject: regexSource.nullable(),
    /** Case-insensitive regex on the text about one recipient (its error lines), else on the whole text body. */
    body: regexSource.nullable(),
    type: z.enum(FAILURE_TYPES),
    reason: z.enum(FAILURE_REASONS),
    retryClass: z.enum(RETRY_CLASSES),
    sample: inboundSampleSchema,
    note: z.string().min(1),
  })
  .strict()
  .superRefine((rule, ctx) => {
    if (rule.from === null && rule.subject === null && rule.body === null) {
      ctx.addIssue({ code: 'custom', message: 'a rule needs at least one condition (from, subject or body)' });
    }
    for (const field of ['from', 'subject', 'body'] as const) {
      if (rule[field] !== null && rule.sample[field] === undefined) {
        ctx.addIssue({ code: 'custom', path: ['sample', field], message: `a rule with a ${field} condition needs sample.${field}, the real text it targets` });
      }
    }
    if (rule.type !== 'soft' && rule.retryClass !== 'none') {
      ctx.addIssue({ code: 'custom', path: ['retryClass'], message: `a ${rule.type} rule is never retried: retryClass must be "none"` });
    }
    if (rule.kind === 'auto_reply' && (rule.type !== 'ignored' || rule.reason !== 'error_ignored')) {
      ctx.addIssue({ code: 'custom', path: ['type'], message: 'an auto_reply rule is type "ignored", reason "error_ignored"' });
    }
    if (rule.kind !== 'auto_reply' && rule.type === 'ignored') {
      ctx.addIssue({ code: 'custom', path: ['type'], message: `a ${rule.kind} rule qualifies a failure: type "hard" or "soft"` });
    }
    if (rule.kind === 'delayed' && rule.type !== 'soft') {
      ctx.addIssue({ code: 'custom', path: ['type'], message: 'a delay warning is soft: the message is still being tried' });
    }
  });

export type InboundRule = z.infer<typeof inboundRuleSchema>;

export const inboundRuleSetSchema = z.object({ version: z.number().int().positive(), rules: z.array(z.unknown()) }).strict();

export interface InboundRuleResult {
  readonly kind: InboundRuleKind;
  readonly type: FailureType;
  readonly reason: FailureReason;
  readonly retryClass: RetryClass;
  readonly ruleId: string;
}

export interface CompiledInboundRule extends InboundRule {
  /** Compiled with RE2 (domain/patterns/safe-pattern.ts): linear time in the text's length, whatever the pattern. */
  readonly fromRegex: SafePattern | null;
  readonly subjectRegex: SafePattern | null;
  readonly bodyRegex: SafePattern | null;
  readonly result: InboundRuleResult;
}

/**
 * The rule tables a classifier runs with, each in evaluation order: the inbound rules, and the SMTP qualification rules
 * that qualify the Diagnostic-Code and the reply lines of a bounce (one set of SMTP patterns for both sides).
 */
export interface InboundRuleTables {
  inbound: readonly CompiledInboundRule[];
  smtp: readonly CompiledRule[];
}

/** An inbound rule table that cannot be used as is; names the rule and the field when known. */
export class InboundRuleError extends Error {
  constructor(
    message: string,
    readonly ruleId: string | null = null,
    readonly field: string | null = null,
  ) {
    super(message);
    this.name = 'InboundRuleError';
  }
}

function compileRegex(source: string, field: 'from' | 'subject' | 'body', ruleId: string): SafePattern {
  try {
    // Multiline for a body: "^" and "$" anchor on its lines.
    return compileSafePattern(source, { multiline: field === 'body' });
  } catch (err) {
    if (!(err instanceof PatternSyntaxError)) throw err;
    throw new InboundRuleError(`inbound rule "${ruleId}": invalid ${field} regex /${source}/: ${err.message}`, ruleId, field);
  }
}

export function compileInboundRule(rule: InboundRule): CompiledInboundRule {
  return Object.freeze({
    ...rule,
    fromRegex: rule.from === null ? null : compileRegex(rule.from, 'from', rule.id),
    subjectRegex: rule.subject === null ? null : compileRegex(rule.subject, 'subject', rule.id),
    bodyRegex: rule.body === null ? null : compileRegex(rule.body, 'body', rule.id),
    result: Object.freeze({ kind: rule.kind, type: rule.type, reason: rule.reason, retryClass: rule.retryClass, ruleId: rule.id }),
  });
}

/** Validates and precompiles a table (`{version, rules}` or a bare array), sorted by priority; throws InboundRuleError naming the rule. */
export function loadInboundRuleSet(json: unknown): { version: number | null; rules: CompiledInboundRule[] } {
  let version: number | null = null;
  let rawRules: readonly unknown[];
  if (Array.isArray(json)) {
    rawRules = json;
  } else {
    const set = inboundRuleSetSchema.safeParse(json);
    if (!set.success) throw new InboundRuleError(`inbound rule set: ${describeIssues(set.error)}`);
    version = set.data.version;
    rawRules = set.data.rules;
  }
  const seen = new Set<string>();
  const compiled = rawRules.map((raw, index) => {
    const rawId = raw !== null && typeof raw === 'object' && typeof (raw as { id?: unknown }).id === 'string' ? (raw as { id: string }).id : null;
    const parsed = inboundRuleSchema.safeParse(raw);
    if (!parsed.success) throw new InboundRuleError(`inbound rule "${rawId ?? `#${index}`}": ${describeIssues(parsed.error)}`, rawId);
    if (seen.has(parsed.data.id)) throw new InboundRuleError(`inbound rule "${parsed.data.id}": duplicate id`, parsed.data.id);
    seen.add(parsed.data.id);
    return compileInboundRule(parsed.data);
  });
  compiled.sort((a, b) => a.priority - b.priority);
  return { version, rules: compiled };
}

/** What the rules look at in one inbound message. `body` is the text about one recipient, or the whole text body. */
export interface InboundRuleSubject {
  from: string;
  subject: string;
  body: string;
}

/** The first rule (in order) whose every condition matches, optionally only rules of the given kinds; null when none does. */
export function matchInboundRules(
  input: InboundRuleSubject,
  rules: readonly CompiledInboundRule[],
  kinds?: readonly InboundRuleKind[],
): CompiledInboundRule | null {
  for (const rule of rules) {
    if (kinds && !kinds.includes(rule.kind)) continue;
    if (rule.fromRegex !== null && !rule.fromRegex.test(input.from)) continue;
    if (rule.subjectRegex !== null && !rule.subjectRegex.test(input.subject)) continue;
    if (rule.bodyRegex !== null && !rule.bodyRegex.test(input.body)) continue;
    return rule;
  }
  return null;
}
