/**
 * The one composition root: builds the engine's runtime (pool, stores, activity dependencies, delivery service, API,
 * worker) from the settings. The API process, the worker process, the embedded stack, the bench and the test harness
 * all assemble themselves here, so a new dependency is wired once.
 */
import type { Pool } from 'pg';
import { Client, WorkflowNotFoundError, type Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import type { NativeConnection, Worker, WorkerOptions } from '@temporalio/worker';
import type { Settings } from '../config/settings';
import { loadSecrets, type Secrets } from '../config/secrets';
import { createPool } from '../db/pool';
import { migrate } from '../db/migrate';
import { seedQualificationRules } from '../db/qualification-rule-store';
import { seedInboundRules } from '../db/inbound-rule-store';
import { seedMxRules } from '../db/mx-rule-store';
import { createStores, type Stores } from '../db/stores';
import { quarantinePolicyFromSettings } from '../domain/quarantine-policy';
import { createActivityDependencies, type ActivityDependencies } from '../activities/dependencies';
import { createActivities } from '../activities';
import { recipientFeedbackSignal, recipientWorkflowId, type Activities } from '../workflows/contract';
import { InboundProcessor } from '../inbound/process-inbound';
import { InboundSmtpListener } from '../inbound/smtp-listener';
import { InboundRuleTablesCache } from '../inbound/rule-tables-cache';
import { classifyInboundMessage } from '../mail/inbound/classify';
import { createWorker } from '../workers/create-worker';
import { DeliveryService } from '../api/delivery-service';
import { createApp, type AccessSettings, type ApiApp } from '../api/app';
import { deriveSessionSecret } from '../api/auth/access-control';
import { payloadDataConverter } from './data-converter-codec';
import { AesGcmPayloadCodec } from './payload-codec';

export interface EngineRuntime {
  settings: Settings;
  secrets: Secrets;
  /** Only the composition root and db/ use the pool; everything else gets stores. */
  pool: Pool;
  stores: Stores;
  /** Ends the pool (the caller stops workers and servers first). */
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /** Default: settings.DATABASE_URL. */
  databaseUrl?: string;
  /** Default: loadSecrets(settings) (generated under DATA_DIR for the embedded stack). */
  secrets?: Secrets;
  poolSize?: number;
  /** Run migrations and seed the qualification rules (default true; idempotent, under an advisory lock). */
  prepareDatabase?: boolean;
}

export async function openRuntime(settings: Settings, o: RuntimeOptions = {}): Promise<EngineRuntime> {
  const databaseUrl = o.databaseUrl ?? settings.DATABASE_URL;
  if (!databaseUrl) throw new Error('DATABASE_URL is required to run a process on its own (npm start runs the embedded stack)');
  const pool = createPool(databaseUrl, o.poolSize);
  try {
    if (o.prepareDatabase !== false) {
      await migrate(pool);
      await seedQualificationRules(pool);
      await seedInboundRules(pool);
      await seedMxRules(pool);
    }
  } catch (e) {
    await pool.end().catch(() => {});
    throw e;
  }
  const secrets = o.secrets ?? loadSecrets(settings);
  const stores = createStores(pool, {
    keyEncryptionSecret: secrets.keyEncryptionSecret,
    quarantinePolicy: quarantinePolicyFromSettings(settings),
    idempotency: { ttlSeconds: settings.IDEMPOTENCY_KEY_TTL_HOURS * 3600, leaseSeconds: settings.IDEMPOTENCY_LEASE_SECONDS },
  });
  // The webhook long polls' LISTEN connection is not part of the pool: it is ended first.
  return { settings, secrets, pool, stores, close: () => stores.webhooks.close().then(() => pool.end()) };
}

/** The activities' dependencies: the runtime's stores plus the SMTP sender and the rules cache (call `rules.start()`). */
export function buildActivityDependencies(rt: EngineRuntime): ActivityDependencies {
  return createActivityDependencies(rt.stores, rt.settings, rt.secrets);
}

/**
 * The data converter of every Temporal client and worker of the project: payloads sealed with the payload keys
 * (runtime/payload-codec.ts), failure messages inside them. `sealOutgoing: false` is for a test environment whose
 * client also talks to plain SDK workers: it still opens sealed payloads, and sends plain ones that both accept.
 */
export function temporalDataConverter(secrets: Pick<Secrets, 'payloadKeys'>, o: { sealOutgoing?: boolean } = {}): DataConverter {
  return payloadDataConverter(secrets.payloadKeys, o);
}

/** A Temporal client with the project's data converter (every client of the project is made here). */
export function buildTemporalClient(rt: Pick<EngineRuntime, 'secrets' | 'settings'>, connection: Connection, namespace = rt.settings.TEMPORAL_NAMESPACE): Client {
  return new Client({ connection, namespace, dataConverter: temporalDataConverter(rt.secrets) });
}

/** The origins allowed to call the codec server: configured, else the dev server's Web UI. */
export function codecCorsOrigins(s: Settings): string[] {
  return s.CODEC_CORS_ORIGINS ?? [`http://127.0.0.1:${s.TEMPORAL_UI_PORT}`, `http://localhost:${s.TEMPORAL_UI_PORT}`];
}

export function buildDeliveryService(rt: EngineRuntime, client: Client, taskQueue = rt.settings.TASK_QUEUE): DeliveryService {
  return new DeliveryService({ client, stores: rt.stores, settings: rt.settings, taskQueue });
}

/** Access control's settings: rate limits, key cache, sessions (signed with SESSION_SECRET or a key derived from the installation's secrets). */
export function accessSettings(s: Settings, secrets: Pick<Secrets, 'keyEncryptionSecret'>): AccessSettings {
  return {
    sessionSecret: s.SESSION_SECRET ?? deriveSessionSecret(secrets.keyEncryptionSecret),
    sessionTtlSeconds: s.SESSION_TTL_SECONDS,
    secureCookie: s.SESSION_COOKIE_SECURE,
    keyCacheMs: Math.round(s.API_KEY_CACHE_SECONDS * 1000),
    rateLimit: { perWindow: s.RATE_LIMIT_PER_KEY, windowMs: Math.round(s.RATE_LIMIT_WINDOW_SECONDS * 1000) },
  };
}

export function buildApi(rt: EngineRuntime, o: { service: DeliveryService; client: Client; taskQueue?: string; temporalUiUrl?: string }): ApiApp {
  return createApp({
    service: o.service,
    stores: rt.stores,
    verpSecret: rt.secrets.verpSecret,
    temporalUiUrl: o.temporalUiUrl,
    codec: { codec: new AesGcmPayloadCodec(rt.secrets.payloadKeys), allowedOrigins: codecCorsOrigins(rt.settings) },
    schedules: { client: o.client, taskQueue: o.taskQueue ?? rt.settings.TASK_QUEUE },
    webhooks: { client: o.client, taskQueue: o.taskQueue ?? rt.settings.TASK_QUEUE },
    inbound: { processor: buildInboundProcessor(rt, o.client), maxMessageBytes: rt.settings.INBOUND_MAX_MESSAGE_BYTES },
    access: accessSettings(rt.settings, rt.secrets),
    figureSettings: { DELIVERY_FIGURES_CACHE_MS: rt.settings.DELIVERY_FIGURES_CACHE_MS, SEND_MODE: rt.settings.SEND_MODE },
  });
}

export interface WorkerParts {
  connection: NativeConnection;
  deps: ActivityDependencies;
  namespace?: string;
  taskQueue?: string;
  /** Activities built by the caller from `deps` (tests that observe activity inputs). */
  activities?: Activities;
  /** A prebuilt workflow bundle; otherwise the worker bundles workflows/ at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  maxConcurrentActivities?: number;
  maxConcurrentWorkflowTasks?: number;
}

/** A worker on the runtime's task queue running every workflow and activity of the project. */
export function buildWorker(rt: EngineRuntime, p: WorkerParts): Promise<Worker> {
  const s = rt.settings;
  return createWorker({
    connection: p.connection,
    namespace: p.namespace ?? s.TEMPORAL_NAMESPACE,
    taskQueue: p.taskQueue ?? s.TASK_QUEUE,
    activities: p.activities ?? createActivities(p.deps),
    maxConcurrentActivities: p.maxConcurrentActivities ?? s.WORKER_MAX_CONCURRENT_ACTIVITIES,
    maxConcurrentWorkflowTasks: p.maxConcurrentWorkflowTasks ?? s.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS,
    maxCachedWorkflows: s.WORKER_MAX_CACHED_WORKFLOWS,
    workflowBundle: p.workflowBundle ?? (s.WORKFLOW_BUNDLE_PATH ? { codePath: s.WORKFLOW_BUNDLE_PATH } : undefined),
    dataConverter: temporalDataConverter(rt.secrets),
  });
}

/**
 * The inbound side's processor: qualifies, attributes and applies messages received at the bounce domain, and signals
 * open recipient workflows through `client`.
 */
export function buildInboundProcessor(rt: EngineRuntime, client: Client): InboundProcessor {
  const rules = new InboundRuleTablesCache(rt.stores);
  return new InboundProcessor({
    inbound: rt.stores.inbound,
    classify: async (raw) => classifyInboundMessage(raw, await rules.current()),
    verpSecret: rt.secrets.verpSecret,
    bounceDomain: rt.settings.BOUNCE_DOMAIN,
    signalRecipient: async (deliveryId, recipientId, feedback) => {
      try {
        await client.workflow.getHandle(recipientWorkflowId(deliveryId, recipientId)).signal(recipientFeedbackSignal, feedback);
        return true;
      } catch (e) {
        // Closed (or never started): the delivery log, already updated, is the record.
        if (e instanceof WorkflowNotFoundError) return false;
        throw e;
      }
    },
    log: (msg, fields) => console.log(JSON.stringify({ msg, ...fields })),
  });
}

/** The SMTP listener of BOUNCE_DOMAIN (settings INBOUND_*); `port` 0 picks a free one (tests). */
export function buildInboundListener(rt: EngineRuntime, processor: InboundProcessor, o: { port?: number; host?: string } = {}): InboundSmtpListener {
  const s = rt.settings;
  return new InboundSmtpListener({
    host: o.host ?? s.INBOUND_SMTP_HOST,
    port: o.port ?? s.INBOUND_SMTP_PORT,
    serverName: s.SMTP_HELO_NAME,
    bounceDomain: s.BOUNCE_DOMAIN,
    feedbackLocalParts: s.FEEDBACK_LOCAL_PARTS,
    maxMessageBytes: s.INBOUND_MAX_MESSAGE_BYTES,
    maxClients: s.INBOUND_MAX_CLIENTS,
    tls: s.INBOUND_TLS_KEY_PATH && s.INBOUND_TLS_CERT_PATH ? { keyPath: s.INBOUND_TLS_KEY_PATH, certPath: s.INBOUND_TLS_CERT_PATH } : undefined,
    processor,
    inbound: rt.stores.inbound,
    log: (msg, fields) => console.log(JSON.stringify({ msg, ...fields })),
  });
}
