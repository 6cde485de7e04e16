/** Measures the encoded text/html part of a built message: what webmails that clip long messages count. */

/** Bytes of the first text/html part's encoded body (between its part headers and the next boundary); 0 without one. */
export function encodedHtmlPartSize(raw: Buffer): number {
  const text = raw.toString('latin1');
  const start = text.search(/Content-Type: text\/html/i);
  if (start < 0) return 0;
  const bodyStart = text.indexOf('\r\n\r\n', start);
  const end = text.indexOf('\r\n--', bodyStart);
  return (end < 0 ? text.length : end) - bodyStart;
}
