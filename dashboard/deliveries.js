// The deliveries list: newest first, keyset paging on the creation date (GET /api/deliveries?before=), each row's
// KPIs read from GET /api/deliveries/:id (the workflow's query while it runs, the delivery log once it has ended).
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

export function DeliveriesPage() {
  const [pageSize, setPageSize] = useState(25);
  const [createdBefore, setCreatedBefore] = useState('');
  // Keyset cursors: cursors[i] is the `before` of page i (undefined for the newest page).
  const [cursors, setCursors] = useState([undefined]);
  const [rows, setRows] = useState(null);
  const [kpis, setKpis] = useState({});
  const [error, setError] = useState(null);
  const [state, setState] = useState('');
  const [text, setText] = useState('');
  const [reload, setReload] = useState(0);
  const before = cursors[cursors.length - 1];

  useEffect(() => {
    let gone = false;
    setError(null);
    const q = new URLSearchParams({ limit: String(pageSize) });
    const until = before ?? (createdBefore ? new Date(`${createdBefore}T23:59:59.999`).toISOString() : undefined);
    if (until) q.set('before', until);
    api('GET', `/api/deliveries?${q}`)
      .then(async (body) => {
        if (gone) return;
        setRows(body.deliveries);
        await eachLimited(body.deliveries, KPI_CONCURRENCY, async (d) => {
          if (gone) return;
          const full = await api('GET', `/api/deliveries/${d.id}`).catch(() => null);
          if (!gone && full) setKpis((k) => ({ ...k, [d.id]: { kpis: full.kpis, state: full.state } }));
        });
      })
      .catch((e) => !gone && setError(e));
    return () => {
      gone = true;
    };
  }, [before, pageSize, createdBefore, reload]);

  const shown = useMemo(() => {
    if (!rows) return null;
    const needle = text.trim().toLowerCase();
    return rows.filter((d) => {
      const live = kpis[d.id]?.state ?? d.state;
      if (state && live !== state) return false;
      if (needle && !`${d.name} ${d.subject} ${d.id} ${d.fromAddress}`.toLowerCase().includes(needle)) return false;
      return true;
    });
  }, [rows, kpis, state, text]);

  const restart = () => setCursors([undefined]);

  return html`<h1 tabindex="-1">Deliveries</h1>
    <form class="filters" role="search" aria-label="Filter deliveries" onSubmit=${(e) => e.preventDefault()}>
      <div class="field"><label for="f-text">Search</label>
        <input id="f-text" type="search" value=${text} onInput=${(e) => setText(e.currentTarget.value)} placeholder="name, subject, sender or id" /></div>
      <div class="field"><label for="f-state">State</label>
        <select id="f-state" value=${state} onChange=${(e) => setState(e.currentTarget.value)}>
          <option value="">Any state</option>
          ${Object.entries(PHASES).map(([v, l]) => html`<option value=${v}>${l}</option>`)}
        </select></div>
      <div class="field"><label for="f-before">Created on or before</label>
        <input id="f-before" type="date" value=${createdBefore} onChange=${(e) => { setCreatedBefore(e.currentTarget.value); restart(); }} /></div>
      <div class="field"><label for="f-size">Per page</label>
        <select id="f-size" value=${pageSize} onChange=${(e) => { setPageSize(Number(e.currentTarget.value)); restart(); }}>
          ${PAGE_SIZES.map((n) => html`<option value=${n}>${n}</option>`)}
        </select></div>
      <button type="button" class="secondary" onClick=${() => setReload((n) => n + 1)}>Refresh</button>
    </form>
    <p class="muted small">Search and state filter the deliveries of this page; the date and the pages are read from the server.</p>
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
      <button type="button" class="secondary" disabled=${cursors.length === 1} onClick=${() => setCursors((c) => c.slice(0, -1))}>← Newer</button>
      <span>Page ${cursors.length}</span>
      <button type="button" class="secondary" disabled=${!rows || rows.length < pageSize}
        onClick=${() => setCursors((c) => [...c, new Date(rows[rows.length - 1].createdAt).toISOString()])}>Older →</button>
    </nav>`;
}
