/** Proofs: the rendered, signed message sent to test addresses before confirmation, outside the delivery log and KPIs. */
import { randomUUID } from 'node:crypto';
import type { ActivityDependencies } from './dependencies';
import { signMessage } from '../mail/dkim-signer';
import { checkEmailAddress } from '../domain/email-address';
import type { SmtpReply } from '../domain/smtp-reply';

export interface ProofResult {
  address: string;
  messageId: string;
  accepted: boolean;
  reply: SmtpReply;
}

export function createProofActivities(deps: ActivityDependencies) {
  return {
    /** Personalised with the first deliverable recipient's fields, so the proof shows real data. */
    async sendProofs(input: { deliveryId: string; addresses: string[] }): Promise<ProofResult[]> {
      const delivery = await deps.messages.delivery(input.deliveryId);
      const sample = await deps.pool.query<{ fields: Record<string, unknown> }>(
        `SELECT fields FROM delivery_recipients WHERE delivery_id = $1 AND status <> 'excluded' ORDER BY recipient_id LIMIT 1`,
        [input.deliveryId],
      );
      const keys = await deps.keys.signingKeys(delivery.row.fromDomain);
      const results: ProofResult[] = [];
      for (const address of input.addresses) {
        const check = checkEmailAddress(address);
        if (!check.ok) throw new Error(`proof address ${address} is invalid: ${check.problem}`);
        const messageId = `<proof-${randomUUID()}@${delivery.row.fromDomain}>`;
        const msg = await deps.messages.compose(delivery, {
          recipientId: 0,
          address: check.address,
          domain: check.domain,
          fields: sample.rows[0]?.fields ?? {},
          date: new Date(),
          proof: { messageId },
        });
        const signature = keys.length ? await signMessage(msg.raw, keys, new Date()) : '';
        const reply = await deps.sender.send({ from: msg.verp, to: msg.address, domain: msg.domain }, Buffer.concat([Buffer.from(signature), msg.raw]));
        const accepted = reply.code >= 200 && reply.code < 300;
        await deps.pool.query(
          `INSERT INTO delivery_proofs (delivery_id, address, message_id, smtp_code, enhanced_code, reply_text, mx_host) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
          [input.deliveryId, check.address, messageId, reply.code, reply.enhancedCode, reply.text, reply.mxHost],
        );
        results.push({ address: check.address, messageId, accepted, reply });
      }
      return results;
    },
  };
}
