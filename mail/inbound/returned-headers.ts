/** The header block of the original message a bounce or a report returns: its Message-ID, Return-Path and To. */

export interface ReturnedHeaders {
  messageId: string | null;
  returnPath: string | null;
  /** Addresses of the To header, lower case, in order. */
  to: string[];
  from: string | null;
}

const EMPTY: ReturnedHeaders = Object.freeze({ messageId: null, returnPath: null, to: [], from: null }) as ReturnedHeaders;

/** Unfolded header lines of the first header block of `text` (up to its first blank line). */
function headerLines(text: string): string[] {
  const out: string[] = [];
  for (const line of text.replace(/\r/g, '').split('\n')) {
    if (line.trim() === '') {
      if (out.length) break;
      continue;
    }
    if (/^[ \t]/.test(line) && out.length) out[out.length - 1] += ` ${line.trim()}`;
    else out.push(line);
  }
  return out;
}

function addresses(value: string): string[] {
  return [...value.matchAll(/[^\s<>,;"':()[\]]+@[^\s<>,;"':()[\]]+/g)].map((m) => m[0].replace(/\.$/, '').toLowerCase());
}

function angle(value: string): string | null {
  const m = /<([^<>\s]+)>/.exec(value) ?? /(\S+@\S+)/.exec(value);
  return m ? m[1] : null;
}

/** Reads Message-ID, Return-Path, To and From from a header block (message/rfc822 or text/rfc822-headers content). */
export function parseReturnedHeaders(text: string): ReturnedHeaders {
  const result: ReturnedHeaders = { messageId: null, returnPath: null, to: [], from: null };
  for (const line of headerLines(text)) {
    const m = /^([A-Za-z][A-Za-z0-9-]*)\s*:\s*(.*)$/.exec(line);
    if (!m) continue;
    const name = m[1].toLowerCase();
    const value = m[2].trim();
    if (name === 'message-id' && !result.messageId) result.messageId = angle(value);
    else if (name === 'return-path' && !result.returnPath) {
      const a = addresses(value)[0];
      result.returnPath = a ?? null;
    } else if (name === 'to' && result.to.length === 0) result.to = addresses(value);
    else if (name === 'from' && !result.from) result.from = addresses(value)[0] ?? null;
  }
  return result;
}

/**
 * The same fields from a returned message quoted inline in a text body (qmail, Exim and others paste it after a
 * separator line): the first Message-ID / Return-Path / To header lines found after the first header-looking line.
 */
export function findInlineReturnedHeaders(text: string): ReturnedHeaders {
  const t = text.replace(/\r/g, '');
  const start = t.search(/^(Return-Path|Received|Message-I[Dd]|From|Date|To|Subject|X-[A-Za-z-]+|MIME-Version|DKIM-Signature):[ \t]/m);
  if (start < 0) return EMPTY;
  const tail = t.slice(start);
  const result: ReturnedHeaders = { messageId: null, returnPath: null, to: [], from: null };
  const messageId = /^Message-I[Dd]\s*:\s*(.+)$/im.exec(tail);
  if (messageId) result.messageId = angle(messageId[1]);
  const returnPath = /^Return-Path\s*:\s*(.+)$/im.exec(tail);
  if (returnPath) result.returnPath = addresses(returnPath[1])[0] ?? null;
  const to = /^To\s*:\s*(.+)$/im.exec(tail);
  if (to) result.to = addresses(to[1]);
  const from = /^From\s*:\s*(.+)$/im.exec(tail);
  if (from) result.from = addresses(from[1])[0] ?? null;
  return result;
}

/** The first non-null value of each field, in order of preference. */
export function mergeReturnedHeaders(...sources: ReturnedHeaders[]): ReturnedHeaders {
  return {
    messageId: sources.find((s) => s.messageId)?.messageId ?? null,
    returnPath: sources.find((s) => s.returnPath)?.returnPath ?? null,
    to: sources.find((s) => s.to.length)?.to ?? [],
    from: sources.find((s) => s.from)?.from ?? null,
  };
}
