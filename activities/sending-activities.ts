/** Activities of the recipient workflow: DKIM-sign the rebuilt message, send it, and record what happened. */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { ApplicationFailureCategory } from '@temporalio/common';
import type { ActivityDependencies } from './dependencies';
import type { SigningKey } from '../mail/dkim/keys';
import { signMessage, DkimSigningError } from '../mail/dkim/signer';
import { transitionAfterAttempt, transitionAfterRelayAccepted, type AttemptOutcome } from '../domain/efs-status';
import type { DeliveryPhase } from '../domain/delivery-lifecycle';
import { quarantineEffect } from '../domain/quarantine-policy';
import { nextRetryAt } from '../domain/retry-schedule';
import type { Qualification } from '../domain/failure';
import type { SmtpReply } from '../domain/smtp-reply';
import { dnsReply } from '../mail/smtp/sender';
import type { Admission, SitePermit, SiteReservation } from '../mail/mx/site-budget';
import { whileDatabaseUnavailable } from '../db/database-unavailable';
import type { ConfirmedRecipient, RecipientActivities, SendInput, SendOutcome } from '../workflows/contract';

const KEY_CACHE_MS = 60_000;
// A pause must take effect within about a second on every worker, without a query per message.
const PHASE_CACHE_MS = 1_000;
const PAUSED_RECHECK_MS = 5_000;
/** How long an attempt keeps trying to record its outcome while Postgres is unreachable (well within both activities' 5 minutes). */
const RECORD_OUTCOME_FOR_MS = 60_000;
/** Well under the send activity's heartbeat timeout (30 s); the SDK throttles what actually reaches the server. */
const HEARTBEAT_EVERY_MS = 5_000;

/**
 * Heartbeats while `work` runs (a wait for a pooled SMTP connection, the SMTP transaction, a log write), so that
 * Temporal retries the attempt soon after its worker dies, and never while it is alive and still sending.
 * Outside an activity (direct calls in tests) it just awaits.
 */
async function heartbeating<T>(work: Promise<T>): Promise<T> {
  let ctx: Context;
  try {
    ctx = Context.current();
  } catch {
    return work;
  }
  // A local activity has no heartbeat: its workflow task timing out is what notices a dead worker.
  if (ctx.info.isLocal) return work;
  ctx.heartbeat();
  const timer = setInterval(() => ctx.heartbeat(), HEARTBEAT_EVERY_MS);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}

/** The ENVID of a message: the local part of its VERP return path, which carries the same HMAC (domain/verp.ts). */
function envelopeIdOf(verp: string): string {
  return verp.slice(0, verp.lastIndexOf('@'));
}

/** The message's site has no budget for it before its retry window ends: final, recorded without an SMTP transaction. */
const BUDGET_EXPIRED: Qualification = Object.freeze({ type: 'soft', reason: 'unreachable', retryClass: 'none', ruleId: 'site-budget-expired' });

/** Thrown by the regular send activity while its site has no budget: the server retries it at the slot (no history event). */
export const SITE_BUDGET_WAIT = 'SiteBudgetWait';

/** Nothing was sent and no attempt is counted: the workflow waits `inMs` and tries the same attempt again. */
function deferred(why: string, inMs: number): SendOutcome {
  return {
    attempt: 0,
    outcome: 'deferred',
    status: 'taken_into_account',
    failureType: null,
    failureReason: null,
    retryClass: null,
    reply: { code: 0, enhancedCode: null, text: why, mxHost: null },
    nextRetryAt: null,
    retryInMs: Math.max(1, inMs),
    replayed: false,
  };
}

export function createSendingActivities(deps: ActivityDependencies): RecipientActivities {
  const keyCache = new Map<string, { at: number; keys: SigningKey[] }>();
  async function keysFor(domain: string): Promise<SigningKey[]> {
    const hit = keyCache.get(domain);
    if (hit && Date.now() - hit.at < KEY_CACHE_MS) return hit.keys;
    const keys = await deps.keys.signingKeys(domain);
    keyCache.set(domain, { at: Date.now(), keys });
    return keys;
  }

  const phaseCache = new Map<string, { at: number; phase: DeliveryPhase | null }>();
  async function deliveryPhase(deliveryId: string): Promise<DeliveryPhase | null> {
    const hit = phaseCache.get(deliveryId);
    if (hit && Date.now() - hit.at < PHASE_CACHE_MS) return hit.phase;
    const phase = await deps.deliveries.phase(deliveryId);
    if (phaseCache.size > 1000) phaseCache.clear();
    phaseCache.set(deliveryId, { at: Date.now(), phase });
    return phase;
  }

  return {
    /** Builds the recipient's message and returns only its DKIM signature; the body never enters the history. */
    async signRecipientMessage(input) {
      const msg = await deps.messages.build(input.deliveryId, input.recipientId);
      try {
        const dkimSignature = await signMessage(msg.raw, await keysFor(msg.fromDomain), new Date());
        return { dkimSignature, messageId: msg.messageId };
      } catch (e) {
        // A missing or broken key will not fix itself by retrying the same second; fail the activity for a person to see.
        if (e instanceof DkimSigningError) throw ApplicationFailure.nonRetryable(e.message, 'DkimSigningError');
        throw e;
      }
    },

    /** Relay mode, no report by the end of the confirmation window: the recipient counts as sent, recorded as such. */
    async confirmAfterReportWindow({ deliveryId, recipientId }): Promise<ConfirmedRecipient> {
      const { row, confirmed } = await deps.log.confirmAfterReportWindow(deliveryId, recipientId);
      if (!row) throw ApplicationFailure.nonRetryable(`no recipient ${recipientId} in delivery ${deliveryId}`, 'RecipientNotFound');
      return { status: row.status, failureType: row.failureType, failureReason: row.failureReason, confirmedByWindow: confirmed };
    },

    /** One SMTP attempt, recorded before and after, never repeated once the receiver accepted the message. */
    sendRecipientMessage(input: SendInput): Promise<SendOutcome> {
      return attempt(input, false);
    },

    /**
     * The same attempt as a regular activity, for a message whose site had no budget within the local activity's wait:
     * while the site still has none it fails with a retryable SiteBudgetWait whose nextRetryDelay is the time to its
     * reserved slot, so the server holds it (no workflow task, no history event, no polling loop).
     */
    sendRecipientMessageWhenSiteAllows(input: SendInput): Promise<SendOutcome> {
      return attempt(input, true);
    },
  };

  async function attempt(input: SendInput, remote: boolean): Promise<SendOutcome> {
    const startedAt = Date.now();
    const info = remote ? Context.current().info : null;
    // The engine clock: the workflow's when it scheduled this attempt, or the server's when it scheduled this retry of
    // the regular activity (a time-skipping test server moves both), plus the time spent here.
    const base = info && info.currentAttemptScheduledTimestampMs > 0 ? Math.max(input.workflowNowMs, info.currentAttemptScheduledTimestampMs) : input.workflowNowMs;
    const clock = () => base + (Date.now() - startedAt);
    /** The regular activity waits server-side: a retryable failure with the delay, the reservation kept in its heartbeat. */
    const waitServerSide = (why: string, inMs: number, reservation: SiteReservation | null): never => {
      Context.current().heartbeat({ reservation });
      // BENIGN: an expected wait, logged by the SDK at debug level, not as a failed activity.
      throw ApplicationFailure.create({
        type: SITE_BUDGET_WAIT,
        message: why,
        nextRetryDelay: Math.max(1, Math.round(inMs)),
        details: [{ reservation }],
        category: ApplicationFailureCategory.BENIGN,
      });
    };
    // Pause stops new messages, not retries already planned (their timers keep running and they are sent).
    if (input.attempt === 1 && (await deliveryPhase(input.deliveryId)) === 'paused') {
      if (remote) waitServerSide('delivery paused', PAUSED_RECHECK_MS, null);
      return deferred('delivery paused', PAUSED_RECHECK_MS);
    }
    const msg = await heartbeating(deps.messages.build(input.deliveryId, input.recipientId));
    const site = await heartbeating(deps.sender.sites.resolve(msg.domain));
    const dns = dnsReply(site);
    let permit: SitePermit | null = null;
    let expired: string | null = null;
    if (!dns) {
      // Every worker shares the site's connections and rate (mail/mx/site-budget.ts); waiting for them is not an attempt.
      const carried = (info?.heartbeatDetails as { reservation?: SiteReservation | null } | undefined)?.reservation;
      const adm: Admission = await heartbeating(
        deps.sender.budget.admit(site, {
          engineNowMs: clock(),
          maxWaitMs: remote ? deps.settings.MX_REMOTE_WAIT_MS : deps.settings.MX_LOCAL_WAIT_MS,
          latestMs: input.retryWindowEndsAt,
          reservation: carried ?? input.reservation ?? null,
        }),
      );
      if (adm.kind === 'wait') {
        if (remote) waitServerSide(adm.reason, adm.retryInMs, adm.reservation);
        return { ...deferred(adm.reason, adm.retryInMs), siteWait: { site: site.site, reason: adm.reason, reservation: adm.reservation } };
      }
      if (adm.kind === 'expired') expired = adm.reason;
      else permit = adm.permit;
    }
    let reply: SmtpReply;
    // From here on the permit holds one of the site's connections: every way out of this block gives it back. (A
    // Postgres outage failing the phase read below once kept it: the site's lanes leaked one by one until it sent
    // nothing more, docs/fault-suite.md.)
    try {
      // The delivery may have been paused while the message waited for its slot: a first attempt does not start then.
      if (!dns && input.attempt === 1 && (await deliveryPhase(input.deliveryId)) === 'paused') {
        if (remote) waitServerSide('delivery paused', PAUSED_RECHECK_MS, null);
        return deferred('delivery paused', PAUSED_RECHECK_MS);
      }
      const known = await heartbeating(deps.log.beginAttempt(input.deliveryId, input.recipientId, input.attempt, msg.messageId));
      if (known && known.outcome !== 'in_progress') {
        const row = await deps.log.recipient(input.deliveryId, input.recipientId);
        return {
          attempt: known.attempt,
          outcome: known.outcome,
          status: row!.status,
          failureType: row!.failureType,
          failureReason: row!.failureReason,
          retryClass: known.retryClass,
          reply: known.reply!,
          nextRetryAt: row!.nextRetryAt ? row!.nextRetryAt.getTime() : null,
          retryInMs: row!.nextRetryAt ? Math.max(0, row!.nextRetryAt.getTime() - clock()) : null,
          replayed: true,
          awaitingReport: known.outcome === 'accepted' && row!.relayedAt !== null,
        };
      }
      reply =
        dns ??
        (expired !== null
          ? { code: 0, enhancedCode: '4.4.7', text: `not sent: ${expired}`, mxHost: null, command: 'BUDGET' }
          : await heartbeating(
              deps.sender.sendWith(
                permit!,
                { from: msg.verp, to: msg.address, domain: msg.domain, envelopeId: envelopeIdOf(msg.verp) },
                Buffer.concat([Buffer.from(input.dkimSignature, 'utf8'), msg.raw]),
              ),
            ));
    } finally {
      // The connection goes to the next message at once; what follows is bookkeeping.
      permit?.release();
    }
    const accepted = reply.code >= 200 && reply.code < 300;
    const qualification = accepted ? null : expired !== null ? BUDGET_EXPIRED : deps.qualify(reply, msg.domain);
    // Time spent in this activity counts: the attempt ends at workflow time + elapsed real time.
    const now = clock();
    // The reply rules may slow the site down or suspend it for every worker (recorded with this reply as the cause).
    // Advisory: a failure to record it (Postgres unreachable) must not fail an attempt whose message has gone out.
    if (permit) {
      await deps.sender.budget.observe(site, reply, qualification?.retryClass ?? null, now).catch((e) =>
        console.error(JSON.stringify({ msg: 'site reply not recorded', site: site.site, error: String((e as Error)?.message ?? e) })),
      );
    }
    // The retry class, not the type, decides whether this message is tried again (domain/efs-status.ts).
    const retryAt =
      qualification && qualification.retryClass !== 'none'
        ? nextRetryAt(qualification.retryClass, input.attempt, now, input.retryWindowEndsAt, deps.random(), deps.settings.RETRY_TIME_SCALE)
        : null;
    // Relay mode: the smart host is the MTA, its 250 is not "sent" (design: "Who said sent?").
    const relayed = accepted && deps.settings.SEND_MODE === 'relay';
    const t = relayed
      ? transitionAfterRelayAccepted()
      : transitionAfterAttempt(accepted ? { accepted: true } : { accepted: false, qualification: qualification! }, retryAt !== null);
    const outcome: AttemptOutcome = accepted ? 'accepted' : qualification!.type;
    // The message is out: its outcome is recorded even across a short Postgres outage. Failing here would run the
    // attempt again, and an accepted message would be sent twice (docs/idempotency.md).
    await heartbeating(whileDatabaseUnavailable(() => deps.log.completeAttempt({
      deliveryId: input.deliveryId,
      recipientId: input.recipientId,
      attempt: input.attempt,
      outcome,
      reply,
      ruleId: qualification?.ruleId ?? null,
      retryClass: qualification?.retryClass ?? null,
      status: t.status,
      failureType: t.failureType,
      failureReason: t.failureReason,
      nextRetryAt: t.retry && retryAt ? new Date(retryAt) : null,
      quarantine: quarantineEffect(t),
      relayed,
    }), RECORD_OUTCOME_FOR_MS));
    // A retry, if any, is minutes away and rebuilds the same bytes; holding them meanwhile only grows the heap (a
    // 10,000-recipient run kept 5,000 messages alive, docs/benchmarks.md "cost curve").
    deps.messages.forget(input.deliveryId, input.recipientId);
    return {
      attempt: input.attempt,
      outcome,
      status: t.status,
      failureType: t.failureType,
      failureReason: t.failureReason,
      retryClass: qualification?.retryClass ?? null,
      reply,
      nextRetryAt: t.retry ? retryAt : null,
      retryInMs: t.retry && retryAt ? Math.max(0, retryAt - now) : null,
      replayed: false,
      awaitingReport: relayed,
    };
  }
}
