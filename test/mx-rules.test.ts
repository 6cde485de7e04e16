/**
 * MX rules as data (docs/mx-rules.md): the seeded tables and their validation, which site a domain belongs to, what
 * each throttling reply of the issue does, the adaptive state machine, the shared budgets in Postgres (GCRA slots and
 * connection leases under concurrency) and the API that edits the rules and shows the sites.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness';
import { apiCall } from './support/http';
import siteSeed from '../rules/mx-site-rules.json';
import replySeed from '../rules/mx-reply-rules.json';
import { validateMxReplySeed, validateMxSiteSeed } from '../domain/mx-rules/mx-rule-validation';
import { hostMatches, ruleForDomain, ruleForMxHost, siteKey } from '../domain/mx-rules/mx-site-rule';
import { matchMxReplyRule, sampleReply } from '../domain/mx-rules/mx-reply-rule';
import { applySignal, currentLimits, NORMAL_SITE, recoveryStep, type AdaptivePolicy } from '../domain/mx-rules/adaptive';
import { qualifyWithDefaultRules } from '../domain/bounce-rules/qualify-smtp-reply';
import { parseSmtpReply } from '../domain/smtp-reply';
import { safetyStopVerdict } from '../domain/safety-stop';
import { SiteResolver } from '../mail/mx/site-resolver';
import { MxRulesCache } from '../mail/mx/mx-rules-cache';

const sites = validateMxSiteSeed(siteSeed).rules;
const replies = validateMxReplySeed(replySeed).rules;

describe('site rules', () => {
  it('seed: large providers and a catch-all, every pattern a plain name or a subdomain wildcard', () => {
    const ids = sites.map((r) => r.id);
    for (const id of ['google', 'microsoft', 'yahoo-aol', 'apple-icloud', 'gmx-webde', 'orange', 'free', 'default']) expect(ids).toContain(id);
    expect(sites.at(-1)).toMatchObject({ id: 'default', mxHosts: ['*'], scope: 'mx_host' });
  });

  it('host patterns: "*.google.com" is every subdomain, not the name itself nor a look-alike', () => {
    expect(hostMatches('*.google.com', 'aspmx.l.google.com')).toBe(true);
    expect(hostMatches('*.google.com', 'google.com')).toBe(false);
    expect(hostMatches('*.google.com', 'evilgoogle.com')).toBe(false);
    expect(hostMatches('gmail.com', 'gmail.com')).toBe(true);
    expect(hostMatches('*', 'anything.example')).toBe(true);
  });

  it('gmail.com, googlemail.com and a Workspace domain behind *.google.com MX are one site', async () => {
    const mx: Record<string, string> = { 'workspace-customer.example': 'aspmx.l.google.com', 'tenant.example': 'tenant-example.mail.protection.outlook.com' };
    const resolver = new SiteResolver(new MxRulesCache({ siteRules: { changeMarker: async () => null, loadCompiled: async () => [] }, replyRules: { changeMarker: async () => null, loadCompiled: async () => [] } }, { siteRules: () => sites, replyRules: () => replies }), {
      resolve: async (d: string) => [{ host: mx[d] ?? `mx.${d}`, port: 25, priority: 10 }],
    });
    const keys = await Promise.all(['gmail.com', 'googlemail.com', 'workspace-customer.example'].map(async (d) => (await resolver.resolve(d)).site));
    expect(keys).toEqual(['google', 'google', 'google']);
    expect((await resolver.resolve('workspace-customer.example')).matchedBy).toBe('mx_host');
    expect((await resolver.resolve('hotmail.fr')).site).toBe('microsoft');
    expect((await resolver.resolve('tenant.example')).site).toBe('microsoft');
    // Anything else: the catch-all, one budget per MX host.
    const other = await resolver.resolve('small-company.example');
    expect(other).toMatchObject({ site: 'default@mx.small-company.example', matchedBy: 'mx_host' });
    expect(siteKey(ruleForMxHost('mx.a.example', sites)!, 'mx.a.example:2525')).toBe('default@mx.a.example:2525');
    expect(ruleForDomain('yahoo.fr', sites)?.id).toBe('yahoo-aol');
  });
});

describe('reply rules: what each throttling reply of the issue does to its site', () => {
  const cases: [string, string, string][] = [
    ['421 4.7.0 Try again later, closing connection.', 'try-again-later-4.7.0', 'slow_down'],
    ['421-4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your SPF domain [example.com].', 'gmail-unsolicited-rate-4.7.28', 'slow_down'],
    ['421 4.7.0 [TSS04] Messages from 192.0.2.25 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1', 'yahoo-tss04', 'suspend_and_slow_down'],
    ['550 5.7.1 Unfortunately, messages from [192.0.2.25] weren\'t sent. Please contact your Internet service provider since part of their network is on our block list (S3150).', 'microsoft-block-list-s3150', 'suspend_and_slow_down'],
    ['421 4.7.650 The mail server [192.0.2.25] has been temporarily rate limited due to IP reputation.', 'microsoft-rate-limited-4.7.650', 'suspend_and_slow_down'],
    ['ESOCKET: connect ECONNREFUSED 203.0.113.7:25', 'connection-refused', 'suspend'],
    ['421 Service not available, closing transmission channel', 'any-421', 'slow_down'],
    ['452 4.3.2 Connection rate limit exceeded.', 'throttling-reply', 'slow_down'],
    ['421 mwinf5c79 ME Trop de connexions, veuillez verifier votre configuration. Too many connections, slow down. OFR004_104 [104]', 'too-many-connections', 'fewer_connections'],
  ];
  it.each(cases)('%s → %s (%s)', (text, ruleId, action) => {
    const reply = parseSmtpReply(text);
    const m = matchMxReplyRule(reply, qualifyWithDefaultRules(reply).retryClass, replies);
    expect(m?.id).toBe(ruleId);
    expect(m?.action).toBe(action);
  });

  it('replies about the recipient or the message do not touch the site', () => {
    for (const text of ['550 5.1.1 <x@example.com>: user unknown', '451 4.7.1 Greylisted, please try again later', '452 4.2.2 mailbox full', '250 2.0.0 Ok']) {
      const reply = parseSmtpReply(text);
      expect(matchMxReplyRule(reply, reply.code === 250 ? null : qualifyWithDefaultRules(reply).retryClass, replies), text).toBeNull();
    }
  });

  it('every seeded rule matches its own sample', () => {
    for (const r of replies) {
      const reply = sampleReply(r);
      expect(matchMxReplyRule(reply, qualifyWithDefaultRules(reply).retryClass, [r])?.id, r.id).toBe(r.id);
    }
  });
});

describe('adaptive state', () => {
  const policy: AdaptivePolicy = { cooldownMs: 30_000, quietMs: 300_000, minPerSecond: 0.5 };
  const google = sites.find((r) => r.id === 'google')!;
  const catchAll = sites.find((r) => r.id === 'default')!;

  it('halves the rate once per burst, suspends, resumes, and recovers step by step to the rule', () => {
    const t = 1_000_000;
    const slowed = applySignal(google, NORMAL_SITE, 'slow_down', null, t, null, policy)!;
    expect(slowed).toMatchObject({ kind: 'slow_down', from: { perSecond: 20 }, to: { perSecond: 10 }, rateLowered: true });
    // The other replies of the same burst, inside the cooldown, change nothing.
    expect(applySignal(google, slowed.after, 'slow_down', null, t + 1_000, null, policy)).toBeNull();
    const slower = applySignal(google, slowed.after, 'slow_down', null, t + 31_000, null, policy)!;
    expect(currentLimits(google, slower.after).perSecond).toBe(5);
    const suspended = applySignal(google, slower.after, 'suspend_and_slow_down', 900_000, t + 32_000, null, policy)!;
    expect(suspended.after).toMatchObject({ state: 'suspended', suspendedUntilMs: t + 932_000, perSecondLimit: 2.5 });
    expect(recoveryStep(google, suspended.after, t + 900_000, policy)).toBeNull();
    // Suspension over, then two quiet periods: resumed, 2.5 → 5 → 10/s.
    const back = recoveryStep(google, suspended.after, t + 932_000 + 2 * 300_000, policy)!;
    expect(back).toMatchObject({ kind: 'resume', after: { state: 'slowed', perSecondLimit: 10 } });
    const normal = recoveryStep(google, back.after, t + 932_000 + 3 * 300_000, policy)!;
    expect(normal).toMatchObject({ kind: 'recover', after: { state: 'normal', perSecondLimit: null } });
    expect(currentLimits(google, normal.after).perSecond).toBe(20);
  });

  it('a site without a rate is halved from the rate it was sent at, and recovers to no limit; never below the floor', () => {
    const slowed = applySignal(catchAll, NORMAL_SITE, 'slow_down', null, 0, 40, policy)!;
    expect(slowed.to.perSecond).toBe(20);
    let s = slowed.after;
    for (let i = 1; i <= 10; i++) s = applySignal(catchAll, s, 'slow_down', null, i * 31_000, 40, policy)?.after ?? s;
    expect(currentLimits(catchAll, s).perSecond).toBe(0.5);
    const fewer = applySignal(catchAll, NORMAL_SITE, 'fewer_connections', null, 0, null, policy)!;
    expect(fewer.to.maxConnections).toBe(5);
    const recovered = recoveryStep(catchAll, s, 400_000 + 10 * 300_000, policy)!;
    expect(recovered.after).toMatchObject({ state: 'normal', perSecondLimit: null, baselinePerSecond: null });
  });
});

describe('safety stop verdict', () => {
  const policy = { minAttempts: 100, hardBounceRate: 0.1, refusalRate: 0.2 };
  it('judges only a full window, and names what passed which threshold', () => {
    expect(safetyStopVerdict({ attempts: 99, hardBounces: 99, refusals: 0 }, policy)).toBeNull();
    expect(safetyStopVerdict({ attempts: 100, hardBounces: 10, refusals: 20 }, policy)).toBeNull();
    expect(safetyStopVerdict({ attempts: 100, hardBounces: 11, refusals: 0 }, policy)?.reason).toBe('safety stop: 11 hard bounces (11%, threshold 10%) in the last 100 attempts');
    expect(safetyStopVerdict({ attempts: 100, hardBounces: 0, refusals: 25 }, policy)?.reason).toBe('safety stop: 25 refusals (25%, threshold 20%) in the last 100 attempts');
  });
});

describe('shared budgets in Postgres, and the API', () => {
  let h: Harness;
  const RUN = randomUUID().slice(0, 8);
  const api = async (method: string, p: string, body?: unknown) => {
    const r = await apiCall(h.apiUrl, method, p, body);
    return { status: r.status, body: r.json };
  };
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('GCRA: concurrent reservations get distinct slots exactly 1/R apart; the hourly budget and the retry window hold', async () => {
    const store = h.runtime.stores.mxSites;
    const site = `gcra-${RUN}`;
    const slots = await Promise.all(Array.from({ length: 20 }, () => store.reserve(site, site, { intervalSecondMs: 100, intervalHourMs: null, hourBurstMs: 0 }, 0, null)));
    const times = slots.map((s) => s.slotMs).sort((a, b) => a - b);
    for (let i = 1; i < times.length; i++) expect(times[i] - times[i - 1]).toBeCloseTo(100, 3);
    expect(times[0] - slots[0].dbNowMs).toBeLessThan(1_000);
    // 3 an hour: three at once, the fourth 20 minutes later.
    const hourly = `gcra-hour-${RUN}`;
    const budget = { intervalSecondMs: null, intervalHourMs: 1_200_000, hourBurstMs: 2_400_000 };
    const h1 = [];
    for (let i = 0; i < 4; i++) h1.push(await store.reserve(hourly, hourly, budget, 0, null));
    expect(h1.slice(0, 3).every((r) => r.slotMs - r.dbNowMs < 1_000)).toBe(true);
    expect(h1[3].slotMs - h1[3].dbNowMs).toBeGreaterThan(1_190_000);
    // A slot after the retry window's end is not taken.
    const late = await store.reserve(hourly, hourly, budget, 0, Date.now() + 60_000);
    expect(late.reserved).toBe(false);
    const after = await store.reserve(hourly, hourly, budget, 0, null);
    expect(after.slotMs - h1[3].slotMs).toBeCloseTo(1_200_000, 0);
  });

  it('connection leases: never more than the limit across holders, freed by release and by expiry', async () => {
    const store = h.runtime.stores.mxSites;
    const site = `leases-${RUN}`;
    const got = await Promise.all(Array.from({ length: 8 }, (_, i) => store.acquireLease(site, `holder-${i % 3}`, 3, 30_000)));
    const slots = got.filter((s) => s !== null);
    expect(slots.sort()).toEqual([0, 1, 2]);
    expect(await store.acquireLease(site, 'holder-x', 3, 30_000)).toBeNull();
    const holder = got.findIndex((s) => s === 1);
    await store.releaseLease(site, 1, `holder-${holder % 3}`);
    expect(await store.acquireLease(site, 'holder-x', 3, 30_000)).toBe(1);
    await h.pool.query(`UPDATE mx_site_leases SET expires_at = now() - interval '1 second' WHERE site = $1 AND slot = 2`, [site]);
    expect(await store.acquireLease(site, 'holder-y', 3, 30_000)).toBe(2);
    // A lower limit gives out no slot at or above it.
    expect(await store.acquireLease(site, 'holder-z', 2, 30_000)).toBeNull();
  });

  it('the rules are editable through the API, validated like the qualification rules (400 naming the field)', async () => {
    const list = await api('GET', '/api/mx-rules');
    expect(list.status).toBe(200);
    expect(list.body.rules.map((r: { id: string }) => r.id)).toContain('google');
    expect(list.body.seedVersion).toBe(siteSeed.version);
    const bad = await api('PUT', `/api/mx-rules/bad-${RUN}`, { priority: 1, provider: 'x', domains: ['g*mail.com'], mxHosts: [], scope: 'site', maxConnections: 0, messagesPerConnection: 1, perSecond: null, perHour: null, note: 'x' });
    expect(bad.status).toBe(400);
    expect(bad.body.issues.map((i: { path: string }) => i.path).sort()).toEqual(['domains.0', 'maxConnections']);
    const badReply = await api('PUT', `/api/mx-reply-rules/bad-${RUN}`, { priority: 1, provider: 'x', code: 421, enhancedCode: null, contains: null, retryClass: null, action: 'suspend', suspendSeconds: null, sample: '421 busy', note: 'x' });
    expect(badReply.status).toBe(400);
    expect(badReply.body.issues).toEqual([{ path: 'suspendSeconds', message: 'a suspend rule needs suspendSeconds' }]);
    const mismatch = await api('PUT', `/api/mx-reply-rules/bad-${RUN}`, { priority: 1, provider: 'x', code: 421, enhancedCode: null, contains: 'TSS09', retryClass: null, action: 'slow_down', suspendSeconds: null, sample: '421 busy', note: 'x' });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.issues[0].path).toBe('sample');
    const tried = await api('POST', '/api/mx-rules/test', { domain: 'googlemail.com' });
    expect(tried.body).toMatchObject({ matchedBy: 'domain', site: 'google' });
    const byMx = await api('POST', '/api/mx-rules/test', { domain: 'corp.example', mxHost: 'corp-example.mail.protection.outlook.com' });
    expect(byMx.body).toMatchObject({ matchedBy: 'mx_host', site: 'microsoft' });
    const reply = await api('POST', '/api/mx-reply-rules/test', { reply: '421 4.7.0 [TSS04] Messages from 192.0.2.25 temporarily deferred' });
    expect(reply.body).toMatchObject({ matched: true, ruleId: 'yahoo-tss04', action: 'suspend_and_slow_down', suspendSeconds: 900 });
    // A read key sees the sites but cannot change a rule.
    const reader = await h.createApiKey(['read']);
    expect((await apiCall(h.apiUrl, 'GET', '/api/mx-sites', undefined, { apiKey: reader.secret })).status).toBe(200);
    expect((await apiCall(h.apiUrl, 'PUT', `/api/mx-rules/google`, { ...list.body.rules[0] }, { apiKey: reader.secret })).status).toBe(403);
  });
});
