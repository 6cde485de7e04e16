/**
 * The adaptive state of a receiving site: how a throttling reply slows it down (halves its rate or its connections) or
 * suspends it, and how it recovers step by step after a quiet period. Pure: the store applies it under a row lock.
 * Times are on the engine clock (workflow clock + elapsed), the one the retry windows use.
 */
import type { MxReplyAction } from './mx-reply-rule';
import type { MxSiteRule, SiteLimits } from './mx-site-rule';

export type SiteStateName = 'normal' | 'slowed' | 'suspended';
export type SiteChangeKind = 'slow_down' | 'fewer_connections' | 'suspend' | 'resume' | 'recover';

export interface AdaptiveSite {
  state: SiteStateName;
  /** Current rate set by the adaptive layer; null: the rule's. */
  perSecondLimit: number | null;
  /** Current connection limit set by the adaptive layer; null: the rule's. */
  maxConnectionsLimit: number | null;
  /** For a site whose rule has no rate: the rate it had when first slowed, up to which it recovers. */
  baselinePerSecond: number | null;
  suspendedUntilMs: number | null;
  lastChangeAtMs: number | null;
  lastSignalAtMs: number | null;
}

export const NORMAL_SITE: AdaptiveSite = Object.freeze({
  state: 'normal',
  perSecondLimit: null,
  maxConnectionsLimit: null,
  baselinePerSecond: null,
  suspendedUntilMs: null,
  lastChangeAtMs: null,
  lastSignalAtMs: null,
});

export interface AdaptivePolicy {
  /** A slow-down within this long of the previous change only counts as a signal (the in-flight replies of one burst halve once). */
  cooldownMs: number;
  /** No throttling reply for this long: one recovery step. */
  quietMs: number;
  /** The rate never goes below this (messages per second). */
  minPerSecond: number;
}

export interface SiteChange {
  kind: SiteChangeKind;
  before: AdaptiveSite;
  after: AdaptiveSite;
  /** The limits the site is sent at before and after. */
  from: SiteLimits;
  to: SiteLimits;
  /** True when the rate went down: reservations made at the old rate are void. */
  rateLowered: boolean;
}

/** The limits a site is sent at now: the rule's, lowered by the adaptive layer. */
export function currentLimits(rule: MxSiteRule, site: AdaptiveSite): SiteLimits {
  return {
    maxConnections: Math.min(rule.maxConnections, site.maxConnectionsLimit ?? rule.maxConnections),
    messagesPerConnection: rule.messagesPerConnection,
    perSecond: site.perSecondLimit === null ? rule.perSecond : rule.perSecond === null ? site.perSecondLimit : Math.min(rule.perSecond, site.perSecondLimit),
    perHour: rule.perHour,
  };
}

function halvedRate(rule: MxSiteRule, site: AdaptiveSite, observedPerSecond: number | null, policy: AdaptivePolicy): { perSecond: number; baseline: number | null } {
  const current = currentLimits(rule, site).perSecond;
  // A site with no rate limit is halved from the rate it was actually sent at (at least one message a second).
  const base = current ?? Math.max(1, observedPerSecond ?? 1);
  return {
    perSecond: Math.max(policy.minPerSecond, base / 2),
    baseline: rule.perSecond === null ? (site.baselinePerSecond ?? base) : null,
  };
}

function change(kind: SiteChangeKind, rule: MxSiteRule, before: AdaptiveSite, after: AdaptiveSite): SiteChange {
  const from = currentLimits(rule, before);
  const to = currentLimits(rule, after);
  const rateLowered = (to.perSecond ?? Infinity) < (from.perSecond ?? Infinity) || kind === 'suspend';
  return { kind, before, after, from, to, rateLowered };
}

/**
 * A reply matched a reply rule. Returns the change, or null when it only counts as a signal (a slow-down within the
 * cooldown of the previous change, a suspension already running past the new end); the caller moves lastSignalAtMs
 * either way (touched()), which delays recovery.
 */
export function applySignal(
  rule: MxSiteRule,
  site: AdaptiveSite,
  action: MxReplyAction,
  suspendMs: number | null,
  nowMs: number,
  observedPerSecond: number | null,
  policy: AdaptivePolicy,
): SiteChange | null {
  const signalled = touched(site, nowMs);
  const inCooldown = site.lastChangeAtMs !== null && nowMs - site.lastChangeAtMs < policy.cooldownMs;
  if (action === 'suspend' || action === 'suspend_and_slow_down') {
    const until = nowMs + (suspendMs ?? 0);
    if (site.state === 'suspended' && (site.suspendedUntilMs ?? 0) >= until) return null;
    let after: AdaptiveSite = { ...signalled, state: 'suspended', suspendedUntilMs: until, lastChangeAtMs: nowMs };
    // Halved once per suspension (a suspension extended by the same reply does not halve again).
    if (action === 'suspend_and_slow_down' && site.state !== 'suspended') {
      const halved = halvedRate(rule, site, observedPerSecond, policy);
      after = { ...after, perSecondLimit: halved.perSecond, baselinePerSecond: halved.baseline };
    }
    return change('suspend', rule, site, after);
  }
  if (inCooldown || site.state === 'suspended') return null;
  if (action === 'slow_down') {
    const halved = halvedRate(rule, site, observedPerSecond, policy);
    if (halved.perSecond >= (currentLimits(rule, site).perSecond ?? Infinity)) return null; // already at the floor
    return change('slow_down', rule, site, { ...signalled, state: 'slowed', perSecondLimit: halved.perSecond, baselinePerSecond: halved.baseline, lastChangeAtMs: nowMs });
  }
  const connections = currentLimits(rule, site).maxConnections;
  if (connections <= 1) return null;
  return change('fewer_connections', rule, site, { ...signalled, state: 'slowed', maxConnectionsLimit: Math.max(1, Math.floor(connections / 2)), lastChangeAtMs: nowMs });
}

/** An operator suspends the site until `untilMs` (through the API), whatever its state. */
export function suspendByHand(rule: MxSiteRule, site: AdaptiveSite, untilMs: number, nowMs: number): SiteChange {
  return change('suspend', rule, site, { ...site, state: 'suspended', suspendedUntilMs: untilMs, lastChangeAtMs: nowMs });
}

/** An operator ends a suspension now; null when the site is not suspended. */
export function resumeByHand(rule: MxSiteRule, site: AdaptiveSite, nowMs: number, policy: AdaptivePolicy): SiteChange | null {
  if (site.state !== 'suspended') return null;
  return recoveryStep(rule, { ...site, suspendedUntilMs: nowMs }, nowMs, policy);
}

/** The state with only the signal time moved (a matched reply that changed nothing still delays recovery). */
export function touched(site: AdaptiveSite, nowMs: number): AdaptiveSite {
  return { ...site, lastSignalAtMs: Math.max(site.lastSignalAtMs ?? 0, nowMs) };
}

/** One doubling of the lowered limits, back to the rule's (normal) once both reach it. */
function doubled(rule: MxSiteRule, site: AdaptiveSite, atMs: number): AdaptiveSite {
  // A rule without a rate recovers up to the rate the site had when it was first slowed, then has no limit again.
  const ceiling = rule.perSecond ?? site.baselinePerSecond;
  let perSecondLimit: number | null = site.perSecondLimit === null ? null : site.perSecondLimit * 2;
  if (perSecondLimit !== null && (ceiling === null || perSecondLimit >= ceiling)) perSecondLimit = null;
  let maxConnectionsLimit: number | null = site.maxConnectionsLimit === null ? null : site.maxConnectionsLimit * 2;
  if (maxConnectionsLimit !== null && maxConnectionsLimit >= rule.maxConnections) maxConnectionsLimit = null;
  const back = perSecondLimit === null && maxConnectionsLimit === null;
  return { ...site, state: back ? 'normal' : 'slowed', perSecondLimit, maxConnectionsLimit, baselinePerSecond: back ? null : site.baselinePerSecond, lastChangeAtMs: atMs };
}

/**
 * What is due at `nowMs`, or null: a suspension that has ended resumes (slowed, or normal when it lowered nothing);
 * then every full quiet period (no change and no throttling reply for quietMs) doubles the lowered rate and
 * connections once, as if each step had been taken when its period ended. One call catches up on all of them, so a
 * site nobody sent to for an hour is back to normal at its next message.
 */
export function recoveryStep(rule: MxSiteRule, site: AdaptiveSite, nowMs: number, policy: AdaptivePolicy): SiteChange | null {
  let s = site;
  let kind: SiteChangeKind | null = null;
  if (s.state === 'suspended') {
    if (s.suspendedUntilMs !== null && nowMs < s.suspendedUntilMs) return null;
    const endedAt = s.suspendedUntilMs ?? nowMs;
    const lowered = s.perSecondLimit !== null || s.maxConnectionsLimit !== null;
    s = { ...s, state: lowered ? 'slowed' : 'normal', suspendedUntilMs: null, lastChangeAtMs: endedAt };
    kind = 'resume';
  }
  for (let steps = 0; s.state === 'slowed' && steps < 64; steps++) {
    const quietSince = Math.max(s.lastChangeAtMs ?? 0, s.lastSignalAtMs ?? 0);
    if (nowMs - quietSince < policy.quietMs) break;
    s = doubled(rule, s, quietSince + policy.quietMs);
    kind ??= 'recover';
  }
  return kind === null ? null : change(kind, rule, site, s);
}
/** When the next recovery step can happen (engine clock), or null when the site is normal. */
export function nextRecoveryAtMs(site: AdaptiveSite, policy: AdaptivePolicy): number | null {
  if (site.state === 'suspended') return site.suspendedUntilMs;
  if (site.state !== 'slowed') return null;
  return Math.max(site.lastChangeAtMs ?? 0, site.lastSignalAtMs ?? 0) + policy.quietMs;
}
