// A delivery's figures (statuses over time, top domains, receiving sites) and a recipient workflow's live view.
// Each figure is an aggregate over every recipient of the delivery, so these poll every FIGURES_POLL_MS while it
// sends (not at the KPIs' 2 s): one page costs Postgres one aggregate per figure per 10 s, and the API reuses an
// answer for DELIVERY_FIGURES_CACHE_MS (10 s) across pages, so more pages do not mean more load.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api.js';
import { ErrorNote, Loading, html, useChart } from './components.js';
import { dateSeconds, num, pct, status as statusLabel, words } from './format.js';

export const FIGURES_POLL_MS = 10_000;

/**
 * Reads `path` now, then every `everyMs` while `live` and the tab is visible. When `live` turns false (the delivery
 * ended), it reads once more: the figures then show the end, not the last tick before it.
 */
function useEvery(path, live, everyMs) {
  const [body, setBody] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let gone = false;
    let timer = null;
    const load = async () => {
      if (!document.hidden) {
        try {
          const b = await api('GET', path);
          if (gone) return;
          setBody(b);
          setError(null);
        } catch (e) {
          if (gone) return;
          setError(e);
        }
      }
      if (!gone && live) timer = setTimeout(load, everyMs);
    };
    load();
    return () => {
      gone = true;
      clearTimeout(timer);
    };
  }, [path, live]);
  return { body, error };
}

// Colours with a contrast of 4.5:1 or more on white; the series also differ by line style, and the table carries the figures.
const SERIES = [
  { key: 'sent', label: 'Sent', colour: '#166534', dash: [] },
  { key: 'failed', label: 'Failed', colour: '#b91c1c', dash: [6, 3] },
  { key: 'softWaiting', label: 'Soft bounces waiting', colour: '#854d0e', dash: [2, 2] },
  { key: 'otherTaken', label: 'Taken into account (other)', colour: '#1d4ed8', dash: [10, 4] },
];

const TIME = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const DAY_TIME = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });

function withOther(p) {
  return { ...p, otherTaken: p.takenIntoAccount - p.softWaiting };
}

/** Cumulative statuses over time: a stacked area chart (Chart.js, when it has loaded), its final figures as its label, and every point in a table. */
function TimelineChart({ t }) {
  const canvas = useRef(null);
  const points = t.points.map(withOther);
  const long = t.bucketSeconds >= 3600;
  const labels = points.map((p) => (long ? DAY_TIME : TIME).format(new Date(p.at)));
  useChart(
    canvas,
    () => ({
      type: 'line',
      data: { labels: [], datasets: SERIES.map((s) => ({ label: s.label, data: [], borderColor: s.colour, backgroundColor: `${s.colour}33`, borderDash: s.dash, fill: true, pointRadius: 0, borderWidth: 2 })) },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: 'index', intersect: false },
        plugins: { legend: { position: 'bottom', labels: { color: '#1f2937' } } },
        scales: { x: { ticks: { color: '#1f2937', maxTicksLimit: 10 } }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0, color: '#1f2937' } } },
      },
    }),
    (chart) => {
      chart.data.labels = labels;
      SERIES.forEach((s, i) => {
        chart.data.datasets[i].data = points.map((p) => p[s.key]);
      });
    },
    JSON.stringify(t.points),
  );
  const last = points[points.length - 1];
  const summary = `Recipients by status over time, from ${dateSeconds(t.from)} to ${dateSeconds(t.to)}, in buckets of ${bucketWords(t.bucketSeconds)}. At the end: ${SERIES.map((s) => `${s.label} ${num(last[s.key])}`).join(', ')}.`;
  return html`<div class="chart timeline" style="height:260px;max-width:56rem">
      <canvas ref=${canvas} role="img" aria-label=${summary} data-testid="timeline-chart"></canvas>
    </div>
    <details>
      <summary>The timeline as a table (${num(points.length)} points)</summary>
      <div class="table-wrap" tabindex="0" role="region" aria-label="Timeline table, scrollable"><table class="data compact" data-testid="timeline-table">
        <caption class="visually-hidden">Recipients by status at the end of each time bucket</caption>
        <thead><tr><th scope="col">At</th>${SERIES.map((s) => html`<th scope="col" class="n">${s.label}</th>`)}</tr></thead>
        <tbody>${points.map((p, i) => html`<tr><td>${labels[i]}</td>${SERIES.map((s) => html`<td class="n">${num(p[s.key])}</td>`)}</tr>`)}</tbody>
      </table></div>
    </details>`;
}

function bucketWords(s) {
  if (s % 86400 === 0) return `${s / 86400} day${s === 86400 ? '' : 's'}`;
  if (s % 3600 === 0) return `${s / 3600} hour${s === 3600 ? '' : 's'}`;
  if (s % 60 === 0) return `${s / 60} minute${s === 60 ? '' : 's'}`;
  return `${s} second${s === 1 ? '' : 's'}`;
}

function FigureCells({ c }) {
  return html`<td class="n">${num(c.recipients)}</td><td class="n">${num(c.sent)}</td><td class="n">${num(c.failed)}</td><td class="n">${num(c.softWaiting)}</td><td class="n">${pct(c.successPercent)}</td>`;
}

const FIGURE_HEADS = html`<th scope="col" class="n">Recipients</th><th scope="col" class="n">Sent</th><th scope="col" class="n">Failed</th><th scope="col" class="n">Soft bounces waiting</th><th scope="col" class="n">Success %</th>`;

function DomainsTable({ body }) {
  const { domains, others } = body;
  return html`<div class="table-wrap" tabindex="0" role="region" aria-label="Recipient domains, scrollable"><table class="data compact" data-testid="domains-table">
    <caption>Top ${num(domains.length)} recipient domains</caption>
    <thead><tr><th scope="col">Domain</th>${FIGURE_HEADS}</tr></thead>
    <tbody>
      ${domains.map((d) => html`<tr data-domain=${d.domain}><th scope="row">${d.domain || html`<span class="muted">(not a valid address)</span>`}</th><${FigureCells} c=${d} /></tr>`)}
      ${others.domains > 0 && html`<tr data-domain="(others)"><th scope="row">Other ${num(others.domains)} domain${others.domains === 1 ? '' : 's'}</th><${FigureCells} c=${others} /></tr>`}
    </tbody>
  </table></div>`;
}

function SitesTable({ body }) {
  return html`<div class="table-wrap" tabindex="0" role="region" aria-label="Receiving sites, scrollable"><table class="data compact" data-testid="sites-table">
    <caption>Receiving sites (as the MX rules group them)</caption>
    <thead><tr><th scope="col">Site</th><th scope="col">Provider</th><th scope="col">MX hosts</th><th scope="col" class="n">Domains</th>${FIGURE_HEADS}</tr></thead>
    <tbody>${body.sites.map(
      (s) => html`<tr data-site=${s.site ?? '(none)'}>
        <th scope="row">${s.site ?? html`<span class="muted">No attempt yet</span>`}</th><td>${s.provider ?? '—'}</td>
        <td class="small">${s.mxHosts.length ? s.mxHosts.join(', ') : '—'}</td><td class="n">${num(s.domainCount)}</td><${FigureCells} c=${s} />
      </tr>`,
    )}</tbody>
  </table></div>`;
}

/** The delivery page's figures: shown once sending has started; re-read every 10 s while `live`. */
export function DeliveryFigures({ d, live }) {
  const timeline = useEvery(`/api/deliveries/${d.id}/timeline?buckets=60`, live, FIGURES_POLL_MS);
  const domains = useEvery(`/api/deliveries/${d.id}/domains?limit=20`, live, FIGURES_POLL_MS);
  const sites = useEvery(`/api/deliveries/${d.id}/mx-sites`, live, FIGURES_POLL_MS);
  return html`<section aria-labelledby="timeline-h">
      <h2 id="timeline-h">Over time</h2>
      ${timeline.error
        ? html`<${ErrorNote} error=${timeline.error} />`
        : !timeline.body
          ? html`<${Loading} what="the timeline" />`
          : timeline.body.points.length === 0
            ? html`<p class="muted">Sending has not started.</p>`
            : html`<${TimelineChart} t=${timeline.body} />`}
      ${live && html`<p class="muted small">Refreshed every ${FIGURES_POLL_MS / 1000} s while the delivery sends.</p>`}
    </section>
    <section aria-labelledby="domains-h">
      <h2 id="domains-h">Domains and receiving sites</h2>
      <div>
        <div>${domains.error ? html`<${ErrorNote} error=${domains.error} />` : domains.body ? html`<${DomainsTable} body=${domains.body} />` : html`<${Loading} what="the domains" />`}</div>
        <div>${sites.error ? html`<${ErrorNote} error=${sites.error} />` : sites.body ? html`<${SitesTable} body=${sites.body} />` : html`<${Loading} what="the receiving sites" />`}</div>
      </div>
    </section>`;
}

/** The recipient workflow's own view (its query), re-read every 10 s while `live`. */
/** `uiLink`: the recipient workflow in the Temporal UI, when its address is known (the page's facts show the ID otherwise). */
export function RecipientLive({ id, rid, live, uiLink }) {
  const { body, error } = useEvery(`/api/deliveries/${id}/recipients/${rid}/live`, live, FIGURES_POLL_MS);
  const link = uiLink ? html`<p><a href=${uiLink} target="_blank" rel="noopener noreferrer" data-testid="recipient-workflow-link">Recipient workflow in the Temporal UI</a></p>` : null;
  let content;
  if (error) content = error.status === 404 ? html`<p class="muted" data-testid="live-state">No workflow answers for this recipient: not started yet, or its history is gone.</p>` : html`<${ErrorNote} error=${error} />`;
  else if (!body) content = html`<${Loading} what="the workflow's view" />`;
  else if (body.temporalUnavailable) content = html`<p class="notice" role="note" data-testid="live-state">Temporal does not answer: the workflow's view cannot be read now.</p>`;
  else {
    const s = body.state;
    content = html`<dl class="facts" data-testid="live-state">
      <div><dt>Status in the workflow</dt><dd>${statusLabel(s.status)}${s.statusSource ? html` <span class="muted small">(${words(s.statusSource)})</span>` : ''}</dd></div>
      <div><dt>Attempts made</dt><dd data-testid="live-attempts">${num(s.attempts)}</dd></div>
      ${s.failureReason && html`<div><dt>Last failure</dt><dd>${words(s.failureType)} · ${words(s.failureReason)}${s.retryClass ? ` (${words(s.retryClass)})` : ''}</dd></div>`}
      <div><dt>Next retry</dt><dd data-testid="live-next-retry">${s.nextRetryAt ? dateSeconds(s.nextRetryAt) : '—'}</dd></div>
      <div><dt>Retry window ends</dt><dd>${dateSeconds(s.retryWindowEndsAt)}</dd></div>
      ${s.sendAt && html`<div><dt>First attempt due</dt><dd>${dateSeconds(s.sendAt)}</dd></div>`}
      ${s.feedbackWindowEndsAt && html`<div><dt>Waits for reports until</dt><dd>${dateSeconds(s.feedbackWindowEndsAt)}</dd></div>`}
      <div><dt>Last reply</dt><dd>${s.lastReply ? html`<code>${s.lastReply.code}${s.lastReply.enhancedCode ? ` ${s.lastReply.enhancedCode}` : ''}</code> ${s.lastReply.text ?? ''}` : '—'}</dd></div>
    </dl>`;
  }
  return html`<section aria-labelledby="live-h">
    <h2 id="live-h">Workflow, live</h2>
    ${content}
    ${live && html`<p class="muted small">Asked of the recipient workflow every ${FIGURES_POLL_MS / 1000} s while the recipient is not final.</p>`}
    ${link}
  </section>`;
}
