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
import { MxRulesCache } from '../mail/mx/mx-rules-cache';
import { BUNDLED_MX_REPLY_RULES, BUNDLED_MX_SITE_RULES } from '../db/mx-rule-store';
import type { SafetyStopPolicy } from '../domain/safety-stop';

/** The stores (the same objects the API uses) and the services that reach past Postgres. */
export interface ActivityDependencies extends Stores {
  messages: MessageContext;
  sender: SmtpSender;
  qualify(reply: SmtpReply, recipientDomain: string): Qualification;
  /** The rules `qualify` uses, from Postgres; the worker's host calls `rules.start()` (refresh timer) and `rules.stop()`. */
  rules: QualificationRulesCache;
  /** The MX site and reply rules the sender's site budget uses (reloaded when edited). */
  mxRules: MxRulesCache;
  /** The delivery safety stop's thresholds; null when it is off. */
  safetyStop: SafetyStopPolicy | null;
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
  const mxRules = new MxRulesCache(
    { siteRules: stores.mxSiteRules, replyRules: stores.mxReplyRules },
    { siteRules: BUNDLED_MX_SITE_RULES, replyRules: BUNDLED_MX_REPLY_RULES },
    { refreshMs: settings.MX_RULES_REFRESH_SECONDS * 1000 },
  );
  // Adaptive durations shrink with the retry delays (tests and the sandbox demo run minutes in seconds).
  const scale = settings.RETRY_TIME_SCALE;
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
      relay: settings.SMTP_RELAY_HOST
        ? {
            host: settings.SMTP_RELAY_HOST,
            port: settings.SMTP_RELAY_PORT,
            user: settings.SMTP_RELAY_USER,
            password: settings.SMTP_RELAY_PASSWORD,
            verifyTls: settings.SMTP_RELAY_TLS_VERIFY,
          }
        : undefined,
      rules: mxRules,
      siteStore: stores.mxSites,
      budget: {
        leaseTtlMs: settings.MX_LEASE_TTL_SECONDS * 1000,
        idleCloseMs: settings.MX_CONNECTION_IDLE_SECONDS * 1000,
        perProcessMaxConnections: settings.SMTP_POOL_MAX_CONNECTIONS,
        perProcessMaxMessages: settings.SMTP_POOL_MAX_MESSAGES,
        lateToleranceMs: settings.MX_LATE_TOLERANCE_MS,
        reportEveryMs: settings.MX_REPORT_SECONDS * 1000,
        stateCacheMs: 1_000,
        suspendedRecheckMs: settings.MX_SUSPENDED_RECHECK_SECONDS * 1000,
        adaptive: {
          cooldownMs: settings.MX_SLOWDOWN_COOLDOWN_SECONDS * 1000 * scale,
          quietMs: settings.MX_RECOVERY_QUIET_SECONDS * 1000 * scale,
          minPerSecond: settings.MX_MIN_PER_SECOND,
        },
        timeScale: scale,
      },
    }),
    qualify: rules.qualify,
    rules,
    mxRules,
    safetyStop: settings.SAFETY_STOP_ENABLED
      ? { minAttempts: settings.SAFETY_STOP_MIN_ATTEMPTS, hardBounceRate: settings.SAFETY_STOP_HARD_BOUNCE_RATE, refusalRate: settings.SAFETY_STOP_REFUSAL_RATE }
      : null,
    settings,
    secrets,
    random: Math.random,
  };
}
