/**
 * Which receiving site a recipient domain belongs to: a domain pattern of the MX rules first (no DNS), else the MX
 * hosts (one lookup, shared with the sender through the resolver's cache), else the catch-all per MX host. The answer
 * is cached per domain, so a delivery of a million recipients at gmail.com resolves it once.
 */
import { BUILTIN_DEFAULT_RULE, ruleForDomain, ruleForMxHost, siteKey, type MxSiteRule, type SiteMatch } from '../../domain/mx-rules/mx-site-rule';
import { MxResolutionError, type MxResolver, type MxTarget } from './resolver';
import type { MxRulesCache } from './mx-rules-cache';

export interface ResolvedSite extends SiteMatch {
  /** Where to connect, in preference order; empty when DNS said the domain takes no mail (the failure is in `dnsError`). */
  targets: MxTarget[];
  /** The DNS answer that decides the message's fate (no such domain, null MX, DNS failure), when there was one. */
  dnsError: MxResolutionError | null;
}

/** "host" or "host:port" (port shown when it is not SMTP's 25, as for test receivers on loopback). */
export function hostLabel(t: MxTarget): string {
  return t.port === 25 ? t.host.toLowerCase() : `${t.host.toLowerCase()}:${t.port}`;
}

/**
 * The site a recipient's message went to, from what its attempt recorded (the MX host label, "host" or "host:port")
 * rather than from DNS: the decision of SiteResolver.lookup with the recorded host in place of the first MX. Null when
 * it cannot be told without DNS (no attempt yet and no domain rule). An attempt that fell back to a secondary MX
 * recorded that host: under a per-MX-host rule it counts at that host's site.
 */
export function siteOfRecordedHost(
  domain: string,
  mxHost: string | null,
  rules: readonly MxSiteRule[],
  mode: 'direct' | 'relay',
): { site: string; rule: MxSiteRule } | null {
  const host = mxHost ? mxHost.replace(/:\d+$/, '') : null;
  if (mode === 'direct') {
    const byDomain = ruleForDomain(domain, rules);
    if (byDomain) return { rule: byDomain, site: siteKey(byDomain, byDomain.scope === 'mx_host' ? mxHost : null) };
  }
  if (!host || !mxHost) return null;
  const rule = ruleForMxHost(host, rules) ?? BUILTIN_DEFAULT_RULE;
  return { rule, site: siteKey(rule, mxHost) };
}

export class SiteResolver {
  private readonly cache = new Map<string, { at: number; site: ResolvedSite }>();
  /** The rule table the cached answers were made with: an edit (a new table) empties the cache. */
  private rulesSeen: readonly unknown[] | null = null;

  constructor(
    private readonly rules: MxRulesCache,
    private readonly resolver: Pick<MxResolver, 'resolve'>,
    private readonly opts: { mode: 'direct' | 'relay'; relay?: { host: string; port: number }; cacheMs?: number } = { mode: 'direct' },
  ) {}

  async resolve(domain: string): Promise<ResolvedSite> {
    const rules = await this.rules.siteRules();
    if (rules !== this.rulesSeen) {
      this.cache.clear();
      this.rulesSeen = rules;
    }
    const key = domain.toLowerCase();
    const hit = this.cache.get(key);
    const ttl = this.opts.cacheMs ?? 60_000;
    if (hit && Date.now() - hit.at < ttl) return hit.site;
    const site = await this.lookup(key);
    if (this.cache.size > 100_000) this.cache.clear();
    // A DNS failure is not cached here (the resolver decides how long its own answers live).
    if (!site.dnsError) this.cache.set(key, { at: Date.now(), site });
    return site;
  }

  /** Forgets cached answers (after a rule edit, so the next message sees it at once). */
  forget(): void {
    this.cache.clear();
  }

  private async lookup(domain: string): Promise<ResolvedSite> {
    const rules = await this.rules.siteRules();
    if (this.opts.mode === 'relay' && this.opts.relay) {
      // The smart host is the MTA that speaks to the receiving sites: our connections and rate are to it.
      const target: MxTarget = { host: this.opts.relay.host, port: this.opts.relay.port, priority: 0 };
      const rule = ruleForMxHost(target.host, rules) ?? BUILTIN_DEFAULT_RULE;
      const mxHost = hostLabel(target);
      return { rule, site: siteKey(rule, mxHost), matchedBy: rule === BUILTIN_DEFAULT_RULE ? 'default' : 'mx_host', mxHost, targets: [target], dnsError: null };
    }
    let targets: MxTarget[] = [];
    let dnsError: MxResolutionError | null = null;
    const byDomain = ruleForDomain(domain, rules);
    // The targets are needed to send anyway (and cached by the resolver); a domain rule with one budget per MX host
    // also needs them for its key.
    const needsMx = !byDomain || byDomain.scope === 'mx_host';
    try {
      targets = await this.resolver.resolve(domain);
    } catch (e) {
      if (!(e instanceof MxResolutionError)) throw e;
      dnsError = e;
    }
    const first = targets[0] ? hostLabel(targets[0]) : null;
    if (byDomain) return { rule: byDomain, site: siteKey(byDomain, needsMx ? first : null), matchedBy: 'domain', mxHost: first, targets, dnsError };
    const byMx = targets.length ? ruleForMxHost(targets[0].host, rules) : null;
    const rule = byMx ?? BUILTIN_DEFAULT_RULE;
    return { rule, site: siteKey(rule, first ?? domain), matchedBy: byMx ? 'mx_host' : 'default', mxHost: first, targets, dnsError };
  }
}
