/**
 * What happens to a message received at the bounce domain, whichever way it came (the SMTP listener, POST
 * /api/inbound): kept, qualified, attributed to a delivery's recipient, applied to the delivery log, and signalled to
 * the recipient's workflow when it is still open. Unattributable messages go to the review table, never dropped.
 */
import type { InboundStore, InboundChannel, Attribution, FeedbackEffect, RecipientAfter } from '../db/inbound-store';
import { decodeVerp, type VerpIdentity } from '../domain/verp';
import type { InboundClassification, InboundRecipientResult } from '../mail/inbound/inbound-classification';
import type { RecipientFeedback } from '../workflows/contract';

export interface InboundEnvelope {
  channel: InboundChannel;
  /** MAIL FROM (empty for bounces: the null sender). */
  envelopeFrom: string | null;
  /** RCPT TO addresses the listener accepted; empty for POST /api/inbound. */
  envelopeTo: string[];
  remoteAddress: string | null;
}

export interface InboundOutcome {
  id: string;
  duplicate: boolean;
  kind: InboundClassification['kind'];
  attribution: Attribution | null;
  deliveryId: string | null;
  recipientId: number | null;
  /** What the message said about the attributed recipient and what it changed. */
  feedback: (InboundRecipientResult & { effect: FeedbackEffect; after: RecipientAfter | null; quarantined: boolean }) | null;
  /** Set when the message went to the review table. */
  review: string | null;
}

export interface InboundProcessorDeps {
  inbound: InboundStore;
  classify: (raw: Buffer) => Promise<InboundClassification>;
  verpSecret: string;
  bounceDomain: string;
  /** Tells an open recipient workflow (recipientFeedbackSignal); resolves false when it is closed or unknown. */
  signalRecipient: (deliveryId: string, recipientId: number, feedback: RecipientFeedback) => Promise<boolean>;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

// A VERP local part as domain/verp.ts writes it; the HMAC is checked by decodeVerp, so a match is only a candidate.
const VERP_CANDIDATE = /\bb-[0-9a-f]{32}-[0-9a-z]{1,12}-[0-9a-f]{20}@[a-z0-9.-]+/gi;
const ENVID = /^b-[0-9a-f]{32}-[0-9a-z]{1,12}-[0-9a-f]{20}$/i;
/** Header and report text searched for VERP addresses: a return path is in the first kilobytes of a returned message. */
const SCAN_LIMIT = 512 * 1024;

export class InboundProcessor {
  constructor(private readonly deps: InboundProcessorDeps) {}

  /** The identity a VERP address carries, if it is ours and its HMAC is right. */
  verp(address: string): VerpIdentity | null {
    return decodeVerp(address, this.deps.verpSecret, this.deps.bounceDomain);
  }

  async process(raw: Buffer, envelope: InboundEnvelope): Promise<InboundOutcome> {
    const classification = await this.deps.classify(raw);
    const stored = await this.deps.inbound.store({ ...envelope, raw, classification });
    const base = { id: stored.id, duplicate: stored.duplicate, kind: classification.kind };
    const found = await this.attribute(raw, envelope, classification);
    if (!found) {
      const why = classification.recipients.length === 0 ? 'no recipient reported and no VERP address, ENVID or known Message-ID' : 'no VERP address, ENVID or known Message-ID';
      if (!stored.duplicate) await this.deps.inbound.toReview(stored.id, why);
      return { ...base, attribution: null, deliveryId: null, recipientId: null, feedback: null, review: why };
    }
    const { how, identity } = found;
    if (!stored.duplicate) await this.deps.inbound.attribute(stored.id, how, identity.deliveryId, identity.recipientId);
    const result = await this.resultFor(classification, identity);
    const applied = await this.deps.inbound.applyFeedback(stored.id, identity.deliveryId, identity.recipientId, result, classification.feedbackType);
    if (applied.after && !stored.duplicate) {
      const signalled = await this.deps.signalRecipient(identity.deliveryId, identity.recipientId, {
        receivedAtMs: Date.now(),
        type: result.type,
        reason: result.reason,
        action: result.action,
        status: result.status,
        remoteMta: result.remoteMta,
        after: applied.after,
        inboundMessageId: stored.id,
      });
      this.deps.log?.('inbound feedback applied', { id: stored.id, type: result.type, effect: applied.effect, signalled });
    }
    return {
      ...base,
      attribution: how,
      deliveryId: identity.deliveryId,
      recipientId: identity.recipientId,
      feedback: { ...result, effect: applied.effect, after: applied.after, quarantined: applied.quarantined },
      review: null,
    };
  }

  /**
   * The recipient a message is about: the VERP address it was sent to (the envelope, or one quoted in the report or
   * the returned headers, which the HMAC makes as good), then the DSN's Original-Envelope-Id (our ENVID is the VERP
   * local part), then the original Message-ID.
   */
  private async attribute(raw: Buffer, envelope: InboundEnvelope, c: InboundClassification): Promise<{ how: Attribution; identity: VerpIdentity } | null> {
    for (const to of envelope.envelopeTo) {
      const id = this.verp(to);
      if (id) return { how: 'verp', identity: id };
    }
    const candidates = [c.originalReturnPath, ...(raw.subarray(0, SCAN_LIMIT).toString('latin1').match(VERP_CANDIDATE) ?? [])];
    for (const candidate of candidates) {
      const id = candidate ? this.verp(candidate) : null;
      if (id && (await this.deps.inbound.recipientExists(id.deliveryId, id.recipientId))) return { how: 'verp', identity: id };
    }
    const envid = c.originalEnvelopeId?.trim();
    if (envid && ENVID.test(envid)) {
      const id = this.verp(`${envid}@${this.deps.bounceDomain}`);
      if (id && (await this.deps.inbound.recipientExists(id.deliveryId, id.recipientId))) return { how: 'envid', identity: id };
    }
    if (c.originalMessageId) {
      const id = await this.deps.inbound.recipientByMessageId(c.originalMessageId);
      if (id) return { how: 'message_id', identity: id };
    }
    return null;
  }

  /**
   * The result about the attributed recipient: the one whose address matches when the message reports several,
   * else the first that is not ignored, else the first; a message that reports nobody is qualified as a whole.
   */
  private async resultFor(c: InboundClassification, id: VerpIdentity): Promise<InboundRecipientResult> {
    if (c.recipients.length === 1) return c.recipients[0];
    if (c.recipients.length > 1) {
      const address = (await this.deps.inbound.recipientAddress(id.deliveryId, id.recipientId))?.toLowerCase();
      return (
        c.recipients.find((r) => r.recipient === address || r.originalRecipient === address) ??
        c.recipients.find((r) => r.type !== 'ignored') ??
        c.recipients[0]
      );
    }
    const type = c.kind === 'arf' ? 'complaint' : 'ignored';
    return { recipient: null, originalRecipient: null, action: null, type, reason: type === 'ignored' ? 'error_ignored' : null, status: null, replyCode: null, diagnosticCode: null, remoteMta: null, rule: `kind:${c.kind}` };
  }
}
