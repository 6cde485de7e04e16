/** Starts the whole stack in one process: Temporal dev server, Postgres, sandbox MX, worker and API; stops it cleanly. */
import fs from 'node:fs';
import path from 'node:path';
import type { Server } from 'node:http';
import { Connection, type Client } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import type { Settings } from '../config/settings';
import { publicUrl, type ActivityDependencies } from '../activities/dependencies';
import type { DeliveryService } from '../api/delivery-service';
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
} from '../runtime/composition-root';
import { SandboxMx } from '../mx-sandbox/sandbox-mx';
import { locateTemporalCli } from './temporal-cli';
import { startDevServer, type RunningDevServer } from './temporal-dev-server';
import { startEmbeddedPostgres, type PostgresHandle } from './postgres';

export interface RunningStack {
  settings: Settings;
  runtime: EngineRuntime;
  client: Client;
  service: DeliveryService;
  deps: ActivityDependencies;
  mx: SandboxMx | null;
  apiUrl: string;
  temporalUiUrl: string | null;
  stop(): Promise<void>;
}

export async function startEmbeddedStack(base: Settings, log: (m: string) => void = () => {}): Promise<RunningStack> {
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
  };
  try {
    fs.mkdirSync(base.DATA_DIR, { recursive: true });
    let temporal: RunningDevServer | null = null;
    if (!base.TEMPORAL_EXTERNAL) {
      const cli = locateTemporalCli({ explicit: base.TEMPORAL_CLI, toolsDir: base.TOOLS_DIR, log });
      log(`starting Temporal dev server (${cli})`);
      temporal = await startDevServer({
        cliPath: cli,
        address: base.TEMPORAL_ADDRESS,
        uiPort: base.TEMPORAL_UI_PORT,
        namespace: base.TEMPORAL_NAMESPACE,
        dbFile: path.join(base.DATA_DIR, 'temporal.sqlite'),
        logFile: path.join(base.DATA_DIR, 'temporal.log'),
        // The Web UI decodes sealed payloads through the API started below (api/codec-routes.ts).
        uiCodecEndpoint: `http://127.0.0.1:${base.API_PORT}/codec`,
      });
      const t = temporal;
      stops.push(() => t.stop());
      // If this process dies without running its shutdown, do not leave the server behind.
      process.once('exit', () => t.process.kill('SIGKILL'));
    }

    let pg: PostgresHandle | null = null;
    let databaseUrl = base.DATABASE_URL;
    if (!databaseUrl) {
      log('starting embedded Postgres');
      pg = await startEmbeddedPostgres({ dataDir: path.join(base.DATA_DIR, 'postgres'), port: base.EMBEDDED_PG_PORT });
      const p = pg;
      stops.push(() => p.stop());
      databaseUrl = pg.connectionString;
    }
    let mx: SandboxMx | null = null;
    let settings = base;
    if (!base.MX_OVERRIDES && base.SEND_MODE === 'direct') {
      // Late bounces and complaints go to the inbound listener, as a real receiver would mail them to the bounce domain's MX.
      mx = new SandboxMx({
        port: base.SANDBOX_MX_PORT,
        keepRaw: false,
        maxRecords: 100_000,
        reports: { host: '127.0.0.1', port: base.INBOUND_SMTP_PORT, complaintsTo: `${base.FEEDBACK_LOCAL_PARTS[0] ?? 'fbl'}@${base.BOUNCE_DOMAIN}`, delayMs: 2_000 },
      });
      const { port } = await mx.start();
      const m = mx;
      stops.push(() => m.stop());
      // Without overrides every domain goes to the sandbox: nothing leaves the machine by accident.
      settings = { ...base, MX_OVERRIDES: { '*': `127.0.0.1:${port}` } };
      log(`sandbox MX listening on 127.0.0.1:${port}`);
    }

    const rt = await openRuntime(settings, { databaseUrl });
    stops.push(() => rt.close());
    const deps = buildActivityDependencies(rt);
    stops.push(async () => deps.sender.close());
    await deps.rules.start();
    stops.push(async () => deps.rules.stop());

    const nativeConnection = await NativeConnection.connect({ address: settings.TEMPORAL_ADDRESS });
    stops.push(() => nativeConnection.close());
    const worker: Worker = await buildWorker(rt, { connection: nativeConnection, deps });
    const running = worker.run();
    stops.push(async () => {
      worker.shutdown();
      await running;
    });

    const connection = await Connection.connect({ address: settings.TEMPORAL_ADDRESS });
    stops.push(() => connection.close());
    const client = buildTemporalClient(rt, connection);
    const service = buildDeliveryService(rt, client);
    const temporalUiUrl = settings.TEMPORAL_UI_URL ?? (temporal ? `http://127.0.0.1:${settings.TEMPORAL_UI_PORT}` : null);
    const app = buildApi(rt, { service, client, temporalUiUrl: temporalUiUrl ?? undefined });
    // The bounce domain's MX, on loopback here (the production layout publishes it on port 25).
    const listener = buildInboundListener(rt, buildInboundProcessor(rt, client), { host: '127.0.0.1' });
    await listener.start();
    stops.push(() => listener.stop());
    log(`inbound listener (bounces, complaints) on 127.0.0.1:${settings.INBOUND_SMTP_PORT} for ${settings.BOUNCE_DOMAIN}`);
    const server: Server = await new Promise((resolve, reject) => {
      // Express 5 hands a listen error (port taken) to the callback.
      const s = app.listen(settings.API_PORT, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
      s.on('error', reject);
    });
    stops.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );
    return {
      settings,
      runtime: rt,
      client,
      service,
      deps,
      mx,
      apiUrl: publicUrl(settings),
      temporalUiUrl,
      stop: stopAll,
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
