/** DKIM signing with mailauth: relaxed/relaxed, RSA and Ed25519 (RFC 8463), dual-signed when a domain has both. */
import { dkimSign } from 'mailauth/lib/dkim/sign';
import type { SigningKey } from './keys';

/** The headers every DKIM signature covers, when present (RFC 6376 5.4.1 and RFC 8058 3.3). */
export const SIGNED_HEADERS = [
  'from',
  'to',
  'subject',
  'date',
  'message-id',
  'reply-to',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
  'list-unsubscribe',
  'list-unsubscribe-post',
  'feedback-id',
];

export class DkimSigningError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DkimSigningError';
  }
}

/** Returns the DKIM-Signature header block (CRLF terminated) to prepend to the message. */
export async function signMessage(message: Buffer, keys: SigningKey[], signTime: Date): Promise<string> {
  if (keys.length === 0) throw new DkimSigningError('no active DKIM key for the signing domain');
  // mailauth's type wants a top-level key too; with signatureData set, it signs once per entry and ignores those.
  const [first] = keys;
  const result = await dkimSign(message, {
    signingDomain: first.domain,
    selector: first.selector,
    privateKey: first.privateKeyPem,
    canonicalization: 'relaxed/relaxed',
    signTime,
    // mailauth reads a colon-separated string here (its type says string[], which it silently replaces by its defaults).
    headerList: SIGNED_HEADERS.join(':') as unknown as string[],
    signatureData: keys.map((k) => ({
      signingDomain: k.domain,
      selector: k.selector,
      privateKey: k.privateKeyPem,
      algorithm: k.algorithm,
      canonicalization: 'relaxed/relaxed',
    })),
  });
  if (result.errors?.length) throw new DkimSigningError(result.errors.map((e: Error) => e.message).join('; '));
  return result.signatures;
}
