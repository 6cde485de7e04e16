/** Headers shared by the API's own static pages (the API reference viewer, the dashboard): they hold no data. */
import { createHash } from 'node:crypto';
import type { Response } from 'express';

export function staticPageHeaders(res: Response): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
}

/**
 * A page that loads everything from this origin and runs one inline script, allowed by its hash: nothing injected
 * into the page could run. Styles from this origin only (element styles set from script are the CSSOM, which
 * style-src does not govern); images from this origin or data: URLs.
 */
export function selfOnlyPageCsp(inlineScript: string): string {
  return [
    "default-src 'none'",
    `script-src 'self' 'sha256-${createHash('sha256').update(inlineScript).digest('base64')}'`,
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}
