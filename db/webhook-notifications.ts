/**
 * LISTEN on the outbox's channel: the triggers of migration 035 NOTIFY `webhook_events` when a transaction that wrote
 * events commits, and every endpoint's long poll in this process waits on the one connection opened here.
 */
import { Client, type ClientConfig } from 'pg';

export const WEBHOOK_CHANNEL = 'webhook_events';

export class WebhookNotifications {
  private client: Client | null = null;
  private connecting: Promise<Client> | null = null;
  private readonly waiters = new Set<() => void>();
  private closed = false;
  /**
   * Counts notifications. A caller reads it before looking at the outbox and passes it to `wait`, which then returns
   * at once if a notification came in between: none is lost in the gap between the look and the wait.
   */
  generation = 0;

  constructor(private readonly config: ClientConfig) {}

  /**
   * Resolves true at the first notification after `sinceGeneration` (at once if one already came), false after
   * `timeoutMs` or when `signal` aborts. When the connection cannot be opened it only waits for the timeout: the
   * caller looks at the outbox again then, so a lost connection slows the endpoints down, never stops them.
   */
  async wait(sinceGeneration: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    await this.listening().catch(() => undefined);
    if (this.generation !== sinceGeneration) return true;
    if (signal?.aborted) return false;
    return new Promise<boolean>((resolve) => {
      const done = (notified: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        signal?.removeEventListener('abort', aborted);
        resolve(notified);
      };
      const wake = () => done(true);
      const aborted = () => done(false);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.waiters.add(wake);
      signal?.addEventListener('abort', aborted, { once: true });
    });
  }

  private listening(): Promise<Client> {
    if (this.closed) return Promise.reject(new Error('closed'));
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= this.connect().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async connect(): Promise<Client> {
    const client = new Client(this.config);
    // A dropped connection is replaced at the next wait; meanwhile waiters fall back to their timeouts.
    client.on('error', () => this.drop(client));
    client.on('end', () => this.drop(client));
    client.on('notification', (n) => {
      if (n.channel !== WEBHOOK_CHANNEL) return;
      this.generation++;
      for (const wake of [...this.waiters]) wake();
    });
    await client.connect();
    try {
      await client.query(`LISTEN ${WEBHOOK_CHANNEL}`);
    } catch (e) {
      await client.end().catch(() => undefined);
      throw e;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      throw new Error('closed');
    }
    this.client = client;
    // Whatever was committed while no connection listened is found by the waiters' next look.
    this.generation++;
    return client;
  }

  private drop(client: Client): void {
    if (this.client === client) this.client = null;
    client.removeAllListeners('notification');
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client ?? (await this.connecting?.catch(() => null)) ?? null;
    this.client = null;
    for (const wake of [...this.waiters]) wake();
    await client?.end().catch(() => undefined);
  }
}
