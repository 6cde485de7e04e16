/** Every Postgres store of the engine, built once per process from one pool and handed to both the API and the activities. */
import type { Pool } from 'pg';
import { KeyCipher } from '../mail/dkim/key-cipher';
import type { QuarantinePolicy } from '../domain/quarantine-policy';
import { DeliveryAnalysisStore } from './delivery-analysis';
import { DeliveryLog } from './delivery-log';
import { DeliveryFigures } from './delivery-figures';
import { DeliveryStore } from './delivery-store';
import { DeliveryTemplateStore } from './delivery-templates';
import { DenylistStore } from './denylist-store';
import { DkimKeyStore } from './dkim-key-store';
import { InboundStore } from './inbound-store';
import { ProofStore } from './proof-store';
import { QuarantineStore } from './quarantine-store';
import { QualificationRuleStore } from './qualification-rule-store';
import { InboundRuleStore } from './inbound-rule-store';
import { RecipientListStore } from './recipient-lists';
import { MxReplyRuleStore, MxSiteRuleStore } from './mx-rule-store';
import { MxSiteStore } from './mx-site-store';
import { ApiKeyStore } from './api-key-store';
import { AuditLogStore } from './audit-log-store';
import { IdempotencyStore } from './idempotency-store';
import { WebhookStore } from './webhook-store';

export interface Stores {
  /** The deliveries table: creation with the population, phase, draft edits, analysis report. */
  deliveries: DeliveryStore;
  /** One EFS row per recipient, transitions, SMTP attempts, KPIs, quarantine counts. */
  log: DeliveryLog;
  /** A delivery's figures over time, per domain and per (domain, MX host): aggregates for its dashboard page. */
  figures: DeliveryFigures;
  /** Set-based exclusions, samples and time-zone counts of a delivery's population. */
  analysis: DeliveryAnalysisStore;
  /** Stored recipient lists (CSV uploads). */
  lists: RecipientListStore;
  /** Templates of recurring deliveries. */
  templates: DeliveryTemplateStore;
  /** DKIM keys, encrypted at rest. */
  keys: DkimKeyStore;
  /** The SMTP reply qualification rules. */
  qualificationRules: QualificationRuleStore;
  /** The inbound rules (non-standard bounces, auto-replies) the inbound classifier uses. */
  inboundRules: InboundRuleStore;
  /** MX site rules: receiving sites and their limits. */
  mxSiteRules: MxSiteRuleStore;
  /** MX reply rules: the replies that slow a site down or suspend it. */
  mxReplyRules: MxReplyRuleStore;
  /** Live state of the receiving sites (budgets, connection leases, adaptive state, counts), shared by every worker. */
  mxSites: MxSiteStore;
  /** Addresses never to be mailed again. */
  denylist: DenylistStore;
  /** Proofs sent before confirmation. */
  proofs: ProofStore;
  /** Messages received at the bounce domain and the feedback they carry. */
  inbound: InboundStore;
  /** Quarantined addresses and the denylist, as analysis sees them. */
  quarantine: QuarantineStore;
  /** API keys (hashed) and their scopes. */
  apiKeys: ApiKeyStore;
  /** Who changed what through the API. */
  audit: AuditLogStore;
  /** Idempotency-Key claims and the answers they replay (docs/idempotency-keys.md). */
  idempotency: IdempotencyStore;
  /** Webhook subscriptions, the event outbox, and what each endpoint was sent (close() ends its LISTEN connection). */
  webhooks: WebhookStore;
}

export interface StoreOptions {
  /** Secret from which the key that encrypts DKIM private keys at rest is derived. */
  keyEncryptionSecret: string;
  /** When addresses are quarantined (default: DEFAULT_QUARANTINE_POLICY). */
  quarantinePolicy?: QuarantinePolicy;
  /** How long idempotency keys live, and the lease of a request running under one (default: 24 h, 30 s). */
  idempotency?: { ttlSeconds: number; leaseSeconds: number };
}

export function createStores(pool: Pool, opts: StoreOptions): Stores {
  return {
    deliveries: new DeliveryStore(pool),
    log: new DeliveryLog(pool, opts.quarantinePolicy),
    figures: new DeliveryFigures(pool),
    analysis: new DeliveryAnalysisStore(pool),
    lists: new RecipientListStore(pool),
    templates: new DeliveryTemplateStore(pool),
    keys: new DkimKeyStore(pool, new KeyCipher(opts.keyEncryptionSecret)),
    qualificationRules: new QualificationRuleStore(pool),
    inboundRules: new InboundRuleStore(pool),
    mxSiteRules: new MxSiteRuleStore(pool),
    mxReplyRules: new MxReplyRuleStore(pool),
    mxSites: new MxSiteStore(pool),
    denylist: new DenylistStore(pool),
    proofs: new ProofStore(pool),
    inbound: new InboundStore(pool, opts.quarantinePolicy),
    quarantine: new QuarantineStore(pool),
    apiKeys: new ApiKeyStore(pool),
    audit: new AuditLogStore(pool),
    idempotency: new IdempotencyStore(pool, opts.idempotency ?? { ttlSeconds: 24 * 3600, leaseSeconds: 30 }),
    webhooks: new WebhookStore(pool, new KeyCipher(opts.keyEncryptionSecret)),
  };
}
