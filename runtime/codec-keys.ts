/** The payload codec's keys: their PAYLOAD_KEYS text form ("keyId:base64key,..."), parsing that never quotes a key, generation. */
import { randomBytes } from 'node:crypto';

export const PAYLOAD_KEY_BYTES = 32;

export interface PayloadKey {
  /** Short public name of the key ([A-Za-z0-9._-]); it is written in every payload the key seals. */
  id: string;
  /** 32 random bytes. */
  key: Buffer;
}

/** The configured keys: the current one seals, every one opens. */
export interface PayloadKeyRing {
  currentKeyId: string;
  keys: PayloadKey[];
}

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Parses PAYLOAD_KEYS ("keyId:base64key,keyId:base64key"); returns the keys or a message saying what is wrong. The
 * message never quotes a key.
 */
export function parsePayloadKeys(value: string): { keys: PayloadKey[] } | { problem: string } {
  const keys: PayloadKey[] = [];
  const entries = value.split(',').map((e) => e.trim()).filter(Boolean);
  if (!entries.length) return { problem: 'no key given' };
  for (const [i, entry] of entries.entries()) {
    const colon = entry.indexOf(':');
    const id = colon < 0 ? '' : entry.slice(0, colon);
    if (!KEY_ID.test(id)) return { problem: `entry ${i + 1} must be keyId:base64key, with a key ID of letters, digits, ".", "_" or "-"` };
    const b64 = entry.slice(colon + 1);
    const key = Buffer.from(b64, 'base64');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || key.length !== PAYLOAD_KEY_BYTES) {
      return { problem: `key "${id}" must be ${PAYLOAD_KEY_BYTES} bytes in base64 (openssl rand -base64 32)` };
    }
    if (keys.some((k) => k.id === id)) return { problem: `key ID "${id}" is given twice` };
    keys.push({ id, key });
  }
  return { keys };
}

/** PAYLOAD_KEYS' text form of a key ring's keys. */
export function formatPayloadKeys(keys: PayloadKey[]): string {
  return keys.map((k) => `${k.id}:${k.key.toString('base64')}`).join(',');
}

/** A fresh key (the embedded stack's first start). */
export function generatePayloadKey(id: string): PayloadKey {
  return { id, key: randomBytes(PAYLOAD_KEY_BYTES) };
}
