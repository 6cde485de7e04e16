/**
 * Sends a signed message over SMTP to its receiving site: the site (mail/mx/site-resolver.ts) and its budget
 * (mail/mx/site-budget.ts: connections and rate shared by every worker process) decide when and on which connection;
 * this tries the site's MX hosts in preference order on that connection, and returns structured replies.
 */
import type { SmtpReply } from '../../domain/smtp-reply';
import type { RetryClass } from '../../domain/failure';
import type { MxResolver } from '../mx/resolver';
import { SiteResolver, type ResolvedSite } from '../mx/site-resolver';
import type { MxRulesCache } from '../mx/mx-rules-cache';
import { SiteBudget, type SiteBudgetOptions, type SitePermit } from '../mx/site-budget';
import type { MxSiteStore } from '../../db/mx-site-store';
import { SmtpLane, type LaneEnvelope } from './smtp-lane';

export interface SmtpSenderOptions {
  mode: 'direct' | 'relay';
  resolver: Pick<MxResolver, 'resolve'>;
  heloName: string;
  connectTimeoutMs: number;
  greetingTimeoutMs: number;
  socketTimeoutMs: number;
  relay?: { host: string; port: number; user?: string; password?: string; verifyTls: boolean };
  /** The MX rules and the shared site state. */
  rules: MxRulesCache;
  siteStore: MxSiteStore;
  /** The budget's settings (the lane factory is the sender's). */
  budget: Omit<SiteBudgetOptions, 'newLane'>;
}

export interface Envelope {
  from: string;
  to: string;
  domain: string;
  /**
   * SMTP DSN (RFC 3461) envelope id, sent as ENVID to servers that offer DSN: a returned report carries it as
   * Original-Envelope-Id, which attributes the report when its return path was rewritten.
   */
  envelopeId?: string;
}

/** Replies that say nothing about the recipient: the next MX host may do better. */
function isConnectionLevel(reply: SmtpReply): boolean {
  return reply.code === 0 || reply.code === 421;
}

/** The reply of a DNS answer that decides the message's fate (no such domain, null MX, DNS failure). */
export function dnsReply(site: ResolvedSite): SmtpReply | null {
  const e = site.dnsError;
  return e ? { code: 0, enhancedCode: e.enhancedCode, text: e.message, mxHost: null, command: 'DNS' } : null;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

export class SmtpSender {
  readonly sites: SiteResolver;
  readonly budget: SiteBudget;

  constructor(private readonly opts: SmtpSenderOptions) {
    if (opts.mode === 'relay' && !opts.relay) throw new Error('relay mode needs SMTP_RELAY_HOST');
    this.sites = new SiteResolver(opts.rules, opts.resolver, { mode: opts.mode, relay: opts.relay });
    this.budget = new SiteBudget(opts.siteStore, opts.rules, {
      ...opts.budget,
      newLane: () =>
        new SmtpLane({
          relayMode: opts.mode === 'relay',
          heloName: opts.heloName,
          connectTimeoutMs: opts.connectTimeoutMs,
          greetingTimeoutMs: opts.greetingTimeoutMs,
          socketTimeoutMs: opts.socketTimeoutMs,
          relay: opts.relay ? { user: opts.relay.user, password: opts.relay.password, verifyTls: opts.relay.verifyTls } : undefined,
        }),
    });
  }

  /** Delivers on an admitted permit to the best MX (or the relay), falling back to the next host on connection-level failures. */
  async sendWith(permit: SitePermit, envelope: Envelope, raw: Buffer): Promise<SmtpReply> {
    const relay = this.opts.mode === 'relay';
    const laneEnvelope: LaneEnvelope = { from: envelope.from, to: envelope.to, dsn: this.dsnFor(envelope, relay) };
    let last: SmtpReply | null = null;
    for (const target of permit.site.targets) {
      last = await permit.lane.send(target, relay, laneEnvelope, raw);
      if (!isConnectionLevel(last)) return last;
    }
    return last ?? { code: 0, enhancedCode: '4.4.4', text: 'no MX host to deliver to', mxHost: null, command: 'DNS' };
  }

  /**
   * One message outside the recipient workflows (proofs): resolved, admitted (waiting in memory as long as the site
   * asks), sent, and its reply fed to the site's adaptive state.
   */
  async send(envelope: Envelope, raw: Buffer, o: { retryClassOf?: (reply: SmtpReply) => RetryClass | null; maxWaitMs?: number } = {}): Promise<SmtpReply> {
    const site = await this.sites.resolve(envelope.domain);
    const dns = dnsReply(site);
    if (dns) return dns;
    const deadline = Date.now() + (o.maxWaitMs ?? 120_000);
    let reservation = null;
    for (;;) {
      const adm = await this.budget.admit(site, { engineNowMs: Date.now(), maxWaitMs: Math.max(0, deadline - Date.now()), latestMs: deadline, reservation });
      if (adm.kind === 'expired' || (adm.kind === 'wait' && Date.now() + adm.retryInMs > deadline)) {
        return { code: 0, enhancedCode: '4.4.7', text: `not sent: ${adm.reason}`, mxHost: null, command: 'BUDGET' };
      }
      if (adm.kind === 'wait') {
        reservation = adm.reservation;
        await sleep(adm.retryInMs);
        continue;
      }
      let reply: SmtpReply;
      try {
        reply = await this.sendWith(adm.permit, envelope, raw);
      } finally {
        adm.permit.release();
      }
      const accepted = reply.code >= 200 && reply.code < 300;
      await this.budget.observe(site, reply, accepted ? null : (o.retryClassOf?.(reply) ?? null), Date.now());
      return reply;
    }
  }

  /**
   * DSN parameters (used only when the server offers DSN). Relay mode asks for success reports too: the smart host's
   * 250 is not delivery, and a report from the last DSN-capable hop is what makes a recipient sent. Direct mode asks
   * for failures and delays only: the receiving MX's 250 is delivery. Headers only are returned, never the body.
   */
  private dsnFor(envelope: Envelope, relay: boolean): LaneEnvelope['dsn'] {
    if (!envelope.envelopeId) return undefined;
    return { id: envelope.envelopeId, return: 'headers', notify: relay ? ['success', 'failure', 'delay'] : ['failure', 'delay'], recipient: envelope.to };
  }

  /** Closes every connection and frees this process's leases (awaitable; callers that do not wait lose only the lease cleanup, which expires). */
  close(): Promise<void> {
    return this.budget.close();
  }
}
