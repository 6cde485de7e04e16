// Receiving MX sites: their state, the limits they are sent at now (the rule's, lowered after throttling replies),
// connections, queue, and the replies of the last hour; admin keys may suspend and resume a site.
import { useState } from 'preact/hooks';
import { api } from './api.js';
import { ErrorNote, Loading, html } from './components.js';
import { usePolled } from './delivery.js';
import { dateSeconds, num, words } from './format.js';

const limitText = (l) =>
  l ? [l.perSecond !== null ? `${l.perSecond}/s` : null, l.perHour !== null ? `${l.perHour}/h` : null, `${l.maxConnections} conn.`, `${l.messagesPerConnection} msg/conn.`].filter(Boolean).join(' · ') : '—';

export function MxSitesPage({ isAdmin }) {
  // A live view: refreshed every 2 s like a delivery's page.
  const { body, error, refresh } = usePolled('/api/mx-sites', () => true);
  const [outcome, setOutcome] = useState(null);
  const act = async (site, verb) => {
    try {
      if (verb === 'suspend') await api('POST', `/api/mx-sites/${encodeURIComponent(site)}/suspend`, { seconds: 900, reason: 'suspended from the dashboard' });
      else await api('POST', `/api/mx-sites/${encodeURIComponent(site)}/resume`, {});
      setOutcome({ ok: true, text: verb === 'suspend' ? `${site} suspended for 15 minutes.` : `${site} resumed.` });
    } catch (e) {
      setOutcome({ ok: false, text: `Refused: ${e.message}` });
    }
    refresh();
  };
  return html`<h1 tabindex="-1">MX sites</h1>
    <p class="muted small">Receiving sites this installation has sent to, refreshed every 2 s. Limits come from the MX site rules, lowered while a site throttles.</p>
    <p role="status" class=${outcome ? (outcome.ok ? 'ok' : 'error') : ''}>${outcome?.text ?? ''}</p>
    <${ErrorNote} error=${error} />
    ${!body
      ? !error && html`<${Loading} what="the MX sites" />`
      : html`<div class="table-wrap"><table class="data" aria-label="MX sites">
          <thead><tr><th scope="col">Site</th><th scope="col">Rule</th><th scope="col">State</th><th scope="col">Limits now</th><th scope="col" class="n">Connections</th>
            <th scope="col" class="n">In flight</th><th scope="col" class="n">Waiting</th><th scope="col">Replies (60 min)</th><th scope="col">Last change</th>
            ${isAdmin && html`<th scope="col"><span class="visually-hidden">Action</span></th>`}</tr></thead>
          <tbody>
            ${body.sites.length === 0 && html`<tr><td colspan="10" class="muted">No site has been sent to yet.</td></tr>`}
            ${body.sites.map((s) => html`<tr data-site=${s.site}>
              <td>${s.site}</td><td>${s.rule.id}${s.rule.provider ? html` <span class="muted small">(${s.rule.provider})</span>` : ''}</td>
              <td>${words(s.state)}${s.suspendedUntil ? html`<div class="small">until ${dateSeconds(s.suspendedUntil)}</div>` : ''}</td>
              <td>${limitText(s.limits)}</td><td class="n">${num(s.connections.open)}${s.connections.max !== null ? ` / ${num(s.connections.max)}` : ''}</td>
              <td class="n">${num(s.inFlight)}</td><td class="n">${num(s.waiting)}</td>
              <td>${num(s.recentReplies.accepted)} accepted · ${num(s.recentReplies.deferred)} deferred · ${num(s.recentReplies.rejected)} rejected${s.recentReplies.noReply ? ` · ${num(s.recentReplies.noReply)} no reply` : ''}</td>
              <td>${s.lastChange ? html`${words(s.lastChange.kind)}${s.lastChange.causeReply ? html`<div class="small reply">${s.lastChange.causeReply}</div>` : ''}` : '—'}<div class="small">${s.lastChangeAt ? dateSeconds(s.lastChangeAt) : ''}</div></td>
              ${isAdmin && html`<td>${s.state === 'suspended'
                ? html`<button type="button" class="secondary" aria-label=${`Resume ${s.site}`} onClick=${() => act(s.site, 'resume')}>Resume</button>`
                : html`<button type="button" class="danger" aria-label=${`Suspend ${s.site}`} onClick=${() => act(s.site, 'suspend')}>Suspend</button>`}</td>`}
            </tr>`)}
          </tbody></table></div>`}`;
}
