/**
 * One webhook HTTP request: the Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature signed by
 * the standardwebhooks package) and a POST with a time limit whose outcome is kept for the delivery log.
 */
import { Webhook } from 'standardwebhooks';

export interface WebhookPostResult {
  /** A 2xx answer. */
  ok: boolean;
  statusCode: number | null;
  durationMs: number;
  /** Why it failed, for the delivery log and the disable reason (null when ok). */
  error: string | null;
  /** The first characters of the answer's body. */
  responseExcerpt: string | null;
  /** The Retry-After of a 429 or 503 answer, in ms. */
  retryAfterMs: number | null;
}

const EXCERPT_CHARS = 300;
const USER_AGENT = 'durable-email-delivery-webhooks/1';

/** The headers of one attempt: the signature covers "id.timestamp.body", with the attempt's own timestamp. */
export function signedWebhookHeaders(secret: string, messageId: string, body: string, at: Date): Record<string, string> {
  return {
    'content-type': 'application/json',
    'user-agent': USER_AGENT,
    'webhook-id': messageId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(messageId, at, body),
  };
}

/** Retry-After as seconds or an HTTP date, in ms from now; null when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | null {
  if (!value) return null;
  if (/^\d{1,9}$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

async function excerpt(res: Response): Promise<string | null> {
  if (!res.body) return null;
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    while (text.length < EXCERPT_CHARS) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    // The rest of a long answer is not needed: stop reading it (the connection is not reused then).
    await reader.cancel().catch(() => undefined);
  }
  return text ? text.slice(0, EXCERPT_CHARS) : null;
}

function failureText(e: unknown, timeoutMs: number): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return `no answer within ${Math.round(timeoutMs / 1000)} s`;
  const cause = err.cause;
  if (cause?.message) return cause.code && !cause.message.includes(cause.code) ? `${cause.code}: ${cause.message}` : cause.message;
  return err.message || String(e);
}

/**
 * POSTs `body` to `url`. Redirects are not followed (a 3xx is a failure, as the Standard Webhooks convention says: the
 * subscription's URL should be updated instead). Never throws: a refused connection or a timeout is a failed result.
 */
export async function postWebhook(url: string, headers: Record<string, string>, body: string, timeoutMs: number): Promise<WebhookPostResult> {
  const started = performance.now();
  try {
    const res = await fetch(url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    const text = await excerpt(res).catch(() => null);
    const durationMs = Math.round(performance.now() - started);
    const ok = res.status >= 200 && res.status < 300;
    return {
      ok,
      statusCode: res.status,
      durationMs,
      error: ok ? null : `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`,
      responseExcerpt: text,
      retryAfterMs: res.status === 429 || res.status === 503 ? retryAfterMs(res.headers.get('retry-after')) : null,
    };
  } catch (e) {
    return { ok: false, statusCode: null, durationMs: Math.round(performance.now() - started), error: failureText(e, timeoutMs), responseExcerpt: null, retryAfterMs: null };
  }
}
