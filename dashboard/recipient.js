// One recipient: its row in the delivery log (refreshed every 2 s until it is final), every EFS transition, every SMTP
// attempt with the reply and the MX host, the recipient workflow's live view (its query), the asynchronous feedback
// it received, and its address's quarantine record.
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { ErrorNote, Loading, StatusBadge, html, link } from './components.js';
import { dashboardConfig, temporalLink, usePolled } from './delivery.js';
import { dateSeconds, num, status as statusLabel, words } from './format.js';
import { RecipientLive } from './figures.js';

const FINAL = ['sent', 'failed', 'excluded', 'cancelled'];

function Reply({ code, enhanced, text }) {
  if (!code && !text) return html`<span class="muted">—</span>`;
  return html`<span class="reply">${code ? html`<code>${code}${enhanced ? ` ${enhanced}` : ''}</code> ` : ''}${text ?? ''}</span>`;
}

function Extra({ id, rid, address }) {
  const [feedback, setFeedback] = useState(undefined);
  const [quarantine, setQuarantine] = useState(undefined);
  useEffect(() => {
    api('GET', `/api/deliveries/${id}/recipients/${rid}/feedback`).then((b) => setFeedback(b.feedback), () => setFeedback(null));
    api('GET', `/api/quarantine/${encodeURIComponent(address)}`).then(setQuarantine, (e) => setQuarantine(e.status === 404 ? 'none' : null));
  }, [id, rid, address]);
  return html`<section aria-labelledby="feedback-h">
      <h2 id="feedback-h">Feedback received later</h2>
      ${feedback === undefined
        ? html`<${Loading} what="feedback" />`
        : feedback === null
          ? html`<p class="muted">This API does not serve feedback.</p>`
          : feedback.length === 0
            ? html`<p class="muted">No bounce, report or complaint received for this recipient.</p>`
            : html`<table class="data" aria-label="Feedback received">
                <thead><tr><th scope="col">Received</th><th scope="col">Type</th><th scope="col">Reason</th><th scope="col">Status</th><th scope="col">Diagnostic</th><th scope="col">Effect</th></tr></thead>
                <tbody>${feedback.map((f) => html`<tr><td>${dateSeconds(f.receivedAt)}</td><td>${words(f.type)}</td><td>${words(f.reason)}</td><td>${f.status ?? ''}</td><td class="reply">${f.diagnostic ?? ''}</td><td>${words(f.effect)}</td></tr>`)}</tbody>
              </table>`}
    </section>
    <section aria-labelledby="quarantine-h">
      <h2 id="quarantine-h">Quarantine</h2>
      ${quarantine === undefined
        ? html`<${Loading} what="the quarantine record" />`
        : quarantine === 'none'
          ? html`<p>The address has no quarantine record.</p>`
          : quarantine === null
            ? html`<p class="muted">The quarantine record could not be read.</p>`
            : html`<p data-testid="quarantine">${quarantine.quarantined ? html`<strong>Quarantined</strong>` : 'Not quarantined'} (${words(quarantine.reason)}, ${num(quarantine.errorCount)} failure${quarantine.errorCount === 1 ? '' : 's'}, last ${dateSeconds(quarantine.lastFailureAt)}${quarantine.expiresAt ? `, until ${dateSeconds(quarantine.expiresAt)}` : ''}).</p>`}
    </section>`;
}

export function RecipientPage({ id, rid }) {
  const { body, error } = usePolled(`/api/deliveries/${id}/recipients/${rid}`, (b) => !FINAL.includes(b.recipient.status));
  const [config, setConfig] = useState(null);
  useEffect(() => {
    dashboardConfig().then(setConfig);
  }, []);
  const crumbs = html`<nav aria-label="Breadcrumb" class="crumbs"><a href=${link('/deliveries')}>Deliveries</a> › <a href=${link(`/deliveries/${id}`)}>Delivery</a> › <a href=${link(`/deliveries/${id}/log`)}>Log</a> › <span>Recipient ${rid}</span></nav>`;
  if (!body) return html`${crumbs}<h1 tabindex="-1">Recipient ${rid}</h1>${error ? html`<${ErrorNote} error=${error} />` : html`<${Loading} what="the recipient" />`}`;
  const { recipient: r, transitions, attempts, workflowId } = body;
  const uiLink = temporalLink(config, workflowId);
  return html`${crumbs}
    <h1 tabindex="-1">${r.address} <${StatusBadge} status=${r.status} /></h1>
    <dl class="facts">
      <div><dt>Status</dt><dd>${statusLabel(r.status)}${FINAL.includes(r.status) ? '' : ' (refreshed every 2 s)'}</dd></div>
      ${r.exclusionReason && html`<div><dt>Excluded because</dt><dd>${words(r.exclusionReason)}</dd></div>`}
      ${r.failureReason && html`<div><dt>Failure</dt><dd>${words(r.failureType)} · ${words(r.failureReason)}</dd></div>`}
      <div><dt>Attempts</dt><dd>${num(r.attempts)}</dd></div>
      <div><dt>Last SMTP reply</dt><dd data-testid="last-reply"><${Reply} code=${r.lastSmtpCode} enhanced=${r.lastEnhancedCode} text=${r.lastReply} /></dd></div>
      <div><dt>Last MX host</dt><dd>${r.lastMxHost ?? '—'}</dd></div>
      <div><dt>Handed over</dt><dd>${dateSeconds(r.handedOverAt)}</dd></div>
      ${r.nextRetryAt && !FINAL.includes(r.status) && html`<div><dt>Next retry</dt><dd>${dateSeconds(r.nextRetryAt)}</dd></div>`}
      <div><dt>Final</dt><dd>${dateSeconds(r.finalAt)}</dd></div>
      <div><dt>Workflow</dt><dd>${uiLink ? html`<a href=${uiLink} target="_blank" rel="noopener noreferrer">${workflowId}</a>` : html`<code>${workflowId}</code>`}</dd></div>
    </dl>
    <${RecipientLive} id=${id} rid=${rid} live=${!FINAL.includes(r.status)} uiLink=${uiLink} />
    <section aria-labelledby="attempts-h">
      <h2 id="attempts-h">SMTP attempts</h2>
      ${attempts.length === 0
        ? html`<p class="muted">No attempt yet.</p>`
        : html`<div class="table-wrap"><table class="data" aria-label="SMTP attempts">
            <thead><tr><th scope="col" class="n">#</th><th scope="col">Started</th><th scope="col">Outcome</th><th scope="col">SMTP reply</th><th scope="col">MX host</th><th scope="col">Reason</th><th scope="col">Rule</th></tr></thead>
            <tbody>${attempts.map(
              (a) => html`<tr data-attempt=${a.attempt}>
                <td class="n">${a.attempt}</td><td>${dateSeconds(a.startedAt)}</td><td>${words(a.outcome)}</td>
                <td><${Reply} code=${a.smtpCode} enhanced=${a.enhancedCode} text=${a.replyText} /></td>
                <td>${a.mxHost ?? '—'}</td><td>${words(a.failureReason)}${a.retryClass && a.retryClass !== 'none' ? html` <span class="muted small">(${words(a.retryClass)})</span>` : ''}</td><td>${a.ruleId ?? ''}</td>
              </tr>`,
            )}</tbody>
          </table></div>`}
    </section>
    <section aria-labelledby="history-h">
      <h2 id="history-h">Status history</h2>
      <ol class="history">${transitions.map(
        (t) => html`<li><time datetime=${new Date(t.at).toISOString()}>${dateSeconds(t.at)}</time>${' — '}
          ${t.fromStatus ? `${statusLabel(t.fromStatus)} → ` : ''}<strong>${statusLabel(t.toStatus)}</strong>
          ${t.failureReason ? ` · ${words(t.failureType)} · ${words(t.failureReason)}` : ''}
          ${t.smtpCode || t.replyText ? html` · <${Reply} code=${t.smtpCode} enhanced=${t.enhancedCode} text=${t.replyText} />` : ''}
          ${t.mxHost ? ` · ${t.mxHost}` : ''}${t.source ? html` <span class="muted small">(${words(t.source)})</span>` : ''}</li>`,
      )}</ol>
    </section>
    <${Extra} id=${id} rid=${rid} address=${r.address} />`;
}
