/** HMAC tokens in one-click unsubscribe URLs (RFC 8058), so nobody can unsubscribe somebody else. */
import { createHmac, timingSafeEqual } from 'node:crypto';

export function unsubscribeToken(deliveryId: string, recipientId: number, secret: string): string {
  return createHmac('sha256', secret).update(`unsubscribe:${deliveryId}:${recipientId}`).digest('base64url').slice(0, 22);
}

export function verifyUnsubscribeToken(deliveryId: string, recipientId: number, token: string, secret: string): boolean {
  const expected = Buffer.from(unsubscribeToken(deliveryId, recipientId, secret));
  const given = Buffer.from(token);
  return expected.length === given.length && timingSafeEqual(expected, given);
}
