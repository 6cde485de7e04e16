/**
 * RFC 3464 delivery-status fields, read from a message/delivery-status part or from text that carries the same
 * fields inline or under another content type (many MTAs do one or the other).
 */

/** Per-message fields (RFC 3464 2.2). */
const MESSAGE_FIELDS = new Set(['reporting-mta', 'original-envelope-id', 'dsn-gateway', 'received-from-mta', 'arrival-date']);
/** Per-recipient fields (RFC 3464 2.3), plus X-Actual-Recipient which Postfix and others add. */
const RECIPIENT_FIELDS = new Set([
  'original-recipient',
  'final-recipient',
  'action',
  'status',
  'remote-mta',
  'diagnostic-code',
  'last-attempt-date',
  'final-log-id',
  'will-retry-until',
  'x-actual-recipient',
]);

export interface DsnRecipientFields {
  originalRecipient: string | null;
  finalRecipient: string | null;
  action: string | null;
  status: string | null;
  remoteMta: string | null;
  /** Without its type ("smtp;"), continuation lines joined by a space. */
  diagnosticCode: string | null;
  /** The Diagnostic-Code type ("smtp", "x-postfix", ...), lower case. */
  diagnosticType: string | null;
}

export interface DsnFields {
  reportingMta: string | null;
  originalEnvelopeId: string | null;
  recipients: DsnRecipientFields[];
}

const FIELD_LINE = /^([A-Za-z][A-Za-z0-9-]*)[ \t]*:[ \t]*(.*)$/;
const ENHANCED = /\b([245])\.(\d{1,3})\.(\d{1,3})\b/;

/** "rfc822; <a@b>" → "a@b" (lower case); null when no address is there. */
export function addressOfTypedField(value: string | null): string | null {
  if (!value) return null;
  const v = value.includes(';') ? value.slice(value.indexOf(';') + 1) : value;
  const m = /<?\s*([^\s<>;"]+@[^\s<>;"]+?)\s*>?\s*$/.exec(v.trim()) ?? /([^\s<>;"]+@[^\s<>;"]+)/.exec(v);
  return m ? m[1].replace(/^['"(]+|['"),.]+$/g, '').toLowerCase() : null;
}

function typedValue(value: string): { type: string | null; text: string } {
  const m = /^([A-Za-z][A-Za-z0-9-]*)\s*;\s*(.*)$/s.exec(value.trim());
  return m ? { type: m[1].toLowerCase(), text: m[2].trim() } : { type: null, text: value.trim() };
}

function emptyRecipient(): DsnRecipientFields {
  return { originalRecipient: null, finalRecipient: null, action: null, status: null, remoteMta: null, diagnosticCode: null, diagnosticType: null };
}

/** Reads every DSN field block in `text`; recipients in the order they appear. Never throws. */
export function parseDsnFields(text: string): DsnFields {
  const out: DsnFields = { reportingMta: null, originalEnvelopeId: null, recipients: [] };
  const lines = text.replace(/\r/g, '').split('\n');
  let current: DsnRecipientFields | null = null;
  let seenInCurrent = new Set<string>();
  let lastField: { rec: DsnRecipientFields | null; name: string } | null = null;

  const close = () => {
    if (current && (current.finalRecipient || current.originalRecipient || current.action || current.status)) out.recipients.push(current);
    current = null;
    seenInCurrent = new Set();
  };

  for (const line of lines) {
    if (line.trim() === '') {
      lastField = null;
      close();
      continue;
    }
    if (/^[ \t]/.test(line) && lastField) {
      // Folded continuation (RFC 5322 2.2.3) of the last field.
      const more = line.trim();
      if (lastField.rec && lastField.name === 'diagnostic-code') lastField.rec.diagnosticCode = `${lastField.rec.diagnosticCode ?? ''} ${more}`.trim();
      continue;
    }
    const m = FIELD_LINE.exec(line);
    if (!m) {
      lastField = null;
      continue;
    }
    const name = m[1].toLowerCase();
    const value = m[2].trim();
    if (MESSAGE_FIELDS.has(name)) {
      if (name === 'reporting-mta' && !out.reportingMta) out.reportingMta = typedValue(value).text || null;
      if (name === 'original-envelope-id' && !out.originalEnvelopeId) out.originalEnvelopeId = value || null;
      lastField = { rec: null, name };
      continue;
    }
    if (!RECIPIENT_FIELDS.has(name)) {
      lastField = null;
      continue;
    }
    // Blank lines separate the blocks (RFC 3464 2.1); without them, a field seen again starts the next block, and so
    // does an Original-Recipient after a complete block (Final-Recipient and Status seen): Amazon SES writes Action and
    // Final-Recipient before Original-Recipient inside one block.
    const startsNew =
      current !== null &&
      (seenInCurrent.has(name) || (name === 'original-recipient' && seenInCurrent.has('final-recipient') && seenInCurrent.has('status')));
    if (startsNew) close();
    if (!current) current = emptyRecipient();
    const rec: DsnRecipientFields = current;
    seenInCurrent.add(name);
    switch (name) {
      case 'original-recipient':
        rec.originalRecipient = addressOfTypedField(value);
        break;
      case 'final-recipient':
      case 'x-actual-recipient':
        if (name === 'final-recipient' || !rec.finalRecipient) rec.finalRecipient = addressOfTypedField(value) ?? rec.finalRecipient;
        break;
      case 'action':
        rec.action = normaliseAction(value);
        break;
      case 'status': {
        const e = ENHANCED.exec(value);
        rec.status = e ? `${e[1]}.${Number(e[2])}.${Number(e[3])}` : null;
        break;
      }
      case 'remote-mta':
        rec.remoteMta = typedValue(value).text.replace(/^\[|\]$/g, '') || null;
        break;
      case 'diagnostic-code': {
        const t = typedValue(value);
        rec.diagnosticType = t.type;
        rec.diagnosticCode = t.text || null;
        break;
      }
    }
    lastField = { rec, name };
  }
  close();
  // Blocks with only an address and nothing said about it are noise (an address quoted in a human part).
  out.recipients = out.recipients.filter((r) => r.action !== null || r.status !== null || r.diagnosticCode !== null);
  return out;
}

/** Action value, lower case; "deliverable" (address verification reports) reads as delivered. */
function normaliseAction(value: string): string | null {
  const word = (/^[a-z]+/i.exec(value)?.[0] ?? '').toLowerCase();
  if (word === 'deliverable') return 'delivered';
  return word || null;
}
