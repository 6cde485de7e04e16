/** Address syntax checks (RFC 5321/5322 as mailbox providers accept them) with internationalised domains. */
import { domainToASCII } from 'node:url';

// Dot-atom local part (RFC 5322 3.2.3) without quoted strings: receivers of bulk mail reject quoted local parts in practice.
// UTF-8 local parts (RFC 6531, SMTPUTF8) are accepted as letters/marks.
const LOCAL_PART = /^[\p{L}\p{N}\p{M}!#$%&'*+/=?^_`{|}~-]+(\.[\p{L}\p{N}\p{M}!#$%&'*+/=?^_`{|}~-]+)*$/u;
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

export type AddressCheck = { ok: true; address: string; domain: string } | { ok: false; problem: string };

/**
 * Checks one address and returns it trimmed, with its domain as lower-case ASCII (punycode for IDNs).
 * Limits from RFC 5321 4.5.3.1: local part 64 octets, domain 255, path 256.
 */
export function checkEmailAddress(input: string): AddressCheck {
  const address = input.trim();
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return { ok: false, problem: 'missing local part or domain' };
  const local = address.slice(0, at);
  const rawDomain = address.slice(at + 1);
  if (Buffer.byteLength(local) > 64) return { ok: false, problem: 'local part longer than 64 octets' };
  if (!LOCAL_PART.test(local)) return { ok: false, problem: 'local part has characters or dots not allowed' };
  // WHATWG/UTS #46 processing, the same conversion browsers and most MTAs apply to IDNs.
  let domain = domainToASCII(rawDomain.normalize('NFC')).toLowerCase();
  if (domain === '') return { ok: false, problem: 'domain cannot be converted to ASCII (IDNA)' };
  if (domain.endsWith('.')) domain = domain.slice(0, -1);
  if (domain.length > 253) return { ok: false, problem: 'domain longer than 253 characters' };
  const labels = domain.split('.');
  if (labels.length < 2) return { ok: false, problem: 'domain has no dot' };
  if (!labels.every((l) => LABEL.test(l))) return { ok: false, problem: 'domain has an invalid label' };
  if (/^\d+$/.test(labels[labels.length - 1])) return { ok: false, problem: 'top-level domain is numeric' };
  if (Buffer.byteLength(local) + 1 + domain.length > 254) return { ok: false, problem: 'address longer than 254 octets' };
  return { ok: true, address: `${local}@${rawDomain.toLowerCase() === domain ? domain : rawDomain}`, domain };
}

/** The lower-case domain of an address as given (no IDNA conversion): e.g. the From domain that DKIM keys belong to. */
export function addressDomain(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

/** The key two addresses share when they are duplicates: the domain is case-insensitive; local parts are compared case-insensitively too, as every big mailbox provider does. */
export function duplicateKey(address: string, domain: string): string {
  return `${address.slice(0, address.lastIndexOf('@')).toLowerCase()}@${domain}`;
}
