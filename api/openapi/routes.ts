/**
 * The API's description and its reader, public (api/auth/route-access.ts says why):
 *
 * - `GET /api/openapi.json`: the OpenAPI 3.1 document of the routes this process mounted (api/openapi/document.ts).
 * - `GET /docs/api`: the document rendered by Swagger UI, whose files are served from node_modules (swagger-ui-dist):
 *   nothing is loaded from another site, so the page works on a machine without internet, and a strict CSP holds.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { Router } from 'express';
import { selfOnlyPageCsp, staticPageHeaders } from '../static-page-headers';
import { NotFoundError } from '../http-errors';
import { buildOpenApiDocument, type OpenApiDocument } from './document';

export const OPENAPI_PATH = '/api/openapi.json';
export const DOCS_PATH = '/docs/api';
const ASSETS_PATH = `${DOCS_PATH}/assets`;

/** The viewer's files, by the name the page asks for (nothing else of the package is served). */
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
};
const VIEWER_DIR = path.dirname(createRequire(__filename).resolve('swagger-ui-dist/package.json'));

/**
 * Starts the viewer. No validator badge (it would send the document to an outside service); authorizations are not
 * kept in the browser's storage (a key pasted in "Authorize" lasts as long as the tab).
 */
const VIEWER_SCRIPT = `
window.ui = SwaggerUIBundle({
  url: ${JSON.stringify(OPENAPI_PATH)},
  dom_id: '#swagger-ui',
  deepLinking: true,
  validatorUrl: null,
  showExtensions: true,
  displayOperationId: true,
  defaultModelsExpandDepth: 0,
  persistAuthorization: false,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout'
});
`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>API reference · email delivery engine</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="${ASSETS_PATH}/swagger-ui.css">
<link rel="icon" href="data:,">
</head>
<body>
<noscript>This page needs JavaScript. The description itself is at <a href="${OPENAPI_PATH}">${OPENAPI_PATH}</a>.</noscript>
<div id="swagger-ui"></div>
<script src="${ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script>${VIEWER_SCRIPT}</script>
</body>
</html>
`;

/**
 * Scripts: the viewer's bundle from this origin and the page's own script by its hash. Styles from this origin (the
 * viewer sets element styles from script, which a CSP does not govern); its icons are data: images; "Try it out"
 * calls this origin only.
 */
export const DOCS_PAGE_CSP = selfOnlyPageCsp(VIEWER_SCRIPT);

export interface OpenApiRouterOptions {
  /** The routes this process mounted ("METHOD /path"); read at the first request, once the app is complete. */
  routes?: () => Iterable<string>;
}


export function createOpenApiRouter(o: OpenApiRouterOptions = {}): Router {
  const router = Router();
  let document: OpenApiDocument | null = null;

  router.get(OPENAPI_PATH, (_req, res) => {
    document ??= buildOpenApiDocument({ routes: o.routes?.() });
    staticPageHeaders(res);
    // A public description with no data in it: tools on other origins (editors, client generators) may read it.
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Cache-Control', 'no-cache');
    res.json(document);
  });

  router.get(DOCS_PATH, (_req, res) => {
    staticPageHeaders(res);
    res.setHeader('Content-Security-Policy', DOCS_PAGE_CSP);
    res.setHeader('Cache-Control', 'no-cache');
    res.type('html').send(PAGE);
  });

  router.get(`${ASSETS_PATH}/:file`, (req, res, next) => {
    const file = String(req.params.file);
    const type = Object.hasOwn(ASSETS, file) ? ASSETS[file] : undefined;
    if (!type) throw new NotFoundError(`${file} is not a file of the API reference viewer`);
    staticPageHeaders(res);
    res.sendFile(path.join(VIEWER_DIR, file), { maxAge: '1d', headers: { 'Content-Type': type } }, (err) => {
      if (err && !res.headersSent) next(err);
    });
  });

  return router;
}
