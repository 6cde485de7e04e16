/**
 * The delivery dashboard (docs/dashboard.md), served by the API process:
 *
 * - `GET /dashboard`: one static HTML page; the app routes inside it with the URL's fragment (#/deliveries/<id>...).
 * - `GET /dashboard/assets/:file`: the app's ES modules and style sheet (dashboard/) and the libraries it imports, read
 *   from node_modules (preact, htm, chart.js). Nothing is built and nothing is loaded from another site.
 * - `GET /api/dashboard/config`: what the page needs to know of this installation (the Temporal UI's address).
 *
 * The page and its files hold no data, so they are public (api/auth/route-access.ts): everything shown comes from the
 * API's own routes, called with the session cookie opened at POST /api/session, with the key's scopes.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Router } from 'express';
import { selfOnlyPageCsp, staticPageHeaders } from './static-page-headers';
import { NotFoundError } from './http-errors';
import { WEBHOOK_EVENT_TYPES } from '../domain/webhook-events';

export const DASHBOARD_PATH = '/dashboard';
const ASSETS_PATH = `${DASHBOARD_PATH}/assets`;

const resolveFrom = createRequire(__filename);
/** A file beside a package's entry point (some packages export no package.json to resolve). */
const besideEntry = (specifier: string, file: string) => path.join(path.dirname(resolveFrom.resolve(specifier)), file);
const APP_DIR = path.join(__dirname, '..', 'dashboard');

const JS = 'text/javascript; charset=utf-8';
/** Every file the page may load, by the name it asks for (nothing else of dashboard/ or node_modules is served). */
const ASSETS: Record<string, { file: string; type: string; version?: string }> = {
  'preact.mjs': { file: besideEntry('preact', 'preact.mjs'), type: JS },
  'hooks.mjs': { file: besideEntry('preact/hooks', 'hooks.mjs'), type: JS },
  'htm.mjs': { file: besideEntry('htm', 'htm.mjs'), type: JS },
  'chart.umd.min.js': { file: besideEntry('chart.js', 'chart.umd.min.js'), type: JS },
  'dashboard.css': { file: path.join(APP_DIR, 'dashboard.css'), type: 'text/css; charset=utf-8' },
};
for (const name of ['app.js', 'api.js', 'format.js', 'components.js', 'deliveries.js', 'delivery.js', 'new-delivery.js', 'log.js', 'recipient.js', 'figures.js', 'addresses.js', 'sites.js', 'keys.js', 'webhooks.js', 'rules.js']) {
  ASSETS[name] = { file: path.join(APP_DIR, name), type: JS };
}
// A library upgrade that moved a file would otherwise show up as a blank page: refuse to start, naming it.
for (const [name, { file }] of Object.entries(ASSETS)) {
  if (!fs.existsSync(file)) throw new Error(`the dashboard's ${name} is missing (${file}); run npm ci`);
}

/**
 * Each file's URL carries a digest of its content (`?v=`), and a file asked for with its current digest may be kept by
 * the browser for a year: a returning page loads no file at all, and a new version of the engine changes the digest,
 * so the page (never cached: no-cache) asks for the new file. The import map gives the same versioned URL to the bare
 * module names and to the app's relative imports (./api.js...), which would otherwise be asked for without it.
 */
for (const a of Object.values(ASSETS)) a.version = createHash('sha256').update(fs.readFileSync(a.file)).digest('base64url').slice(0, 16);
const assetUrl = (name: string) => `${ASSETS_PATH}/${name}?v=${ASSETS[name].version}`;
const MODULES = Object.keys(ASSETS).filter((n) => n.endsWith('.mjs') || (n.endsWith('.js') && n !== 'chart.umd.min.js'));
/**
 * Chart.js is not in the page: its 200 KB would run before the app (a deferred script runs before the modules) and
 * hold back every page, charts or not. A chart loads it when it is first drawn (components.js, useChartJs), asking the
 * import map for its versioned URL (import.meta.resolve), as the app's own files do.
 */
const IMPORT_MAP = JSON.stringify({
  imports: {
    preact: assetUrl('preact.mjs'),
    'preact/hooks': assetUrl('hooks.mjs'),
    htm: assetUrl('htm.mjs'),
    ...Object.fromEntries(MODULES.filter((n) => n.endsWith('.js')).map((n) => [`${ASSETS_PATH}/${n}`, assetUrl(n)])),
    [`${ASSETS_PATH}/chart.umd.min.js`]: assetUrl('chart.umd.min.js'),
  },
});

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Deliveries · email delivery dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${assetUrl('dashboard.css')}">
<script type="importmap">${IMPORT_MAP}</script>
${MODULES.map((n) => `<link rel="modulepreload" href="${assetUrl(n)}">`).join('\n')}
<script type="module" src="${assetUrl('app.js')}"></script>
</head>
<body>
<noscript>The dashboard needs JavaScript. The same data is in the API: <a href="/docs/api">/docs/api</a>.</noscript>
<div id="app"></div>
</body>
</html>
`;

/**
 * Scripts from this origin and the import map by its hash: nothing injected into the page could run. Chart.js and
 * preact set element styles from script (the CSSOM, which style-src does not govern); the style sheet is this origin's.
 */
export const DASHBOARD_CSP = selfOnlyPageCsp(IMPORT_MAP);

export interface DashboardRouterOptions {
  /** The Temporal Web UI's base URL, for links to workflows; none when the installation does not say. */
  temporalUiUrl?: string;
  temporalNamespace: string;
}


export function createDashboardRouter(o: DashboardRouterOptions): Router {
  const router = Router();

  router.get(DASHBOARD_PATH, (_req, res) => {
    staticPageHeaders(res);
    res.setHeader('Content-Security-Policy', DASHBOARD_CSP);
    res.setHeader('Cache-Control', 'no-cache');
    res.type('html').send(PAGE);
  });

  router.get(`${ASSETS_PATH}/:file`, (req, res, next) => {
    const name = String(req.params.file);
    const asset = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
    if (!asset) throw new NotFoundError(`${name} is not a file of the dashboard`);
    staticPageHeaders(res);
    // Asked for with its current digest, the file never changes under that URL; otherwise (an old page, a hand-typed
    // URL) the browser revalidates it (ETag) at each load.
    const cache = req.query.v === asset.version ? 'public, max-age=31536000, immutable' : 'no-cache';
    res.sendFile(asset.file, { headers: { 'Content-Type': asset.type, 'Cache-Control': cache } }, (err) => {
      if (err && !res.headersSent) next(err);
    });
  });

  router.get('/api/dashboard/config', (_req, res) => {
    res.json({
      temporalUi: o.temporalUiUrl ? { url: o.temporalUiUrl.replace(/\/+$/, ''), namespace: o.temporalNamespace } : null,
      // The webhook page's choices, from the list the API validates subscriptions against.
      webhookEventTypes: WEBHOOK_EVENT_TYPES,
    });
  });

  return router;
}
