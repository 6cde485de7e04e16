/**
 * Sessions for browsers: `POST /api/session` with an API key sets an HttpOnly, signed, SameSite=Strict cookie that
 * stands for the key (the Temporal Web UI's codec calls, the dashboard); `GET` says who is signed in; `DELETE` signs
 * out. `GET /session` is a static sign-in page for people (paste a key), public because it holds no data.
 */
import { createHash } from 'node:crypto';
import { Router } from 'express';
import type { AccessControl } from './access-control';
import { principalOf } from './access-control';
import type { ApiKeyStore } from '../../db/api-key-store';

const SIGN_IN_SCRIPT = `
const form = document.getElementById('f');
const out = document.getElementById('out');
form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const key = document.getElementById('key').value.trim();
  const r = await fetch('/api/session', { method: 'POST', headers: { Authorization: 'Bearer ' + key } });
  const body = await r.json().catch(() => ({}));
  out.textContent = r.ok
    ? 'Signed in as "' + body.key.name + '" (' + body.key.scopes.join(', ') + ') until ' + body.expiresAt + '. This browser can now open decoded payloads in the Temporal Web UI.'
    : 'Not signed in: ' + (body.error || r.status);
  document.getElementById('key').value = '';
});
document.getElementById('out-btn').addEventListener('click', async () => {
  const r = await fetch('/api/session', { method: 'DELETE' });
  out.textContent = r.ok ? 'Signed out.' : 'Not signed in.';
});
`;

const SIGN_IN_PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in · email delivery API</title><meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; line-height: 1.5">
<h1>Sign in to the email delivery API</h1>
<p>Paste an API key (one with the <code>read</code> scope is enough to see decoded payloads in the Temporal Web UI). The key is sent once, to <code>POST /api/session</code>; the browser keeps only a session cookie.</p>
<form id="f"><label for="key">API key</label><br>
<input id="key" name="key" type="password" autocomplete="off" required size="60" pattern="ede_[A-Za-z0-9_\\-]{43}">
<button type="submit">Sign in</button></form>
<p><button id="out-btn" type="button">Sign out</button></p>
<p id="out" role="status" aria-live="polite"></p>
<script>${SIGN_IN_SCRIPT}</script>
</body></html>
`;

/** The page's only script, allowed by its hash: nothing injected could run. */
const PAGE_CSP = `default-src 'none'; script-src 'sha256-${createHash('sha256').update(SIGN_IN_SCRIPT).digest('base64')}'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'`;

export function createSessionRouter(deps: { access: AccessControl; keys: Pick<ApiKeyStore, 'get'> }): Router {
  const router = Router();
  const { sessions } = deps.access;

  router.get('/session', (_req, res) => {
    res.setHeader('Content-Security-Policy', PAGE_CSP);
    res.setHeader('Cache-Control', 'no-store');
    res.type('html').send(SIGN_IN_PAGE);
  });

  // Signing in takes the key itself (a session cannot extend itself: it ends when it says it does).
  router.post('/api/session', async (_req, res) => {
    const p = principalOf(res)!;
    if (p.via !== 'key') {
      res.setHeader('WWW-Authenticate', 'Bearer realm="email-delivery"');
      res.status(401).json({ error: 'sign in with the API key itself ("Authorization: Bearer <key>"), not with a session', reason: 'missing_key' });
      return;
    }
    const key = (await deps.keys.get(p.key.id))!;
    const { expiresAt, csrfToken } = sessions.open(res, key);
    res.status(201).json({ key: { id: key.id, name: key.name, prefix: key.prefix, scopes: key.scopes }, expiresAt: expiresAt.toISOString(), csrfToken });
  });

  router.get('/api/session', (_req, res) => {
    const p = principalOf(res)!;
    res.json({
      key: { id: p.key.id, name: p.key.name, prefix: p.key.prefix, scopes: p.key.scopes },
      via: p.via,
      ...(p.session ? { expiresAt: p.session.expiresAt.toISOString(), csrfToken: sessions.csrfToken(p.session.value) } : {}),
    });
  });

  router.delete('/api/session', (_req, res) => {
    sessions.close(res);
    res.json({ signedOut: true });
  });

  return router;
}
