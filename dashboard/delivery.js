// One delivery: KPIs refreshed every 2 s while it is live (GET /api/deliveries/:id answers from the workflow's query,
// not from Postgres), its figures over time, per domain and per site (figures.js, every 10 s), failures, waves, the
// analysis report, and the controls for send/admin keys.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { api, firstRead } from './api.js';
import { BarChart, ErrorNote, Kpis, Loading, PhaseBadge, html, link } from './components.js';
import { date, dateSeconds, num, pct, words } from './format.js';
import { DeliveryFigures } from './figures.js';

const POLL_MS = 2000;
const ENDED = ['completed', 'cancelled'];
const BEFORE_CONFIRMATION = ['created', 'analysing', 'awaiting_confirmation', 'analysis_failed'];

let configPromise = null;
/** The installation's settings the page needs (the Temporal UI's address), read once. */
export function dashboardConfig() {
  configPromise ??= api('GET', '/api/dashboard/config').catch(() => ({ temporalUi: null }));
  return configPromise;
}

export function temporalLink(config, workflowId) {
  if (!config?.temporalUi) return null;
  const { url, namespace } = config.temporalUi;
  return `${url}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/** The API read of a delivery's page. */
export const deliveryPath = (id) => `/api/deliveries/${id}`;

/**
 * Polls `path` every POLL_MS while `live(body)` says so (and the tab is visible); `refresh()` reads it at once. The
 * first read is the one the app started at load, if it did (api.js, firstRead). A layout effect, which runs before the
 * browser paints rather than a frame after: an answer already in (the app's early read) is then shown in the same frame
 * as the page around it.
 */
export function usePolled(path, live) {
  const [body, setBody] = useState(null);
  const [error, setError] = useState(null);
  const [tick, setTick] = useState(0);
  const timer = useRef(null);
  useLayoutEffect(() => {
    let gone = false;
    const load = async () => {
      clearTimeout(timer.current);
      if (document.hidden) {
        timer.current = setTimeout(load, POLL_MS);
        return;
      }
      try {
        const b = await firstRead(path);
        if (gone) return;
        setBody(b);
        setError(null);
        if (live(b)) timer.current = setTimeout(load, POLL_MS);
      } catch (e) {
        if (gone) return;
        setError(e);
        // Temporal or the API briefly away: keep trying, more slowly.
        if (e.status !== 404 && e.status !== 401) timer.current = setTimeout(load, POLL_MS * 3);
      }
    };
    load();
    return () => {
      gone = true;
      clearTimeout(timer.current);
    };
  }, [path, tick]);
  return { body, error, refresh: () => setTick((t) => t + 1) };
}

function Controls({ d, onChanged }) {
  const [busy, setBusy] = useState(null);
  const [outcome, setOutcome] = useState(null);
  const run = async (verb, label, body) => {
    if (verb === 'cancel' && !globalThis.confirm(`Cancel "${d.name}"? Recipients not sent yet will not be sent.`)) return;
    setBusy(verb);
    setOutcome(null);
    try {
      await api('POST', `/api/deliveries/${d.id}/${verb}`, body ?? {});
      setOutcome({ ok: true, text: `${label}: accepted.` });
    } catch (e) {
      setOutcome({ ok: false, text: `${label} refused: ${e.message}` });
    } finally {
      setBusy(null);
      onChanged();
    }
  };
  const ended = ENDED.includes(d.state);
  const beforeConfirmation = BEFORE_CONFIRMATION.includes(d.state);
  // An ended delivery has nothing to control; the outcome of the last action stays until the page is left.
  if (ended && !outcome) return null;
  return html`<section class="controls" aria-labelledby="controls-h">
    <h2 id="controls-h" class="visually-hidden">Controls</h2>
    ${beforeConfirmation && html`<button type="button" data-action="confirm" disabled=${busy !== null} onClick=${() => run('confirm', 'Confirm')}>Confirm</button>`}
    ${!ended && !beforeConfirmation && !d.paused && html`<button type="button" class="secondary" data-action="pause" disabled=${busy !== null} onClick=${() => run('pause', 'Pause', { reason: 'paused from the dashboard' })}>Pause</button>`}
    ${!ended && d.paused && html`<button type="button" data-action="resume" disabled=${busy !== null} onClick=${() => run('resume', 'Resume')}>Resume</button>`}
    ${!ended && html`<button type="button" class="danger" data-action="cancel" disabled=${busy !== null} onClick=${() => run('cancel', 'Cancel', { reason: 'cancelled from the dashboard' })}>Cancel delivery</button>`}
    <p class=${outcome ? (outcome.ok ? 'ok' : 'error') : ''} role="status" data-testid="control-outcome">${outcome?.text ?? ''}</p>
  </section>`;
}

/** A date-time input's value (local time, minutes) for an ISO date, and back. */
const toLocalInput = (iso) => {
  if (!iso) return '';
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
};

/** Changing the contact date (until sending starts) and sending proofs: send and admin keys. */
function Planning({ d, onChanged }) {
  const [outcome, setOutcome] = useState(null);
  const [proofs, setProofs] = useState(null);
  const [busy, setBusy] = useState(false);
  const canReschedule = BEFORE_CONFIRMATION.includes(d.state) || d.state === 'scheduled';
  const reschedule = async (e) => {
    e.preventDefault();
    const value = e.currentTarget.elements.contactDate.value;
    setOutcome(null);
    try {
      await api('PUT', `/api/deliveries/${d.id}/contact-date`, { contactDate: value ? new Date(value).toISOString() : null });
      setOutcome({ ok: true, text: value ? `Contact date set to ${date(new Date(value))}.` : 'Contact date removed: it sends once confirmed.' });
    } catch (err) {
      setOutcome({ ok: false, text: `Contact date refused: ${err.message}` });
    }
    onChanged();
  };
  const sendProofs = async (e) => {
    e.preventDefault();
    const addresses = e.currentTarget.elements.proofs.value.split(/[\s,;]+/).filter(Boolean);
    setBusy(true);
    setProofs(null);
    try {
      setProofs({ results: (await api('POST', `/api/deliveries/${d.id}/proofs`, { addresses })).proofs });
    } catch (err) {
      setProofs({ error: err });
    } finally {
      setBusy(false);
    }
  };
  return html`<section aria-labelledby="planning-h">
    <h2 id="planning-h">Contact date and proofs</h2>
    <div class="two">
      ${canReschedule
        ? html`<form class="filters" aria-label="Change the contact date" onSubmit=${reschedule}>
            <div class="field"><label for="contact-date">Contact date (your time; empty: once confirmed)</label>
              <input id="contact-date" name="contactDate" type="datetime-local" defaultValue=${toLocalInput(d.contactDate)} /></div>
            <button type="submit" class="secondary">Change contact date</button>
            <p role="status" class=${outcome ? (outcome.ok ? 'ok' : 'error') : ''} data-testid="reschedule-outcome">${outcome?.text ?? ''}</p>
          </form>`
        : html`<p class="muted">Sending has started: the contact date can no longer change.</p>`}
      <form class="filters" aria-label="Send proofs" onSubmit=${sendProofs}>
        <div class="field"><label for="proofs">Proof addresses (up to 20)</label>
          <input id="proofs" name="proofs" type="text" required autocomplete="off" placeholder="me@example.com, boss@example.com" /></div>
        <button type="submit" class="secondary" disabled=${busy}>${busy ? 'Sending…' : 'Send proofs'}</button>
      </form>
    </div>
    <div role="status" data-testid="proof-outcome">
      ${proofs?.error && html`<p class="error">Proofs refused: ${proofs.error.message}</p>`}
      ${proofs?.results &&
      html`<ul>${proofs.results.map(
        (p) => html`<li>${p.address}: ${p.accepted ? 'accepted' : html`<strong class="error">not accepted</strong>`} — <code>${p.reply.code}${p.reply.enhancedCode ? ` ${p.reply.enhancedCode}` : ''}</code> ${p.reply.text}</li>`,
      )}</ul>`}
    </div>
  </section>`;
}

function kpiItems(k) {
  return [
    { id: 'toDeliver', label: 'To deliver', value: k.toDeliver },
    { id: 'takenIntoAccount', label: 'Taken into account', value: k.takenIntoAccount },
    { id: 'sent', label: 'Sent', value: k.sent, tone: 'good' },
    { id: 'failed', label: 'Failed', value: k.failed, tone: 'bad' },
    // Attempted at least once and still taken into account: a soft bounce whose retry is due later.
    { id: 'softWaiting', label: 'Soft bounces waiting', value: Math.max(0, k.takenIntoAccount - k.awaitingFirstAttempt), tone: 'warn' },
    { id: 'complaints', label: 'Complaints', value: k.complaints },
    { id: 'successPercent', label: 'Success %', value: k.successPercent, percent: true, tone: 'good' },
  ];
}

function Failures({ k }) {
  const byType = Object.entries(k.failuresByType || {}).sort((a, b) => b[1] - a[1]);
  const byReason = Object.entries(k.failuresByReason || {}).sort((a, b) => b[1] - a[1]);
  return html`<section aria-labelledby="failures-h">
    <h2 id="failures-h">Failures</h2>
    ${k.failed === 0
      ? html`<p class="muted">No recipient has failed.</p>`
      : html`<div class="two">
          <div>
            <h3>By reason</h3>
            <${BarChart} label="Failures by reason" entries=${byReason.map(([r, n]) => [words(r), n])} />
            <table class="data compact" aria-label="Failures by reason">
              <thead><tr><th scope="col">Reason</th><th scope="col" class="n">Recipients</th><th scope="col" class="n">Share of failed</th></tr></thead>
              <tbody>${byReason.map(([r, n]) => html`<tr><td>${words(r)}</td><td class="n">${num(n)}</td><td class="n">${pct((100 * n) / k.failed)}</td></tr>`)}</tbody>
            </table>
          </div>
          <div>
            <h3>By type</h3>
            <${BarChart} label="Failures by type" entries=${byType.map(([t, n]) => [words(t), n])} />
            <table class="data compact" aria-label="Failures by type">
              <thead><tr><th scope="col">Type</th><th scope="col" class="n">Recipients</th></tr></thead>
              <tbody>${byType.map(([t, n]) => html`<tr><td>${words(t)}</td><td class="n">${num(n)}</td></tr>`)}</tbody>
            </table>
            ${k.failedByReport > 0 && html`<p class="small">${num(k.failedByReport)} failed by a later report (a bounce received after the message was accepted).</p>`}
          </div>
        </div>`}
  </section>`;
}

function Waves({ waves }) {
  if (!waves.length) return null;
  return html`<section aria-labelledby="waves-h">
    <h2 id="waves-h">Waves</h2>
    <table class="data" aria-label="Wave plan and progress">
      <thead><tr><th scope="col">Wave</th><th scope="col">Planned start</th><th scope="col" class="n">Size</th><th scope="col">Handed over</th><th scope="col">Started</th><th scope="col">Done</th></tr></thead>
      <tbody>${waves.map(
        (w) => html`<tr>
          <td>${w.index}</td><td>${date(w.plannedStart)}</td><td class="n">${num(w.size)}</td>
          <td><progress max=${w.size || 1} value=${w.handedOver} aria-label=${`Wave ${w.index}: ${w.handedOver} of ${w.size} handed over`}></progress> ${num(w.handedOver)}</td>
          <td>${dateSeconds(w.startedAt)}</td><td>${dateSeconds(w.handedOverAt)}</td>
        </tr>`,
      )}</tbody>
    </table>
  </section>`;
}

function Analysis({ a, state }) {
  if (!a) return html`<section aria-labelledby="analysis-h"><h2 id="analysis-h">Analysis</h2><p class="muted">Not analysed yet.</p></section>`;
  const exclusions = Object.entries(a.exclusions || {}).filter(([, n]) => n > 0);
  return html`<section aria-labelledby="analysis-h">
    <h2 id="analysis-h">Analysis</h2>
    <p>Analysed ${dateSeconds(a.analysedAt)}: ${num(a.targeted)} targeted, ${num(a.excluded)} excluded, ${num(a.toDeliver)} to deliver.
      ${!BEFORE_CONFIRMATION.includes(state) ? '' : a.confirmable ? ' It may be confirmed.' : html` <strong>Blocking errors: it cannot be confirmed.</strong>`}</p>
    ${findingsList(a.findings || [])}
    <div class="two">
      ${exclusions.length > 0 &&
      html`<table class="data compact" aria-label="Exclusions by reason"><thead><tr><th scope="col">Excluded because</th><th scope="col" class="n">Recipients</th></tr></thead>
        <tbody>${exclusions.map(([r, n]) => html`<tr><td>${words(r)}</td><td class="n">${num(n)}</td></tr>`)}</tbody></table>`}
      ${(a.topDomains || []).length > 0 &&
      html`<table class="data compact" aria-label="Top domains"><thead><tr><th scope="col">Domain</th><th scope="col" class="n">Recipients</th></tr></thead>
        <tbody>${a.topDomains.map((t) => html`<tr><td>${t.domain}</td><td class="n">${num(t.count)}</td></tr>`)}</tbody></table>`}
    </div>
  </section>`;
}

function findingsList(findings) {
  if (!findings.length) return html`<p class="muted">No warning, no error.</p>`;
  return html`<ul class="findings">${findings.map(
    (f) => html`<li class=${`finding ${f.severity}`}><strong>${f.severity === 'error' ? 'Error' : 'Warning'}</strong> <code>${f.code}</code> ${f.message}</li>`,
  )}</ul>`;
}

export function DeliveryPage({ id, canSend }) {
  const { body: d, error, refresh } = usePolled(deliveryPath(id), (b) => !ENDED.includes(b.state));
  const [config, setConfig] = useState(null);
  useEffect(() => {
    dashboardConfig().then(setConfig);
  }, []);
  // The breadcrumb is there while loading too, so that the heading keeps its place (and the focus moved to it).
  if (!d) return html`<nav aria-label="Breadcrumb" class="crumbs"><a href=${link('/deliveries')}>Deliveries</a></nav>
    <h1 tabindex="-1">Delivery</h1>${error ? html`<${ErrorNote} error=${error} />` : html`<${Loading} what="the delivery" />`}`;
  const k = d.kpis;
  const wfId = d.workflow?.workflowId ?? `delivery-${d.id}`;
  const uiLink = temporalLink(config, wfId);
  return html`<nav aria-label="Breadcrumb" class="crumbs"><a href=${link('/deliveries')}>Deliveries</a> › <span>${d.name}</span></nav>
    <h1 tabindex="-1">${d.name} <${PhaseBadge} phase=${d.state} /></h1>
    <p class="meta">
      <span>Subject: <strong>${d.subject}</strong></span>
      <span>From: ${d.from.name ? `${d.from.name} <${d.from.address}>` : d.from.address}</span>
      <span>Contact date: ${d.contactDate ? date(d.contactDate) : d.sendingStartedAt ? `none (sending started ${date(d.sendingStartedAt)})` : 'once confirmed'}</span>
      <span>Created ${date(d.createdAt)}</span>
      ${d.completedAt && html`<span>Ended ${date(d.completedAt)}</span>`}
    </p>
    <p class="links">
      <a href=${link(`/deliveries/${d.id}/log`)}>Delivery log</a>
      ${uiLink ? html`<a href=${uiLink} target="_blank" rel="noopener noreferrer">Workflow in the Temporal UI</a>` : html`<span class="muted small">Workflow ID <code>${wfId}</code></span>`}
    </p>
    ${d.paused && d.pauseReason && html`<p class="notice" role="note">Paused by ${d.pauseReason.by ?? 'someone'}${d.pauseReason.reason ? `: ${d.pauseReason.reason}` : ''}${d.pauseReason.at ? ` (${dateSeconds(d.pauseReason.at)})` : ''}.</p>`}
    ${canSend && html`<${Controls} d=${d} onChanged=${refresh} />`}
    <section aria-labelledby="kpis-h">
      <h2 id="kpis-h">Summary</h2>
      <${Kpis} label="Delivery KPIs" items=${kpiItems(k)} />
      <p class="muted small" data-testid="kpis-source">
        ${num(k.targeted)} targeted, ${num(k.excluded)} excluded, ${num(k.cancelled)} cancelled, ${num(k.pending)} pending.
        ${d.kpisSource === 'workflow' ? ` Live from the workflow, ${dateSeconds(d.kpisAt)}; refreshed every ${POLL_MS / 1000} s.` : ' From the delivery log.'}
        ${d.temporalUnavailable ? ' Temporal does not answer: figures from the delivery log.' : ''}
      </p>
      ${ENDED.includes(d.state) && html`<button type="button" class="secondary" onClick=${refresh}>Refresh</button>`}
    </section>
    ${d.sendingStartedAt && html`<${DeliveryFigures} d=${d} live=${!ENDED.includes(d.state)} />`}
    <${Failures} k=${k} />
    <${Waves} waves=${d.waves} />
    ${canSend && !ENDED.includes(d.state) && html`<${Planning} d=${d} onChanged=${refresh} />`}
    <${Analysis} a=${d.analysis} state=${d.state} />`;
}
