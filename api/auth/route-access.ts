/**
 * THE table of who may call what: every route of the API with the scope it needs (or `public`). The access middleware
 * looks requests up here; createApp refuses to start when a mounted route is missing from it (so a new route cannot
 * be forgotten), and test/access-control.test.ts walks the router stack and calls every route without a key and with
 * a key one scope too low.
 *
 * The rule: reads (GET) need `read`; creating and controlling deliveries, lists, proofs, recurring deliveries and
 * feeding inbound messages need `send`; rules, DKIM keys, API keys, the audit log, quarantine releases and denylist
 * changes need `admin`. Only health, the one-click unsubscribe (authenticated by its link's HMAC), the sign-in page
 * (static, no data), the API's description with its viewer and the dashboard's page and files (no data either) are public.
 */
import type express from 'express';
import { match, type MatchFunction } from 'path-to-regexp';
import type { ApiScope } from '../../domain/api-scopes';

export type RouteAccess = ApiScope | 'public';

export const ROUTE_ACCESS = {
  // Liveness probes (load balancers, docker-compose) carry no credentials.
  'GET /health': 'public',
  // RFC 8058 one-click unsubscribe: mailbox providers POST it; the token in the link is the authentication.
  'POST /u/:id/:rid/:token': 'public',

  // Sessions (api/auth/session-routes.ts): the sign-in page is static HTML; signing in takes a key.
  'GET /session': 'public',
  'POST /api/session': 'read',
  'GET /api/session': 'read',
  'DELETE /api/session': 'read',

  // The codec server of the Temporal Web UI: decoding shows recipient data, encoding changes nothing.
  'POST /codec/encode': 'read',
  'POST /codec/decode': 'read',

  // Deliveries (api/delivery-routes.ts).
  'POST /api/deliveries': 'send',
  'GET /api/deliveries': 'read',
  'GET /api/deliveries/:id': 'read',
  'GET /api/deliveries/:id/recipients': 'read',
  'GET /api/deliveries/:id/recipients.csv': 'read',
  'GET /api/deliveries/:id/recipients/:rid': 'read',
  // A delivery's figures and a recipient workflow's live view (api/delivery-figure-routes.ts).
  'GET /api/deliveries/:id/timeline': 'read',
  'GET /api/deliveries/:id/domains': 'read',
  'GET /api/deliveries/:id/mx-sites': 'read',
  'GET /api/deliveries/:id/recipients/:rid/live': 'read',
  'POST /api/deliveries/:id/confirm': 'send',
  'POST /api/deliveries/:id/cancel': 'send',
  'POST /api/deliveries/:id/pause': 'send',
  'POST /api/deliveries/:id/resume': 'send',
  'PUT /api/deliveries/:id/contact-date': 'send',
  'PATCH /api/deliveries/:id': 'send',
  'POST /api/deliveries/:id/proofs': 'send',
  // Rendering a message changes nothing, but it is the editing of one: the scope that creates deliveries.
  'POST /api/deliveries/preview': 'send',

  // Recipient lists (api/list-routes.ts).
  'POST /api/lists': 'send',
  'GET /api/lists': 'read',
  'GET /api/lists/:id': 'read',

  // Recurring deliveries (api/schedule-routes.ts).
  'POST /api/recurring-deliveries': 'send',
  'GET /api/recurring-deliveries': 'read',
  'GET /api/recurring-deliveries/:id': 'read',
  'POST /api/recurring-deliveries/:id/pause': 'send',
  'POST /api/recurring-deliveries/:id/unpause': 'send',
  'POST /api/recurring-deliveries/:id/trigger': 'send',
  'DELETE /api/recurring-deliveries/:id': 'send',

  // Inbound messages and feedback (api/feedback-routes.ts).
  'POST /api/inbound': 'send',
  'GET /api/inbound': 'read',
  'GET /api/inbound/:id': 'read',
  'GET /api/inbound/:id/raw': 'read',
  'POST /api/inbound/:id/resolve': 'send',
  'GET /api/deliveries/:id/recipients/:recipientId/feedback': 'read',
  'GET /api/quarantine': 'read',
  'GET /api/quarantine/:address': 'read',
  'DELETE /api/quarantine/:address': 'admin',
  'GET /api/denylist': 'read',
  'POST /api/denylist': 'admin',
  'DELETE /api/denylist/:address': 'admin',

  // DKIM keys (api/dkim-routes.ts): the list shows public keys and DNS records only.
  'GET /api/dkim/keys': 'read',
  'POST /api/dkim/keys': 'admin',
  'PATCH /api/dkim/keys/:domain/:selector': 'admin',

  // Qualification rules (api/rules-routes.ts on api/rule-table-routes.ts). Trying a reply changes nothing.
  'GET /api/qualification-rules': 'read',
  'POST /api/qualification-rules/test': 'read',
  'GET /api/qualification-rules/:id': 'read',
  'PUT /api/qualification-rules/:id': 'admin',
  'PATCH /api/qualification-rules/:id': 'admin',
  'DELETE /api/qualification-rules/:id': 'admin',

  // Inbound rules (api/inbound-rule-routes.ts on api/rule-table-routes.ts). Classifying a message changes nothing.
  'GET /api/inbound-rules': 'read',
  'POST /api/inbound-rules/test': 'read',
  'GET /api/inbound-rules/:id': 'read',
  'PUT /api/inbound-rules/:id': 'admin',
  'PATCH /api/inbound-rules/:id': 'admin',
  'DELETE /api/inbound-rules/:id': 'admin',

  // MX rules and receiving sites (api/mx-site-routes.ts; the rule tables on api/rule-table-routes.ts). Trying changes nothing.
  'GET /api/mx-sites': 'read',
  'GET /api/mx-sites/:site': 'read',
  'POST /api/mx-sites/:site/suspend': 'admin',
  'POST /api/mx-sites/:site/resume': 'admin',
  'GET /api/mx-rules': 'read',
  'POST /api/mx-rules/test': 'read',
  'GET /api/mx-rules/:id': 'read',
  'PUT /api/mx-rules/:id': 'admin',
  'PATCH /api/mx-rules/:id': 'admin',
  'DELETE /api/mx-rules/:id': 'admin',
  'GET /api/mx-reply-rules': 'read',
  'POST /api/mx-reply-rules/test': 'read',
  'GET /api/mx-reply-rules/:id': 'read',
  'PUT /api/mx-reply-rules/:id': 'admin',
  'PATCH /api/mx-reply-rules/:id': 'admin',
  'DELETE /api/mx-reply-rules/:id': 'admin',

  // API keys and the audit log (api/api-key-routes.ts): admin, reads included.
  'POST /api/keys': 'admin',
  'GET /api/keys': 'admin',
  'DELETE /api/keys/:id': 'admin',
  'GET /api/audit-log': 'admin',

  // Event webhooks (api/webhook-routes.ts): changes, the secret and replays need admin; reads need read.
  'POST /api/webhooks': 'admin',
  'GET /api/webhooks': 'read',
  'GET /api/webhooks/:id': 'read',
  'PATCH /api/webhooks/:id': 'admin',
  'DELETE /api/webhooks/:id': 'admin',
  'GET /api/webhooks/:id/secret': 'admin',
  'GET /api/webhooks/:id/deliveries': 'read',
  'POST /api/webhooks/:id/enable': 'admin',
  'POST /api/webhooks/:id/events/:eventId/replay': 'admin',

  // The API's description (api/openapi/) and its viewer: public, since they say what the API accepts, as the
  // repository's docs/openapi.json does, and nothing of an installation's data; integrators read them before having a key.
  'GET /api/openapi.json': 'public',
  'GET /docs/api': 'public',
  'GET /docs/api/assets/:file': 'public',

  // The dashboard (api/dashboard-routes.ts): its page and files are public because they hold no data (what it shows
  // comes from the routes above, with the session's scopes); its settings (the Temporal UI's address) need a key.
  'GET /dashboard': 'public',
  'GET /dashboard/assets/:file': 'public',
  'GET /api/dashboard/config': 'read',
} as const satisfies Record<string, RouteAccess>;

/** What a request that matches no route needs: a valid key (then the 404); nothing about the API leaks without one. */
export const UNDECLARED_PATH_ACCESS: RouteAccess = 'read';

const RANK: Record<RouteAccess, number> = { public: -1, read: 0, send: 1, admin: 2 };

interface CompiledEntry {
  method: string;
  path: string;
  access: RouteAccess;
  match: MatchFunction<Partial<Record<string, string>>>;
}

/**
 * Matches paths the way Express 5's router does (path-to-regexp 8, case-insensitive, an optional trailing slash), so
 * that a request is checked against the route that will serve it.
 */
function compile(table: Record<string, RouteAccess>): CompiledEntry[] {
  return Object.entries(table).map(([key, access]) => {
    const [method, path] = key.split(' ');
    return { method, path, access, match: match(path.replace(/\/+$/, '') || '/', { sensitive: false, end: true, trailing: true, decode: false }) };
  });
}

export class RouteAccessTable {
  private readonly entries: CompiledEntry[];

  constructor(private readonly table: Record<string, RouteAccess> = ROUTE_ACCESS) {
    this.entries = compile(table);
  }

  /** The declared access of `METHOD path` (as Express lists routes), or undefined. */
  declared(method: string, path: string): RouteAccess | undefined {
    return this.table[`${method.toUpperCase()} ${path}`];
  }

  /**
   * What a request needs. HEAD is served by GET routes. When several routes match (none do today), the strictest
   * wins; a path no route matches needs UNDECLARED_PATH_ACCESS.
   */
  required(method: string, path: string): RouteAccess {
    const m = method.toUpperCase() === 'HEAD' ? 'GET' : method.toUpperCase();
    let found: RouteAccess | undefined;
    for (const e of this.entries) {
      if (e.method !== m || !e.match(path)) continue;
      if (found === undefined || RANK[e.access] > RANK[found]) found = e.access;
    }
    return found ?? UNDECLARED_PATH_ACCESS;
  }
}

export interface MountedRoute {
  method: string;
  path: string;
}

interface StackLayer {
  route?: { path: unknown; methods: Record<string, boolean> };
  handle?: { stack?: StackLayer[] };
  slash?: boolean;
  rawPath?: unknown;
}

/**
 * Every route mounted on the app, as `METHOD /path`, found by walking Express 5's router stack (`app.router.stack`,
 * routers mounted with `app.use(router)` included). Routers must be mounted at `/` (their routes carry full paths):
 * a router under a prefix would not match the table, so it is refused here.
 */
export function mountedRoutes(app: express.Express): MountedRoute[] {
  const out: MountedRoute[] = [];
  const walk = (stack: StackLayer[], where: string) => {
    for (const layer of stack) {
      if (layer.route) {
        if (typeof layer.route.path !== 'string') throw new Error(`${where}: a route with a non-string path cannot be declared in api/auth/route-access.ts`);
        for (const [method, on] of Object.entries(layer.route.methods)) {
          if (on) out.push({ method: method === '_all' ? 'ALL' : method.toUpperCase(), path: layer.route.path });
        }
      } else if (layer.handle?.stack) {
        if (!layer.slash) throw new Error(`${where}: a router is mounted under ${String(layer.rawPath)}; mount routers at / so that their routes carry their full paths`);
        walk(layer.handle.stack, where);
      }
    }
  };
  walk((app as unknown as { router: { stack: StackLayer[] } }).router.stack, 'createApp');
  return out;
}

/** Throws, naming them, when mounted routes are missing from the table (the API then refuses to start). */
export function assertEveryRouteDeclared(app: express.Express, table = new RouteAccessTable()): void {
  const missing = mountedRoutes(app).filter((r) => table.declared(r.method, r.path) === undefined);
  if (missing.length) {
    throw new Error(
      `routes without a declared scope: ${missing.map((r) => `${r.method} ${r.path}`).join(', ')} — add each to ROUTE_ACCESS in api/auth/route-access.ts ('read', 'send', 'admin' or 'public')`,
    );
  }
}
