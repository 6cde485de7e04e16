/**
 * What a value that ends up in a message header (Subject, the From display name, Reply-To) may not contain: a CR or
 * LF would end the header and start another one (header injection), a NUL or another control character has no place
 * in a header and Postgres refuses NUL in text.
 */

/** The problem with `value` as the header field `field`, or null when it may go into a header. */
export function headerValueProblem(field: string, value: string): string | null {
  if (/[\r\n]/.test(value)) return `${field} must not contain a line break (CR or LF): it goes into a message header`;
  if (value.includes('\u0000')) return `${field} must not contain a NUL character`;
  // Horizontal tab is the one control character a header may hold.
  if (/[\u0001-\u0008\u000b-\u001f\u007f]/.test(value)) return `${field} must not contain control characters: it goes into a message header`;
  return null;
}

/** The delivery fields that end up in headers, by their API path. */
export function deliveryHeaderProblems(d: { subject?: string; fromName?: string | null; fromAddress?: string; replyTo?: string | null }): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = [];
  const check = (path: string, v: string | null | undefined) => {
    const problem = v == null ? null : headerValueProblem(path, v);
    if (problem) out.push({ path, message: problem });
  };
  check('subject', d.subject);
  check('from.name', d.fromName);
  check('from.address', d.fromAddress);
  check('replyTo', d.replyTo);
  return out;
}
