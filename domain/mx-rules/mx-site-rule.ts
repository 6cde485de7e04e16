/** MX site rules: which receiving site a recipient domain belongs to (by domain or by MX host), and its limits. */
import { z } from 'zod';

/**
 * One DNS label (RFC 1123, lower case, with "_" tolerated as some MX names carry it). A fixed pattern of the code,
 * used only to validate; rule patterns themselves are never compiled to regular expressions (see hostMatches).
 */
const HOST_NAME = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

/**
 * A host pattern: an exact name ("gmail.com"), every subdomain of a name ("*.google.com" matches aspmx.l.google.com,
 * not google.com itself), or "*" (anything). Matching is a comparison or a suffix test: linear in the name, whatever
 * an editor writes.
 */
export const hostPatternSchema = z
  .string()
  .min(1)
  .max(253)
  .transform((s) => s.trim().toLowerCase().replace(/\.$/, ''))
  .refine(
    (s) => s === '*' || HOST_NAME.test(s) || (s.startsWith('*.') && HOST_NAME.test(s.slice(2))),
    'must be a host name ("gmail.com"), a wildcard for its subdomains ("*.google.com"), or "*"',
  );

export function hostMatches(pattern: string, name: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*.')) return name.length > pattern.length - 1 && name.endsWith(pattern.slice(1));
  return pattern === name;
}

/** A rule's id: a stable slug; sites and events name it. */
export const mxRuleIdSchema = z.string().regex(/^[a-z0-9][a-z0-9.-]*$/, 'must be a lowercase slug (a-z, 0-9, "-", ".")').max(100);

export const MX_RULE_SCOPES = ['site', 'mx_host'] as const;

export const mxSiteRuleSchema = z
  .object({
    id: mxRuleIdSchema,
    /** Lower is tried first, within domain patterns and within MX host patterns. */
    priority: z.number().int().min(-1_000_000).max(1_000_000),
    /** Who runs the site: "google", "microsoft", ... or "any" for the catch-all. */
    provider: z.string().min(1).max(100),
    /** Recipient domains of the site (no DNS needed to recognise them). */
    domains: z.array(hostPatternSchema).max(1_000),
    /** MX hosts of the site: every domain hosted there shares its budget (Workspace domains behind *.google.com). */
    mxHosts: z.array(hostPatternSchema).max(200),
    /** 'site': one budget for everything the rule matches; 'mx_host': one budget per MX host (the catch-all). */
    scope: z.enum(MX_RULE_SCOPES),
    /** Concurrent SMTP connections to the site, across every worker process. */
    maxConnections: z.number().int().min(1).max(1_000),
    /** Messages sent over one connection before it is closed and another opened. */
    messagesPerConnection: z.number().int().min(1).max(100_000),
    /** Messages per second to the site, across every worker process; null: no limit. */
    perSecond: z.number().positive().max(100_000).nullable(),
    /** Messages per hour; null: no limit. */
    perHour: z.number().int().positive().max(100_000_000).nullable(),
    /** Why these limits (the provider's published guidance, or experience). */
    note: z.string().min(1).max(2_000),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.domains.length === 0 && r.mxHosts.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['domains'], message: 'a rule needs at least one domain or MX host pattern' });
    }
  });

export type MxSiteRule = z.infer<typeof mxSiteRuleSchema>;

export const mxSiteRuleSetSchema = z.object({ version: z.number().int().positive(), rules: z.array(z.unknown()) }).strict();

/** The limits a site is sent at. */
export interface SiteLimits {
  maxConnections: number;
  messagesPerConnection: number;
  perSecond: number | null;
  perHour: number | null;
}

/**
 * Limits of a site no rule matches (possible only when the catch-all was deleted or disabled through the API): the
 * seed's catch-all values, so that such a site is still governed.
 */
export const BUILTIN_DEFAULT_RULE: MxSiteRule = Object.freeze({
  id: 'builtin-default',
  priority: 1_000_000,
  provider: 'any',
  domains: [],
  mxHosts: ['*'],
  scope: 'mx_host' as const,
  maxConnections: 10,
  messagesPerConnection: 100,
  perSecond: null,
  perHour: null,
  note: 'Used when no rule of the table matches (the catch-all was removed): one budget per MX host.',
});

/** The rule a recipient domain falls under, and the budget key of its site. */
export interface SiteMatch {
  rule: MxSiteRule;
  /** Budget key: the rule id, or `<rule id>@<mx host>` for a per-MX-host rule. */
  site: string;
  matchedBy: 'domain' | 'mx_host' | 'default';
  /** The MX host the match used (the first MX), when one was needed. */
  mxHost: string | null;
}

/**
 * The site key of a rule: one budget per rule, or one per MX host ("host" or "host:port" when the port is not 25, so
 * that two test receivers on one address are two sites).
 */
export function siteKey(rule: MxSiteRule, mxHost: string | null): string {
  if (rule.scope === 'site' || mxHost === null) return rule.id;
  return `${rule.id}@${mxHost}`;
}

/** First rule (evaluation order) with a domain pattern matching the recipient domain: no DNS needed. */
export function ruleForDomain(domain: string, rules: readonly MxSiteRule[]): MxSiteRule | null {
  const d = domain.toLowerCase();
  for (const r of rules) if (r.domains.some((p) => hostMatches(p, d))) return r;
  return null;
}

/** First rule with an MX host pattern matching the host. */
export function ruleForMxHost(host: string, rules: readonly MxSiteRule[]): MxSiteRule | null {
  const h = host.toLowerCase().replace(/\.$/, '');
  for (const r of rules) if (r.mxHosts.some((p) => hostMatches(p, h))) return r;
  return null;
}

/** Rules in evaluation order: priority, then id (the order the table lists them in). */
export function sortRules<R extends { priority: number; id: string }>(rules: R[]): R[] {
  return rules.sort((a, b) => a.priority - b.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** The rule's own limits. */
export function ruleLimits(rule: MxSiteRule): SiteLimits {
  return { maxConnections: rule.maxConnections, messagesPerConnection: rule.messagesPerConnection, perSecond: rule.perSecond, perHour: rule.perHour };
}
