/** Activities of the recipient workflow: DKIM-sign the rebuilt message, send it, and record what happened. */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { ActivityDependencies } from './dependencies';
import type { SigningKey } from '../mail/dkim/keys';
import { signMessage, DkimSigningError } from '../mail/dkim/signer';
import { transitionAfterAttempt, transitionAfterRelayAccepted, type AttemptOutcome } from '../domain/efs-status';
import type { DeliveryPhase } from '../domain/delivery-lifecycle';
import { quarantineEffect } from '../domain/quarantine-policy';
import { nextRetryAt } from '../domain/retry-schedule';
import type { ConfirmedRecipient, RecipientActivities, SendInput, SendOutcome } from '../workflows/contract';

const KEY_CACHE_MS = 60_000;
// A pause must take effect within about a second on every worker, without a query per message.
const PHASE_CACHE_MS = 1_000;
const PAUSED_RECHECK_MS = 5_000;
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
    async sendRecipientMessage(input: SendInput): Promise<SendOutcome> {
      const startedAt = Date.now();
      // Pause stops new messages, not retries already planned (their timers keep running and they are sent).
      if (input.attempt === 1 && (await deliveryPhase(input.deliveryId)) === 'paused') return deferred('delivery paused', PAUSED_RECHECK_MS);
      const msg = await heartbeating(deps.messages.build(input.deliveryId, input.recipientId));
      // A site that throttled us is left alone until its back-off ends, by every worker; this is not an attempt.
      const backoff = await deps.siteBackoff.current(msg.domain);
      const clock = () => input.workflowNowMs + (Date.now() - startedAt);
      if (backoff.untilMs > clock() && backoff.untilMs < input.retryWindowEndsAt) {
        // Spread the held messages over a few seconds after the back-off so they do not all return at once.
        return deferred(`receiving site ${msg.domain} is backed off after throttling`, backoff.untilMs - clock() + Math.round(deps.random() * 6_000));
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
          retryInMs: row!.nextRetryAt ? Math.max(0, row!.nextRetryAt.getTime() - input.workflowNowMs) : null,
          replayed: true,
          awaitingReport: known.outcome === 'accepted' && row!.relayedAt !== null,
        };
      }
      const reply = await heartbeating(
        deps.sender.send({ from: msg.verp, to: msg.address, domain: msg.domain, envelopeId: envelopeIdOf(msg.verp) }, Buffer.concat([Buffer.from(input.dkimSignature, 'utf8'), msg.raw])),
      );
      const accepted = reply.code >= 200 && reply.code < 300;
      const qualification = accepted ? null : deps.qualify(reply, msg.domain);
      // Time spent in this activity counts: the attempt ends at workflow time + elapsed real time.
      const now = clock();
      if (qualification?.retryClass === 'throttling') await deps.siteBackoff.throttled(msg.domain, reply.text, deps.settings.RETRY_TIME_SCALE, now);
      else if (accepted) await deps.siteBackoff.recovered(msg.domain, now);
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
      await heartbeating(deps.log.completeAttempt({
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
      }));
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
    },
  };
}
