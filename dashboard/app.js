// The dashboard's shell: sign-in with a key (a cookie session), the navigation, and the page of the URL's fragment.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { currentSession, dropEarlyReads, onSignedOut, signIn, signOut, startEarlyRead } from './api.js';
import { ErrorNote, html, link } from './components.js';
import { DeliveriesPage } from './deliveries.js';
import { DeliveryPage, deliveryPath } from './delivery.js';
import { NewDeliveryPage } from './new-delivery.js';
import { LogPage, logFirstRead } from './log.js';
import { RecipientPage } from './recipient.js';
import { AddressesPage } from './addresses.js';
import { MxSitesPage } from './sites.js';
import { KeysPage } from './keys.js';
import { WebhookPage, WebhooksPage } from './webhooks.js';
import { RulesPage } from './rules.js';

/** `#/deliveries/<id>/recipients/<n>` → the page and its parameters. */
function route(hash) {
  const path = hash.replace(/^#/, '').split('?')[0] || '/deliveries';
  const query = new URLSearchParams(hash.split('?')[1] || '');
  let m;
  if (path === '/deliveries/new') return { page: 'new-delivery' };
  if ((m = path.match(/^\/deliveries\/([0-9a-f-]{36})\/recipients\/(\d+)$/i))) return { page: 'recipient', id: m[1], rid: Number(m[2]), query };
  if ((m = path.match(/^\/deliveries\/([0-9a-f-]{36})\/log$/i))) return { page: 'log', id: m[1], query };
  if ((m = path.match(/^\/deliveries\/([0-9a-f-]{36})$/i))) return { page: 'delivery', id: m[1], query };
  if (path === '/deliveries') return { page: 'deliveries', query };
  if (path === '/addresses') return { page: 'addresses' };
  if (path === '/mx-sites') return { page: 'mx-sites' };
  if (path === '/keys') return { page: 'keys' };
  if (path === '/webhooks') return { page: 'webhooks' };
  if ((m = path.match(/^\/rules(?:\/(qualification|inbound))?$/))) return { page: 'rules', table: m[1] || 'qualification' };
  if ((m = path.match(/^\/webhooks\/([0-9a-f-]{36})$/i))) return { page: 'webhook', id: m[1] };
  return { page: 'not-found', path };
}

function useHashRoute() {
  const [r, setR] = useState(() => route(location.hash));
  useEffect(() => {
    const on = () => setR(route(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return r;
}

const TITLES = {
  deliveries: 'Deliveries',
  delivery: 'Delivery',
  'new-delivery': 'New delivery',
  log: 'Delivery log',
  recipient: 'Recipient',
  addresses: 'Quarantine and denylist',
  'mx-sites': 'MX sites',
  keys: 'API keys',
  webhooks: 'Webhooks',
  webhook: 'Webhook',
  rules: 'Rules',
  'not-found': 'Not found',
};

function SignIn({ onSignedIn }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    document.title = 'Sign in · email delivery dashboard';
  }, []);
  const submit = async (e) => {
    e.preventDefault();
    const input = e.currentTarget.elements.key;
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await signIn(input.value.trim()));
    } catch (err) {
      setError(err);
    } finally {
      input.value = '';
      setBusy(false);
    }
  };
  return html`<main id="main" class="signin">
    <h1>Email delivery dashboard</h1>
    <p>Sign in with an API key. A <code>read</code> key shows deliveries; <code>send</code> or <code>admin</code> also shows the buttons that confirm and control them.
      The key is sent once to open a session; the browser keeps only a cookie.</p>
    <form onSubmit=${submit} aria-describedby="signin-error">
      <label for="key">API key</label>
      <input id="key" name="key" type="password" autocomplete="off" required spellcheck="false" placeholder="ede_…" />
      <button type="submit" disabled=${busy}>${busy ? 'Signing in…' : 'Sign in'}</button>
    </form>
    <div id="signin-error"><${ErrorNote} error=${error} /></div>
  </main>`;
}

function Shell({ session, onSignOut }) {
  const r = useHashRoute();
  const isAdmin = session.key.scopes.includes('admin');
  const canSend = isAdmin || session.key.scopes.includes('send');
  useEffect(() => {
    const title = r.page === 'rules' ? (r.table === 'inbound' ? 'Inbound rules' : 'Qualification rules') : TITLES[r.page];
    document.title = `${title} · email delivery dashboard`;
    // After a navigation, a screen reader starts from the new page's heading, and the keyboard from the top.
    document.querySelector('main h1')?.focus();
  }, [r.page, r.id, r.rid, r.table]);
  // Pages are keyed by what they show: another delivery is a fresh page (no outcome or form state carried over).
  let page;
  if (r.page === 'deliveries') page = html`<${DeliveriesPage} query=${r.query} canSend=${canSend} />`;
  else if (r.page === 'new-delivery') page = html`<${NewDeliveryPage} canSend=${canSend} scopes=${session.key.scopes} />`;
  else if (r.page === 'delivery') page = html`<${DeliveryPage} key=${r.id} id=${r.id} canSend=${canSend} />`;
  else if (r.page === 'log') page = html`<${LogPage} key=${r.id} id=${r.id} query=${r.query} />`;
  else if (r.page === 'recipient') page = html`<${RecipientPage} key=${`${r.id}/${r.rid}`} id=${r.id} rid=${r.rid} />`;
  else if (r.page === 'addresses') page = html`<${AddressesPage} isAdmin=${isAdmin} />`;
  else if (r.page === 'mx-sites') page = html`<${MxSitesPage} isAdmin=${isAdmin} />`;
  else if (r.page === 'webhooks') page = html`<${WebhooksPage} isAdmin=${isAdmin} />`;
  else if (r.page === 'webhook') page = html`<${WebhookPage} key=${r.id} id=${r.id} isAdmin=${isAdmin} />`;
  else if (r.page === 'rules') page = html`<${RulesPage} key=${r.table} table=${r.table} isAdmin=${isAdmin} />`;
  else if (r.page === 'keys') page = html`<${KeysPage} isAdmin=${isAdmin} ownKeyId=${session.key.id} />`;
  else page = html`<h1 tabindex="-1">Not found</h1><p>Nothing is at ${r.path}. <a href=${link('/deliveries')}>Deliveries</a></p>`;
  return html`<a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>Skip to content</a>
    <header class="top">
      <a class="brand" href=${link('/deliveries')}>Email delivery</a>
      <nav aria-label="Main">
        ${[
          ['deliveries', '/deliveries', 'Deliveries'],
          ['addresses', '/addresses', 'Quarantine and denylist'],
          ['mx-sites', '/mx-sites', 'MX sites'],
          ['rules', '/rules/qualification', 'Rules'],
          ['webhooks', '/webhooks', 'Webhooks'],
          ...(isAdmin ? [['keys', '/keys', 'API keys']] : []),
        ].map(([p, hash, label]) => html`<a href=${link(hash)} aria-current=${r.page === p ? 'page' : undefined}>${label}</a>`)}
      </nav>
      <div class="who">
        <span>Signed in as <strong title=${session.key.name}>${session.key.name}</strong> (<span data-testid="scopes">${session.key.scopes.join(', ')}</span>)</span>
        <button type="button" class="secondary" onClick=${onSignOut}>Sign out</button>
      </div>
    </header>
    <main id="main" tabindex="-1">${page}</main>`;
}

/**
 * The session check, and the first read of the page the app opens on (a delivery, its log), sent at once: the
 * page does not wait for the session's answer to ask for its own data (api.js, startEarlyRead). Only pages a read
 * key may see, and whose reads need no CSRF token (which the session's answer brings).
 */
const opening = route(location.hash);
const sessionAtLoad = currentSession();
if (opening.page === 'delivery') startEarlyRead(deliveryPath(opening.id));
else if (opening.page === 'log') startEarlyRead(logFirstRead(opening.id, opening.query));

function App() {
  const [session, setSession] = useState(undefined);
  const [error, setError] = useState(null);
  useEffect(() => {
    sessionAtLoad.then(
      (s) => {
        // Signed out: the reads started at load were refused; the page reads anew once signed in.
        if (!s) dropEarlyReads();
        setSession(s);
      },
      (e) => setError(e),
    );
    return onSignedOut(() => setSession(null));
  }, []);
  if (error) return html`<main id="main"><h1>Email delivery dashboard</h1><${ErrorNote} error=${error} /></main>`;
  if (session === undefined) return html`<main id="main"><p role="status">Loading…</p></main>`;
  if (session === null) return html`<${SignIn} onSignedIn=${setSession} />`;
  return html`<${Shell} session=${session} onSignOut=${async () => { await signOut(); setSession(null); }} />`;
}

render(html`<${App} />`, document.getElementById('app'));
