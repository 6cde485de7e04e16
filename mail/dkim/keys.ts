/** DKIM key pairs: generation (RSA-2048, Ed25519), the public key of a private one, and the DNS TXT record that publishes it. */
import { createPublicKey, generateKeyPairSync } from 'node:crypto';

export type DkimAlgorithm = 'rsa-sha256' | 'ed25519-sha256';

/** A decrypted private key and where its public key is published (the d= and s= of the signatures it makes). */
export interface SigningKey {
  domain: string;
  selector: string;
  algorithm: DkimAlgorithm;
  privateKeyPem: string;
}

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
