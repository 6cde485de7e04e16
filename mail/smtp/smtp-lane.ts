/**
 * One SMTP connection slot ("lane"): at most one open connection, used for one message at a time, reconnected when
 * the next message goes to another host, closed after `maxMessages` or when asked. A lane stands for one connection
 * lease of its site (mail/mx/site-budget.ts), so the number of connections a receiving site sees is exactly the number
 * of lanes open to it: nodemailer's SMTPConnection is used directly, without its pool, for that reason.
 */
import { Readable } from 'node:stream';
import type net from 'node:net';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { parseSmtpReply, type SmtpReply } from '../../domain/smtp-reply';
import type { MxTarget } from '../mx/resolver';

export interface SmtpLaneOptions {
  /** Relay mode: connections to the smart host (STARTTLS required, authentication). */
  relayMode: boolean;
  heloName: string;
  connectTimeoutMs: number;
  greetingTimeoutMs: number;
  socketTimeoutMs: number;
  relay?: { user?: string; password?: string; verifyTls: boolean };
}

export interface LaneEnvelope {
  from: string;
  to: string;
  /** RFC 3461 DSN parameters, sent when the server offers DSN. */
  dsn?: { id: string; return: 'headers' | 'full'; notify: string[]; recipient: string };
}

type SmtpError = Error & { code?: string; responseCode?: number; response?: string; command?: string };

/** Errors that ended the connection rather than refused what was sent over it (as nodemailer's pool tells them apart). */
function endedConnection(err: SmtpError): boolean {
  return err.responseCode === 421 || err.code === 'ECONNECTION' || err.code === 'ESOCKET' || err.code === 'ETIMEDOUT';
}

/** A failure as a structured reply: the server's reply when there was one, else a code-0 reply naming the socket error. */
export function replyFromError(e: unknown, host: string | null, command: string | null = null): SmtpReply {
  const err = e as SmtpError;
  if (err.responseCode && err.response) return parseSmtpReply(err.response, host, err.command ?? command);
  // No reply from the server: connection refused, timeout, TLS failure, dropped connection.
  const timeout = err.code === 'ETIMEDOUT' || /timeout/i.test(err.message ?? '');
  return {
    code: 0,
    enhancedCode: timeout ? '4.4.2' : '4.4.1',
    text: `${err.code ?? 'ERROR'}: ${err.message}`.slice(0, 500),
    mxHost: host,
    command: err.command ?? command ?? 'CONN',
  };
}

export class SmtpLane {
  private conn: SMTPConnection | null = null;
  private socket: net.Socket | null = null;
  private targetKey: string | null = null;
  private sentOnConnection = 0;

  constructor(private readonly opts: SmtpLaneOptions) {}

  /** Messages sent over the open connection (0 when none is open). */
  get messagesOnConnection(): number {
    return this.conn ? this.sentOnConnection : 0;
  }

  get isOpen(): boolean {
    return this.conn !== null;
  }

  /**
   * One SMTP transaction to `target`, on the open connection when it goes there, else on a new one. When a reused
   * connection turns out to be gone before a byte of the message was sent (the server dropped it while idle, or
   * answered 421 to MAIL FROM), the message goes once over a fresh connection: nothing was sent, and a persistent
   * refusal is still reported, from the fresh connection.
   */
  async send(target: MxTarget, relay: boolean, envelope: LaneEnvelope, raw: Buffer): Promise<SmtpReply> {
    const key = `${target.host}:${target.port}`;
    if (this.conn && this.targetKey !== key) await this.close();
    for (let fresh = false; ; fresh = true) {
      const reused = this.conn !== null;
      if (!this.conn) {
        try {
          await this.connect(target, relay);
        } catch (e) {
          await this.close();
          return replyFromError(e, target.host, 'CONN');
        }
      }
      const stream = Readable.from(raw);
      try {
        const info = await new Promise<SMTPConnection.SentMessageInfo>((resolve, reject) =>
          this.conn!.send({ from: envelope.from, to: [envelope.to], dsn: envelope.dsn }, stream, (err, i) => (err ? reject(err) : resolve(i!))),
        );
        this.sentOnConnection++;
        return parseSmtpReply(info.response ?? '250', target.host, 'DATA');
      } catch (e) {
        const err = e as SmtpError;
        if (reused && !fresh && !stream.readableDidRead && endedConnection(err)) {
          await this.close();
          continue;
        }
        this.sentOnConnection++;
        // A refusal of this message (RCPT, DATA) leaves the connection usable once reset; anything else ends it.
        if ((err.code === 'EENVELOPE' || err.code === 'EMESSAGE') && err.responseCode !== 421 && this.conn) {
          if (!(await this.reset(this.conn))) await this.close();
        } else {
          await this.close();
        }
        return replyFromError(err, target.host, 'DATA');
      }
    }
  }

  /**
   * RSET after a refused message, true once the server has answered it. False when the connection ends or goes silent
   * first: nodemailer completes a pending send when its connection dies, but never a pending RSET, so waiting for the
   * callback alone held the message's attempt (and its site's connection) until the activity timed out, 5 minutes
   * (test/smtp-lane-reset.test.ts).
   */
  private reset(conn: SMTPConnection): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let settled = false;
      const settle = (ok: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        conn.removeListener('error', gone);
        conn.removeListener('end', gone);
        resolve(ok);
      };
      const gone = () => settle(false);
      // Past the socket timeout with no answer the server is not going to answer.
      const timer = setTimeout(gone, this.opts.socketTimeoutMs);
      conn.once('error', gone);
      conn.once('end', gone);
      conn.reset((resetErr) => settle(!resetErr));
    });
  }

  /**
   * Opens a connection to `target` ahead of a message (a paced message connects before its slot). A failure is left
   * for send() to meet and report, on a fresh connection.
   */
  async warm(target: MxTarget): Promise<void> {
    if (this.conn && this.targetKey === `${target.host}:${target.port}`) return;
    if (this.conn) await this.close();
    try {
      await this.connect(target, this.opts.relayMode);
    } catch {
      await this.close();
    }
  }

  private async connect(target: MxTarget, relay: boolean): Promise<void> {
    const conn = new SMTPConnection({
      host: target.host,
      port: target.port,
      secure: relay && target.port === 465,
      name: this.opts.heloName,
      connectionTimeout: this.opts.connectTimeoutMs,
      greetingTimeout: this.opts.greetingTimeoutMs,
      socketTimeout: this.opts.socketTimeoutMs,
      // Opportunistic STARTTLS between MTAs: encrypt when offered, do not refuse self-signed or mismatched
      // certificates (RFC 3207 4.1; MTA-STS/DANE would be the place to require verification). Relay mode requires it.
      requireTLS: relay,
      tls: { rejectUnauthorized: relay && (this.opts.relay?.verifyTls ?? true) },
    });
    // Errors also arrive through the callbacks; without a listener an 'error' event would end the process.
    conn.on('error', () => undefined);
    conn.once('end', () => {
      if (this.conn === conn) this.forget();
    });
    this.conn = conn;
    this.targetKey = `${target.host}:${target.port}`;
    this.sentOnConnection = 0;
    // A failure to connect (refused, timeout, TLS, a 4xx/5xx greeting) arrives as an 'error' event, not through the
    // callback; a connection closed before the greeting ends without either.
    await new Promise<void>((resolve, reject) => {
      const failed = (err: Error) => reject(err);
      const ended = () => reject(Object.assign(new Error('Connection closed before the greeting'), { code: 'ECONNECTION', command: 'CONN' }));
      conn.once('error', failed);
      conn.once('end', ended);
      conn.connect((err) => {
        conn.off('error', failed);
        conn.off('end', ended);
        if (err) reject(err);
        else resolve();
      });
    });
    this.socket = (conn as unknown as { _socket: net.Socket | null })._socket ?? null;
    const user = this.opts.relay?.user;
    if (relay && user && conn.allowsAuth) {
      await new Promise<void>((resolve, reject) =>
        conn.login({ user, pass: this.opts.relay?.password ?? '', credentials: { user, pass: this.opts.relay?.password ?? '' } }, (err) => (err ? reject(err) : resolve())),
      );
    }
  }

  private forget(): void {
    this.conn = null;
    this.socket = null;
    this.targetKey = null;
    this.sentOnConnection = 0;
  }

  /**
   * QUIT and wait until the socket is closed (at most 2 s), so that a connection counted as closed is closed for the
   * receiving server too before the lane's lease goes to another connection.
   */
  async close(): Promise<void> {
    const conn = this.conn;
    const socket = this.socket;
    if (!conn) return;
    this.forget();
    const closed = socket && !socket.destroyed ? new Promise<void>((resolve) => socket.once('close', () => resolve())) : Promise.resolve();
    try {
      conn.quit();
    } catch {
      conn.close();
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, 2_000)))]);
    clearTimeout(timer);
    if (socket && !socket.destroyed) socket.destroy();
  }
}
