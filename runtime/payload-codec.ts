/**
 * The payload codec: every Temporal payload (workflow and activity inputs and results, query answers, signal and
 * update arguments, failure messages) is sealed with AES-256-GCM before it leaves the process, so the Temporal
 * server's database and the histories it hands out hold no recipient data in clear text.
 *
 * Keys rotate by key ID: payloads are sealed with the current key and name its ID in their metadata; any configured
 * key opens them. A payload that was never sealed (recorded before the codec, or written by a client without it)
 * passes through unchanged on decode.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { PAYLOAD_KEY_BYTES, type PayloadKey, type PayloadKeyRing } from './codec-keys';

export type { PayloadKey, PayloadKeyRing } from './codec-keys';

/** The `encoding` metadata value of a sealed payload (what the Temporal UI shows for a payload it cannot decode). */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
/** Metadata key naming the key that sealed the payload. */
export const KEY_ID_METADATA = 'encryption-key-id';
/** Metadata key naming the cipher, so a future format can be told apart. */
export const CIPHER_METADATA = 'encryption-cipher';
export const CIPHER = 'AES-256-GCM';

const IV_BYTES = 12;
const TAG_BYTES = 16;
/** A sealed payload names a key this process does not have (rotated out too early, or another deployment's data). */
export class UnknownPayloadKeyError extends Error {
  constructor(readonly keyId: string) {
    super(`payload was encrypted with key "${keyId}", which is not among the configured PAYLOAD_KEYS`);
  }
}

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString('utf8') : undefined);

export class AesGcmPayloadCodec implements PayloadCodec {
  private readonly byId: Map<string, Buffer>;
  private readonly current: PayloadKey;

  constructor(ring: PayloadKeyRing) {
    this.byId = new Map();
    for (const k of ring.keys) {
      if (k.key.length !== PAYLOAD_KEY_BYTES) throw new Error(`payload key "${k.id}" must be ${PAYLOAD_KEY_BYTES} bytes, got ${k.key.length}`);
      this.byId.set(k.id, k.key);
    }
    const current = this.byId.get(ring.currentKeyId);
    if (!current) throw new Error(`the current payload key "${ring.currentKeyId}" is not among the configured keys`);
    this.current = { id: ring.currentKeyId, key: current };
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.seal(p));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.open(p));
  }

  /** Seals one payload, metadata included (its encoding says what the data is, which is already personal enough). */
  seal(p: Payload): Payload {
    const plain = temporal.api.common.v1.Payload.encode({ metadata: p.metadata ?? {}, data: p.data ?? new Uint8Array() }).finish();
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.current.key, iv);
    // The key ID is authenticated: a payload cannot be made to look as if another key sealed it.
    cipher.setAAD(Buffer.from(this.current.id, 'utf8'));
    const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    return {
      metadata: { encoding: utf8(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: utf8(this.current.id), [CIPHER_METADATA]: utf8(CIPHER) },
      data: sealed,
    };
  }

  /** Opens a sealed payload; any other payload is returned as it is. */
  open(p: Payload): Payload {
    if (text(p.metadata?.encoding) !== ENCRYPTED_ENCODING) return p;
    const keyId = text(p.metadata?.[KEY_ID_METADATA]) ?? '';
    const key = this.byId.get(keyId);
    if (!key) throw new UnknownPayloadKeyError(keyId);
    const data = Buffer.from(p.data ?? new Uint8Array());
    if (data.length < IV_BYTES + TAG_BYTES) throw new Error(`sealed payload of key "${keyId}" is too short to be one`);
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(keyId, 'utf8'));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    const plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
    const decoded = temporal.api.common.v1.Payload.decode(plain);
    return { metadata: decoded.metadata ?? {}, data: decoded.data ?? new Uint8Array() };
  }
}
