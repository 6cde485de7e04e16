/**
 * A webhook endpoint for tests: a real HTTP server that verifies each request with the standardwebhooks package,
 * answers with the status its behaviour says, and keeps every message once by webhook-id (retries counted apart).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import type { WebhookBatchBody, WebhookEvent } from '../../domain/webhook-events';

export interface ReceivedEvent extends WebhookEvent {
  messageId: string;
  receivedAtMs: number;
}

export class WebhookReceiver {
  /** The status to answer (decided per request, before the body is looked at). */
  behaviour: () => number = () => 200;
  /** The subscription's secret, set once the subscription exists; requests before that are refused with 401. */
  secret: string | null = null;
  /** Unique messages by webhook-id, first arrival only, in arrival order. */
  readonly messages = new Map<string, { body: string; receivedAtMs: number; events: ReceivedEvent[] }>();
  /** Events of unique messages, in arrival order. */
  readonly events: ReceivedEvent[] = [];
  requests = 0;
  /** Requests answered with a non-2xx (by behaviour). */
  refused = 0;
  /** Requests whose signature did not verify (must stay 0). */
  badSignatures = 0;
  /** A webhook-id seen again with a different body (must stay 0: a retry sends the same bytes). */
  changedRetries = 0;
  /** A webhook-id seen again (a retry after an answer the engine did not get, or a retried activity). */
  duplicateMessages = 0;
  firstOkAtMs: number | null = null;
  private server: http.Server | null = null;

  async start(): Promise<string> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.handle(req, Buffer.concat(chunks).toString('utf8'), res));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
  }

  private handle(req: http.IncomingMessage, body: string, res: http.ServerResponse) {
    this.requests++;
    const status = this.behaviour();
    if (status < 200 || status >= 300) {
      this.refused++;
      res.writeHead(status).end('not now');
      return;
    }
    const headers = {
      'webhook-id': String(req.headers['webhook-id']),
      'webhook-timestamp': String(req.headers['webhook-timestamp']),
      'webhook-signature': String(req.headers['webhook-signature']),
    };
    let payload: WebhookBatchBody;
    try {
      if (!this.secret) throw new Error('no secret yet');
      payload = new Webhook(this.secret).verify(body, headers) as WebhookBatchBody;
    } catch {
      this.badSignatures++;
      res.writeHead(401).end();
      return;
    }
    const id = headers['webhook-id'];
    const now = Date.now();
    this.firstOkAtMs ??= now;
    const seen = this.messages.get(id);
    if (seen) {
      this.duplicateMessages++;
      if (seen.body !== body) this.changedRetries++;
    } else {
      const events = payload.data.events.map((e) => ({ ...e, messageId: id, receivedAtMs: now }));
      this.messages.set(id, { body, receivedAtMs: now, events });
      this.events.push(...events);
    }
    res.writeHead(204).end();
  }

  eventsOfType(type: string): ReceivedEvent[] {
    return this.events.filter((e) => e.type === type);
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }
}
