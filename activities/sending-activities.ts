/** Activities of the recipient workflow: DKIM-sign the rebuilt message, send it, and record what happened. */
import { ApplicationFailure } from '@temporalio/activity';
import type { ActivityDependencies } from './dependencies';
import type { SigningKey } from '../db/dkim-key-store';
import { signMessage, DkimSigningError } from '../mail/dkim-signer';
import { transitionAfterAttempt, type EfsStatus } from '../domain/efs-status';
import type { FailureReason, FailureType, RetryClass } from '../domain/failure';
import type { SmtpReply } from '../domain/smtp-reply';
import { nextRetryAt } from '../domain/retry-schedule';
import type { AttemptOutcome } from '../db/delivery-log';

export interface SendInput {
  deliveryId: string;
  recipientId: number;
  /** 1 for the first attempt; the same number on every activity retry of that attempt. */
  attempt: number;
  /** DKIM-Signature header block from signRecipientMessage. */
  dkimSignature: string;
  retryWindowEndsAt: number;
}

/** What an attempt did: small, so it can sit in the workflow history. */
export interface SendOutcome {
  attempt: number;
  outcome: AttemptOutcome;
  status: EfsStatus;
  failureType: FailureType | null;
  failureReason: FailureReason | null;
  retryClass: RetryClass | null;
  reply: SmtpReply;
  /** Epoch ms of the next retry (soft bounces inside the retry window), else null. */
  nextRetryAt: number | null;
  /** The same as a delay from the moment the outcome was recorded, for the workflow's durable timer. */
  retryInMs: number | null;
  /** True when this result was read back from the log instead of sent now (activity retry after a crash). */
  replayed: boolean;
}

const KEY_CACHE_MS = 60_000;

export function createSendingActivities(deps: ActivityDependencies) {
  const keyCache = new Map<string, { at: number; keys: SigningKey[] }>();
  async function keysFor(domain: string): Promise<SigningKey[]> {
    const hit = keyCache.get(domain);
    if (hit && Date.now() - hit.at < KEY_CACHE_MS) return hit.keys;
    const keys = await deps.keys.signingKeys(domain);
    keyCache.set(domain, { at: Date.now(), keys });
    return keys;
  }

  return {
    /** Builds the recipient's message and returns only its DKIM signature; the body never enters the history. */
    async signRecipientMessage(input: { deliveryId: string; recipientId: number }): Promise<{ dkimSignature: string; messageId: string }> {
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

    /** One SMTP attempt, recorded before and after, never repeated once the receiver accepted the message. */
    async sendRecipientMessage(input: SendInput): Promise<SendOutcome> {
      const msg = await deps.messages.build(input.deliveryId, input.recipientId);
      const known = await deps.log.beginAttempt(input.deliveryId, input.recipientId, input.attempt, msg.messageId);
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
          retryInMs: row!.nextRetryAt ? Math.max(0, row!.nextRetryAt.getTime() - Date.now()) : null,
          replayed: true,
        };
      }
      const reply = await deps.sender.send(
        { from: msg.verp, to: msg.address, domain: msg.domain },
        Buffer.concat([Buffer.from(input.dkimSignature, 'utf8'), msg.raw]),
      );
      const accepted = reply.code >= 200 && reply.code < 300;
      const qualification = accepted ? null : deps.qualify(reply, msg.domain);
      const now = Date.now();
      const retryAt =
        qualification && qualification.type === 'soft'
          ? nextRetryAt(qualification.retryClass, input.attempt, now, input.retryWindowEndsAt, deps.random(), deps.settings.RETRY_TIME_SCALE)
          : null;
      const t = transitionAfterAttempt(accepted ? { accepted: true } : { accepted: false, qualification: qualification! }, retryAt !== null);
      const outcome: AttemptOutcome = accepted ? 'accepted' : qualification!.type;
      await deps.log.completeAttempt({
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
      });
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
      };
    },
  };
}
