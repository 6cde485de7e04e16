// The deliveries list: newest first, filtered by the server (GET /api/deliveries: state, creation days, text in the
// name or subject) and paged by its `next` links (keyset on the creation instant and id); each row's KPIs read from
// GET /api/deliveries/:id (the workflow's query while it runs, the delivery log once it has ended).
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api } from './api.js';
import { ErrorNote, Loading, PhaseBadge, html, link } from './components.js';
import { PHASES, date, num, pct } from './format.js';

const PAGE_SIZES = [25, 50, 100];
/** Row KPIs are read a few at a time, so that a page of deliveries does not burst the API. */
const KPI_CONCURRENCY = 4;

async function eachLimited(items, limit, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** The state filter's choices: each phase, and the phases of a delivery that is under way (the server takes several). */
const STATE_CHOICES = [['scheduled,sending,paused', 'Under way'], ...Object.entries(PHASES)];

/** A local calendar day (an <input type=date> value) as the instant it starts, `days` later. */
const dayStart = (day, days = 0) => {
  const d = new Date(`${day}T00:00:00`);
  d.setDate(d.getDate() + days);
  return d.toISOString();
};

export function DeliveriesPage({ canSend }) {
  const [pageSize, setPageSize] = useState(25);
  const [filters, setFilters] = useState({ state: '', from: '', to: '', q: '' });
  // What is typed in the search box, applied by Search.
  const [typed, setTyped] = useState('');
  // Keyset paging: pages[i] is the query of page i, the server's `next` link for every page after the first.
  const [pages, setPages] = useState([null]);
  const [body, setBody] = useState(null);
  const [kpis, setKpis] = useState({});
  const [error, setError] = useState(null);
  const [reload, setReload] = useState(0);
  const current = pages[pages.length - 1];

  const first = useMemo(() => {
    const q = new URLSearchParams({ limit: String(pageSize) });
    if (filters.state) q.set('state', filters.state);
    // Days are the viewer's own: from the start of the first to the end of the last, in local time.
    if (filters.from) q.set('createdFrom', dayStart(filters.from));
    if (filters.to) q.set('createdTo', dayStart(filters.to, 1));
    if (filters.q) q.set('q', filters.q);
    return `/api/deliveries?${q}`;
  }, [filters, pageSize]);

  useEffect(() => {
    let gone = false;
    setError(null);
    api('GET', current ?? first)
      .then(async (b) => {
        if (gone) return;
        setBody(b);
        await eachLimited(b.deliveries, KPI_CONCURRENCY, async (d) => {
          if (gone) return;
          const full = await api('GET', `/api/deliveries/${d.id}`).catch(() => null);
          if (!gone && full) setKpis((k) => ({ ...k, [d.id]: { kpis: full.kpis, state: full.state } }));
        });
      })
      .catch((e) => !gone && setError(e));
    return () => {
      gone = true;
    };
  }, [current, first, reload]);

  /** A new filter starts again from the newest page. */
  const narrow = (change) => {
    setFilters((f) => ({ ...f, ...change }));
    setPages([null]);
  };
  const rows = body?.deliveries ?? null;
  const shown = error ? null : rows;

  return html`<div class="page-head"><h1 tabindex="-1">Deliveries</h1>
      ${canSend && html`<a class="button" href=${link('/deliveries/new')}>New delivery</a>`}</div>
    <form class="filters" role="search" aria-label="Filter deliveries" onSubmit=${(e) => { e.preventDefault(); narrow({ q: typed.trim() }); }}>
      <div class="field"><label for="f-text">Name or subject</label>
        <input id="f-text" type="search" maxlength="200" value=${typed} onInput=${(e) => setTyped(e.currentTarget.value)} placeholder="words of the name or subject" /></div>
      <button type="submit">Search</button>
      ${filters.q && html`<button type="button" class="secondary" onClick=${() => { setTyped(''); narrow({ q: '' }); }}>Clear</button>`}
      <div class="field"><label for="f-state">State</label>
        <select id="f-state" value=${filters.state} onChange=${(e) => narrow({ state: e.currentTarget.value })}>
          <option value="">Any state</option>
          ${STATE_CHOICES.map(([v, l]) => html`<option value=${v}>${l}</option>`)}
        </select></div>
      <div class="field"><label for="f-from">Created from</label>
        <input id="f-from" type="date" value=${filters.from} max=${filters.to || undefined} onChange=${(e) => narrow({ from: e.currentTarget.value })} /></div>
      <div class="field"><label for="f-to">Created to</label>
        <input id="f-to" type="date" value=${filters.to} min=${filters.from || undefined} onChange=${(e) => narrow({ to: e.currentTarget.value })} /></div>
      <div class="field"><label for="f-size">Per page</label>
        <select id="f-size" value=${pageSize} onChange=${(e) => { setPageSize(Number(e.currentTarget.value)); setPages([null]); }}>
          ${PAGE_SIZES.map((n) => html`<option value=${n}>${n}</option>`)}
        </select></div>
      <button type="button" class="secondary" onClick=${() => setReload((n) => n + 1)}>Refresh</button>
    </form>
    <p class="muted small">The server applies the filters to every delivery; dates are days of this browser's time zone, both included.</p>
    <${ErrorNote} error=${error} />
    ${shown === null && !error
      ? html`<${Loading} what="deliveries" />`
      : shown &&
        html`<div class="table-wrap"><table class="data" aria-label="Deliveries">
          <thead><tr>
            <th scope="col">Name</th><th scope="col">State</th><th scope="col">Contact date</th>
            <th scope="col" class="n">To deliver</th><th scope="col" class="n">Sent</th><th scope="col" class="n">Failed</th><th scope="col" class="n">Success %</th>
          </tr></thead>
          <tbody>
            ${shown.length === 0 && html`<tr><td colspan="7" class="muted">No delivery matches.</td></tr>`}
            ${shown.map((d) => {
              const k = kpis[d.id]?.kpis;
              return html`<tr data-delivery=${d.id}>
                <td><a href=${link(`/deliveries/${d.id}`)}>${d.name}</a><div class="muted small">${d.subject}</div></td>
                <td><${PhaseBadge} phase=${kpis[d.id]?.state ?? d.state} /></td>
                <td>${d.contactDate ? date(d.contactDate) : d.sendingStartedAt ? date(d.sendingStartedAt) : html`<span class="muted">once confirmed</span>`}</td>
                <td class="n">${num(k?.toDeliver)}</td><td class="n">${num(k?.sent)}</td><td class="n">${num(k?.failed)}</td>
                <td class="n">${pct(k?.successPercent)}</td>
              </tr>`;
            })}
          </tbody></table></div>`}
    <nav class="pager" aria-label="Pages of deliveries">
      <button type="button" class="secondary" disabled=${pages.length === 1} onClick=${() => setPages((p) => p.slice(0, -1))}>← Newer</button>
      <span aria-live="polite">Page ${pages.length}</span>
      <button type="button" class="secondary" disabled=${!body?.next} onClick=${() => setPages((p) => [...p, body.next])}>Older →</button>
    </nav>`;
}
