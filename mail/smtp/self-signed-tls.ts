/** A self-signed certificate for an SMTP server's STARTTLS (the sandbox MX, or the inbound listener without a configured one). */
import { generate } from 'selfsigned';

export interface TlsMaterial {
  key: string;
  cert: string;
}

// Generated once per process: an RSA key costs a few hundred milliseconds and every server can share it.
let tlsMaterial: Promise<TlsMaterial> | undefined;

/**
 * Opportunistic STARTTLS between MTAs accepts self-signed certificates (RFC 3207 4.1), so a server with no
 * configured certificate still encrypts the session.
 */
export function selfSignedTls(): Promise<TlsMaterial> {
  tlsMaterial ??= generate([{ name: 'commonName', value: 'localhost' }], {
    // RSA rather than EC: selfsigned 5.5's EC path fails ("Cannot get schema for 'AlgorithmIdentifier'").
    keyType: 'rsa',
    keySize: 2048,
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 5 * 365 * 24 * 3600 * 1000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  }).then(
    (pems) => ({ key: pems.private, cert: pems.cert }),
    (err: unknown) => {
      tlsMaterial = undefined; // let a later call retry instead of caching the failure
      throw err;
    },
  );
  return tlsMaterial;
}
