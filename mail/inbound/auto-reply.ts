/**
 * Auto-replies recognised by their headers: RFC 3834 Auto-Submitted: auto-replied, and the older conventions
 * (X-Autoreply, X-Autorespond, Precedence: auto_reply). Subjects and bodies are the inbound rules' job.
 */

export type HeaderValue = (name: string) => string | null;

/** The header that marks the message as an auto-reply, as "name: value"; null when none does. */
export function autoReplyHeader(header: HeaderValue): string | null {
  const autoSubmitted = header('auto-submitted');
  // "auto-generated" is what DSNs and reports carry (RFC 3834 5.1): not an auto-reply.
  if (autoSubmitted && /^\s*auto-replied\b/i.test(autoSubmitted)) return `auto-submitted: ${autoSubmitted.trim()}`;
  for (const name of ['x-autoreply', 'x-autorespond', 'x-autoresponder']) {
    const v = header(name);
    if (v !== null && !/^\s*(no|false|0)\s*$/i.test(v)) return `${name}: ${v.trim()}`;
  }
  const precedence = header('precedence');
  if (precedence && /^\s*auto[-_]reply\b/i.test(precedence)) return `precedence: ${precedence.trim()}`;
  return null;
}
