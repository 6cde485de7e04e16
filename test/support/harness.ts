/** A test file's own slice of the real stack: pool, sandbox MX, worker on its own task queue, client, service and API. */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { inject } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import type { Pool } from 'pg';
import { parseSettings, type Settings } from '../../config/settings';
import type { ActivityDependencies } from '../../activities/dependencies';
import type { DeliveryService } from '../../api/delivery-service';
import { buildActivityDependencies, buildApi, buildDeliveryService, buildWorker, openRuntime, type EngineRuntime } from '../../runtime/composition-root';
import { SandboxMx, type SandboxMxOptions } from '../../mx-sandbox/sandbox-mx';
import { createDeliverySchema, type CreateDeliveryInput } from '../../api/delivery-input';
import type { DeliveryStateView } from '../../workflows/contract';
import { deliveryStateQuery, deliveryWorkflowId } from '../../workflows/contract';

export const TEST_SECRETS = { verpSecret: 'test-verp-secret-0123456789', keyEncryptionSecret: 'test-key-secret-0123456789' };

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
  /** Starts the worker (tests that kill and restart workers call it again). */
  startWorker(): Promise<void>;
  stopWorker(): Promise<void>;
  createDelivery(input: Record<string, unknown>): Promise<string>;
  waitForPhase(deliveryId: string, phases: string[], timeoutMs?: number): Promise<DeliveryStateView>;
  stop(): Promise<void>;
}

let runtimeInstalled = false;

export async function startHarness(opts: { env?: Record<string, string>; mx?: SandboxMxOptions; worker?: boolean } = {}): Promise<Harness> {
  if (!runtimeInstalled) {
    // Worker state changes at INFO would bury test output.
    Runtime.install({ logger: new DefaultLogger('WARN') });
    runtimeInstalled = true;
  }
  const mx = new SandboxMx({ port: 0, ...opts.mx });
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
    SMTP_CONNECT_TIMEOUT_MS: '5000',
    SMTP_GREETING_TIMEOUT_MS: '5000',
    SMTP_SOCKET_TIMEOUT_MS: '10000',
    ...opts.env,
  });
  // The global setup migrated and seeded the database once.
  const runtime = await openRuntime(settings, { secrets: TEST_SECRETS, poolSize: 10, prepareDatabase: false });
  const pool = runtime.pool;
  const deps = buildActivityDependencies(runtime);
  await deps.rules.start();
  const connection = await Connection.connect({ address: settings.TEMPORAL_ADDRESS });
  const client = new Client({ connection });
  const service = buildDeliveryService(runtime, client, taskQueue);
  const app = buildApi(runtime, { service, client, taskQueue });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const apiUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;

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
      await connection.close();
      await mx.stop();
      await runtime.close();
    },
  };
  if (opts.worker !== false) await h.startWorker();
  return h;
}
