/** RFC 8058 one-click unsubscribe: the List-Unsubscribe URL of a recipient, and the HMAC token that stops anyone unsubscribing somebody else. */
import { createHmac, timingSafeEqual } from 'node:crypto';

export function unsubscribeToken(deliveryId: string, recipientId: number, secret: string): string {
  return createHmac('sha256', secret).update(`unsubscribe:${deliveryId}:${recipientId}`).digest('base64url').slice(0, 22);
}

export function verifyUnsubscribeToken(deliveryId: string, recipientId: number, token: string, secret: string): boolean {
  const expected = Buffer.from(unsubscribeToken(deliveryId, recipientId, secret));
  const given = Buffer.from(token);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** The URL mailbox providers POST to (the API serves `POST /u/:deliveryId/:recipientId/:token`). */
export function oneClickUnsubscribeUrl(publicUrl: string, deliveryId: string, recipientId: number, token: string): string {
  return `${publicUrl}/u/${deliveryId}/${recipientId}/${token}`;
}
