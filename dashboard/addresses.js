// Quarantined addresses and the denylist: search, keyset paging (`after` = last address), and for admin keys the
// changes the API allows (release a quarantined address; add to or remove from the denylist).
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { ErrorNote, Loading, html } from './components.js';
import { dateSeconds, num, words } from './format.js';

const PAGE = 50;

/** One keyset-paged list of addresses (`kind`: quarantine or denylist), with its filter `extra` (reason, source). */
function useAddressPages(kind, search, extra, reload) {
  const [cursors, setCursors] = useState(['']);
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);
  const after = cursors[cursors.length - 1];
  useEffect(() => setCursors(['']), [search, JSON.stringify(extra), kind]);
  useEffect(() => {
    let gone = false;
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (after) q.set('after', after);
    if (search) q.set('search', search);
    for (const [k, v] of Object.entries(extra)) if (v) q.set(k, v);
    setError(null);
    api('GET', `/api/${kind}?${q}`).then((b) => !gone && setPage(b), (e) => !gone && setError(e));
    return () => {
      gone = true;
    };
  }, [kind, after, search, JSON.stringify(extra), reload]);
  const pager = html`<nav class="pager" aria-label=${`Pages of the ${kind}`}>
    <button type="button" class="secondary" disabled=${cursors.length === 1} onClick=${() => setCursors((c) => c.slice(0, -1))}>← Previous</button>
    <span>Page ${cursors.length}</span>
    <button type="button" class="secondary" disabled=${!page?.next} onClick=${() => setCursors((c) => [...c, page.addresses[page.addresses.length - 1].address])}>Next →</button>
  </nav>`;
  return { page, error, pager };
}

function SearchBox({ id, label, onSearch, children }) {
  return html`<form class="filters" role="search" aria-label=${label} onSubmit=${(e) => { e.preventDefault(); onSearch(e.currentTarget.elements.search.value.trim()); }}>
    <div class="field"><label for=${id}>Address contains</label><input id=${id} name="search" type="search" autocomplete="off" /></div>
    ${children}
    <button type="submit">Search</button>
  </form>`;
}

const QUARANTINE_REASONS = ['user_unknown', 'invalid_domain', 'mailbox_full', 'account_disabled', 'refused', 'unreachable', 'not_defined'];

function Quarantine({ isAdmin }) {
  const [search, setSearch] = useState('');
  const [reason, setReason] = useState('');
  const [reload, setReload] = useState(0);
  const [outcome, setOutcome] = useState(null);
  const { page, error, pager } = useAddressPages('quarantine', search, { reason }, reload);
  const release = async (address) => {
    try {
      await api('DELETE', `/api/quarantine/${encodeURIComponent(address)}`);
      setOutcome({ ok: true, text: `${address} released: it may be mailed again.` });
    } catch (e) {
      setOutcome({ ok: false, text: `Release refused: ${e.message}` });
    }
    setReload((n) => n + 1);
  };
  return html`<section aria-labelledby="q-h">
    <h2 id="q-h">Quarantine</h2>
    <p class="muted small">Addresses kept out of deliveries after failures (and those whose failures are being counted).</p>
    <${SearchBox} id="q-search" label="Search the quarantine" onSearch=${setSearch}>
      <div class="field"><label for="q-reason">Reason</label>
        <select id="q-reason" value=${reason} onChange=${(e) => setReason(e.currentTarget.value)}>
          <option value="">Any reason</option>${QUARANTINE_REASONS.map((r) => html`<option value=${r}>${words(r)}</option>`)}
        </select></div>
    <//>
    <p role="status" class=${outcome ? (outcome.ok ? 'ok' : 'error') : ''}>${outcome?.text ?? ''}</p>
    <${ErrorNote} error=${error} />
    ${!page
      ? !error && html`<${Loading} what="the quarantine" />`
      : html`<div class="table-wrap"><table class="data" aria-label="Quarantined addresses">
          <thead><tr><th scope="col">Address</th><th scope="col">State</th><th scope="col">Reason</th><th scope="col" class="n">Failures</th><th scope="col">Last failure</th><th scope="col">Until</th>${isAdmin && html`<th scope="col"><span class="visually-hidden">Action</span></th>`}</tr></thead>
          <tbody>
            ${page.addresses.length === 0 && html`<tr><td colspan="7" class="muted">No address.</td></tr>`}
            ${page.addresses.map((a) => html`<tr data-address=${a.address}>
              <td>${a.address}</td><td>${a.quarantined ? html`<strong>Quarantined</strong>` : 'Counting failures'}</td><td>${words(a.reason)}</td>
              <td class="n">${num(a.errorCount)}</td><td>${dateSeconds(a.lastFailureAt)}</td><td>${a.expiresAt ? dateSeconds(a.expiresAt) : '—'}</td>
              ${isAdmin && html`<td><button type="button" class="secondary" aria-label=${`Release ${a.address}`} onClick=${() => release(a.address)}>Release</button></td>`}
            </tr>`)}
          </tbody></table></div>${pager}`}
  </section>`;
}

const DENYLIST_SOURCES = { 'list-unsubscribe': 'Unsubscribe', complaint: 'Complaint', api: 'Added by hand' };

function Denylist({ isAdmin }) {
  const [search, setSearch] = useState('');
  const [source, setSource] = useState('');
  const [reload, setReload] = useState(0);
  const [outcome, setOutcome] = useState(null);
  const { page, error, pager } = useAddressPages('denylist', search, { source }, reload);
  const change = async (what, run) => {
    try {
      await run();
      setOutcome({ ok: true, text: what });
    } catch (e) {
      setOutcome({ ok: false, text: `Refused: ${e.message}` });
    }
    setReload((n) => n + 1);
  };
  const add = (e) => {
    e.preventDefault();
    const f = e.currentTarget.elements;
    const address = f.address.value.trim();
    const note = f.note.value.trim();
    change(`${address} is on the denylist.`, () => api('POST', '/api/denylist', { address, ...(note ? { note } : {}) }));
    e.currentTarget.reset();
  };
  return html`<section aria-labelledby="d-h">
    <h2 id="d-h">Denylist</h2>
    <p class="muted small">Addresses never mailed again: unsubscribes, complaints, and addresses added by hand.</p>
    ${isAdmin && html`<form class="filters" aria-label="Add to the denylist" onSubmit=${add}>
      <div class="field"><label for="d-add">Address to add</label><input id="d-add" name="address" type="email" required autocomplete="off" /></div>
      <div class="field"><label for="d-note">Note (optional)</label><input id="d-note" name="note" type="text" maxlength="2000" /></div>
      <button type="submit">Add to the denylist</button>
    </form>`}
    <${SearchBox} id="d-search" label="Search the denylist" onSearch=${setSearch}>
      <div class="field"><label for="d-source">Source</label>
        <select id="d-source" value=${source} onChange=${(e) => setSource(e.currentTarget.value)}>
          <option value="">Any source</option>${Object.entries(DENYLIST_SOURCES).map(([v, l]) => html`<option value=${v}>${l}</option>`)}
        </select></div>
    <//>
    <p role="status" class=${outcome ? (outcome.ok ? 'ok' : 'error') : ''}>${outcome?.text ?? ''}</p>
    <${ErrorNote} error=${error} />
    ${!page
      ? !error && html`<${Loading} what="the denylist" />`
      : html`<div class="table-wrap"><table class="data" aria-label="Denylisted addresses">
          <thead><tr><th scope="col">Address</th><th scope="col">Source</th><th scope="col">Reason</th><th scope="col">Note</th><th scope="col">Since</th>${isAdmin && html`<th scope="col"><span class="visually-hidden">Action</span></th>`}</tr></thead>
          <tbody>
            ${page.addresses.length === 0 && html`<tr><td colspan="6" class="muted">No address.</td></tr>`}
            ${page.addresses.map((a) => html`<tr data-address=${a.address}>
              <td>${a.address}</td><td>${DENYLIST_SOURCES[a.source] ?? a.source}</td><td>${words(a.reason)}</td><td>${a.note ?? ''}</td><td>${dateSeconds(a.createdAt)}</td>
              ${isAdmin && html`<td><button type="button" class="danger" aria-label=${`Remove ${a.address} from the denylist`}
                onClick=${() => change(`${a.address} was removed from the denylist.`, () => api('DELETE', `/api/denylist/${encodeURIComponent(a.address)}`))}>Remove</button></td>`}
            </tr>`)}
          </tbody></table></div>${pager}`}
  </section>`;
}

export function AddressesPage({ isAdmin }) {
  return html`<h1 tabindex="-1">Quarantine and denylist</h1>
    ${!isAdmin && html`<p class="muted small">Releasing and changing the denylist need an admin key.</p>`}
    <${Quarantine} isAdmin=${isAdmin} />
    <${Denylist} isAdmin=${isAdmin} />`;
}
