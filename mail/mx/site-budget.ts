/**
 * A worker process's side of the global site limits (docs/mx-rules.md). Every message to a receiving site is admitted
 * here first: it gets a connection (a lane holding one of the site's connection leases in Postgres) and, for a site
 * with a rate, a reserved slot of its budget (one atomic statement). A message whose slot is close waits in memory; one
 * whose slot is further away is told how long to wait, with its reservation, so that its activity comes back once,
 * at its slot, instead of polling. Replies feed the adaptive state (reply rules → slow down, suspend, recover).
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { MxSiteStore, Reservation, SiteRow } from '../../db/mx-site-store';
import { applySignal, currentLimits, nextRecoveryAtMs, recoveryStep, touched, type AdaptivePolicy, type SiteChange } from '../../domain/mx-rules/adaptive';
import { matchMxReplyRule } from '../../domain/mx-rules/mx-reply-rule';
import type { MxSiteRule, SiteLimits } from '../../domain/mx-rules/mx-site-rule';
import type { RetryClass } from '../../domain/failure';
import type { SmtpReply } from '../../domain/smtp-reply';
import { SmtpLane } from '../smtp/smtp-lane';
import type { MxRulesCache } from './mx-rules-cache';
import type { ResolvedSite } from './site-resolver';

/** A reserved slot carried by a waiting message (through the workflow history: a few numbers). */
export interface SiteReservation {
  site: string;
  /** Epoch ms of the slot on the pacing clock (database clock, or the engine clock when ahead). */
  slotMs: number;
  epoch: number;
}

export type Admission =
  | { kind: 'go'; permit: SitePermit }
  /** Nothing was sent: come back in `retryInMs`, with the reservation when one was taken. */
  | { kind: 'wait'; retryInMs: number; reservation: SiteReservation | null; reason: string }
  /** The site has no budget left for this message before `latestMs` (its retry window end). */
  | { kind: 'expired'; reason: string };

export interface AdmitOptions {
  /** The engine clock (workflow clock + elapsed): adaptive state and retry windows run on it. */
  engineNowMs: number;
  /** Longest wait this caller does in memory (local activity: a couple of seconds; regular activity: more). */
  maxWaitMs: number;
  /** The message's retry window end (engine clock): no slot after it is taken. */
  latestMs: number;
  /** A reservation this message got earlier (void when its epoch is old or it is late). */
  reservation?: SiteReservation | null;
}

export interface SiteBudgetOptions {
  /** Identifies this process's leases and reports. */
  holder?: string;
  leaseTtlMs: number;
  /** An idle connection is closed (and its lease freed) after this. */
  idleCloseMs: number;
  /** At most this many connections per site from this process, whatever the rule allows (SMTP_POOL_MAX_CONNECTIONS). */
  perProcessMaxConnections: number;
  /** At most this many messages per connection (SMTP_POOL_MAX_MESSAGES), whatever the rule allows. */
  perProcessMaxMessages: number;
  /** A slot reached later than this is given back: a late sender would bunch with the next ones. */
  lateToleranceMs: number;
  /** How often each process reports its reply counts and load. */
  reportEveryMs: number;
  /** How long a site's state read is trusted. */
  stateCacheMs: number;
  /** A message held by a suspension looks again at least this often (a site resumed early is sent to again). */
  suspendedRecheckMs: number;
  /** Adaptive timings (already scaled). */
  adaptive: AdaptivePolicy;
  /** Multiplies a reply rule's suspendSeconds (RETRY_TIME_SCALE: tests shrink minutes to seconds). */
  timeScale: number;
  newLane: () => SmtpLane;
  log?: (entry: Record<string, unknown>) => void;
  random?: () => number;
  /** A permit held longer than this is taken back (ORPHANED_PERMIT_MS unless a test shortens it). */
  orphanedPermitMs?: number;
}

interface LaneSlot {
  lane: SmtpLane;
  /** The lease's slot number. */
  slot: number;
  busy: boolean;
  idleTimer: NodeJS.Timeout | null;
  /** The permit holding this lane (for the orphan check), while one does. */
  held: { since: number; reclaim: () => void } | null;
}

interface SiteLanes {
  lanes: LaneSlot[];
  waiters: { resolve: (l: LaneSlot | null) => void; timer: NodeJS.Timeout }[];
  polling: NodeJS.Timeout | null;
  acquiring: Promise<LaneSlot | null> | null;
  inFlight: number;
  /** Admissions under way (sleeping until their slot or waiting for a connection): the site is not forgotten meanwhile. */
  pending: number;
  /** The site's current limits, as last admitted (lanes above the connection limit close when released). */
  limits: SiteLimits;
}

/** The right to send one message now, on one lane; release() whatever happened. */
export interface SitePermit {
  lane: SmtpLane;
  site: ResolvedSite;
  limits: SiteLimits;
  release(): void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

/** A paced message takes its connection this long before its slot (connecting takes a few round trips). */
const PREWARM_MS = 300;

/**
 * A permit still held after this was lost by its holder: both send activities time out after 5 minutes (start to
 * close), so no legitimate send holds one for 10. Its lane is closed and its lease freed, with an error logged: a leaked
 * permit would otherwise keep one of the site's connections busy for the life of the process, and once all of them
 * leak the site sends nothing more.
 */
export const ORPHANED_PERMIT_MS = 10 * 60_000;

export class SiteBudget {
  readonly holder: string;
  private readonly lanes = new Map<string, SiteLanes>();
  private readonly states = new Map<string, { at: number; row: SiteRow }>();
  /** The rule each known site was last admitted under (for recoveries applied in the background). */
  private readonly ruleOf = new Map<string, MxSiteRule>();
  /** Database clock minus this process's clock, from the last read. */
  private dbOffsetMs = 0;
  private readonly counts = new Map<string, { site: string; minuteMs: number; code: number; n: number }>();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly log: (entry: Record<string, unknown>) => void;
  private readonly random: () => number;

  constructor(
    private readonly store: MxSiteStore,
    private readonly rules: MxRulesCache,
    private readonly o: SiteBudgetOptions,
  ) {
    this.holder = o.holder ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.log = o.log ?? ((entry) => console.log(JSON.stringify(entry)));
    this.random = o.random ?? Math.random;
  }

  /** Lease renewal and the periodic report; started on first use, stopped by close(). */
  private ensureTimer(): void {
    if (this.timer || this.closed) return;
    const every = Math.min(this.o.reportEveryMs, Math.floor(this.o.leaseTtlMs / 3));
    let reportsSincePrune = 0;
    this.timer = setInterval(() => {
      void (async () => {
        this.reclaimOrphanedPermits();
        if (this.lanes.size > 0 && [...this.lanes.values()].some((l) => l.lanes.length > 0)) await this.store.renewLeases(this.holder, this.o.leaseTtlMs);
        await this.report();
        await this.recoverDue();
        if (++reportsSincePrune >= 120) {
          reportsSincePrune = 0;
          await this.store.prune();
        }
      })().catch((e) => this.log({ level: 'error', msg: 'site budget upkeep failed', error: String((e as Error)?.message ?? e) }));
    }, every);
    this.timer.unref();
  }

  /** Admits one message to its site: a permit now, or how long to wait (see Admission). */
  async admit(site: ResolvedSite, o: AdmitOptions): Promise<Admission> {
    this.ensureTimer();
    const started = Date.now();
    const engineNow = () => o.engineNowMs + (Date.now() - started);
    for (let round = 0; ; round++) {
      let state = await this.siteState(site, engineNow());
      // A suspension that ends within the caller's wait is waited out in memory, looking at the site's state (read at
      // most every stateCacheMs, shared by every message of the process) once a second, in case it is lifted earlier.
      while (
        state.state === 'suspended' &&
        state.suspendedUntilMs !== null &&
        state.suspendedUntilMs > engineNow() &&
        state.suspendedUntilMs - engineNow() <= o.maxWaitMs - (Date.now() - started)
      ) {
        await sleep(Math.min(1_000, state.suspendedUntilMs - engineNow()));
        state = await this.siteState(site, engineNow());
      }
      if (state.state === 'suspended' && state.suspendedUntilMs !== null && state.suspendedUntilMs > engineNow()) {
        if (engineNow() >= o.latestMs) return { kind: 'expired', reason: `receiving site ${site.site} was suspended until the message's retry window ended` };
        // Spread the held messages over a few seconds after the suspension so they do not all return at once; look
        // again at least every suspendedRecheckMs (an operator may resume the site early), and at the window's end.
        const untilEnd = state.suspendedUntilMs - engineNow() + Math.round(this.random() * 3_000);
        const retryInMs = Math.max(1, Math.min(untilEnd, this.o.suspendedRecheckMs + Math.round(this.random() * 1_000), o.latestMs - engineNow()));
        return { kind: 'wait', retryInMs, reservation: null, reason: `receiving site ${site.site} is suspended` };
      }
      const limits = currentLimits(site.rule, state);
      const paced = limits.perSecond !== null || limits.perHour !== null;
      let slotLocalMs = Date.now();
      let epoch = state.epoch;
      if (paced) {
        const given = round === 0 ? o.reservation : null;
        let res: SiteReservation;
        if (given && given.site === site.site && given.epoch === state.epoch) {
          res = given;
        } else {
          const r: Reservation = await this.store.reserve(site.site, site.rule.id, this.budgetOf(limits), engineNow(), o.latestMs);
          this.dbOffsetMs = r.dbNowMs - Date.now();
          if (!r.reserved) return { kind: 'expired', reason: `receiving site ${site.site} has no sending budget left before the message's retry window ends` };
          res = { site: site.site, slotMs: r.slotMs, epoch: r.epoch };
        }
        epoch = res.epoch;
        const wait = res.slotMs - this.pacingNow(engineNow());
        if (wait < -this.o.lateToleranceMs) continue; // a slot missed (the message came back late): take a new one
        if (wait > o.maxWaitMs) {
          // Come back a little before the slot (up to 2 s: an activity retried by a busy server can be dispatched that
          // late); the rest is waited in memory.
          const lead = Math.min(2_000, o.maxWaitMs / 2);
          return { kind: 'wait', retryInMs: Math.max(1, Math.round(wait - lead)), reservation: res, reason: `receiving site ${site.site} is at its rate limit` };
        }
        slotLocalMs = Date.now() + wait;
      }
      const lanes = this.siteLanes(site.site, limits);
      lanes.pending++;
      let lane: LaneSlot | null = null;
      try {
        if (!paced) {
          lane = await this.acquireLane(site.site, lanes, limits, Math.max(0, o.maxWaitMs - (Date.now() - started)));
        } else {
          // The connection is taken (and opened if it is not) a little before the slot, so that connecting does not push
          // the message past it; the message then goes at its slot.
          if (slotLocalMs - PREWARM_MS > Date.now()) await sleep(slotLocalMs - PREWARM_MS - Date.now());
          // The rate went down while it slept (this process saw a throttling reply, or read the change): a new slot.
          if ((this.states.get(site.site)?.row.epoch ?? epoch) !== epoch && round < 2) continue;
          // A paced message may wait for a connection only as long as its slot stays valid.
          lane = await this.acquireLane(site.site, lanes, limits, Math.max(0, slotLocalMs + this.o.lateToleranceMs - Date.now()));
          if (lane) {
            if (site.targets[0]) await lane.lane.warm(site.targets[0]);
            if (slotLocalMs > Date.now()) await sleep(slotLocalMs - Date.now());
            // Too late (a busy process): sent now it would bunch with the next slots; the slot is given back.
            if (Date.now() > slotLocalMs + this.o.lateToleranceMs && round < 2) {
              this.releaseLane(site.site, lanes, lane);
              continue;
            }
          }
        }
      } finally {
        lanes.pending--;
      }
      if (!lane) {
        if (paced && round < 2) continue;
        return { kind: 'wait', retryInMs: 500 + Math.round(this.random() * 2_000), reservation: null, reason: `receiving site ${site.site} has all its ${limits.maxConnections} connections in use` };
      }
      lanes.inFlight++;
      const held = lane;
      const since = Date.now();
      let released = false;
      /** The lane back to the site, once: to the next message, or (reclaimed from a lost holder) closed. */
      const giveBack = (reclaimed: boolean) => {
        if (released) return;
        released = true;
        lanes.inFlight--;
        held.held = null;
        if (!reclaimed) return this.releaseLane(site.site, lanes, held);
        this.log({ level: 'error', msg: 'site connection permit never released: connection closed and lease freed', site: site.site, slot: held.slot, heldMs: Date.now() - since });
        void this.retire(site.site, lanes, held);
      };
      held.held = { since, reclaim: () => giveBack(true) };
      return {
        kind: 'go',
        permit: {
          lane: held.lane,
          site,
          limits,
          release: () => giveBack(false),
        },
      };
    }
  }

  /**
   * Counts the reply and applies the reply rules: a matching reply slows the site down, cuts its connections or
   * suspends it (recorded with its cause), or, inside the cooldown of the last change, only delays its recovery.
   */
  async observe(site: ResolvedSite, reply: SmtpReply, retryClass: RetryClass | null, engineNowMs: number): Promise<SiteChange | null> {
    this.count(site.site, reply.code);
    const rule = matchMxReplyRule(reply, retryClass, await this.rules.replyRules());
    if (!rule) return null;
    const cached = this.states.get(site.site)?.row;
    const suspendMs = rule.suspendSeconds === null ? null : Math.round(rule.suspendSeconds * 1000 * this.o.timeScale);
    // Most replies of a burst change nothing (cooldown): skip the write when the signal time moved less than a second ago.
    if (cached && applySignal(site.rule, cached, rule.action, suspendMs, engineNowMs, null, this.o.adaptive) === null && engineNowMs - (cached.lastSignalAtMs ?? 0) < 1_000) return null;
    const observed = site.rule.perSecond === null ? await this.store.observedPerSecond(site.site, 60_000) : null;
    const { row, change } = await this.store.adapt(
      site.site,
      site.rule.id,
      (cur) => {
        const c = applySignal(site.rule, cur, rule.action, suspendMs, engineNowMs, observed, this.o.adaptive);
        return { change: c, store: c ? undefined : touched(cur, engineNowMs) };
      },
      { rule: rule.id, reply: [reply.code || null, reply.enhancedCode, reply.text].filter(Boolean).join(' ') },
    );
    this.states.set(site.site, { at: Date.now(), row });
    if (change) {
      this.log({ msg: 'receiving site changed', site: site.site, kind: change.kind, cause: rule.id, from: change.from, to: change.to, holder: this.holder });
      const lanes = this.lanes.get(site.site);
      if (lanes) lanes.limits = currentLimits(site.rule, row);
    }
    return change;
  }

  /** The site's row, read at most every stateCacheMs; a recovery step that is due is applied (by whichever process sees it first). */
  private async siteState(site: ResolvedSite, engineNowMs: number): Promise<SiteRow> {
    this.ruleOf.set(site.site, site.rule);
    const hit = this.states.get(site.site);
    let row: SiteRow;
    if (hit && Date.now() - hit.at < this.o.stateCacheMs) {
      row = hit.row;
    } else {
      const r = await this.store.state(site.site, site.rule.id);
      this.dbOffsetMs = r.dbNowMs - Date.now();
      row = r.row;
      this.states.set(site.site, { at: Date.now(), row });
      if (this.states.size > 50_000) {
        this.states.clear();
        this.ruleOf.clear();
        this.ruleOf.set(site.site, site.rule);
      }
    }
    const due = nextRecoveryAtMs(row, this.o.adaptive);
    if (due !== null && due <= engineNowMs) {
      const { row: after, change } = await this.store.adapt(site.site, site.rule.id, (cur) => ({ change: recoveryStep(site.rule, cur, engineNowMs, this.o.adaptive) }), {
        rule: null,
        reply: null,
      });
      if (change) this.log({ msg: 'receiving site changed', site: site.site, kind: change.kind, cause: 'quiet period', from: change.from, to: change.to, holder: this.holder });
      row = after;
      this.states.set(site.site, { at: Date.now(), row });
    }
    return row;
  }

  /**
   * Applies the recovery steps that are due for the sites this process knows, so a slowed site recovers (and the API
   * shows it) even when nothing is sent to it. Due on this process's clock, which is the engine clock outside a
   * time-skipping test (where the next admission applies them instead).
   */
  private async recoverDue(): Promise<void> {
    for (const [site, { row }] of this.states) {
      const due = nextRecoveryAtMs(row, this.o.adaptive);
      if (due === null || due > Date.now()) continue;
      const rule = this.ruleOf.get(site);
      if (!rule) continue;
      const { row: after, change } = await this.store.adapt(site, rule.id, (cur) => ({ change: recoveryStep(rule, cur, Date.now(), this.o.adaptive) }), { rule: null, reply: null });
      if (change) this.log({ msg: 'receiving site changed', site, kind: change.kind, cause: 'quiet period', from: change.from, to: change.to, holder: this.holder });
      this.states.set(site, { at: Date.now(), row: after });
    }
  }

  /** GCRA parameters of the limits: spacing per message, and per hour with an hour's worth as burst. */
  private budgetOf(limits: SiteLimits): { intervalSecondMs: number | null; intervalHourMs: number | null; hourBurstMs: number } {
    const intervalHourMs = limits.perHour === null ? null : 3_600_000 / limits.perHour;
    return {
      intervalSecondMs: limits.perSecond === null ? null : 1000 / limits.perSecond,
      intervalHourMs,
      hourBurstMs: intervalHourMs === null ? 0 : 3_600_000 - intervalHourMs,
    };
  }

  /** The pacing clock now: the database's (as last measured), or the engine's when it is ahead. */
  private pacingNow(engineNowMs: number): number {
    return Math.max(Date.now() + this.dbOffsetMs, engineNowMs);
  }

  private siteLanes(site: string, limits: SiteLimits): SiteLanes {
    let l = this.lanes.get(site);
    if (!l) {
      l = { lanes: [], waiters: [], polling: null, acquiring: null, inFlight: 0, pending: 0, limits };
      this.lanes.set(site, l);
    }
    l.limits = limits;
    return l;
  }

  private connectionLimit(limits: SiteLimits): number {
    return Math.min(limits.maxConnections, this.o.perProcessMaxConnections);
  }

  /** An idle lane of this process, or a new lease, or the first lane released within `waitMs`; null when none came. */
  private async acquireLane(site: string, s: SiteLanes, limits: SiteLimits, waitMs: number): Promise<LaneSlot | null> {
    const idle = s.lanes.find((l) => !l.busy && l.slot < limits.maxConnections);
    if (idle) return this.take(idle);
    if (s.waiters.length === 0) {
      const fresh = await this.newLease(site, s, limits);
      if (fresh) return fresh;
    }
    if (waitMs <= 0) return null;
    return new Promise<LaneSlot | null>((resolve) => {
      const waiter = {
        resolve,
        timer: setTimeout(() => {
          const i = s.waiters.indexOf(waiter);
          if (i >= 0) s.waiters.splice(i, 1);
          resolve(null);
        }, waitMs),
      };
      s.waiters.push(waiter);
      this.pollLeases(site, s);
    });
  }

  private take(l: LaneSlot): LaneSlot {
    l.busy = true;
    if (l.idleTimer) clearTimeout(l.idleTimer);
    l.idleTimer = null;
    return l;
  }

  /** A new connection lease, when this process is under its share and the site under its limit. */
  private async newLease(site: string, s: SiteLanes, limits: SiteLimits): Promise<LaneSlot | null> {
    if (s.lanes.length >= this.connectionLimit(limits) || this.closed) return null;
    if (s.acquiring) {
      await s.acquiring;
      return null;
    }
    s.acquiring = (async () => {
      const slot = await this.store.acquireLease(site, this.holder, limits.maxConnections, this.o.leaseTtlMs);
      if (slot === null) return null;
      const l: LaneSlot = { lane: this.o.newLane(), slot, busy: true, idleTimer: null, held: null };
      s.lanes.push(l);
      return l;
    })();
    try {
      return await s.acquiring;
    } finally {
      s.acquiring = null;
    }
  }

  /** While messages wait for a connection and this process could open one more, asks for a lease every half second. */
  private pollLeases(site: string, s: SiteLanes): void {
    if (s.polling || this.closed) return;
    s.polling = setInterval(() => {
      if (s.waiters.length === 0 || this.closed) {
        clearInterval(s.polling!);
        s.polling = null;
        return;
      }
      void this.newLease(site, s, s.limits)
        .then((l) => {
          if (!l) return;
          const w = s.waiters.shift();
          if (!w) return this.releaseLane(site, s, l);
          clearTimeout(w.timer);
          w.resolve(l);
        })
        .catch(() => undefined);
    }, 500);
    s.polling.unref();
  }

  /** Back to the site: to the next waiter, idle (closed after idleCloseMs), or closed now when it is past its limits. */
  private releaseLane(site: string, s: SiteLanes, l: LaneSlot): void {
    const maxMessages = Math.min(s.limits.messagesPerConnection, this.o.perProcessMaxMessages);
    const retire = this.closed || l.slot >= s.limits.maxConnections || s.lanes.length > this.connectionLimit(s.limits);
    if (retire) return void this.retire(site, s, l);
    const rotate = l.lane.messagesOnConnection >= maxMessages;
    const handOver = () => {
      const w = s.waiters.shift();
      if (w) {
        clearTimeout(w.timer);
        w.resolve(l);
        return;
      }
      l.busy = false;
      l.idleTimer = setTimeout(() => {
        if (l.busy) return;
        l.busy = true;
        void this.retire(site, s, l);
      }, this.o.idleCloseMs);
      l.idleTimer.unref();
    };
    // A connection that has carried its share of messages is closed before the lane carries another.
    if (rotate) void l.lane.close().then(handOver, handOver);
    else handOver();
  }

  private async retire(site: string, s: SiteLanes, l: LaneSlot): Promise<void> {
    if (l.idleTimer) clearTimeout(l.idleTimer);
    l.idleTimer = null;
    const i = s.lanes.indexOf(l);
    if (i >= 0) s.lanes.splice(i, 1);
    await l.lane.close().catch(() => undefined);
    await this.store.releaseLease(site, l.slot, this.holder).catch(() => undefined);
    // Someone may be waiting for a connection this process can now open.
    if (s.waiters.length > 0 && !this.closed) this.pollLeases(site, s);
  }

  /** Closes the lanes of permits held past ORPHANED_PERMIT_MS (see there). */
  private reclaimOrphanedPermits(now = Date.now()): void {
    const limit = this.o.orphanedPermitMs ?? ORPHANED_PERMIT_MS;
    for (const s of this.lanes.values()) {
      for (const l of [...s.lanes]) if (l.held && now - l.held.since > limit) l.held.reclaim();
    }
  }

  private count(site: string, code: number): void {
    const minuteMs = Math.floor(Date.now() / 60_000) * 60_000;
    const key = `${site}\u0000${minuteMs}\u0000${code}`;
    const c = this.counts.get(key);
    if (c) c.n++;
    else this.counts.set(key, { site, minuteMs, code, n: 1 });
  }

  /** Sends the reply counts gathered since the last report and the load per site. */
  async report(): Promise<void> {
    const counts = [...this.counts.values()];
    this.counts.clear();
    const load = [...this.lanes.entries()].map(([site, s]) => ({ site, inFlight: s.inFlight, waiting: s.pending }));
    try {
      await this.store.report(this.holder, counts, load);
    } catch (e) {
      // Put them back for the next report.
      for (const c of counts) {
        const key = `${c.site}\u0000${c.minuteMs}\u0000${c.code}`;
        const cur = this.counts.get(key);
        if (cur) cur.n += c.n;
        else this.counts.set(key, c);
      }
      throw e;
    }
    // Sites with nothing open and nothing going on are forgotten.
    for (const [site, s] of this.lanes) if (s.lanes.length === 0 && s.waiters.length === 0 && s.inFlight === 0 && s.pending === 0 && !s.acquiring) this.lanes.delete(site);
  }

  /** Closes every connection, frees every lease and sends the last report. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const closing: Promise<unknown>[] = [];
    for (const s of this.lanes.values()) {
      if (s.polling) clearInterval(s.polling);
      for (const w of s.waiters) {
        clearTimeout(w.timer);
        w.resolve(null);
      }
      s.waiters = [];
      for (const l of s.lanes) {
        if (l.idleTimer) clearTimeout(l.idleTimer);
        closing.push(l.lane.close().catch(() => undefined));
      }
    }
    await Promise.all(closing);
    await this.report().catch(() => undefined);
    await this.store.releaseAll(this.holder).catch(() => undefined);
    this.lanes.clear();
  }
}
