/** Small HTTP helpers for tests that drive the real API, and a poller for conditions that become true eventually. */

export interface ApiResult {
  status: number;
  // Tests index into arbitrary response shapes.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
  headers: Headers;
}

export type RequestBody = string | ReadableStream<Uint8Array>;

/** The API key sent to each API (by base URL) when a call names none: the harness registers its admin key here. */
const apiKeys = new Map<string, string>();

/** Makes `request`/`apiCall` to `baseUrl` send `key` (Authorization: Bearer); null forgets it. */
export function useApiKey(baseUrl: string, key: string | null): void {
  if (key === null) apiKeys.delete(baseUrl);
  else apiKeys.set(baseUrl, key);
}

/** The key registered for the API that serves `url`, if any. */
export function apiKeyFor(url: string): string | undefined {
  for (const [base, key] of apiKeys) if (url === base || url.startsWith(`${base}/`)) return key;
  return undefined;
}

/** Headers carrying the registered key of `url`'s API (for tests that call fetch themselves). */
export function authHeaders(url: string): Record<string, string> {
  const key = apiKeyFor(url);
  return key ? { authorization: `Bearer ${key}` } : {};
}

export interface RequestOptions {
  body?: RequestBody;
  contentType?: string;
  /** The key to send instead of the registered one; null sends none. */
  apiKey?: string | null;
  headers?: Record<string, string>;
}

/** Any request; the answer parsed as JSON when it is JSON, else kept as text. Sends the API's registered key. */
export async function request(baseUrl: string, method: string, path: string, init: RequestOptions = {}): Promise<ApiResult> {
  const url = path.startsWith('http') ? path : baseUrl + path;
  const key = init.apiKey === undefined ? apiKeyFor(url) : init.apiKey;
  const res = await fetch(url, {
    method,
    headers: { ...(init.contentType ? { 'content-type': init.contentType } : {}), ...(key ? { authorization: `Bearer ${key}` } : {}), ...init.headers },
    body: init.body,
    ...(init.body instanceof ReadableStream ? { duplex: 'half' } : {}),
  } as RequestInit);
  const text = await res.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, json, headers: res.headers };
}

/** A JSON request (body serialised when given). `opts` picks another key (or none). */
export function apiCall(baseUrl: string, method: string, path: string, body?: unknown, opts: Pick<RequestOptions, 'apiKey' | 'headers'> = {}): Promise<ApiResult> {
  return request(baseUrl, method, path, { ...opts, ...(body === undefined ? {} : { body: JSON.stringify(body), contentType: 'application/json' }) });
}

/** Polls `probe` until it returns something truthy. */
export async function waitUntil<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
