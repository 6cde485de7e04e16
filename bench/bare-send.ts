/**
 * `--only bare` (and every run of fan-out and ceiling together): the bare send path, the second reference next to
 * Temporal's no-op ceiling. The same number of messages as the fan-out, each composed by the engine's own builder
 * (MessageContext.compose: template render, MIME, VERP, List-Unsubscribe) and DKIM-signed by the engine's signer with an
 * RSA-2048 key like the one the fan-out's domain gets, then sent through a nodemailer SMTP pool (pool: true, the
 * engine's SMTP_POOL_MAX_CONNECTIONS and SMTP_POOL_MAX_MESSAGES) to a sandbox MX of its own (keepRaw false). No workflow,
 * no Postgres, no delivery log: what a plain script would reach on the same host, in the same run.
 */
import { randomUUID } from 'node:crypto';
import nodemailer from 'nodemailer';
import { compileMessage } from '../domain/message-template';
import type { DeliveryRow } from '../db/delivery-store';
import type { Stores } from '../db/stores';
import { MessageContext } from '../activities/message-context';
import { publicUrl } from '../activities/dependencies';
import { generateDkimKey, type SigningKey } from '../mail/dkim/keys';
import { signMessage } from '../mail/dkim/signer';
import { SandboxMx } from '../mx-sandbox/sandbox-mx';
import { BENCH_FROM, BENCH_TEMPLATE } from './analysis-bench';
import { cleanRow } from './population';
import { cpuDelta, procStatusKb, resetPeakRss, round, secondsSince } from './measure';
import type { BenchStack } from './stack';

export interface BareSendResult {
  messages: number;
  /** SMTP connections of the nodemailer pool (the engine's SMTP_POOL_MAX_CONNECTIONS) and messages per connection. */
  connections: number;
  messagesPerConnection: number;
  /** Messages being built, signed or sent at once (the engine's activity slots). */
  concurrency: number;
  seconds: number;
  messagesPerSecond: number;
  accepted: number;
  failed: number;
  /** CPU ms per message of each process; everything of the bare path runs in the bench process (the others idle). */
  cpuMsPerMessage: Record<string, number>;
  coresBusy: number;
  /** VmHWM of the bench process over this section (reset at its start when the kernel allows: `peakSince`). */
  benchProcessPeakMb: number | null;
  peakSince: 'stage start' | 'process start';
}

export async function runBareSend(stack: BenchStack, opts: { messages: number; concurrency: number; log: (m: string) => void }): Promise<BareSendResult> {
  const { log, messages: n } = opts;
  const s = stack.settings;
  const fromDomain = BENCH_FROM.address.split('@')[1];
  const key = generateDkimKey('rsa-sha256');
  const keys: SigningKey[] = [{ domain: fromDomain, selector: s.DKIM_SELECTOR, algorithm: key.algorithm, privateKeyPem: key.privateKeyPem }];
  // compose() reads no store: it builds from the delivery row and recipient given to it.
  const messages = new MessageContext({} as Pick<Stores, 'deliveries' | 'log'>, { publicUrl: publicUrl(s), bounceDomain: s.BOUNCE_DOMAIN, verpSecret: stack.deps.secrets.verpSecret });
  const row = {
    id: randomUUID(),
    fromAddress: BENCH_FROM.address,
    fromName: BENCH_FROM.name,
    fromDomain,
    replyTo: null,
    subject: BENCH_TEMPLATE.subject,
    html: BENCH_TEMPLATE.html,
    text: BENCH_TEMPLATE.text,
  } as Pick<DeliveryRow, 'id' | 'fromAddress' | 'fromName' | 'fromDomain' | 'replyTo' | 'subject' | 'html' | 'text'> as DeliveryRow;
  const delivery = { row, compiled: compileMessage({ subject: row.subject, html: row.html, text: row.text }), loadedAt: Date.now() };

  const mx = new SandboxMx({ port: 0, keepRaw: false, maxRecords: 1_000 });
  const { port } = await mx.start();
  const transport = nodemailer.createTransport({
    pool: true,
    host: '127.0.0.1',
    port,
    secure: false,
    maxConnections: s.SMTP_POOL_MAX_CONNECTIONS,
    maxMessages: s.SMTP_POOL_MAX_MESSAGES,
    name: s.SMTP_HELO_NAME,
    connectionTimeout: s.SMTP_CONNECT_TIMEOUT_MS,
    greetingTimeout: s.SMTP_GREETING_TIMEOUT_MS,
    socketTimeout: s.SMTP_SOCKET_TIMEOUT_MS,
    // Opportunistic STARTTLS with any certificate, as the engine's direct-mode lanes.
    tls: { rejectUnauthorized: false },
  });
  try {
    log(`bare send path: ${n.toLocaleString('en')} messages, built and DKIM-signed like the engine's, nodemailer pool of ${s.SMTP_POOL_MAX_CONNECTIONS} connections → sandbox MX`);
    const resetOk = resetPeakRss(process.pid);
    const cpu0 = stack.cpu();
    const t0 = performance.now();
    let next = 1;
    let accepted = 0;
    let failed = 0;
    let firstError: string | null = null;
    const lane = async () => {
      for (let u = next++; u <= n; u = next++) {
        const r = cleanRow(u);
        const msg = await messages.compose(delivery, { recipientId: u, address: r.email, domain: r.email.split('@')[1], fields: { firstName: r.firstName, city: r.city }, date: new Date() });
        const signature = await signMessage(msg.raw, keys, new Date());
        const envid = msg.verp.slice(0, msg.verp.lastIndexOf('@'));
        try {
          await transport.sendMail({
            envelope: { from: msg.verp, to: msg.address },
            raw: Buffer.concat([Buffer.from(signature, 'utf8'), msg.raw]),
            dsn: { id: envid, return: 'headers', notify: ['failure', 'delay'], recipient: msg.address },
          });
          accepted++;
        } catch (e) {
          failed++;
          firstError ??= (e as Error).message;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(opts.concurrency, n) }, lane));
    const seconds = secondsSince(t0);
    const cpu = cpuDelta(cpu0, stack.cpu());
    const peak = procStatusKb(process.pid, 'VmHWM');
    if (firstError) log(`bare send path: ${failed} message(s) failed, first: ${firstError}`);
    const result: BareSendResult = {
      messages: n,
      connections: s.SMTP_POOL_MAX_CONNECTIONS,
      messagesPerConnection: s.SMTP_POOL_MAX_MESSAGES,
      concurrency: Math.min(opts.concurrency, n),
      seconds: round(seconds, 2),
      messagesPerSecond: round(accepted / seconds, 1),
      accepted,
      failed,
      cpuMsPerMessage: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, round((v * 1000) / Math.max(accepted, 1), 2)])),
      coresBusy: round(Object.values(cpu).reduce((a, b) => a + b, 0) / seconds, 2),
      benchProcessPeakMb: peak === null ? null : round(peak / 1024, 1),
      peakSince: resetOk ? 'stage start' : 'process start',
    };
    if (mx.acceptedCount() !== accepted) log(`bare send path: the sandbox MX counted ${mx.acceptedCount()} accepted, the sender ${accepted}`);
    log(`bare send path: ${result.messagesPerSecond} messages/s (${result.seconds} s), CPU ms per message ${JSON.stringify(result.cpuMsPerMessage)}, peak RSS ${result.benchProcessPeakMb} MB`);
    return result;
  } finally {
    transport.close();
    await mx.stop();
  }
}
