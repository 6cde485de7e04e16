/** DKIM key pairs: generation (RSA-2048, Ed25519), encryption at rest, and the DNS TXT record that publishes them. */
import { createCipheriv, createDecipheriv, generateKeyPairSync, randomBytes, scryptSync, createPublicKey } from 'node:crypto';

export type DkimAlgorithm = 'rsa-sha256' | 'ed25519-sha256';

export interface GeneratedKey {
  algorithm: DkimAlgorithm;
  privateKeyPem: string;
  /** The p= value: base64 SPKI DER for RSA, the raw 32-byte key for Ed25519 (RFC 8463). */
  publicKeyB64: string;
}

export function generateDkimKey(algorithm: DkimAlgorithm): GeneratedKey {
  if (algorithm === 'rsa-sha256') {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    return {
      algorithm,
      privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      publicKeyB64: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
    };
  }
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  // The SPKI DER of an Ed25519 key is a fixed 12-byte prefix followed by the raw key.
  const raw = publicKey.export({ type: 'spki', format: 'der' }).subarray(-32);
  return { algorithm, privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicKeyB64: raw.toString('base64') };
}

/** Public key of a stored private key, to check a key read from a file matches its record. */
export function publicKeyB64Of(privateKeyPem: string, algorithm: DkimAlgorithm): string {
  const pub = createPublicKey(privateKeyPem).export({ type: 'spki', format: 'der' });
  return (algorithm === 'rsa-sha256' ? pub : pub.subarray(-32)).toString('base64');
}

/** The TXT record a domain owner publishes at <selector>._domainkey.<domain>. */
export function dkimTxtRecord(domain: string, selector: string, algorithm: DkimAlgorithm, publicKeyB64: string) {
  const k = algorithm === 'rsa-sha256' ? 'rsa' : 'ed25519';
  return { name: `${selector}._domainkey.${domain}`, type: 'TXT' as const, value: `v=DKIM1; k=${k}; p=${publicKeyB64}` };
}

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
