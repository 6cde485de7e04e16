/**
 * What the sandbox MX mails back after accepting a message, as real receivers and relays do: RFC 3464 delivery status
 * notifications (a late bounce after a 250, or a relay's success/failure report) to the envelope sender (the VERP
 * return path), and RFC 5965 (ARF) complaint reports to a feedback address.
 */
import { randomBytes } from 'node:crypto';
import nodemailer from 'nodemailer';

export type ReportKind = 'dsn' | 'arf';

export interface DsnRecipient {
  finalRecipient: string;
  originalRecipient: string | null;
  action: 'failed' | 'delayed' | 'delivered' | 'relayed';
  status: string;
  diagnostic: string | null;
  remoteMta: string | null;
}

export interface SentReport {
  kind: ReportKind;
  /** Where it was mailed: the VERP return path (DSN) or the feedback address (ARF). */
  to: string;
  /** The recipient it is about. */
  recipient: string;
  action: DsnRecipient['action'] | 'complaint';
  status: string | null;
  at: Date;
  /** Set when it could not be delivered to the feedback host after its retries. */
  error?: string;
}

export interface ReportDestination {
  /** The inbound listener (the MX of the bounce domain). */
  host: string;
  port: number;
  /** Address that takes complaint reports (e.g. fbl@ the bounce domain). */
  complaintsTo: string;
  /** How long after the 250 the report is mailed. Default 300 ms. */
  delayMs?: number;
}

const CRLF = '\r\n';

function boundary(): string {
  return `=_sandbox_${randomBytes(9).toString('hex')}`;
}

function rfc5322Date(d: Date): string {
  return d.toUTCString().replace('GMT', '+0000');
}

/** The last part of a report: the original message's headers, and the closing boundary. */
function returnedHeadersPart(boundary: string, headers: string): string[] {
  return [`--${boundary}`, 'Content-Type: text/rfc822-headers', '', headers, `--${boundary}--`, ''];
}

/** The header block and the first body part's header of a multipart/report: what both report kinds share. */
function reportHead(o: { from: string; to: string; subject: string; date: Date; domain: string; reportType: string; boundary: string; autoSubmitted: boolean }): string[] {
  return [
    `From: ${o.from}`,
    `To: <${o.to}>`,
    `Subject: ${o.subject}`,
    `Date: ${rfc5322Date(o.date)}`,
    `Message-ID: <${randomBytes(8).toString('hex')}@${o.domain}>`,
    ...(o.autoSubmitted ? ['Auto-Submitted: auto-replied'] : []),
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=${o.reportType}; boundary="${o.boundary}"`,
    '',
    `--${o.boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
  ];
}

/** The header block of a message (up to the blank line), CRLF line ends, with the Return-Path the final MTA would add. */
export function returnedHeaders(raw: Buffer, returnPath: string): string {
  const text = raw.toString('utf8');
  const end = text.search(/\r?\n\r?\n/);
  const head = (end >= 0 ? text.slice(0, end) : text).replace(/\r?\n/g, CRLF);
  return `Return-Path: <${returnPath}>${CRLF}${head}${CRLF}`;
}

/** An RFC 3464 report (multipart/report; report-type=delivery-status) with the original headers returned. */
export function buildDsn(o: {
  reportingMta: string;
  to: string;
  envelopeId: string | null;
  recipients: DsnRecipient[];
  originalHeaders: string;
  date?: Date;
}): Buffer {
  const b = boundary();
  const date = o.date ?? new Date();
  const failed = o.recipients.some((r) => r.action === 'failed');
  const subject = failed ? 'Undelivered Mail Returned to Sender' : o.recipients.some((r) => r.action === 'delayed') ? 'Delayed Mail (still being retried)' : 'Successful Mail Delivery Report';
  const perMessage = [`Reporting-MTA: dns; ${o.reportingMta}`, ...(o.envelopeId ? [`Original-Envelope-Id: ${o.envelopeId}`] : []), `Arrival-Date: ${rfc5322Date(date)}`];
  const perRecipient = o.recipients.map((r) =>
    [
      ...(r.originalRecipient ? [`Original-Recipient: rfc822; ${r.originalRecipient}`] : []),
      `Final-Recipient: rfc822; ${r.finalRecipient}`,
      `Action: ${r.action}`,
      `Status: ${r.status}`,
      ...(r.remoteMta ? [`Remote-MTA: dns; ${r.remoteMta}`] : []),
      ...(r.diagnostic ? [`Diagnostic-Code: smtp; ${r.diagnostic}`] : []),
    ].join(CRLF),
  );
  const human = failed
    ? `This is the mail system at host ${o.reportingMta}.${CRLF}${CRLF}Your message could not be delivered to one or more recipients.${CRLF}`
    : `This is the mail system at host ${o.reportingMta}.${CRLF}${CRLF}Your message was delivered (or relayed) to the recipients below.${CRLF}`;
  const lines = [
    ...reportHead({ from: `Mail Delivery System <MAILER-DAEMON@${o.reportingMta}>`, to: o.to, subject, date, domain: o.reportingMta, reportType: 'delivery-status', boundary: b, autoSubmitted: true }),
    human,
    `--${b}`,
    'Content-Type: message/delivery-status',
    '',
    perMessage.join(CRLF),
    '',
    perRecipient.join(CRLF + CRLF),
    '',
    ...returnedHeadersPart(b, o.originalHeaders),
  ];
  return Buffer.from(lines.join(CRLF), 'utf8');
}

/** An RFC 5965 abuse report about one recipient, with the original headers. */
export function buildArf(o: { reportingDomain: string; to: string; originalMailFrom: string; originalRcptTo: string; originalHeaders: string; date?: Date }): Buffer {
  const b = boundary();
  const date = o.date ?? new Date();
  const lines = [
    ...reportHead({
      from: `Feedback Loop <fbl@${o.reportingDomain}>`,
      to: o.to,
      subject: 'Complaint about a message you sent',
      date,
      domain: o.reportingDomain,
      reportType: 'feedback-report',
      boundary: b,
      autoSubmitted: false,
    }),
    `This is an email abuse report for a message received from you by ${o.reportingDomain}.`,
    '',
    `--${b}`,
    'Content-Type: message/feedback-report',
    '',
    'Feedback-Type: abuse',
    'User-Agent: sandbox-mx/1.0',
    'Version: 1',
    `Original-Mail-From: <${o.originalMailFrom}>`,
    `Original-Rcpt-To: <${o.originalRcptTo}>`,
    `Arrival-Date: ${rfc5322Date(date)}`,
    `Reported-Domain: ${o.originalMailFrom.slice(o.originalMailFrom.lastIndexOf('@') + 1)}`,
    '',
    ...returnedHeadersPart(b, o.originalHeaders),
  ];
  return Buffer.from(lines.join(CRLF), 'utf8');
}

/** Mails reports to the feedback host after a delay, retrying a few times; stop() waits for the ones in flight. */
export class ReportMailer {
  private readonly pending = new Set<Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  readonly sent: SentReport[] = [];

  constructor(private readonly dest: ReportDestination) {}

  get complaintsTo(): string {
    return this.dest.complaintsTo;
  }

  schedule(report: Omit<SentReport, 'at' | 'error'>, raw: Buffer): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      const work = this.deliver(report, raw);
      this.pending.add(work);
      void work.finally(() => this.pending.delete(work));
    }, this.dest.delayMs ?? 300);
    this.timers.add(timer);
  }

  private async deliver(report: Omit<SentReport, 'at' | 'error'>, raw: Buffer): Promise<void> {
    const transport = nodemailer.createTransport({ host: this.dest.host, port: this.dest.port, secure: false, tls: { rejectUnauthorized: false } });
    let error: string | undefined;
    for (let attempt = 1; attempt <= 3 && !this.stopped; attempt++) {
      try {
        // The null reverse path: a report must never cause another report (RFC 3464 / RFC 5321 4.5.5).
        await transport.sendMail({ envelope: { from: '', to: [report.to] }, raw });
        error = undefined;
        break;
      } catch (e) {
        error = (e as Error).message;
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
    transport.close();
    this.sent.push({ ...report, at: new Date(), ...(error ? { error } : {}) });
  }

  /** Reports not yet due are dropped; reports being mailed finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.pending]);
  }

  /** Resolves once every scheduled report has been mailed (tests). */
  async idle(): Promise<void> {
    while (this.timers.size > 0 || this.pending.size > 0) await new Promise((r) => setTimeout(r, 50));
  }
}
