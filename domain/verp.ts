/** VERP return paths that carry the delivery and recipient IDs with an HMAC, so a bounce is attributed and a forged one refused. */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface VerpIdentity {
  deliveryId: string;
  recipientId: number;
}

const PREFIX = 'b';
// 10 bytes of HMAC-SHA256 (80 bits) in base32hex-like lowercase: short enough for a local part, long enough to forge-proof.
const MAC_BYTES = 10;

function mac(secret: string, deliveryId: string, recipientId: number): string {
  return createHmac('sha256', secret).update(`${deliveryId}.${recipientId}`).digest().subarray(0, MAC_BYTES).toString('hex');
}

/** b-<delivery uuid without dashes>-<recipient id base36>-<mac>@bounce-domain. Local part stays under 64 characters. */
export function encodeVerp(id: VerpIdentity, secret: string, bounceDomain: string): string {
  const d = id.deliveryId.replace(/-/g, '');
  return `${PREFIX}-${d}-${id.recipientId.toString(36)}-${mac(secret, id.deliveryId, id.recipientId)}@${bounceDomain}`;
}

/** Returns the identity a VERP address carries, or null when it is not ours or its HMAC does not match. */
export function decodeVerp(address: string, secret: string, bounceDomain?: string): VerpIdentity | null {
  const at = address.lastIndexOf('@');
  if (at < 0) return null;
  const local = address.slice(0, at).toLowerCase();
  const domain = address.slice(at + 1).toLowerCase();
  if (bounceDomain && domain !== bounceDomain.toLowerCase()) return null;
  const m = /^b-([0-9a-f]{32})-([0-9a-z]+)-([0-9a-f]+)$/.exec(local);
  if (!m) return null;
  const h = m[1];
  const deliveryId = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  const recipientId = parseInt(m[2], 36);
  if (!Number.isSafeInteger(recipientId)) return null;
  const expected = Buffer.from(mac(secret, deliveryId, recipientId), 'hex');
  const given = Buffer.from(m[3], 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  return { deliveryId, recipientId };
}
