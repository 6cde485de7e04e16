// API keys (admin): the list (never a secret), creating one (its secret shown this once) and revoking one.
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { ErrorNote, Loading, html } from './components.js';
import { dateSeconds } from './format.js';

const SCOPES = { read: 'read: sees everything, changes nothing', send: 'send: also creates, confirms and controls deliveries', admin: 'admin: also rules, keys, quarantine and denylist' };

export function KeysPage({ isAdmin, ownKeyId }) {
  const [keys, setKeys] = useState(null);
  const [error, setError] = useState(null);
  const [created, setCreated] = useState(null);
  const [outcome, setOutcome] = useState(null);
  const [showRevoked, setShowRevoked] = useState(false);
  const [reload, setReload] = useState(0);
  useEffect(() => {
    if (!isAdmin) return;
    api('GET', `/api/keys${showRevoked ? '?includeRevoked=true' : ''}`).then((b) => setKeys(b.keys), setError);
  }, [showRevoked, reload, isAdmin]);
  if (!isAdmin) return html`<h1 tabindex="-1">API keys</h1><p>Keys are managed with an admin key.</p>`;

  const create = async (e) => {
    e.preventDefault();
    // The event's currentTarget is gone once the handler awaits: keep the form.
    const form = e.currentTarget;
    setCreated(null);
    setOutcome(null);
    try {
      setCreated(await api('POST', '/api/keys', { name: form.elements.name.value.trim(), scopes: [form.elements.scope.value] }));
      form.reset();
    } catch (err) {
      setOutcome({ ok: false, text: `Not created: ${err.message}` });
    }
    setReload((n) => n + 1);
  };
  const revoke = async (k) => {
    if (!globalThis.confirm(`Revoke "${k.name}"? Programs and sessions using it stop at once.`)) return;
    try {
      await api('DELETE', `/api/keys/${k.id}`);
      setOutcome({ ok: true, text: `"${k.name}" revoked.` });
    } catch (err) {
      setOutcome({ ok: false, text: `Not revoked: ${err.message}` });
    }
    setReload((n) => n + 1);
  };
  return html`<h1 tabindex="-1">API keys</h1>
    <form class="filters" aria-label="Create an API key" onSubmit=${create}>
      <div class="field"><label for="k-name">Name (who or what uses it)</label><input id="k-name" name="name" type="text" required maxlength="200" /></div>
      <div class="field"><label for="k-scope">Scope</label>
        <select id="k-scope" name="scope">${Object.entries(SCOPES).map(([v, l]) => html`<option value=${v}>${l}</option>`)}</select></div>
      <button type="submit">Create key</button>
    </form>
    ${created && html`<div class="notice" role="status">
      <p>Key <strong>${created.name}</strong> created. Copy it now: it is shown this once, and only its hash is kept.</p>
      <p><label for="k-secret">Secret</label> <input id="k-secret" readonly size="60" value=${created.secret} onFocus=${(e) => e.currentTarget.select()} /></p>
    </div>`}
    <p role="status" class=${outcome ? (outcome.ok ? 'ok' : 'error') : ''}>${outcome?.text ?? ''}</p>
    <p><label><input type="checkbox" checked=${showRevoked} onChange=${(e) => setShowRevoked(e.currentTarget.checked)} /> Show revoked keys</label></p>
    <${ErrorNote} error=${error} />
    ${!keys
      ? !error && html`<${Loading} what="the keys" />`
      : html`<div class="table-wrap"><table class="data" aria-label="API keys">
          <thead><tr><th scope="col">Name</th><th scope="col">Prefix</th><th scope="col">Scopes</th><th scope="col">Created</th><th scope="col">By</th><th scope="col">Last used</th><th scope="col">Revoked</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
          <tbody>${keys.map((k) => html`<tr data-key=${k.id}>
            <td>${k.name}${k.id === ownKeyId ? html` <span class="muted small">(this session)</span>` : ''}</td><td><code>${k.prefix}…</code></td><td>${k.scopes.join(', ')}</td>
            <td>${dateSeconds(k.createdAt)}</td><td>${k.createdBy?.name ?? '—'}</td><td>${dateSeconds(k.lastUsedAt)}</td><td>${dateSeconds(k.revokedAt)}</td>
            <td>${!k.revokedAt && k.id !== ownKeyId && html`<button type="button" class="danger" aria-label=${`Revoke ${k.name}`} onClick=${() => revoke(k)}>Revoke</button>`}</td>
          </tr>`)}</tbody></table></div>`}`;
}
