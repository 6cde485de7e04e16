/** A structured SMTP reply, kept whole from the socket to the delivery log (never re-parsed from a string). */

export interface SmtpReply {
  /** Basic reply code (RFC 5321), e.g. 250, 451, 550. 0 when no reply was received (connection failure). */
  code: number;
  /** Enhanced status code (RFC 3463) such as "5.1.1", or null when the server gave none. */
  enhancedCode: string | null;
  /** Reply text without the codes, lines joined by a space. */
  text: string;
  /** The MX host that gave the reply (or was being contacted), null before any host was chosen. */
  mxHost: string | null;
  /** SMTP command during which the reply was given (RCPT TO, DATA, CONN...), when known. */
  command?: string | null;
}

const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})\b/;

/**
 * Splits a raw reply line ("550 5.1.1 <x@y>: user unknown" or a multi-line reply)
 * into its code, enhanced code and text.
 */
export function parseSmtpReply(raw: string, mxHost: string | null = null, command: string | null = null): SmtpReply {
  const lines = raw.replace(/\r/g, '').split('\n').filter((l) => l.trim() !== '');
  let code = 0;
  let enhancedCode: string | null = null;
  const texts: string[] = [];
  for (const line of lines) {
    const m = /^(\d{3})[ -]?(.*)$/.exec(line.trim());
    let rest = line.trim();
    if (m) {
      code = code || Number(m[1]);
      rest = m[2];
    }
    const e = ENHANCED.exec(rest);
    if (e) {
      enhancedCode = enhancedCode ?? `${e[1]}.${Number(e[2])}.${Number(e[3])}`;
      rest = rest.slice(e[0].length).trim();
    }
    texts.push(rest.trim());
  }
  return { code, enhancedCode, text: texts.join(' ').trim(), mxHost, command };
}
