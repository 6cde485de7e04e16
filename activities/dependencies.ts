/** What activities need from the outside world, built once per worker process and injected (tests build their own). */
import type { Pool } from 'pg';
import { DeliveryLog } from '../db/delivery-log';
import { DeliveryStore } from '../db/delivery-store';
import { DkimKeyStore } from '../db/dkim-key-store';
import { KeyCipher } from '../mail/dkim-keys';
import { MessageContext } from '../mail/message-context';
import { MxResolver } from '../mail/mx-resolver';
import { SmtpSender } from '../mail/smtp-sender';
import type { Settings } from '../config/settings';
import type { Secrets } from '../config/secrets';
import type { Qualification } from '../domain/failure';
import type { SmtpReply } from '../domain/smtp-reply';
import { QualificationRuleStore } from '../db/qualification-rule-store';
import { QualificationRulesCache } from './qualification-rules-cache';
import { SiteBackoffStore } from '../db/site-backoff-store';

export interface ActivityDependencies {
  pool: Pool;
  store: DeliveryStore;
  log: DeliveryLog;
  keys: DkimKeyStore;
  messages: MessageContext;
  sender: SmtpSender;
  qualify(reply: SmtpReply, recipientDomain: string): Qualification;
  /** The rules `qualify` uses, from Postgres; the worker's host calls `rules.start()` (refresh timer) and `rules.stop()`. */
  rules: QualificationRulesCache;
  /** Receiving sites backed off after throttling, shared by every worker through Postgres. */
  siteBackoff: SiteBackoffStore;
  settings: Settings;
  secrets: Secrets;
  /** Source of jitter for retry delays (injectable for tests). */
  random(): number;
}

export function publicUrl(s: Settings): string {
  return s.PUBLIC_URL ?? `http://127.0.0.1:${s.API_PORT}`;
}

export function createActivityDependencies(pool: Pool, settings: Settings, secrets: Secrets): ActivityDependencies {
  const rules = new QualificationRulesCache(new QualificationRuleStore(pool));
  const resolver = new MxResolver({ overrides: settings.MX_OVERRIDES, dnsServers: settings.DNS_SERVERS });
  return {
    pool,
    store: new DeliveryStore(pool),
    log: new DeliveryLog(pool),
    keys: new DkimKeyStore(pool, new KeyCipher(secrets.keyEncryptionSecret)),
    messages: new MessageContext(pool, { publicUrl: publicUrl(settings), bounceDomain: settings.BOUNCE_DOMAIN, verpSecret: secrets.verpSecret }),
    sender: new SmtpSender({
      mode: settings.SEND_MODE,
      resolver,
      heloName: settings.SMTP_HELO_NAME,
      connectTimeoutMs: settings.SMTP_CONNECT_TIMEOUT_MS,
      greetingTimeoutMs: settings.SMTP_GREETING_TIMEOUT_MS,
      socketTimeoutMs: settings.SMTP_SOCKET_TIMEOUT_MS,
      maxConnectionsPerHost: settings.SMTP_POOL_MAX_CONNECTIONS,
      maxMessagesPerConnection: settings.SMTP_POOL_MAX_MESSAGES,
      relay: settings.SMTP_RELAY_HOST
        ? {
            host: settings.SMTP_RELAY_HOST,
            port: settings.SMTP_RELAY_PORT,
            user: settings.SMTP_RELAY_USER,
            password: settings.SMTP_RELAY_PASSWORD,
            verifyTls: settings.SMTP_RELAY_TLS_VERIFY,
          }
        : undefined,
    }),
    qualify: rules.qualify,
    rules,
    siteBackoff: new SiteBackoffStore(pool),
    settings,
    secrets,
    random: Math.random,
  };
}
