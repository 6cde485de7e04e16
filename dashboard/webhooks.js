// Event webhooks (docs/webhooks.md): subscriptions with their state, an endpoint's recent deliveries with status codes,
// and, for admin keys, subscribing (the signing secret shown once), disabling, enabling, deleting and replaying one event.
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { ErrorNote, Loading, html, link } from './components.js';
import { dateSeconds, num } from './format.js';
import { dashboardConfig } from './delivery.js';

function EnabledBadge({ w }) {
  return w.enabled
    ? html`<span class="badge status-sent">Enabled</span>`
    : html`<span class="badge status-failed" title=${w.disabledReason || ''}>Disabled</span>`;
}

function SubscribeForm({ eventTypes, onCreated }) {
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    const chosen = eventTypes.filter((t) => form.elements[`ev-${t}`].checked);
    setError(null);
    try {
      const created = await api('POST', '/api/webhooks', {
        url: form.elements.url.value.trim(),
        ...(form.elements.description.value.trim() ? { description: form.elements.description.value.trim() } : {}),
        // None ticked: the API refuses an empty list, so send the field only when some are.
        ...(chosen.length ? { eventTypes: chosen } : {}),
      });
      form.reset();
      onCreated(created);
    } catch (err) {
      setError(err);
    }
  };
  return html`<form class="webhook-form" aria-label="Subscribe an endpoint" onSubmit=${submit}>
    <div class="field"><label for="wh-url">Endpoint URL</label><input id="wh-url" name="url" type="url" required placeholder="https://hooks.example.com/email-events" size="50" /></div>
    <div class="field"><label for="wh-description">Description</label><input id="wh-description" name="description" type="text" maxlength="500" /></div>
    <fieldset>
      <legend>Events (none ticked: every event)</legend>
      ${eventTypes.map((t) => html`<label class="check"><input type="checkbox" name=${`ev-${t}`} /> <code>${t}</code></label>`)}
    </fieldset>
    <button type="submit">Subscribe</button>
    <${ErrorNote} error=${error} />
  </form>`;
}

export function WebhooksPage({ isAdmin }) {
  const [hooks, setHooks] = useState(null);
  const [config, setConfig] = useState(null);
  const [error, setError] = useState(null);
  const [created, setCreated] = useState(null);
  const [reload, setReload] = useState(0);
  useEffect(() => {
    api('GET', '/api/webhooks').then((b) => setHooks(b.webhooks), setError);
  }, [reload]);
  useEffect(() => {
    dashboardConfig().then(setConfig);
  }, []);
  return html`<h1 tabindex="-1">Webhooks</h1>
    <p>Delivery and recipient events pushed to your endpoints, signed per Standard Webhooks (<code>webhook-id</code>, <code>webhook-timestamp</code>,
      <code>webhook-signature</code>), retried with back-off for up to 24 hours by one durable workflow per endpoint.</p>
    ${isAdmin && config?.webhookEventTypes && html`<${SubscribeForm} eventTypes=${config.webhookEventTypes} onCreated=${(c) => { setCreated(c); setReload((n) => n + 1); }} />`}
    ${created && html`<div class="notice" role="status">
      <p>Subscribed <strong>${created.url}</strong>. Its signing secret (also readable later by an admin key):</p>
      <p><label for="wh-secret">Secret</label> <input id="wh-secret" readonly size="60" value=${created.secret} onFocus=${(e) => e.currentTarget.select()} /></p>
    </div>`}
    <${ErrorNote} error=${error} />
    ${!hooks
      ? !error && html`<${Loading} what="the subscriptions" />`
      : hooks.length === 0
        ? html`<p>No endpoint is subscribed.</p>`
        : html`<div class="table-wrap"><table class="data" aria-label="Webhook subscriptions">
            <thead><tr><th scope="col">Endpoint</th><th scope="col">Description</th><th scope="col">Events</th><th scope="col">State</th><th scope="col">Created</th></tr></thead>
            <tbody>${hooks.map((w) => html`<tr data-webhook=${w.id}>
              <td><a href=${link(`/webhooks/${w.id}`)}>${w.url}</a></td><td>${w.description || '—'}</td>
              <td>${num(w.eventTypes.length)} ${w.eventTypes.length === 1 ? 'type' : 'types'}</td>
              <td><${EnabledBadge} w=${w} />${w.disabledReason ? html` <span class="small muted">${w.disabledReason}</span>` : ''}</td>
              <td>${dateSeconds(w.createdAt)}</td>
            </tr>`)}</tbody></table></div>`}`;
}

export function WebhookPage({ id, isAdmin }) {
  const [hook, setHook] = useState(null);
  const [attempts, setAttempts] = useState(null);
  const [error, setError] = useState(null);
  const [outcome, setOutcome] = useState(null);
  const [reload, setReload] = useState(0);
  useEffect(() => {
    api('GET', `/api/webhooks/${id}`).then(setHook, setError);
    api('GET', `/api/webhooks/${id}/deliveries?limit=50`).then((b) => setAttempts(b.attempts), setError);
  }, [id, reload]);

  const act = async (what, call) => {
    setOutcome(null);
    try {
      await call();
      setOutcome({ ok: true, text: what });
    } catch (err) {
      setOutcome({ ok: false, text: `${what}: refused — ${err.message}` });
    }
    setReload((n) => n + 1);
  };
  const disable = () => {
    const reason = globalThis.prompt('Why is this endpoint disabled? (shown with it)', 'disabled from the dashboard');
    if (reason === null) return;
    act('Disabled', () => api('PATCH', `/api/webhooks/${id}`, { enabled: false, ...(reason.trim() ? { disabledReason: reason.trim() } : {}) }));
  };
  const remove = async () => {
    if (!globalThis.confirm('Delete this subscription? Its endpoint workflow ends and no further event is sent.')) return;
    try {
      await api('DELETE', `/api/webhooks/${id}`);
      location.hash = link('/webhooks');
    } catch (err) {
      setOutcome({ ok: false, text: `Not deleted: ${err.message}` });
    }
  };

  if (error) return html`<h1 tabindex="-1">Webhook</h1><${ErrorNote} error=${error} />`;
  if (!hook) return html`<h1 tabindex="-1">Webhook</h1><${Loading} what="the subscription" />`;
  const st = hook.status || {};
  return html`<p><a href=${link('/webhooks')}>← Webhooks</a></p>
    <h1 tabindex="-1">${hook.url}</h1>
    <dl class="facts">
      <div><dt>State</dt><dd><${EnabledBadge} w=${hook} />${hook.disabledReason ? ` ${hook.disabledReason}` : ''}</dd></div>
      <div><dt>Description</dt><dd>${hook.description || '—'}</dd></div>
      <div><dt>Events</dt><dd>${hook.eventTypes.map((t) => html`<code>${t}</code> `)}</dd></div>
      <div><dt>Last delivered</dt><dd>${dateSeconds(st.lastDeliveredAt)}</dd></div>
      <div><dt>Last attempt</dt><dd>${st.lastAttempt ? `${dateSeconds(st.lastAttempt.at)}: ${st.lastAttempt.statusCode ?? st.lastAttempt.error ?? '—'}` : '—'}</dd></div>
      <div><dt>Being retried</dt><dd>${st.pending ? `${num(st.pending.eventCount)} events since ${dateSeconds(st.pending.since)}, ${num(st.pending.attempts)} attempts` : 'nothing'}</dd></div>
      <div><dt>Endpoint workflow</dt><dd><code>${hook.workflowId}</code></dd></div>
    </dl>
    ${isAdmin && html`<div class="controls" role="group" aria-label="Endpoint actions">
      ${hook.enabled
        ? html`<button type="button" class="secondary" onClick=${disable}>Disable</button>`
        : html`<button type="button" onClick=${() => act('Enabled', () => api('POST', `/api/webhooks/${id}/enable`, {}))}>Enable</button>`}
      <button type="button" class="danger" onClick=${remove}>Delete</button>
    </div>`}
    <p role="status" class=${outcome ? (outcome.ok ? 'ok' : 'error') : ''}>${outcome?.text ?? ''}</p>
    <h2>Recent deliveries</h2>
    ${!attempts
      ? html`<${Loading} what="the deliveries" />`
      : attempts.length === 0
        ? html`<p>Nothing has been sent to this endpoint yet.</p>`
        : html`<div class="table-wrap"><table class="data" aria-label="Recent deliveries to this endpoint">
            <thead><tr><th scope="col">Started</th><th scope="col">Kind</th><th scope="col">Attempt</th><th scope="col">Status</th><th scope="col">Time</th><th scope="col">Events</th><th scope="col">Answer</th></tr></thead>
            <tbody>${attempts.map((a) => html`<tr data-attempt=${a.id}>
              <td>${dateSeconds(a.startedAt)}</td><td>${a.kind}</td><td>${num(a.attempt)}</td>
              <td>${a.statusCode ?? html`<span class="error">${a.error || 'no answer'}</span>`}</td>
              <td>${num(a.durationMs)} ms</td>
              <td>${a.eventIds.length} ${isAdmin && a.eventIds.length > 0
                ? html`<details><summary>replay one</summary>${a.eventIds.slice(0, 20).map((ev) => html`<button type="button" class="secondary small"
                    onClick=${() => act(`Event ${ev} queued again`, () => api('POST', `/api/webhooks/${id}/events/${encodeURIComponent(ev)}/replay`, {}))}>${ev}</button> `)}</details>`
                : ''}</td>
              <td class="small">${a.responseExcerpt || '—'}</td>
            </tr>`)}</tbody></table></div>`}`;
}
