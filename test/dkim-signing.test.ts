/** DKIM: deterministic rebuild of a message, RSA / Ed25519 / dual signatures that verify, and a one-byte change that breaks them. */
import { describe, expect, it } from 'vitest';
import { buildMessage, stableMessageId, type MessageEnvelopeFields } from '../mail/mime/message-builder';
import { signMessage } from '../mail/dkim/signer';
import { dkimTxtRecord, generateDkimKey, type DkimAlgorithm, type SigningKey } from '../mail/dkim/keys';
import { KeyCipher } from '../mail/dkim/key-cipher';
import { verifyDkim } from './support/dkim-verify';

const fields: MessageEnvelopeFields = {
  from: { address: 'news@brand.example', name: 'Brand' },
  to: 'ada@receiver.example',
  replyTo: null,
  messageId: stableMessageId('3f1c1e0e-0000-4000-8000-000000000001', 7, 'brand.example'),
  date: new Date('2026-11-25T10:00:00Z'),
  listUnsubscribeUrl: 'https://api.brand.example/u/x/7/token',
  listUnsubscribeMailto: null,
  feedbackId: '3f1c1e0e:brand.example:durable-email',
};
const content = { subject: 'Hello Ada — café', html: '<p>Hello <b>Ada</b></p>', text: 'Hello Ada' };

function keyPair(algorithm: DkimAlgorithm, selector: string): { key: SigningKey; txt: [string, string] } {
  const g = generateDkimKey(algorithm);
  const rec = dkimTxtRecord('brand.example', selector, algorithm, g.publicKeyB64);
  return { key: { domain: 'brand.example', selector, algorithm, privateKeyPem: g.privateKeyPem }, txt: [rec.name, rec.value] };
}

describe('message building and DKIM', () => {
  it('rebuilds byte-identical messages (multipart boundaries, Message-ID and Date are stable)', async () => {
    const a = await buildMessage(content, fields);
    const b = await buildMessage(content, fields);
    expect(a.equals(b)).toBe(true);
    const text = a.toString();
    expect(text).toContain(`Message-ID: ${fields.messageId}`);
    expect(text).toContain('List-Unsubscribe-Post: List-Unsubscribe=One-Click');
    expect(text).toMatch(/Content-Type: multipart\/alternative/);
  });

  const rsa = keyPair('rsa-sha256', 'rsa1');
  const ed = keyPair('ed25519-sha256', 'ed1');
  const cases: [string, { key: SigningKey; txt: [string, string] }[]][] = [
    ['RSA-2048', [rsa]],
    ['Ed25519', [ed]],
    ['dual (RSA + Ed25519)', [rsa, ed]],
  ];
  it.each(cases)('%s signatures verify, are aligned with From, and fail after a one-byte body change', async (_name, pairs) => {
    const message = await buildMessage(content, fields);
    const signatures = await signMessage(message, pairs.map((p) => p.key), new Date());
    const signed = Buffer.concat([Buffer.from(signatures), message]);
    const txt = Object.fromEntries(pairs.map((p) => p.txt));
    const results = await verifyDkim(signed, txt);
    expect(results).toHaveLength(pairs.length);
    for (const r of results) {
      expect(r.result).toBe('pass');
      expect(r.domain).toBe('brand.example');
    }
    expect(results.map((r) => r.algorithm).sort()).toEqual(pairs.map((p) => p.key.algorithm).sort());
    const header = signatures.replace(/\r\n\s+/g, ' ');
    for (const h of ['from', 'to', 'subject', 'date', 'message-id', 'mime-version', 'content-type', 'list-unsubscribe', 'list-unsubscribe-post']) {
      expect(header.toLowerCase()).toMatch(new RegExp(`h=[^;]*\\b${h}\\b`));
    }
    const tampered = Buffer.from(signed);
    const bodyAt = tampered.indexOf('Hello Ada');
    tampered[bodyAt] = 'J'.charCodeAt(0);
    // mailauth reports a body hash mismatch as "neutral" with that comment (RFC 6376 6.3: the signature does not verify).
    for (const r of await verifyDkim(tampered, txt)) {
      expect(r.result).not.toBe('pass');
      expect(r.comment).toMatch(/body hash did not verify/);
    }
  });

  it('encrypts private keys at rest and refuses a wrong secret', () => {
    const cipher = new KeyCipher('a-secret-of-enough-length');
    const blob = cipher.encrypt('-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n');
    expect(blob.toString('utf8')).not.toContain('PRIVATE KEY');
    expect(cipher.decrypt(blob)).toContain('abc');
    expect(() => new KeyCipher('another-secret-of-length').decrypt(blob)).toThrow();
  });
});
