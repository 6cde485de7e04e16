// Calls to the API with the session cookie, and the session's CSRF token (docs/access-control.md); a 401
// (session ended, key revoked) sends the app back to its sign-in form.
let csrfToken = null;
const listeners = new Set();

export function setCsrfToken(token) {
  csrfToken = token;
}

/** Called with no argument when the API answers 401: the session is gone. */
export function onSignedOut(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export class ApiError extends Error {
  constructor(status, body) {
    super(describe(status, body));
    this.status = status;
    this.body = body;
  }
}

function describe(status, body) {
  if (!body || typeof body !== 'object') return `the API answered ${status}`;
  // A rule's 400 already lists its issues in `error`: repeat none of them.
  const issues = Array.isArray(body.issues)
    ? body.issues.filter((i) => !String(body.error || '').includes(i.message)).map((i) => `${issuePath(i) || 'input'}: ${i.message}`)
    : [];
  return [body.error || `the API answered ${status}`, ...issues].join(' — ');
}

/** An issue's field: the API answers a dotted string ("sample.body"); an array is joined the same way. */
export function issuePath(issue) {
  return Array.isArray(issue.path) ? issue.path.join('.') : String(issue.path ?? '');
}

/**
 * `options.headers`: more headers (an Idempotency-Key); `options.contentType`: the body is sent as it is (a CSV file)
 * with that type, instead of as JSON; `options.quietOn401`: a 401 does not sign the app out (a read started before
 * the app knew whether a session is open, whose 401 could arrive after a sign-in).
 */
export async function api(method, path, body, options = {}) {
  const headers = { Accept: 'application/json', ...options.headers };
  // Every call carries the token: changes need it, and so do admin reads (GET /api/keys, /api/audit-log), since any
  // route above the read scope does.
  if (csrfToken) headers['X-CSRF-Token'] = csrfToken;
  const raw = options.contentType !== undefined;
  if (body !== undefined) headers['Content-Type'] = raw ? options.contentType : 'application/json';
  const payload = body === undefined ? undefined : raw ? body : JSON.stringify(body);
  const r = await fetch(path, { method, headers, credentials: 'same-origin', body: payload });
  const json = await r.json().catch(() => null);
  if (r.status === 401 && path !== '/api/session' && !options.quietOn401) for (const fn of listeners) fn();
  if (!r.ok) throw new ApiError(r.status, json);
  return json;
}

/**
 * Reads started as the app loads, before it knows whether a session is open (app.js): the page's first reads go out
 * with the session check instead of after it, one round trip less before the page shows anything. A page takes each
 * once, as its first read of that path; none is kept when no session is open, nor taken once it is EARLY_READ_MAX_MS
 * old (a later visit reads anew).
 */
const EARLY_READ_MAX_MS = 10_000;
const earlyReads = new Map();

export function startEarlyRead(path) {
  // The session check decides whether the app is signed in; a refusal of this read says nothing more.
  const read = api('GET', path, undefined, { quietOn401: true });
  // Its failure is the page's to show when it takes the read; one never taken is no error.
  read.catch(() => undefined);
  earlyReads.set(path, { read, atMs: Date.now() });
}

export function dropEarlyReads() {
  earlyReads.clear();
}

/** GET `path`: the read started at load when there is one (taken once), else a new one. */
export function firstRead(path) {
  const early = earlyReads.get(path);
  earlyReads.delete(path);
  return early && Date.now() - early.atMs < EARLY_READ_MAX_MS ? early.read : api('GET', path);
}

/** Opens a session with a key (sent once, in Authorization); the browser keeps only the cookie. */
export async function signIn(key) {
  const r = await fetch('/api/session', { method: 'POST', headers: { Authorization: `Bearer ${key}`, Accept: 'application/json' }, credentials: 'same-origin' });
  const json = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, json);
  setCsrfToken(json.csrfToken);
  return { key: json.key, expiresAt: json.expiresAt };
}

/** The open session, or null when there is none. */
export async function currentSession() {
  try {
    const s = await api('GET', '/api/session');
    if (s.via !== 'session') return null;
    setCsrfToken(s.csrfToken);
    return { key: s.key, expiresAt: s.expiresAt };
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return null;
    throw e;
  }
}

export async function signOut() {
  await api('DELETE', '/api/session').catch(() => undefined);
  setCsrfToken(null);
}

/**
 * A new Idempotency-Key (docs/idempotency-keys.md): 128 random bits as hex. crypto.getRandomValues works on plain
 * HTTP too, where crypto.randomUUID is not available.
 */
export function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `dashboard-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}
