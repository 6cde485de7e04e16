// A delivery's log: keyset paging over GET /api/deliveries/:id/recipients (?after=&status=), a search by address that
// reads the log page by page, and a CSV export built from the same pages.
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { ErrorNote, Loading, StatusBadge, html, link } from './components.js';
import { STATUSES, dateSeconds, num, words } from './format.js';

const PAGE_SIZES = [50, 100, 500];
const SCAN_PAGE = 1000;
/** A search reads at most this many pages of the log (1,000 recipients each) before it stops and says so. */
const SCAN_MAX_PAGES = 100;

const CSV_COLUMNS = ['recipientId', 'address', 'domain', 'status', 'exclusionReason', 'failureType', 'failureReason', 'attempts', 'lastSmtpCode', 'lastEnhancedCode', 'lastReply', 'lastMxHost', 'handedOverAt', 'finalAt', 'updatedAt'];

/**
 * One CSV cell: quoted when needed; a text starting with = + - @ (a formula to a spreadsheet) gets a leading
 * apostrophe, so that opening the export cannot run anything.
 */
export function csvCell(v) {
  if (v === null || v === undefined) return '';
  let s = String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Every recipient of the delivery with `status`, in recipient order, read page by page. */
async function* everyRecipient(id, status, pages = Infinity) {
  let after = 0;
  for (let i = 0; i < pages; i++) {
    const q = new URLSearchParams({ after: String(after), limit: String(SCAN_PAGE) });
    if (status) q.set('status', status);
    const b = await api('GET', `/api/deliveries/${id}/recipients?${q}`);
    yield b.recipients;
    if (!b.next || b.recipients.length === 0) return;
    after = b.recipients[b.recipients.length - 1].recipientId;
  }
}

function LogTable({ id, rows, label }) {
  return html`<div class="table-wrap"><table class="data" aria-label=${label}>
    <thead><tr>
      <th scope="col" class="n">#</th><th scope="col">Address</th><th scope="col">Status</th><th scope="col">Failure</th>
      <th scope="col" class="n">Attempts</th><th scope="col">Last SMTP reply</th><th scope="col">MX host</th><th scope="col">Updated</th>
    </tr></thead>
    <tbody>
      ${rows.length === 0 && html`<tr><td colspan="8" class="muted">No recipient.</td></tr>`}
      ${rows.map(
        (r) => html`<tr data-recipient=${r.recipientId}>
          <td class="n">${r.recipientId}</td>
          <td><a href=${link(`/deliveries/${id}/recipients/${r.recipientId}`)}>${r.address}</a></td>
          <td><${StatusBadge} status=${r.status} /></td>
          <td>${r.status === 'excluded' ? words(r.exclusionReason) : r.failureReason ? `${words(r.failureType)} · ${words(r.failureReason)}` : ''}</td>
          <td class="n">${num(r.attempts)}</td>
          <td class="reply">${r.lastSmtpCode ? html`<code>${r.lastSmtpCode}${r.lastEnhancedCode ? ` ${r.lastEnhancedCode}` : ''}</code> ${r.lastReply ?? ''}` : ''}</td>
          <td>${r.lastMxHost ?? ''}</td>
          <td>${dateSeconds(r.updatedAt)}</td>
        </tr>`,
      )}
    </tbody>
  </table></div>`;
}

export function LogPage({ id }) {
  const [status, setStatus] = useState('');
  const [pageSize, setPageSize] = useState(50);
  // Keyset cursors: cursors[i] is the `after` of page i.
  const [cursors, setCursors] = useState([0]);
  const [page, setPage] = useState(null);
  const [name, setName] = useState('');
  const [error, setError] = useState(null);
  const [search, setSearch] = useState(null);
  const [exporting, setExporting] = useState(null);
  const after = cursors[cursors.length - 1];

  useEffect(() => {
    api('GET', `/api/deliveries/${id}`).then((d) => setName(d.name), () => undefined);
  }, [id]);

  useEffect(() => {
    let gone = false;
    setError(null);
    const q = new URLSearchParams({ after: String(after), limit: String(pageSize) });
    if (status) q.set('status', status);
    api('GET', `/api/deliveries/${id}/recipients?${q}`).then((b) => !gone && setPage(b), (e) => !gone && setError(e));
    return () => {
      gone = true;
    };
  }, [id, status, pageSize, after]);

  const find = async (e) => {
    e.preventDefault();
    const needle = e.currentTarget.elements.address.value.trim().toLowerCase();
    if (!needle) return setSearch(null);
    setSearch({ needle, running: true, scanned: 0, matches: [] });
    const matches = [];
    let scanned = 0;
    let pages = 0;
    let complete = true;
    try {
      for await (const rows of everyRecipient(id, status, SCAN_MAX_PAGES)) {
        pages++;
        scanned += rows.length;
        for (const r of rows) if (r.address.toLowerCase().includes(needle)) matches.push(r);
        setSearch({ needle, running: true, scanned, matches: [...matches] });
        if (pages === SCAN_MAX_PAGES && rows.length === SCAN_PAGE) complete = false;
      }
      setSearch({ needle, running: false, scanned, matches, complete });
    } catch (err) {
      setSearch({ needle, running: false, scanned, matches, error: err });
    }
  };

  const exportCsv = async () => {
    setExporting({ rows: 0 });
    try {
      const lines = [CSV_COLUMNS.join(',')];
      for await (const rows of everyRecipient(id, status)) {
        for (const r of rows) lines.push(CSV_COLUMNS.map((c) => csvCell(r[c])).join(','));
        setExporting({ rows: lines.length - 1 });
      }
      const url = URL.createObjectURL(new Blob([`${lines.join('\r\n')}\r\n`], { type: 'text/csv;charset=utf-8' }));
      const a = document.createElement('a');
      a.href = url;
      a.download = `delivery-${id}${status ? `-${status}` : ''}.csv`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      setExporting({ rows: lines.length - 1, done: true });
    } catch (err) {
      setExporting({ error: err });
    }
  };

  return html`<nav aria-label="Breadcrumb" class="crumbs"><a href=${link('/deliveries')}>Deliveries</a> › <a href=${link(`/deliveries/${id}`)}>${name || 'Delivery'}</a> › <span>Log</span></nav>
    <h1 tabindex="-1">Delivery log${name ? html` · ${name}` : ''}</h1>
    <form class="filters" aria-label="Log filters" onSubmit=${(e) => e.preventDefault()}>
      <div class="field"><label for="l-status">Status</label>
        <select id="l-status" value=${status} onChange=${(e) => { setStatus(e.currentTarget.value); setCursors([0]); setSearch(null); }}>
          <option value="">Any status</option>
          ${Object.entries(STATUSES).map(([v, l]) => html`<option value=${v}>${l}</option>`)}
        </select></div>
      <div class="field"><label for="l-size">Per page</label>
        <select id="l-size" value=${pageSize} onChange=${(e) => { setPageSize(Number(e.currentTarget.value)); setCursors([0]); }}>
          ${PAGE_SIZES.map((n) => html`<option value=${n}>${n}</option>`)}
        </select></div>
      <button type="button" class="secondary" onClick=${exportCsv} disabled=${exporting && !exporting.done && !exporting.error}>Export CSV</button>
      <span role="status" class="small">${exporting?.error ? `Export failed: ${exporting.error.message}` : exporting ? `${num(exporting.rows)} recipients ${exporting.done ? 'exported' : 'read…'}` : ''}</span>
    </form>
    <form class="filters" role="search" aria-label="Find an address" onSubmit=${find}>
      <div class="field"><label for="l-address">Address contains</label>
        <input id="l-address" name="address" type="search" autocomplete="off" placeholder="bob@example.com or example.com" /></div>
      <button type="submit">Find</button>
      ${search && html`<button type="button" class="secondary" onClick=${() => setSearch(null)}>Clear</button>`}
    </form>
    <${ErrorNote} error=${error} />
    ${search
      ? html`<section aria-labelledby="search-h">
          <h2 id="search-h">Addresses containing “${search.needle}”</h2>
          <p role="status" class="small">${num(search.matches.length)} found among ${num(search.scanned)} recipients${search.running ? ' (searching…)' : ''}.
            ${search.complete === false ? ` Stopped after ${num(SCAN_MAX_PAGES * SCAN_PAGE)} recipients; filter by status to narrow it.` : ''}</p>
          <${ErrorNote} error=${search.error} />
          <${LogTable} id=${id} rows=${search.matches} label="Addresses found" />
        </section>`
      : page === null
        ? html`<${Loading} what="the log" />`
        : html`<${LogTable} id=${id} rows=${page.recipients} label="Recipients" />
          <nav class="pager" aria-label="Pages of the log">
            <button type="button" class="secondary" disabled=${cursors.length === 1} onClick=${() => setCursors((c) => c.slice(0, -1))}>← Previous</button>
            <span>Page ${cursors.length}</span>
            <button type="button" class="secondary" disabled=${!page.next}
              onClick=${() => setCursors((c) => [...c, page.recipients[page.recipients.length - 1].recipientId])}>Next →</button>
          </nav>`}`;
}
