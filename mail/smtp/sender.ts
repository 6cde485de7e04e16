/** Sends a signed message over SMTP with nodemailer: pooled connections per host, MX fallback, structured replies. */
import nodemailer, { type Transporter } from 'nodemailer';
import type SMTPPool from 'nodemailer/lib/smtp-pool';
import { parseSmtpReply, type SmtpReply } from '../../domain/smtp-reply';
import { MxResolutionError, type MxResolver, type MxTarget } from '../mx/resolver';

export interface SmtpSenderOptions {
  mode: 'direct' | 'relay';
  resolver: MxResolver;
  heloName: string;
  connectTimeoutMs: number;
  greetingTimeoutMs: number;
  socketTimeoutMs: number;
  maxConnectionsPerHost: number;
  maxMessagesPerConnection: number;
  relay?: { host: string; port: number; user?: string; password?: string; verifyTls: boolean };
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

export class SmtpSender {
  private readonly pools = new Map<string, Transporter<SMTPPool.SentMessageInfo>>();

  constructor(private readonly opts: SmtpSenderOptions) {}

  private transport(target: MxTarget, relay: boolean): Transporter<SMTPPool.SentMessageInfo> {
    const key = `${target.host}:${target.port}`;
    let t = this.pools.get(key);
    if (!t) {
      t = nodemailer.createTransport({
        pool: true,
        host: target.host,
        port: target.port,
        secure: relay && target.port === 465,
        name: this.opts.heloName,
        connectionTimeout: this.opts.connectTimeoutMs,
        greetingTimeout: this.opts.greetingTimeoutMs,
        socketTimeout: this.opts.socketTimeoutMs,
        maxConnections: this.opts.maxConnectionsPerHost,
        maxMessages: this.opts.maxMessagesPerConnection,
        // When a reused pooled connection fails before a byte of the message was sent (the server dropped it while
        // idle, or answered 421), nodemailer moves the message to a fresh connection once. That is safe (nothing was
        // sent) and a persistent refusal is still reported, from the fresh connection. More requeues would hide
        // throttling from the qualification; every other retry is the workflow's.
        maxRequeues: 1,
        // Opportunistic STARTTLS between MTAs: encrypt when offered, do not refuse self-signed or mismatched
        // certificates (RFC 3207 4.1; MTA-STS/DANE would be the place to require verification).
        requireTLS: relay,
        tls: { rejectUnauthorized: relay && (this.opts.relay?.verifyTls ?? true) },
        auth: relay && this.opts.relay?.user ? { user: this.opts.relay.user, pass: this.opts.relay.password ?? '' } : undefined,
      } as SMTPPool.Options);
      this.pools.set(key, t);
    }
    return t;
  }

  /** Delivers to the best MX (or the relay), falling back to the next host on connection-level failures. */
  async send(envelope: Envelope, raw: Buffer): Promise<SmtpReply> {
    let targets: MxTarget[];
    const relay = this.opts.mode === 'relay';
    if (relay) {
      if (!this.opts.relay) throw new Error('relay mode needs SMTP_RELAY_HOST');
      targets = [{ host: this.opts.relay.host, port: this.opts.relay.port, priority: 0 }];
    } else {
      try {
        targets = await this.opts.resolver.resolve(envelope.domain);
      } catch (e) {
        if (e instanceof MxResolutionError) return { code: 0, enhancedCode: e.enhancedCode, text: e.message, mxHost: null, command: 'DNS' };
        throw e;
      }
    }
    let last: SmtpReply | null = null;
    for (const target of targets) {
      last = await this.sendTo(target, relay, envelope, raw);
      if (!isConnectionLevel(last)) return last;
    }
    return last!;
  }

  private async sendTo(target: MxTarget, relay: boolean, envelope: Envelope, raw: Buffer): Promise<SmtpReply> {
    try {
      const info = await this.transport(target, relay).sendMail({ envelope: { from: envelope.from, to: [envelope.to] }, raw, dsn: this.dsnFor(envelope, relay) });
      return parseSmtpReply(info.response ?? '250', target.host, 'DATA');
    } catch (e) {
      const err = e as Error & { responseCode?: number; response?: string; code?: string; command?: string };
      if (err.responseCode && err.response) return parseSmtpReply(err.response, target.host, err.command ?? null);
      // No reply from the server: connection refused, timeout, TLS failure, dropped connection.
      const timeout = err.code === 'ETIMEDOUT' || /timeout/i.test(err.message);
      return {
        code: 0,
        enhancedCode: timeout ? '4.4.2' : '4.4.1',
        text: `${err.code ?? 'ERROR'}: ${err.message}`.slice(0, 500),
        mxHost: target.host,
        command: err.command ?? 'CONN',
      };
    }
  }

  /**
   * DSN parameters (used only when the server offers DSN). Relay mode asks for success reports too: the smart host's
   * 250 is not delivery, and a report from the last DSN-capable hop is what makes a recipient sent. Direct mode asks
   * for failures and delays only: the receiving MX's 250 is delivery. Headers only are returned, never the body.
   */
  private dsnFor(envelope: Envelope, relay: boolean) {
    if (!envelope.envelopeId) return undefined;
    return { id: envelope.envelopeId, return: 'headers', notify: relay ? ['success', 'failure', 'delay'] : ['failure', 'delay'], recipient: envelope.to };
  }

  close(): void {
    for (const t of this.pools.values()) t.close();
    this.pools.clear();
  }
}
