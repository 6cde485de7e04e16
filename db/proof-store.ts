/** Proofs sent before confirmation: one row per test message, kept apart from the delivery log and its KPIs. */
import type { Pool } from 'pg';
import type { SmtpReply } from '../domain/smtp-reply';

export interface SentProof {
  deliveryId: string;
  address: string;
  messageId: string;
  reply: SmtpReply;
}

export class ProofStore {
  constructor(private readonly pool: Pool) {}

  async record(p: SentProof): Promise<void> {
    await this.pool.query(
      `INSERT INTO delivery_proofs (delivery_id, address, message_id, smtp_code, enhanced_code, reply_text, mx_host) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
      [p.deliveryId, p.address, p.messageId, p.reply.code, p.reply.enhancedCode, p.reply.text, p.reply.mxHost],
    );
  }
}
