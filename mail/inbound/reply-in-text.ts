/** Finds the SMTP reply (basic code, enhanced code, text) inside a Diagnostic-Code or the error lines of a bounce body. */
import type { SmtpReply } from '../../domain/smtp-reply';

const ENHANCED_ANYWHERE = /(?:^|[^\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.]*\d)/;
/**
 * A basic failure code where MTAs put the remote reply: at the start of a line (optionally after "<<<" or "said:"),
 * or right before an enhanced code. Numbers inside IP addresses, dates or ports are not codes.
 */
const CODE_AT_REPLY = /(?:^|\n|said:?|response:?|reply:?|error:?|returned:?|<<<|smtp;|\))[ \t]*\(?([45]\d\d)\)?:?(?:[ \t-]+|$)/i;
const CODE_BEFORE_ENHANCED = /(?:^|[^\d.:])([45]\d\d)[ \t-]+['"]?#?[45]\.\d{1,3}\.\d{1,3}\b/;

export interface ReplyInText extends SmtpReply {
  /** True when the basic code was read from the text; false when it stands for a class only (see classOnlyCode). */
  codeFound: boolean;
}

function normaliseEnhanced(m: RegExpExecArray): string {
  return `${m[1]}.${Number(m[2])}.${Number(m[3])}`;
}

/**
 * Extracts the reply from free text. `status` (a DSN Status field) stands in when the text has no enhanced code.
 * Without a basic code in the text, the code is the class of the enhanced code (500 or 400): no rule names those
 * codes exactly, so only class conditions ("5xx") and the text match. Without either, `defaultClass` decides.
 */
export function replyInText(raw: string, status: string | null, defaultClass: 4 | 5 | null): ReplyInText {
  const text = raw.replace(/\r/g, '');
  let code = 0;
  let codeFound = false;
  let rest = text;
  const before = CODE_BEFORE_ENHANCED.exec(text);
  const at = before ?? CODE_AT_REPLY.exec(text);
  if (at) {
    code = Number(at[1]);
    codeFound = true;
    rest = text.slice(at.index + at[0].indexOf(at[1]) + 3);
    // "550: : User unknown": the colon after the code is not part of the text (the second one is, an empty address).
    if (rest.startsWith(':')) rest = rest.slice(1);
  }
  rest = rest.replace(/^[\s-]+/, '');
  let enhancedCode: string | null = null;
  // A relay quoting the remote reply ("550-'5.7.1 ...'") puts a quote before the enhanced code.
  const leading = /^['"]?#?([245])\.(\d{1,3})\.(\d{1,3})\b/.exec(rest);
  if (leading) {
    enhancedCode = normaliseEnhanced(leading);
    rest = rest.slice(leading[0].length);
  } else {
    const anywhere = ENHANCED_ANYWHERE.exec(text);
    if (anywhere) enhancedCode = normaliseEnhanced(anywhere);
  }
  // The remote's own enhanced code wins over the reporting MTA's Status, unless their classes disagree with the code.
  if (enhancedCode === null || (codeFound && enhancedCode[0] !== String(code)[0] && status !== null && status[0] === String(code)[0])) {
    enhancedCode = status ?? enhancedCode;
  }
  if (!codeFound) {
    const cls = enhancedCode !== null ? Number(enhancedCode[0]) : defaultClass;
    code = cls === 5 ? 500 : cls === 4 ? 400 : 0;
  }
  // Continuation lines of a multi-line reply repeat the code ("550-5.1.1 ..."): drop those prefixes.
  const joined = rest
    .split('\n')
    .map((l) => l.replace(/^\s*[45]\d\d[ -](?:#?[245]\.\d{1,3}\.\d{1,3}\s*)?/, '').trim())
    .filter((l) => l !== '')
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();
  return { code, enhancedCode, text: joined, mxHost: null, command: null, codeFound };
}
