/** What activities need from the outside world, built once per worker process from the stores and injected (tests build their own). */
import type { Stores } from '../db/stores';
import { MessageContext } from './message-context';
import { MxResolver } from '../mail/mx/resolver';
import { SmtpSender } from '../mail/smtp/sender';
import type { Settings } from '../config/settings';
import type { Secrets } from '../config/secrets';
import type { Qualification } from '../domain/failure';
import type { SmtpReply } from '../domain/smtp-reply';
import { QualificationRulesCache } from './qualification-rules-cache';

/** The stores (the same objects the API uses) and the services that reach past Postgres. */
export interface ActivityDependencies extends Stores {
  messages: MessageContext;
  sender: SmtpSender;
  qualify(reply: SmtpReply, recipientDomain: string): Qualification;
  /** The rules `qualify` uses, from Postgres; the worker's host calls `rules.start()` (refresh timer) and `rules.stop()`. */
  rules: QualificationRulesCache;
  settings: Settings;
  secrets: Secrets;
  /** Source of jitter for retry delays (injectable for tests). */
  random(): number;
}

/** Base of the one-click unsubscribe URLs in List-Unsubscribe headers. */
export function publicUrl(s: Settings): string {
  return s.PUBLIC_URL ?? `http://127.0.0.1:${s.API_PORT}`;
}

export function createActivityDependencies(stores: Stores, settings: Settings, secrets: Secrets): ActivityDependencies {
  const rules = new QualificationRulesCache(stores.qualificationRules);
  const resolver = new MxResolver({ overrides: settings.MX_OVERRIDES, dnsServers: settings.DNS_SERVERS });
  return {
    ...stores,
    messages: new MessageContext(stores, { publicUrl: publicUrl(settings), bounceDomain: settings.BOUNCE_DOMAIN, verpSecret: secrets.verpSecret }),
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
    settings,
    secrets,
    random: Math.random,
  };
}
