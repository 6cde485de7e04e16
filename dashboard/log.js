// A delivery's log: keyset paging over GET /api/deliveries/:id/recipients with the server's filters (status, failure
// type and reason, address prefix, exact domain), and the CSV export as a plain link to the streamed
// GET /api/deliveries/:id/recipients.csv with the same filters. The link works because the session is a cookie that a
// same-origin GET carries, and a read needs no CSRF token (api/auth/access-control.ts): the browser downloads the
// file itself, however large, without the page holding it.
import { useEffect, useLayoutEffect, useState } from 'preact/hooks';
import { api, firstRead } from './api.js';
import { ErrorNote, Loading, StatusBadge, html, link } from './components.js';
import { deliveryPath } from './delivery.js';
import { FAILURE_REASONS, FAILURE_TYPES, STATUSES, dateSeconds, num, words } from './format.js';

const PAGE_SIZES = [50, 100, 500];
const FIRST_PAGE_SIZE = PAGE_SIZES[0];
/** The server's filter parameters, in the order links carry them. */
const FILTERS = ['status', 'failureType', 'failureReason', 'address', 'domain'];

/** The filters given in the page's own address (`#/deliveries/<id>/log?status=failed`), so a view can be linked to. */
function filtersFrom(query) {
  const out = {};
  for (const k of FILTERS) out[k] = query?.get(k) ?? '';
  return out;
}

/** The filters that are set, as query parameters. */
function filterParams(filters) {
  const q = new URLSearchParams();
  for (const k of FILTERS) if (filters[k]) q.set(k, filters[k]);
  return q;
}

/** One page of the log: `limit` recipients after `after`, narrowed by the filters of `paramsKey` (filterParams). */
function pagePath(id, paramsKey, after, limit) {
  const q = new URLSearchParams({ after: String(after), limit: String(limit) });
  for (const [k, v] of new URLSearchParams(paramsKey)) q.set(k, v);
  return `/api/deliveries/${id}/recipients?${q}`;
}

/** The first page of the log at `#/deliveries/<id>/log?<query>` (app.js starts this read as the app loads). */
export function logFirstRead(id, query) {
  return pagePath(id, filterParams(filtersFrom(query)).toString(), 0, FIRST_PAGE_SIZE);
}

function LogTable({ id, rows, label }) {
  return html`<div class="table-wrap"><table class="data" aria-label=${label}>
    <thead><tr>
      <th scope="col" class="n">#</th><th scope="col">Address</th><th scope="col">Status</th><th scope="col">Failure</th>
      <th scope="col" class="n">Attempts</th><th scope="col">Last SMTP reply</th><th scope="col">MX host</th><th scope="col">Updated</th>
    </tr></thead>
    <tbody>
      ${rows.length === 0 && html`<tr><td colspan="8" class="muted">No recipient matches.</td></tr>`}
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

export function LogPage({ id, query }) {
  const [filters, setFilters] = useState(() => filtersFrom(query));
  // What is typed in the search boxes, applied by Search (a request per keystroke would page through nothing useful).
  const [draft, setDraft] = useState(() => ({ address: filters.address, domain: filters.domain }));
  const [pageSize, setPageSize] = useState(FIRST_PAGE_SIZE);
  // Keyset cursors: cursors[i] is the `after` of page i.
  const [cursors, setCursors] = useState([0]);
  const [page, setPage] = useState(null);
  const [name, setName] = useState('');
  const [error, setError] = useState(null);
  const after = cursors[cursors.length - 1];
  const params = filterParams(filters);
  const narrowed = [...params.keys()].length > 0;

  // The delivery's name, for the heading, once the first page is in: that read is the whole delivery (its KPIs an
  // aggregate over every recipient once it has ended), and made at the same time it would slow the page's on the server.
  const firstPageIn = page !== null || error !== null;
  useEffect(() => {
    if (firstPageIn) api('GET', deliveryPath(id)).then((d) => setName(d.name), () => undefined);
  }, [id, firstPageIn]);

  const paramsKey = params.toString();
  // Before the browser paints (a layout effect): the first page already read by the app as it loaded shows in the
  // same frame as the page around it, not a frame later.
  useLayoutEffect(() => {
    let gone = false;
    setError(null);
    firstRead(pagePath(id, paramsKey, after, pageSize)).then((b) => !gone && setPage(b), (e) => !gone && setError(e));
    return () => {
      gone = true;
    };
  }, [id, paramsKey, pageSize, after]);

  /** A new filter starts again from the first page. */
  const narrow = (change) => {
    setFilters((f) => ({ ...f, ...change }));
    setCursors([0]);
  };

  const search = (e) => {
    e.preventDefault();
    narrow({ address: draft.address.trim(), domain: draft.domain.trim() });
  };

  const clearSearch = () => {
    setDraft({ address: '', domain: '' });
    narrow({ address: '', domain: '' });
  };

  const select = (key, label, options, anyLabel) =>
    html`<div class="field"><label for=${`l-${key}`}>${label}</label>
      <select id=${`l-${key}`} value=${filters[key]} onChange=${(e) => narrow({ [key]: e.currentTarget.value })}>
        <option value="">${anyLabel}</option>
        ${Object.entries(options).map(([v, l]) => html`<option value=${v}>${l}</option>`)}
      </select></div>`;

  const exportHref = `/api/deliveries/${id}/recipients.csv${paramsKey ? `?${paramsKey}` : ''}`;

  return html`<nav aria-label="Breadcrumb" class="crumbs"><a href=${link('/deliveries')}>Deliveries</a> › <a href=${link(`/deliveries/${id}`)}>${name || 'Delivery'}</a> › <span>Log</span></nav>
    <h1 tabindex="-1">Delivery log${name ? html` · ${name}` : ''}</h1>
    <form class="filters" role="search" aria-label="Find addresses" onSubmit=${search}>
      <div class="field"><label for="l-address">Address starts with</label>
        <input id="l-address" name="address" type="search" autocomplete="off" maxlength="320" placeholder="bob or bob@example.com"
          value=${draft.address} onInput=${(e) => setDraft((d) => ({ ...d, address: e.currentTarget.value }))} /></div>
      <div class="field"><label for="l-domain">Domain</label>
        <input id="l-domain" name="domain" type="search" autocomplete="off" maxlength="253" placeholder="example.com"
          value=${draft.domain} onInput=${(e) => setDraft((d) => ({ ...d, domain: e.currentTarget.value }))} /></div>
      <button type="submit">Search</button>
      ${(filters.address || filters.domain) && html`<button type="button" class="secondary" onClick=${clearSearch}>Clear</button>`}
    </form>
    <form class="filters" aria-label="Log filters" onSubmit=${(e) => e.preventDefault()}>
      ${select('status', 'Status', STATUSES, 'Any status')}
      ${select('failureType', 'Failure type', FAILURE_TYPES, 'Any type')}
      ${select('failureReason', 'Failure reason', FAILURE_REASONS, 'Any reason')}
      <div class="field"><label for="l-size">Per page</label>
        <select id="l-size" value=${pageSize} onChange=${(e) => { setPageSize(Number(e.currentTarget.value)); setCursors([0]); }}>
          ${PAGE_SIZES.map((n) => html`<option value=${n}>${n}</option>`)}
        </select></div>
      <a class="button secondary" href=${exportHref} download data-testid="export-csv">Export CSV</a>
    </form>
    <p class="muted small">${narrowed ? 'The export holds every recipient these filters select' : 'The export holds every recipient of the delivery'}, streamed by the server as CSV.</p>
    <${ErrorNote} error=${error} />
    ${page === null && !error
      ? html`<${Loading} what="the log" />`
      : page &&
        html`<${LogTable} id=${id} rows=${page.recipients} label="Recipients" />
          <nav class="pager" aria-label="Pages of the log">
            <button type="button" class="secondary" disabled=${cursors.length === 1} onClick=${() => setCursors((c) => c.slice(0, -1))}>← Previous</button>
            <span aria-live="polite">Page ${cursors.length}</span>
            <button type="button" class="secondary" disabled=${!page.next || page.recipients.length === 0}
              onClick=${() => setCursors((c) => [...c, page.recipients[page.recipients.length - 1].recipientId])}>Next →</button>
          </nav>`}`;
}
