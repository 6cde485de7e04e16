// Sandbox MX: a loopback SMTP receiver that answers like real mailbox providers (bounces, greylisting, throttling, drops) by recipient pattern, and records what it accepted.

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { selfSignedTls } from '../mail/smtp/self-signed-tls';
import { SMTPServer } from 'smtp-server';
import type { SMTPServerAddress, SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import {
  behaviourFor,
  OVERSIZE_REPLY,
  rcptVerdict,
  SPAM_REPLY,
  type BehaviourName,
  type DomainBehaviours,
  type RecipientBehaviour,
  type SmtpReply,
  asyncReportsFor,
} from './recipient-behaviour';
import { buildArf, buildDsn, ReportMailer, returnedHeaders, type ReportDestination, type SentReport } from './async-reports';

export type { BehaviourName, DomainBehaviours, RecipientBehaviour, SmtpReply } from './recipient-behaviour';

export interface SandboxMxOptions {
  /** TCP port; 0 picks an ephemeral one (read it from `start()`). Default 0. */
  port?: number;
  /** Interface to bind. Default `127.0.0.1`: the sandbox must never be reachable from outside. */
  host?: string;
  /** Name in the greeting and EHLO reply. Default `sandbox-mx.test`. */
  serverName?: string;
  /** How long after the first sighting a greylisted address is accepted. Default 0 (next attempt). */
  greylistDelayMs?: number;
  /** How long `slow*` recipients hold the reply to DATA. Default 2000. */
  slowMs?: number;
  /** Advertised SIZE; bigger messages get `552 5.3.4`. Default 25 MiB. */
  maxMessageBytes?: number;
  /** Keep each accepted message's raw bytes. Turn off for long benchmark runs to keep only metadata. Default true. */
  keepRaw?: boolean;
  /**
   * Cap on the accepted/rejection records kept (oldest dropped first). Counters (`countsByRecipient`,
   * `attemptsFor`, `acceptedCount`) stay exact regardless. Default unlimited.
   */
  maxRecords?: number;
  /** Per-domain behaviour that overrides the local-part table, e.g. `{ 'slowmail.test': 'slow' }`. */
  domainBehaviours?: DomainBehaviours;
  /**
   * Act as a smart host (relay mode's SMTP_RELAY_HOST): accept every recipient at RCPT and DATA, then report what the
   * "final server" did by DSN (asyncReportsFor). Needs `reports` to mail them. Default false.
   */
  relay?: boolean;
  /** Where late bounces, relay reports and complaints are mailed (the inbound listener). Without it none are sent. */
  reports?: ReportDestination;
  /** Called synchronously for every stored record (one per accepted recipient). Same as the `accepted` event. */
  onAccepted?: (message: AcceptedMessage) => void;
  /**
   * A receiver that rate-limits its senders: a recipient offered while `perSecond` messages were already accepted in
   * the last second gets `421 4.7.0 Too many messages, slow down` (rejection behaviour `rate_limit`) and the connection
   * is closed. Default: none.
   */
  rateLimit?: { perSecond: number };
}

/** Open SMTP sessions now, and at most since start or `resetConnectionStats()`. */
export interface ConnectionStats {
  open: number;
  maxOpen: number;
}

/** One accepted recipient of one message: a message with three accepted recipients yields three records sharing `queueId` and `raw`. */
export interface AcceptedMessage {
  /** Unique per record. */
  id: string;
  /** Shared by all recipients of one transaction; also sent in the `250 ... queued as` reply. */
  queueId: string;
  receivedAt: Date;
  /** Envelope sender; empty string for the null sender `<>`. */
  mailFrom: string;
  rcptTo: string;
  /** Message as received (after dot-unstuffing); null when `keepRaw` is false. */
  raw: Buffer | null;
  sizeBytes: number;
  /** `Message-ID` header value as written, angle brackets included; null if absent. */
  messageId: string | null;
  /** Whether the transaction ran over TLS (STARTTLS). */
  tls: boolean;
  /** The user the client authenticated as (relay mode), or null. */
  authUser: string | null;
  /** The name the client gave in EHLO/HELO (tells apart senders sharing one address, e.g. two worker processes). */
  clientName: string | null;
  /** SMTP DSN parameters the sender gave (RFC 3461): ENVID, RET, and this recipient's NOTIFY and ORCPT. */
  dsn: { envid: string | null; ret: string | null; notify: string[] | null; orcpt: string | null };
}

export interface Rejection {
  address: string;
  /** `outage`: cut by `dropInData()` (an outage switched on by the caller, not the recipient's behaviour). */
  behaviour: BehaviourName | 'oversize' | 'outage' | 'rate_limit';
  stage: 'rcpt' | 'data';
  /** SMTP reply code; null when the connection was dropped without a reply. */
  code: number | null;
  enhancedCode: string | null;
  text: string;
  at: Date;
}

export type SandboxMxEvents = {
  accepted: [message: AcceptedMessage];
  rejected: [rejection: Rejection];
  /** A session opened or closed: the number open afterwards. */
  connections: [open: number, at: number];
};

const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_MAX_MESSAGE_BYTES = 25 * 1024 * 1024;
const DEFAULT_SLOW_MS = 2000;
/** How long `stop()` lets in-flight transactions finish before it cuts their sockets. */
const STOP_GRACE_MS = 1000;
/** Without `keepRaw` only the header block is buffered, up to this much, to find the Message-ID. */
const HEADER_SCAN_LIMIT = 64 * 1024;

/** What the outage controls (`dropInData`, `refuseConnections`) are doing and have done. */
export interface OutageStatus {
  droppingInData: boolean;
  refusingConnections: boolean;
  /** Transactions cut in the middle of their message data since start or the last `reset()`. */
  droppedInData: number;
  /** Open connections cut when a refusal began. */
  connectionsCut: number;
  /** Refusal periods begun. */
  refusals: number;
}

interface AddressState {
  attempts: number;
  firstSeenAt: number;
}

/** The DSN parameters of the transaction (ENVID, RET) and of one of its recipients (NOTIFY, ORCPT). */
function dsnOf(session: SMTPServerSession, rcptTo: string): AcceptedMessage['dsn'] {
  const envelope = session.envelope as SMTPServerSession['envelope'] & { dsn?: { envid?: string | null; ret?: string | null } };
  const rcpt = session.envelope.rcptTo.find((r) => r.address === rcptTo) as (SMTPServerAddress & { dsn?: { notify?: string[] | string | null; orcpt?: string | null } }) | undefined;
  const notify = rcpt?.dsn?.notify;
  return {
    envid: envelope.dsn?.envid ?? null,
    ret: envelope.dsn?.ret ?? null,
    notify: notify ? (Array.isArray(notify) ? notify : String(notify).split(',')).map((n) => n.trim().toUpperCase()) : null,
    orcpt: rcpt?.dsn?.orcpt ?? null,
  };
}

function smtpError(reply: SmtpReply): Error & { responseCode: number } {
  // Enhanced status codes are hidden server-wide so smtp-server does not prefix its own generic ones; ours go in the text.
  return Object.assign(new Error(`${reply.enhancedCode} ${reply.text}`), { responseCode: reply.code });
}

function headerBlockEnd(buf: Buffer): number {
  const crlf = buf.indexOf('\r\n\r\n');
  if (crlf >= 0) return crlf;
  const lf = buf.indexOf('\n\n');
  return lf >= 0 ? lf : -1;
}

/** Cheap header scan, no MIME parsing: unfolds the first Message-ID header of the header block. */
export function scanMessageId(message: Buffer): string | null {
  const end = headerBlockEnd(message);
  const header = message.toString('latin1', 0, end >= 0 ? end : Math.min(message.length, HEADER_SCAN_LIMIT));
  const match = /^message-id[ \t]*:[ \t]*([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)/im.exec(header);
  const value = match?.[1]?.replace(/\r?\n[ \t]+/g, ' ').trim();
  return value ? value : null;
}

export class SandboxMx extends EventEmitter<SandboxMxEvents> {
  private readonly port: number;
  private readonly host: string;
  private readonly serverName: string;
  private readonly greylistDelayMs: number;
  private readonly slowMs: number;
  private readonly maxMessageBytes: number;
  private readonly keepRaw: boolean;
  private readonly maxRecords: number;
  private readonly domainBehaviours: DomainBehaviours | undefined;

  private server: SMTPServer | undefined;
  private starting = false;
  private boundPort: number | undefined;
  /** DATA replies being held back for `slow` recipients, so `stop()` can release them. */
  private readonly slowReplies = new Set<{ timer: NodeJS.Timeout; release: () => void }>();

  private readonly idPrefix = randomBytes(4).toString('hex');
  private transactionCounter = 0;
  private acceptedRecords: AcceptedMessage[] = [];
  private rejectionRecords: Rejection[] = [];
  private readonly addressStates = new Map<string, AddressState>();
  private readonly acceptedCounts = new Map<string, number>();
  private readonly relay: boolean;
  private readonly reportMailer: ReportMailer | undefined;
  private acceptedTotal = 0;

  /** While set, transactions are cut in the middle of DATA (`fraction` of them) until `untilMs`. */
  private dataDrop: { untilMs: number; fraction: number } | null = null;
  /** While set, the listener is closed; `relisten` opens it again at the end of the period. */
  private refusal: { timer: NodeJS.Timeout; relisten: () => Promise<void>; finish: () => void } | null = null;
  private readonly outageCounts = { droppedInData: 0, connectionsCut: 0, refusals: 0 };

  private readonly rateLimit: { perSecond: number } | undefined;
  /** Acceptance times of the last second (rate limit). */
  private recentAccepts: number[] = [];
  private readonly connectionCounts: ConnectionStats = { open: 0, maxOpen: 0 };

  constructor(options: SandboxMxOptions = {}) {
    super();
    this.port = options.port ?? 0;
    this.host = options.host ?? DEFAULT_HOST;
    this.serverName = options.serverName ?? 'sandbox-mx.test';
    this.greylistDelayMs = options.greylistDelayMs ?? 0;
    this.slowMs = options.slowMs ?? DEFAULT_SLOW_MS;
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.keepRaw = options.keepRaw ?? true;
    this.maxRecords = options.maxRecords ?? Number.POSITIVE_INFINITY;
    if (!(this.maxRecords >= 1)) throw new RangeError('SandboxMx: maxRecords must be at least 1');
    this.domainBehaviours = options.domainBehaviours
      ? Object.fromEntries(Object.entries(options.domainBehaviours).map(([domain, b]) => [domain.toLowerCase(), b]))
      : undefined;
    if (options.onAccepted) this.on('accepted', options.onAccepted);
    this.relay = options.relay ?? false;
    this.reportMailer = options.reports ? new ReportMailer(options.reports) : undefined;
    if (options.rateLimit && !(options.rateLimit.perSecond > 0)) throw new RangeError('SandboxMx: rateLimit.perSecond must be positive');
    this.rateLimit = options.rateLimit;
  }

  async start(): Promise<{ port: number }> {
    if (this.server || this.starting) throw new Error('SandboxMx already started');
    this.starting = true;
    try {
      return await this.listen();
    } finally {
      this.starting = false;
    }
  }

  private async listen(): Promise<{ port: number }> {
    const { key, cert } = await selfSignedTls();
    const server = new SMTPServer({
      name: this.serverName,
      banner: 'Sandbox MX ready',
      key,
      cert,
      size: this.maxMessageBytes,
      authOptional: true,
      allowInsecureAuth: true,
      // Whatever credentials a misconfigured client sends are fine: this is not a relay to protect.
      onAuth: (auth, _session, callback) => callback(null, { user: auth.username ?? 'sandbox' }),
      disableReverseLookup: true, // a DNS lookup per connection would dominate benchmark runs
      hideENHANCEDSTATUSCODES: true,
      // Offer DSN (RFC 3461) so senders pass ENVID/NOTIFY/ORCPT, which the reports then carry.
      hideDSN: false,
      logger: false,
      closeTimeout: STOP_GRACE_MS,
      onConnect: (_session, callback) => {
        this.connectionCounts.open += 1;
        this.connectionCounts.maxOpen = Math.max(this.connectionCounts.maxOpen, this.connectionCounts.open);
        this.emit('connections', this.connectionCounts.open, Date.now());
        callback();
      },
      onClose: () => {
        this.connectionCounts.open -= 1;
        this.emit('connections', this.connectionCounts.open, Date.now());
      },
      onRcptTo: (address, session, callback) => this.handleRcpt(address, session, callback),
      onData: (stream, session, callback) => this.handleData(stream, session, callback),
    });
    // Client-side resets (dropped or killed senders) surface here; they are expected traffic for a sandbox, not faults.
    server.on('error', () => undefined);

    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(this.port, this.host, () => {
        server.server.off('error', reject);
        resolve();
      });
    });
    const address = server.server.address();
    if (address === null || typeof address === 'string') throw new Error('SandboxMx: unexpected listen address');
    this.server = server;
    this.boundPort = address.port;
    return { port: address.port };
  }

  /** The bound port; throws before `start()`. */
  get listeningPort(): number {
    if (this.boundPort === undefined) throw new Error('SandboxMx not started');
    return this.boundPort;
  }

  /**
   * Stops listening and closes every connection. Idle (pooled) connections get `421` at once; connections in
   * the middle of a transaction get up to STOP_GRACE_MS to finish before their sockets are destroyed.
   */
  async stop(): Promise<void> {
    await this.reportMailer?.stop();
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    this.boundPort = undefined;
    this.dataDrop = null;
    if (this.refusal) {
      // Not listening: nothing to reopen. server.close() below still ends the connections opened since.
      clearTimeout(this.refusal.timer);
      this.refusal.finish();
      this.refusal = null;
    }
    for (const held of this.slowReplies) {
      clearTimeout(held.timer);
      held.release();
    }
    this.slowReplies.clear();

    const connections = [...server.connections];
    await new Promise<void>((resolve) => {
      // Resolves when every connection has gone, or after closeTimeout once smtp-server has sent 421 to the rest.
      server.close(resolve);
      for (const connection of connections) {
        const idle = !connection.session.envelope?.mailFrom && !connection._dataStream && !connection._upgrading;
        if (idle) connection.send(421, '4.3.2 Sandbox MX shutting down'); // 421 makes smtp-server close the socket
      }
    });
    for (const connection of connections) {
      // A socket under a TLS handshake must not be torn down from below (it crashes Node); that handshake ends on its own.
      if (!connection._upgrading && !connection._socket.destroyed) connection._socket.destroy();
    }
  }

  /** Every stored record, oldest first (at most `maxRecords`). */
  accepted(): AcceptedMessage[] {
    return this.acceptedRecords.slice(-this.maxRecords);
  }

  acceptedFor(address: string): AcceptedMessage[] {
    const key = address.toLowerCase();
    return this.accepted().filter((m) => m.rcptTo.toLowerCase() === key);
  }

  /** Exact number of accepted (message, recipient) pairs since start or the last `reset()`. */
  acceptedCount(): number {
    return this.acceptedTotal;
  }

  /** Accepted messages per recipient, keyed by lower-cased address. Exact, independent of `maxRecords`. */
  countsByRecipient(): Map<string, number> {
    return new Map(this.acceptedCounts);
  }

  /** RCPT TO attempts for the address across all connections, rejected ones included. */
  attemptsFor(address: string): number {
    return this.addressStates.get(address.toLowerCase())?.attempts ?? 0;
  }

  rejections(): Rejection[] {
    return this.rejectionRecords.slice(-this.maxRecords);
  }

  /** Forgets all records and per-address state (attempt counters, greylist sightings, outage counters). Connections are untouched. */
  reset(): void {
    this.acceptedRecords = [];
    this.rejectionRecords = [];
    this.addressStates.clear();
    this.acceptedCounts.clear();
    this.acceptedTotal = 0;
    this.outageCounts.droppedInData = 0;
    this.outageCounts.connectionsCut = 0;
    this.outageCounts.refusals = 0;
  }

  /**
   * An outage of the receiving host's network or queue: for `forMs` (Infinity: until `stopDroppingInData()`), a
   * `fraction` of the transactions that reach DATA are cut in the middle of the message data, the socket closed with
   * no reply. The end of the data never arrived, so nothing is stored or counted as accepted (a real receiver discards
   * an unfinished message); each cut recipient is a rejection with behaviour `outage`, stage `data`, code null.
   */
  dropInData(forMs: number, fraction = 1): void {
    if (!(forMs > 0)) throw new RangeError('SandboxMx.dropInData: forMs must be positive');
    if (!(fraction > 0 && fraction <= 1)) throw new RangeError('SandboxMx.dropInData: fraction must be in (0, 1]');
    this.dataDrop = { untilMs: Date.now() + forMs, fraction };
  }

  stopDroppingInData(): void {
    this.dataDrop = null;
  }

  /**
   * The host goes down for `forMs`: the listener closes (new connections get ECONNREFUSED), open connections are cut
   * without a reply, and the same port is listened on again afterwards. Resolves once it listens again (or once
   * `stopRefusing()` or `stop()` ended the period).
   */
  async refuseConnections(forMs: number): Promise<void> {
    const smtp = this.server;
    const port = this.boundPort;
    if (!smtp || port === undefined) throw new Error('SandboxMx not started');
    if (this.refusal) throw new Error('SandboxMx is already refusing connections');
    if (!(forMs > 0)) throw new RangeError('SandboxMx.refuseConnections: forMs must be positive');
    const closed = new Promise<void>((resolve) => smtp.server.close(() => resolve()));
    this.outageCounts.refusals += 1;
    for (const connection of smtp.connections) {
      // A socket under a TLS handshake must not be torn down from below (it crashes Node); that handshake ends on its own.
      if (connection._upgrading || connection._socket.destroyed) continue;
      connection._socket.destroy();
      this.outageCounts.connectionsCut += 1;
    }
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const relisten = async () => {
      if (!this.refusal) return;
      clearTimeout(this.refusal.timer);
      this.refusal = null;
      // Connections cut above (or a handshake finishing) may hold the old handle open a moment; listening needs it gone.
      await Promise.race([closed, new Promise((r) => setTimeout(r, 2_000))]);
      if (this.server === smtp) {
        await new Promise<void>((resolve, reject) => {
          smtp.server.once('error', reject);
          smtp.server.listen(port, this.host, () => {
            smtp.server.off('error', reject);
            resolve();
          });
        });
      }
      finish();
    };
    this.refusal = { timer: setTimeout(() => void relisten().catch(() => finish()), forMs), relisten, finish };
    return done;
  }

  /** Ends a refusal period early; resolves once listening again. */
  async stopRefusing(): Promise<void> {
    await this.refusal?.relisten();
  }

  outageStatus(): OutageStatus {
    return {
      droppingInData: this.dataDropActive(),
      refusingConnections: this.refusal !== null,
      ...this.outageCounts,
    };
  }

  private dataDropActive(): boolean {
    if (this.dataDrop && Date.now() >= this.dataDrop.untilMs) this.dataDrop = null;
    return this.dataDrop !== null;
  }

  private handleRcpt(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const key = address.address.toLowerCase();
    const now = Date.now();
    let state = this.addressStates.get(key);
    if (!state) {
      state = { attempts: 0, firstSeenAt: now };
      this.addressStates.set(key, state);
    }
    state.attempts += 1;

    if (this.rateLimit && !this.relay) {
      while (this.recentAccepts.length > 0 && this.recentAccepts[0] <= now - 1_000) this.recentAccepts.shift();
      if (this.recentAccepts.length >= this.rateLimit.perSecond) {
        const reply: SmtpReply = { code: 421, enhancedCode: '4.7.0', text: 'Too many messages, slow down' };
        this.recordRejection(address.address, 'rate_limit', 'rcpt', reply);
        callback(smtpError(reply)); // smtp-server closes the connection itself after a 421
        return;
      }
    }
    const behaviour = behaviourFor(address.address, this.domainBehaviours);
    // A smart host cannot know at RCPT what the final server will say: it accepts and reports later.
    if (this.relay) {
      callback();
      return;
    }
    const verdict = rcptVerdict(address.address, behaviour, {
      attempt: state.attempts,
      firstSeenAt: state.firstSeenAt,
      now,
      greylistDelayMs: this.greylistDelayMs,
    });
    switch (verdict.action) {
      case 'accept':
        callback();
        return;
      case 'reply':
        this.recordRejection(address.address, behaviour.kind, 'rcpt', verdict.reply);
        callback(smtpError(verdict.reply)); // smtp-server closes the connection itself after a 421
        return;
      case 'drop':
        this.recordRejection(address.address, behaviour.kind, 'rcpt', null);
        this.dropConnection(session, callback);
        return;
    }
  }

  /** Destroys the socket without answering, leaving the RCPT callback unanswered on purpose: there is nobody left to answer. */
  private dropConnection(session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    if (this.destroySession(session)) return;
    // Unreachable in practice; fall back to the nearest thing a client can observe as a dropped session.
    callback(smtpError({ code: 421, enhancedCode: '4.4.2', text: 'Connection dropped' }));
  }

  private destroySession(session: SMTPServerSession): boolean {
    for (const connection of this.server?.connections ?? []) {
      if (connection.id === session.id) {
        connection._socket.destroy();
        return true;
      }
    }
    return false;
  }

  private handleData(
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    callback: (err?: Error | null, message?: string) => void,
  ): void {
    const chunks: Buffer[] = [];
    let buffered = 0;
    let head: Buffer = Buffer.alloc(0);
    let headComplete = false;
    // Decided once per transaction, at its first data bytes: cut it there, before the end of the data.
    let cut = false;
    let decided = false;
    // A cut socket may end the stream with an error; the transaction is over either way.
    stream.on('error', () => undefined);

    stream.on('data', (chunk: Buffer) => {
      if (!decided) {
        decided = true;
        if (this.dataDropActive() && Math.random() < this.dataDrop!.fraction) {
          cut = true;
          this.outageCounts.droppedInData += 1;
          for (const r of session.envelope.rcptTo) this.recordRejection(r.address, 'outage', 'data', null);
          this.destroySession(session);
        }
      }
      if (cut) return;
      if (stream.sizeExceeded) return; // it will be rejected; do not hold an oversized body in memory
      if (this.keepRaw) {
        chunks.push(chunk);
        buffered += chunk.length;
      } else if (!headComplete) {
        head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
        headComplete = headerBlockEnd(head) >= 0 || head.length >= HEADER_SCAN_LIMIT;
      }
    });
    stream.once('end', () => {
      // Cut in the middle: no reply, nothing stored (the end-of-data the parser may still have seen came too late).
      if (cut) return;
      const recipients = session.envelope.rcptTo.map((r) => r.address);
      if (stream.sizeExceeded) {
        for (const rcpt of recipients) this.recordRejection(rcpt, 'oversize', 'data', OVERSIZE_REPLY);
        callback(smtpError(OVERSIZE_REPLY));
        return;
      }
      const raw = this.keepRaw ? Buffer.concat(chunks, buffered) : null;
      const behaviours = recipients.map((r) => behaviourFor(r, this.domainBehaviours).kind);
      const finish = (): void => {
        if (behaviours.includes('spam') && !this.relay) {
          recipients.forEach((rcpt, i) => this.recordRejection(rcpt, behaviours[i] ?? 'spam', 'data', SPAM_REPLY));
          callback(smtpError(SPAM_REPLY));
          return;
        }
        const queueId = `${this.idPrefix}${(++this.transactionCounter).toString(36)}`;
        const messageId = scanMessageId(raw ?? head);
        const mailFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
        const receivedAt = new Date();
        recipients.forEach((rcptTo, i) =>
          this.recordAccepted({
            id: `${queueId}.${i + 1}`,
            queueId,
            receivedAt,
            mailFrom,
            rcptTo,
            raw,
            sizeBytes: stream.byteLength,
            messageId,
            tls: session.secure,
            authUser: typeof session.user === 'string' ? session.user : null,
            clientName: session.hostNameAppearsAs || null,
            dsn: dsnOf(session, rcptTo),
          }),
        );
        this.scheduleReports(mailFrom, recipients, session, raw ?? head);
        callback(null, `2.0.0 Ok: queued as ${queueId}`);
      };
      // Once stop() has begun there is no one left to release a held reply, so answer within the grace period instead.
      if (!behaviours.includes('slow') || !this.server) {
        finish();
        return;
      }
      const held = {
        timer: setTimeout(() => {
          this.slowReplies.delete(held);
          finish();
        }, this.slowMs),
        // On stop the client never gets its 250, so nothing may be recorded as accepted.
        release: () => callback(smtpError({ code: 421, enhancedCode: '4.3.2', text: 'Sandbox MX shutting down' })),
      };
      this.slowReplies.add(held);
    });
  }

  /** Mails the late bounces, relay reports and complaints the accepted recipients lead to (none without `reports`). */
  private scheduleReports(mailFrom: string, recipients: string[], session: SMTPServerSession, message: Buffer): void {
    const mailer = this.reportMailer;
    if (!mailer || mailFrom === '') return;
    const headers = returnedHeaders(message, mailFrom);
    for (const rcpt of recipients) {
      const dsn = dsnOf(session, rcpt);
      for (const report of asyncReportsFor(rcpt, behaviourFor(rcpt, this.domainBehaviours), this.relay, dsn.notify)) {
        if (report.kind === 'arf') {
          const raw = buildArf({ reportingDomain: this.serverName, to: mailer.complaintsTo, originalMailFrom: mailFrom, originalRcptTo: rcpt, originalHeaders: headers });
          mailer.schedule({ kind: 'arf', to: mailer.complaintsTo, recipient: rcpt, action: 'complaint', status: null }, raw);
          continue;
        }
        const raw = buildDsn({
          reportingMta: this.serverName,
          to: mailFrom,
          envelopeId: dsn.envid,
          recipients: [
            {
              finalRecipient: rcpt,
              originalRecipient: dsn.orcpt ? dsn.orcpt.replace(/^rfc822;\s*/i, '') : null,
              action: report.action,
              status: report.status,
              diagnostic: report.diagnostic,
              remoteMta: this.relay ? 'final-mx.sandbox.test' : this.serverName,
            },
          ],
          originalHeaders: headers,
        });
        mailer.schedule({ kind: 'dsn', to: mailFrom, recipient: rcpt, action: report.action, status: report.status }, raw);
      }
    }
  }

  /** Reports mailed so far (late bounces, relay reports, complaints), oldest first. */
  reportsSent(): SentReport[] {
    return [...(this.reportMailer?.sent ?? [])];
  }

  /** Resolves once every report due so far has been mailed. */
  async reportsIdle(): Promise<void> {
    await this.reportMailer?.idle();
  }

  /** Open SMTP sessions now and the most at once (see `connections` events for the timeline). */
  connectionStats(): ConnectionStats {
    return { ...this.connectionCounts };
  }

  /** Starts counting the most sessions at once from the number open now. */
  resetConnectionStats(): void {
    this.connectionCounts.maxOpen = this.connectionCounts.open;
  }

  private recordAccepted(message: AcceptedMessage): void {
    if (this.rateLimit) this.recentAccepts.push(message.receivedAt.getTime());
    const key = message.rcptTo.toLowerCase();
    this.acceptedCounts.set(key, (this.acceptedCounts.get(key) ?? 0) + 1);
    this.acceptedTotal += 1;
    this.acceptedRecords = this.appendBounded(this.acceptedRecords, message);
    this.emit('accepted', message);
  }

  private recordRejection(address: string, behaviour: Rejection['behaviour'], stage: Rejection['stage'], reply: SmtpReply | null): void {
    const rejection: Rejection = {
      address,
      behaviour,
      stage,
      code: reply?.code ?? null,
      enhancedCode: reply?.enhancedCode ?? null,
      text: reply?.text ?? (behaviour === 'outage' ? 'connection cut in the middle of the message data (outage)' : 'connection dropped without reply'),
      at: new Date(),
    };
    this.rejectionRecords = this.appendBounded(this.rejectionRecords, rejection);
    this.emit('rejected', rejection);
  }

  /** Trims in batches so a capped list costs amortised O(1) per append instead of a shift per message. */
  private appendBounded<T>(list: T[], item: T): T[] {
    list.push(item);
    if (list.length >= this.maxRecords + Math.max(1, Math.ceil(this.maxRecords / 4))) return list.slice(-this.maxRecords);
    return list;
  }
}
