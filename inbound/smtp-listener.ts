/**
 * The inbound SMTP listener of BOUNCE_DOMAIN (its MX points here): accepts mail only for valid VERP addresses (right
 * HMAC, known delivery and recipient) and for the configured feedback addresses (ARF reports), so it is never an
 * open relay; everything else is refused at RCPT. Accepted messages go through the InboundProcessor.
 */
import { readFileSync } from 'node:fs';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { selfSignedTls } from '../mail/smtp/self-signed-tls';
import type { InboundStore } from '../db/inbound-store';
import type { InboundProcessor } from './process-inbound';

export interface InboundListenerOptions {
  host: string;
  port: number;
  serverName: string;
  bounceDomain: string;
  /** Local parts at the bounce domain that take feedback-loop reports ("fbl", "abuse"). */
  feedbackLocalParts: readonly string[];
  maxMessageBytes: number;
  maxClients: number;
  tls?: { keyPath: string; certPath: string };
  processor: InboundProcessor;
  inbound: InboundStore;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

function smtpError(code: number, text: string): Error & { responseCode: number } {
  return Object.assign(new Error(text), { responseCode: code });
}

/** Reads the DATA stream, stopping at the size limit (smtp-server marks the stream and keeps draining it). */
function readMessage(stream: SMTPServerDataStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', reject);
    stream.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

export class InboundSmtpListener {
  private server: SMTPServer | undefined;
  /** Messages being processed: stop() waits for them, so a message answered 250 is always stored. */
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly opts: InboundListenerOptions) {}

  /** Why RCPT TO is refused, or null when this address takes mail. */
  private async refusal(address: string): Promise<{ code: number; text: string } | null> {
    const at = address.lastIndexOf('@');
    const local = address.slice(0, at).toLowerCase();
    const domain = address.slice(at + 1).toLowerCase();
    if (at <= 0 || domain !== this.opts.bounceDomain.toLowerCase()) return { code: 550, text: '5.7.1 Relaying denied: this server only takes mail for its bounce domain' };
    if (this.opts.feedbackLocalParts.includes(local)) return null;
    const id = this.opts.processor.verp(address);
    if (!id) return { code: 550, text: '5.1.1 No such address' };
    if (!(await this.opts.inbound.recipientExists(id.deliveryId, id.recipientId))) return { code: 550, text: '5.1.1 No such address' };
    return null;
  }

  async start(): Promise<{ port: number }> {
    const tls = this.opts.tls
      ? { key: readFileSync(this.opts.tls.keyPath, 'utf8'), cert: readFileSync(this.opts.tls.certPath, 'utf8') }
      : await selfSignedTls();
    const server = new SMTPServer({
      name: this.opts.serverName,
      banner: 'bounce and feedback receiver',
      key: tls.key,
      cert: tls.cert,
      size: this.opts.maxMessageBytes,
      maxClients: this.opts.maxClients,
      // Bounces need no authentication; nobody may authenticate to relay through it either.
      authOptional: true,
      disabledCommands: ['AUTH'],
      disableReverseLookup: true,
      // Timeouts: a slow sender holds one of maxClients slots at most this long.
      socketTimeout: 60_000,
      closeTimeout: 30_000,
      logger: false,
      onRcptTo: (address, session, callback) => {
        if (session.envelope.rcptTo.length >= 10) return callback(smtpError(452, '4.5.3 Too many recipients'));
        this.refusal(address.address).then(
          (refused) => callback(refused ? smtpError(refused.code, refused.text) : undefined),
          (e: Error) => {
            this.opts.log?.('inbound RCPT check failed', { error: e.message });
            callback(smtpError(451, '4.3.0 Temporary failure, try again later'));
          },
        );
      },
      onData: (stream, session: SMTPServerSession, callback) => {
        const work = readMessage(stream)
          .then(async (raw) => {
            if (stream.sizeExceeded) return callback(smtpError(552, '5.3.4 Message too big'));
            const outcome = await this.opts.processor.process(raw, {
              channel: 'smtp',
              envelopeFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : null,
              envelopeTo: session.envelope.rcptTo.map((r) => r.address),
              remoteAddress: session.remoteAddress,
            });
            this.opts.log?.('inbound message', { id: outcome.id, kind: outcome.kind, attribution: outcome.attribution, effect: outcome.feedback?.effect ?? null, duplicate: outcome.duplicate });
            callback(null, `2.0.0 Ok: stored as ${outcome.id}`);
          })
          .catch((e: Error) => {
            // Nothing was lost: the sender keeps the message and retries; processing the same bytes again is idempotent.
            this.opts.log?.('inbound processing failed', { error: e.message });
            callback(smtpError(451, '4.3.0 Temporary failure, try again later'));
          });
        this.inFlight.add(work);
        void work.finally(() => this.inFlight.delete(work));
      },
    });
    server.on('error', (e) => this.opts.log?.('inbound listener error', { error: e.message }));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.server.address();
    return { port: typeof address === 'object' && address ? address.port : this.opts.port };
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.allSettled([...this.inFlight]);
  }
}
