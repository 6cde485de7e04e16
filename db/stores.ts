/** Every Postgres store of the engine, built once per process from one pool and handed to both the API and the activities. */
import type { Pool } from 'pg';
import { KeyCipher } from '../mail/dkim/key-cipher';
import type { QuarantinePolicy } from '../domain/quarantine-policy';
import { DeliveryAnalysisStore } from './delivery-analysis';
import { DeliveryLog } from './delivery-log';
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
import { SiteBackoffStore } from './site-backoff-store';

export interface Stores {
  /** The deliveries table: creation with the population, phase, draft edits, analysis report. */
  deliveries: DeliveryStore;
  /** One EFS row per recipient, transitions, SMTP attempts, KPIs, quarantine counts. */
  log: DeliveryLog;
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
  /** Receiving sites backed off after throttling, shared by every worker. */
  siteBackoff: SiteBackoffStore;
  /** Addresses never to be mailed again. */
  denylist: DenylistStore;
  /** Proofs sent before confirmation. */
  proofs: ProofStore;
  /** Messages received at the bounce domain and the feedback they carry. */
  inbound: InboundStore;
  /** Quarantined addresses and the denylist, as analysis sees them. */
  quarantine: QuarantineStore;
}

export interface StoreOptions {
  /** Secret from which the key that encrypts DKIM private keys at rest is derived. */
  keyEncryptionSecret: string;
  /** When addresses are quarantined (default: DEFAULT_QUARANTINE_POLICY). */
  quarantinePolicy?: QuarantinePolicy;
}

export function createStores(pool: Pool, opts: StoreOptions): Stores {
  return {
    deliveries: new DeliveryStore(pool),
    log: new DeliveryLog(pool, opts.quarantinePolicy),
    analysis: new DeliveryAnalysisStore(pool),
    lists: new RecipientListStore(pool),
    templates: new DeliveryTemplateStore(pool),
    keys: new DkimKeyStore(pool, new KeyCipher(opts.keyEncryptionSecret)),
    qualificationRules: new QualificationRuleStore(pool),
    inboundRules: new InboundRuleStore(pool),
    siteBackoff: new SiteBackoffStore(pool),
    denylist: new DenylistStore(pool),
    proofs: new ProofStore(pool),
    inbound: new InboundStore(pool, opts.quarantinePolicy),
    quarantine: new QuarantineStore(pool),
  };
}
