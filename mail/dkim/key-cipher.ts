/** Encryption of DKIM private keys at rest, with a key derived from the configured secret. */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';

/** AES-256-GCM with a key stretched from the configured secret; the output is iv | tag | ciphertext. */
export class KeyCipher {
  private readonly key: Buffer;
  constructor(secret: string) {
    this.key = scryptSync(secret, 'dkim-private-keys-v1', 32);
  }
  encrypt(plain: string): Buffer {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), body]);
  }
  decrypt(blob: Buffer): string {
    const d = createDecipheriv('aes-256-gcm', this.key, blob.subarray(0, 12));
    d.setAuthTag(blob.subarray(12, 28));
    return Buffer.concat([d.update(blob.subarray(28)), d.final()]).toString('utf8');
  }
}
