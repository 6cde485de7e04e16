/** A test file's own slice of the real stack: pool, sandbox MX, worker on its own task queue, client, service and API. */
import { createHash, randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { inject } from 'vitest';
import { Connection, type Client } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import type { Pool } from 'pg';
import { parseSettings, type Settings } from '../../config/settings';
import type { ActivityDependencies } from '../../activities/dependencies';
import type { DeliveryService } from '../../api/delivery-service';
import {
  buildActivityDependencies,
  buildApi,
  buildDeliveryService,
  buildInboundListener,
  buildInboundProcessor,
  buildTemporalClient,
  buildWorker,
  openRuntime,
  type EngineRuntime,
} from '../../runtime/composition-root';
import type { InboundProcessor } from '../../inbound/process-inbound';
import type { InboundSmtpListener } from '../../inbound/smtp-listener';
import { freePort } from '../../stack/ports';
import type { Secrets } from '../../config/secrets';
import { SandboxMx, type SandboxMxOptions } from '../../mx-sandbox/sandbox-mx';
import { createDeliverySchema, type CreateDeliveryInput } from '../../api/delivery-input';
import type { DeliveryStateView } from '../../workflows/contract';
import { deliveryStateQuery, deliveryWorkflowId } from '../../workflows/contract';
import type { ApiApp } from '../../api/app';
import { createApiKey } from '../../db/api-key-store';
import type { ApiScope } from '../../domain/api-scopes';
import { useApiKey } from './http';

/** A test payload key, derived from its ID (tests never depend on a generated file). */
export const testPayloadKey = (id: string) => ({ id, key: createHash('sha256').update(`test payload key ${id}`).digest() });

export const TEST_SECRETS: Secrets = {
  verpSecret: 'test-verp-secret-0123456789',
  keyEncryptionSecret: 'test-key-secret-0123456789',
  payloadKeys: { currentKeyId: 'test-1', keys: [testPayloadKey('test-1')] },
};

export interface Harness {
  settings: Settings;
  runtime: EngineRuntime;
  /** For tests that check rows directly. */
  pool: Pool;
  mx: SandboxMx;
  client: Client;
  service: DeliveryService;
  deps: ActivityDependencies;
  taskQueue: string;
  apiUrl: string;
  /** The API app (tests walk its router stack). */
  app: ApiApp;
  /** An admin key created at start; `request`/`apiCall` to apiUrl send it unless told otherwise. */
  apiKey: string;
  /** A new key of `scopes` (its secret and id). */
  createApiKey(scopes: ApiScope[], name?: string): Promise<{ id: string; secret: string }>;
  /** Starts the worker (tests that kill and restart workers call it again). */
  startWorker(): Promise<void>;
  stopWorker(): Promise<void>;
  /** The inbound SMTP listener of BOUNCE_DOMAIN, when the harness was started with `inbound: true`. */
  inbound: { port: number; listener: InboundSmtpListener; processor: InboundProcessor } | null;
  createDelivery(input: Record<string, unknown>): Promise<string>;
  waitForPhase(deliveryId: string, phases: string[], timeoutMs?: number): Promise<DeliveryStateView>;
  stop(): Promise<void>;
}

let runtimeInstalled = false;

export async function startHarness(
  opts: {
    env?: Record<string, string>;
    mx?: SandboxMxOptions;
    worker?: boolean;
    secrets?: Secrets;
    apiPort?: number;
    /** Start the inbound listener; the sandbox MX mails its late bounces, relay reports and complaints there. */
    inbound?: boolean | { reportDelayMs?: number };
  } = {},
): Promise<Harness> {
  if (!runtimeInstalled) {
    try {
      // Worker state changes at INFO would bury test output.
      Runtime.install({ logger: new DefaultLogger('WARN') });
    } catch {
      /* the test file installed its own (one that captures the worker's log) */
    }
    runtimeInstalled = true;
  }
  const inboundPort = opts.inbound ? await freePort() : null;
  const bounceDomain = opts.env?.BOUNCE_DOMAIN ?? 'bounces.localhost';
  const reportDelayMs = typeof opts.inbound === 'object' ? opts.inbound.reportDelayMs : undefined;
  const mx = new SandboxMx({
    port: 0,
    ...(inboundPort ? { reports: { host: '127.0.0.1', port: inboundPort, complaintsTo: `fbl@${bounceDomain}`, delayMs: reportDelayMs } } : {}),
    ...opts.mx,
  });
  const { port } = await mx.start();
  const taskQueue = `test-${randomUUID()}`;
  const settings = parseSettings({
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    DATABASE_URL: inject('databaseUrl'),
    TASK_QUEUE: taskQueue,
    MX_OVERRIDES: JSON.stringify({ '*': `127.0.0.1:${port}` }),
    VERP_SECRET: TEST_SECRETS.verpSecret,
    KEY_ENCRYPTION_SECRET: TEST_SECRETS.keyEncryptionSecret,
    KPI_REFRESH_SECONDS: '0.5',
    // Tests read a delivery right after a change made elsewhere (a worker, a direct client): no reuse of live views
    // (test/live-view-cache.test.ts covers the cache).
    LIVE_VIEW_CACHE_MS: '0',
    SMTP_CONNECT_TIMEOUT_MS: '5000',
    SMTP_GREETING_TIMEOUT_MS: '5000',
    SMTP_SOCKET_TIMEOUT_MS: '10000',
    // Recipient workflows close with their SMTP transaction unless a test waits for late feedback.
    LATE_FEEDBACK_WINDOW_SECONDS: '0',
    // The sandbox acting as the smart host (relay option): relay mode through it.
    ...(opts.mx?.relay ? { SEND_MODE: 'relay', SMTP_RELAY_HOST: '127.0.0.1', SMTP_RELAY_PORT: String(port), SMTP_RELAY_TLS_VERIFY: 'false' } : {}),
    ...opts.env,
  });
  // The global setup migrated and seeded the database once.
  const runtime = await openRuntime(settings, { secrets: opts.secrets ?? TEST_SECRETS, poolSize: 10, prepareDatabase: false });
  const pool = runtime.pool;
  const deps = buildActivityDependencies(runtime);
  await deps.rules.start();
  const connection = await Connection.connect({ address: settings.TEMPORAL_ADDRESS });
  const client = buildTemporalClient(runtime, connection);
  const service = buildDeliveryService(runtime, client, taskQueue);
  const app = buildApi(runtime, { service, client, taskQueue });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(opts.apiPort ?? 0, '127.0.0.1', () => resolve(s));
  });
  const apiUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const createKey = async (scopes: ApiScope[], name = `test ${scopes.join('+')} ${randomUUID().slice(0, 8)}`) => {
    const { key, secret } = await createApiKey(pool, { name, scopes, createdBy: { keyId: null, name: 'test harness' } });
    return { id: key.id, secret };
  };
  const admin = await createKey(['admin'], `test harness admin ${taskQueue}`);
  useApiKey(apiUrl, admin.secret);
  let inbound: Harness['inbound'] = null;
  if (inboundPort) {
    const processor = buildInboundProcessor(runtime, client);
    const listener = buildInboundListener(runtime, processor, { port: inboundPort, host: '127.0.0.1' });
    await listener.start();
    inbound = { port: inboundPort, listener, processor };
  }

  let nativeConnection: NativeConnection | null = null;
  let worker: Worker | null = null;
  let running: Promise<void> | null = null;

  const h: Harness = {
    settings,
    runtime,
    pool,
    mx,
    client,
    service,
    deps,
    taskQueue,
    apiUrl,
    app,
    apiKey: admin.secret,
    createApiKey: createKey,
    inbound,
    async startWorker() {
      nativeConnection ??= await NativeConnection.connect({ address: settings.TEMPORAL_ADDRESS });
      worker = await buildWorker(runtime, {
        connection: nativeConnection,
        deps,
        namespace: 'default',
        taskQueue,
        maxConcurrentActivities: 50,
        maxConcurrentWorkflowTasks: 20,
        workflowBundle: { codePath: inject('workflowBundlePath') },
      });
      running = worker.run();
    },
    async stopWorker() {
      if (worker && worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      worker = null;
    },
    async createDelivery(input) {
      const parsed: CreateDeliveryInput = createDeliverySchema.parse(input);
      return (await service.create(parsed)).id;
    },
    async waitForPhase(deliveryId, phases, timeoutMs = 120_000) {
      const handle = client.workflow.getHandle(deliveryWorkflowId(deliveryId));
      const deadline = Date.now() + timeoutMs;
      let last: DeliveryStateView | null = null;
      while (Date.now() < deadline) {
        last = await handle.query(deliveryStateQuery).catch(() => last);
        if (last && phases.includes(last.phase)) return last;
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(`delivery ${deliveryId} did not reach ${phases.join('/')} in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    },
    async stop() {
      await h.stopWorker();
      await nativeConnection?.close();
      deps.rules.stop();
      deps.sender.close();
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
      useApiKey(apiUrl, null);
      await mx.stop();
      await inbound?.listener.stop();
      await connection.close();
      await runtime.close();
    },
  };
  if (opts.worker !== false) await h.startWorker();
  return h;
}
