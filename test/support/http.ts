/** Small HTTP helpers for tests that drive the real API, and a poller for conditions that become true eventually. */

export interface ApiResult {
  status: number;
  // Tests index into arbitrary response shapes.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export type RequestBody = string | ReadableStream<Uint8Array>;

/** Any request; the answer parsed as JSON when it is JSON, else kept as text. */
export async function request(baseUrl: string, method: string, path: string, init: { body?: RequestBody; contentType?: string } = {}): Promise<ApiResult> {
  const res = await fetch(path.startsWith('http') ? path : baseUrl + path, {
    method,
    headers: init.contentType ? { 'content-type': init.contentType } : {},
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
  return { status: res.status, json };
}

/** A JSON request (body serialised when given). */
export function apiCall(baseUrl: string, method: string, path: string, body?: unknown): Promise<ApiResult> {
  return request(baseUrl, method, path, body === undefined ? {} : { body: JSON.stringify(body), contentType: 'application/json' });
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
