/**
 * HTTP API of the MX rules and the receiving sites: the site rules and the reply rules (list, read, create or replace,
 * enable/disable, delete, try), and GET /api/mx-sites, the live state of every site: its rule, limits, state, messages
 * in flight, connections, replies of the last hour and what changed it last (docs/mx-rules.md).
 */
import { Router, type Router as ExpressRouter } from 'express';
import { z } from 'zod';
import type { MxReplyRuleStore, MxSiteRuleStore } from '../db/mx-rule-store';
import type { MxSiteStore, SiteOverviewRow } from '../db/mx-site-store';
import { currentLimits, resumeByHand, suspendByHand } from '../domain/mx-rules/adaptive';
import { BUILTIN_DEFAULT_RULE, hostPatternSchema, mxRuleIdSchema, ruleForDomain, ruleForMxHost, ruleLimits, siteKey, type MxSiteRule } from '../domain/mx-rules/mx-site-rule';
import { matchMxReplyRule } from '../domain/mx-rules/mx-reply-rule';
import { InvalidMxRuleError, MxRuleError } from '../domain/mx-rules/mx-rule-validation';
import { qualifyWithDefaultRules } from '../domain/bounce-rules/qualify-smtp-reply';
import { RETRY_CLASSES } from '../domain/failure';
import { parseSmtpReply } from '../domain/smtp-reply';
import { createRuleTableRouter } from './rule-table-routes';
import { ConflictError, NotFoundError } from './http-errors';

export interface MxSiteRouterDependencies {
  siteRules: MxSiteRuleStore;
  replyRules: MxReplyRuleStore;
  sites: MxSiteStore;
}

const SITE_RULES = '/api/mx-rules';
const REPLY_RULES = '/api/mx-reply-rules';

/** A stored row the validation refuses (written around the API): a 409 saying which, not a 500. */
function loadOr409<T>(p: Promise<T>): Promise<T> {
  return p.catch((e: unknown) => {
    if (e instanceof MxRuleError) throw new ConflictError(`${e.message}; fix it (PUT) or disable it (PATCH {"enabled": false})`);
    throw e;
  });
}

export const siteTestBody = z
  .object({
    domain: hostPatternSchema.refine((d) => !d.includes('*'), 'must be a domain name, not a pattern'),
    /** The domain's first MX host, for rules matched by MX host (the API does no DNS lookup). */
    mxHost: hostPatternSchema.refine((d) => !d.includes('*'), 'must be a host name, not a pattern').optional(),
  })
  .strict();

export const replyTestBody = z
  .object({
    reply: z.string().min(1).max(10_000),
    /** The retry class to match retryClass conditions against; default: what the bundled qualification rules say. */
    retryClass: z.enum(RETRY_CLASSES).optional(),
  })
  .strict();

export const siteListQuery = z.object({ state: z.enum(['normal', 'slowed', 'suspended']).optional() }).strict();
export const suspendBody = z
  .object({
    /** How long (a site resumed early through /resume is sent to again within MX_SUSPENDED_RECHECK_SECONDS). */
    seconds: z.number().int().min(1).max(7 * 86_400),
    /** Why, recorded with the change. */
    reason: z.string().min(1).max(500),
  })
  .strict();
export const siteParam = z.string().min(1).max(600);

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** One site as the API shows it. */
function siteView(row: SiteOverviewRow, rules: readonly MxSiteRule[]) {
  const rule = rules.find((r) => r.id === row.ruleId) ?? (row.ruleId === BUILTIN_DEFAULT_RULE.id ? BUILTIN_DEFAULT_RULE : null);
  const current = rule ? currentLimits(rule, row) : null;
  const byCode = row.replies;
  const sum = (pred: (code: number) => boolean) => Object.entries(byCode).reduce((n, [code, k]) => (pred(Number(code)) ? n + k : n), 0);
  return {
    site: row.site,
    rule: rule ? { id: rule.id, provider: rule.provider, scope: rule.scope, limits: ruleLimits(rule) } : { id: row.ruleId, provider: null, scope: null, limits: null, missing: true },
    state: row.state,
    suspendedUntil: iso(row.suspendedUntilMs),
    /** The limits the site is sent at now (the rule's, lowered by throttling replies until it recovers). */
    limits: current,
    connections: { open: row.leases, max: current?.maxConnections ?? null },
    inFlight: row.inFlight,
    waiting: row.waiting,
    recentReplies: {
      windowMinutes: 60,
      total: sum(() => true),
      accepted: sum((c) => c >= 200 && c < 300),
      deferred: sum((c) => c >= 400 && c < 500),
      rejected: sum((c) => c >= 500),
      noReply: sum((c) => c === 0),
      byCode,
    },
    lastChange: row.lastEvent,
    lastChangeAt: iso(row.lastChangeAtMs),
    lastThrottlingReplyAt: iso(row.lastSignalAtMs),
    firstSeenAt: row.createdAt,
  };
}

export function createMxSiteRouter(deps: MxSiteRouterDependencies): ExpressRouter {
  const router = Router();

  router.get('/api/mx-sites', async (req, res) => {
    const q = siteListQuery.parse(req.query);
    const [rows, rules] = await Promise.all([deps.sites.overview(), loadOr409(deps.siteRules.loadCompiled())]);
    res.json({ sites: rows.filter((r) => !q.state || r.state === q.state).map((r) => siteView(r, rules)) });
  });

  router.get('/api/mx-sites/:site', async (req, res) => {
    const site = siteParam.parse(req.params.site);
    const [rows, rules, events] = await Promise.all([deps.sites.overview(site), loadOr409(deps.siteRules.loadCompiled()), deps.sites.events(site, 100)]);
    if (rows.length === 0) throw new NotFoundError(`receiving site ${site} has not been sent to`);
    res.json({ ...siteView(rows[0], rules), events });
  });

  /** The rule a site key belongs to (`<rule id>` or `<rule id>@<mx host>`), as stored now. */
  async function ruleOfSite(site: string): Promise<MxSiteRule> {
    const rules = await loadOr409(deps.siteRules.loadCompiled());
    const id = site.includes('@') ? site.slice(0, site.indexOf('@')) : site;
    const rule = rules.find((r) => r.id === id) ?? (id === BUILTIN_DEFAULT_RULE.id ? BUILTIN_DEFAULT_RULE : null);
    if (!rule) throw new NotFoundError(`no enabled MX site rule ${id} for site ${site}`);
    if ((rule.scope === 'mx_host') !== site.includes('@')) throw new NotFoundError(`${site} is not a site of rule ${id} (scope ${rule.scope})`);
    return rule;
  }

  // An operator holds every message to a site (a provider's incident, a delisting in progress), recorded with the reason.
  router.post('/api/mx-sites/:site/suspend', async (req, res) => {
    const site = siteParam.parse(req.params.site);
    const body = suspendBody.parse(req.body ?? {});
    const rule = await ruleOfSite(site);
    const now = Date.now();
    const { change } = await deps.sites.adapt(site, rule.id, (cur) => ({ change: suspendByHand(rule, cur, now + body.seconds * 1000, now) }), { rule: 'api', reply: body.reason });
    const [row] = await deps.sites.overview(site);
    res.json({ ...siteView(row, [rule]), change: change?.kind ?? null });
  });

  router.post('/api/mx-sites/:site/resume', async (req, res) => {
    const site = siteParam.parse(req.params.site);
    const rule = await ruleOfSite(site);
    const now = Date.now();
    // Only the resumption itself: recovery of lowered limits keeps its quiet periods.
    const { change } = await deps.sites.adapt(site, rule.id, (cur) => ({ change: resumeByHand(rule, cur, now, { cooldownMs: 0, quietMs: Infinity, minPerSecond: 0 }) }), { rule: 'api', reply: 'resumed through the API' });
    if (!change) throw new ConflictError(`receiving site ${site} is not suspended`);
    const [row] = await deps.sites.overview(site);
    res.json({ ...siteView(row, [rule]), change: change.kind });
  });

  router.use(
    createRuleTableRouter({
      base: SITE_RULES,
      noun: 'MX site rule',
      auditTarget: 'mx_site_rule',
      store: deps.siteRules,
      idParam: mxRuleIdSchema,
      listQuery: z.object({ provider: z.string().min(1).max(100).optional() }),
      invalidRule: (id, issues) => new InvalidMxRuleError('MX site rule', id, issues),
      routes: (r) => {
        // Which rule and site a domain falls under with the rules as stored now (domain patterns, then the MX host given).
        r.post(`${SITE_RULES}/test`, async (req, res) => {
          const body = siteTestBody.parse(req.body ?? {});
          const rules = await loadOr409(deps.siteRules.loadCompiled());
          const byDomain = ruleForDomain(body.domain, rules);
          const byMx = !byDomain && body.mxHost ? ruleForMxHost(body.mxHost, rules) : null;
          const rule = byDomain ?? byMx ?? BUILTIN_DEFAULT_RULE;
          const mxHost = body.mxHost ?? null;
          res.json({
            domain: body.domain,
            mxHost,
            matchedBy: byDomain ? 'domain' : byMx ? 'mx_host' : 'default',
            rule,
            site: rule.scope === 'mx_host' && mxHost === null ? null : siteKey(rule, mxHost),
            note: rule.scope === 'mx_host' && mxHost === null ? 'this rule keeps one budget per MX host: give mxHost to see the site' : undefined,
            rulesEvaluated: rules.length,
          });
        });
      },
    }),
  );

  router.use(
    createRuleTableRouter({
      base: REPLY_RULES,
      noun: 'MX reply rule',
      auditTarget: 'mx_reply_rule',
      store: deps.replyRules,
      idParam: mxRuleIdSchema,
      listQuery: z.object({ provider: z.string().min(1).max(100).optional() }),
      invalidRule: (id, issues) => new InvalidMxRuleError('MX reply rule', id, issues),
      routes: (r) => {
        // What a reply would do to its site with the reply rules as stored now.
        r.post(`${REPLY_RULES}/test`, async (req, res) => {
          const body = replyTestBody.parse(req.body ?? {});
          const reply = parseSmtpReply(body.reply);
          const accepted = reply.code >= 200 && reply.code < 300;
          const retryClass = body.retryClass ?? (accepted ? null : qualifyWithDefaultRules(reply).retryClass);
          const rules = await loadOr409(deps.replyRules.loadCompiled());
          const rule = matchMxReplyRule(reply, retryClass, rules);
          res.json({
            reply: { code: reply.code, enhancedCode: reply.enhancedCode, text: reply.text },
            retryClass,
            matched: rule !== null,
            ruleId: rule?.id ?? null,
            action: rule?.action ?? null,
            suspendSeconds: rule?.suspendSeconds ?? null,
            rulesEvaluated: rules.length,
          });
        });
      },
    }),
  );

  return router;
}
