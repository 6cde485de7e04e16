/** Everything needed to (re)build one recipient's message, read through the stores, with the delivery's compiled templates cached. */
import { compileMessage, type CompiledMessage } from '../domain/message-template';
import { encodeVerp } from '../domain/verp';
import type { DeliveryRow } from '../db/delivery-store';
import type { Stores } from '../db/stores';
import { buildMessage, stableMessageId } from '../mail/mime/message-builder';
import { oneClickUnsubscribeUrl, unsubscribeToken } from '../mail/list-unsubscribe/one-click';

export interface RecipientMessage {
  deliveryId: string;
  recipientId: number;
  address: string;
  domain: string;
  messageId: string;
  fromDomain: string;
  verp: string;
  raw: Buffer;
}

export interface MessageContextOptions {
  publicUrl: string;
  bounceDomain: string;
  verpSecret: string;
}

export interface CachedDelivery {
  row: DeliveryRow;
  compiled: CompiledMessage;
  loadedAt: number;
}

// Content is frozen once a delivery is confirmed, which is before any message is built; the TTL only bounds memory
// and lets proofs of an edited draft see the new content.
const CACHE_TTL_MS = 30_000;
const CACHE_MAX = 200;
// Built messages kept between the DKIM activity and the send activity of the same recipient.
const RECENT_TTL_MS = 120_000;
const RECENT_MAX = 5_000;

export class MessageContext {
  private readonly deliveries = new Map<string, CachedDelivery>();
  private readonly recent = new Map<string, { at: number; message: RecipientMessage }>();

  constructor(
    private readonly stores: Pick<Stores, 'deliveries' | 'log'>,
    private readonly opts: MessageContextOptions,
  ) {}

  async delivery(deliveryId: string): Promise<CachedDelivery> {
    const hit = this.deliveries.get(deliveryId);
    if (hit && Date.now() - hit.loadedAt < CACHE_TTL_MS) return hit;
    const row = await this.stores.deliveries.get(deliveryId);
    if (!row) throw new Error(`delivery ${deliveryId} does not exist`);
    const entry = { row, compiled: compileMessage({ subject: row.subject, html: row.html, text: row.text }), loadedAt: Date.now() };
    if (this.deliveries.size >= CACHE_MAX) this.deliveries.delete(this.deliveries.keys().next().value!);
    this.deliveries.set(deliveryId, entry);
    return entry;
  }

  /** Rebuilds the exact bytes of a recipient's message (same Message-ID, Date and boundaries on every call). */
  async build(deliveryId: string, recipientId: number): Promise<RecipientMessage> {
    // The send activity usually runs on the worker that just signed the message: reuse those bytes
    // (identical by construction) instead of reading the recipient and rendering again.
    const key = `${deliveryId}:${recipientId}`;
    const recent = this.recent.get(key);
    if (recent && Date.now() - recent.at < RECENT_TTL_MS) return recent.message;
    const message = await this.buildFresh(deliveryId, recipientId);
    if (this.recent.size >= RECENT_MAX) this.recent.delete(this.recent.keys().next().value!);
    this.recent.set(key, { at: Date.now(), message });
    return message;
  }

  /** The attempt that used the built message has ended: drop its bytes now rather than when RECENT_MAX pushes them out. */
  forget(deliveryId: string, recipientId: number): void {
    this.recent.delete(`${deliveryId}:${recipientId}`);
  }

  private async buildFresh(deliveryId: string, recipientId: number): Promise<RecipientMessage> {
    const [d, rec] = await Promise.all([this.delivery(deliveryId), this.stores.log.messageRecipient(deliveryId, recipientId)]);
    if (!rec) throw new Error(`recipient ${recipientId} of delivery ${deliveryId} does not exist`);
    if (!rec.handedOverAt) throw new Error(`recipient ${recipientId} of delivery ${deliveryId} was not handed over`);
    return this.compose(d, { recipientId, address: rec.address, domain: rec.domain, fields: rec.fields, date: rec.handedOverAt });
  }

  /** Composes a message for any address (recipients and proofs). */
  async compose(
    d: CachedDelivery,
    r: { recipientId: number; address: string; domain: string; fields: Record<string, unknown>; date: Date; proof?: { messageId: string } },
  ): Promise<RecipientMessage> {
    const { row } = d;
    const messageId = r.proof?.messageId ?? stableMessageId(row.id, r.recipientId, row.fromDomain);
    const token = unsubscribeToken(row.id, r.recipientId, this.opts.verpSecret);
    const content = d.compiled.render({ ...r.fields, email: r.address });
    if (r.proof) content.subject = `[Proof] ${content.subject}`;
    const raw = await buildMessage(content, {
      from: { address: row.fromAddress, name: row.fromName },
      to: r.address,
      replyTo: row.replyTo,
      messageId,
      date: r.date,
      listUnsubscribeUrl: oneClickUnsubscribeUrl(this.opts.publicUrl, row.id, r.recipientId, token),
      listUnsubscribeMailto: null,
      feedbackId: `${row.id.slice(0, 8)}:${row.fromDomain}:durable-email`,
      proof: r.proof !== undefined,
    });
    return {
      deliveryId: row.id,
      recipientId: r.recipientId,
      address: r.address,
      domain: r.domain,
      messageId,
      fromDomain: row.fromDomain,
      verp: encodeVerp({ deliveryId: row.id, recipientId: r.recipientId }, this.opts.verpSecret, this.opts.bounceDomain),
      raw,
    };
  }
}
