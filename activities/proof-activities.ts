/** Proofs: the rendered, signed message sent to test addresses before confirmation, outside the delivery log and KPIs. */
import { randomUUID } from 'node:crypto';
import type { ActivityDependencies } from './dependencies';
import { signMessage } from '../mail/dkim/signer';
import { checkEmailAddress } from '../domain/email-address';
import type { ProofActivities, ProofResult } from '../workflows/contract';

export function createProofActivities(deps: ActivityDependencies): ProofActivities {
  return {
    /** Personalised with the first deliverable recipient's fields, so the proof shows real data. */
    async sendProofs(input) {
      const delivery = await deps.messages.delivery(input.deliveryId);
      const fields = await deps.log.sampleFields(input.deliveryId);
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
          fields,
          date: new Date(),
          proof: { messageId },
        });
        const signature = keys.length ? await signMessage(msg.raw, keys, new Date()) : '';
        const reply = await deps.sender.send({ from: msg.verp, to: msg.address, domain: msg.domain }, Buffer.concat([Buffer.from(signature), msg.raw]));
        const accepted = reply.code >= 200 && reply.code < 300;
        await deps.proofs.record({ deliveryId: input.deliveryId, address: check.address, messageId, reply });
        results.push({ address: check.address, messageId, accepted, reply });
      }
      return results;
    },
  };
}
