/**
 * MX reply rules, the adaptive half of the MX rules: which SMTP replies slow a receiving site down, cut its
 * connections, or suspend it. Conditions are the qualification rules' own (basic code, enhanced code) plus the retry
 * class the qualification gave the reply (its match reused, not repeated) and a plain substring of the text, which
 * covers provider markers such as "TSS04" or "S3150" in linear time without a second pattern engine.
 */
import { z } from 'zod';
import { RETRY_CLASSES, type RetryClass } from '../failure';
import { parseSmtpReply, type SmtpReply } from '../smtp-reply';
import { mxRuleIdSchema } from './mx-site-rule';

const ENHANCED_EXACT = /^[245]\.\d{1,3}\.\d{1,3}$/;
const ENHANCED_PREFIX = /^[245]\.(\d{1,3}\.)?$/;

export const MX_REPLY_ACTIONS = ['slow_down', 'fewer_connections', 'suspend', 'suspend_and_slow_down'] as const;
export type MxReplyAction = (typeof MX_REPLY_ACTIONS)[number];

export const mxReplyRuleSchema = z
  .object({
    id: mxRuleIdSchema,
    priority: z.number().int().min(-1_000_000).max(1_000_000),
    provider: z.string().min(1).max(100),
    /** Basic reply code: exact (421; 0 for no reply at all) or a class ("4xx", "5xx"). */
    code: z
      .union([z.number().int().refine((c) => c === 0 || (c >= 200 && c <= 599), 'must be 0 (no reply) or a reply code 200-599'), z.enum(['4xx', '5xx'])])
      .nullable(),
    /** Enhanced status code: exact ("4.7.650") or a prefix ending with a dot ("4.7."). */
    enhancedCode: z
      .string()
      .refine((s) => ENHANCED_EXACT.test(s) || ENHANCED_PREFIX.test(s), 'must be an exact enhanced code such as "4.7.0" or a prefix ending with a dot such as "4.7."')
      .nullable(),
    /** Case-insensitive substring of the reply text (codes stripped): a provider's marker such as "TSS04". */
    contains: z.string().min(2).max(200).nullable(),
    /** The retry class the qualification rules gave the reply ("throttling"...). */
    retryClass: z.enum(RETRY_CLASSES).nullable(),
    /**
     * slow_down halves the site's message rate; fewer_connections halves its connections; suspend stops it for
     * suspendSeconds (a host that refuses connections); suspend_and_slow_down also halves the rate it resumes at (a
     * provider that defers for volume would say the same again at the old rate).
     */
    action: z.enum(MX_REPLY_ACTIONS),
    suspendSeconds: z.number().int().min(1).max(7 * 86_400).nullable(),
    /** The real reply this rule is written for, codes included. */
    sample: z.string().min(1).max(2_000),
    note: z.string().min(1).max(2_000),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.code === null && r.enhancedCode === null && r.contains === null && r.retryClass === null) {
      ctx.addIssue({ code: 'custom', message: 'a rule needs at least one condition (code, enhancedCode, contains or retryClass)' });
    }
    const suspends = r.action === 'suspend' || r.action === 'suspend_and_slow_down';
    if (suspends && r.suspendSeconds === null) ctx.addIssue({ code: 'custom', path: ['suspendSeconds'], message: `a ${r.action} rule needs suspendSeconds` });
    if (!suspends && r.suspendSeconds !== null) ctx.addIssue({ code: 'custom', path: ['suspendSeconds'], message: `only a suspending rule has suspendSeconds (this one is ${r.action})` });
  });

export type MxReplyRule = z.infer<typeof mxReplyRuleSchema>;

export interface CompiledMxReplyRule extends MxReplyRule {
  readonly codeExact: number | null;
  readonly codeClass: number | null;
  readonly enhancedExact: string | null;
  readonly enhancedPrefix: string | null;
  readonly containsLower: string | null;
}

export function compileMxReplyRule(rule: MxReplyRule): CompiledMxReplyRule {
  const enhanced = rule.enhancedCode;
  const isPrefix = enhanced !== null && enhanced.endsWith('.');
  return Object.freeze({
    ...rule,
    codeExact: typeof rule.code === 'number' ? rule.code : null,
    codeClass: typeof rule.code === 'string' ? Number(rule.code[0]) : null,
    enhancedExact: enhanced !== null && !isPrefix ? enhanced : null,
    enhancedPrefix: isPrefix ? enhanced : null,
    containsLower: rule.contains === null ? null : rule.contains.toLowerCase(),
  });
}

/** First rule (evaluation order) whose every non-null condition holds, or null. */
export function matchMxReplyRule(reply: SmtpReply, retryClass: RetryClass | null, rules: readonly CompiledMxReplyRule[]): CompiledMxReplyRule | null {
  const codeClass = (reply.code / 100) | 0;
  let lower: string | null = null;
  for (const r of rules) {
    if (r.codeExact !== null && r.codeExact !== reply.code) continue;
    if (r.codeClass !== null && r.codeClass !== codeClass) continue;
    if (r.enhancedExact !== null && r.enhancedExact !== reply.enhancedCode) continue;
    if (r.enhancedPrefix !== null && (reply.enhancedCode === null || !reply.enhancedCode.startsWith(r.enhancedPrefix))) continue;
    if (r.retryClass !== null && r.retryClass !== retryClass) continue;
    if (r.containsLower !== null) {
      lower ??= reply.text.toLowerCase();
      if (!lower.includes(r.containsLower)) continue;
    }
    return r;
  }
  return null;
}

/** The sample as the engine would see it: its parsed reply (code 0 when it has no reply code: a connection failure). */
export function sampleReply(rule: Pick<MxReplyRule, 'sample'>): SmtpReply {
  return parseSmtpReply(rule.sample);
}
