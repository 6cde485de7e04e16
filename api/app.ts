/** The HTTP API (Express): access control first, then one router per resource, one error middleware for all of them. */
import express from 'express';
import type { Client } from '@temporalio/client';
import type { Stores } from '../db/stores';
import type { DeliveryService } from './delivery-service';
import { createDeliveryRouter } from './delivery-routes';
import { createListRouter } from './list-routes';
import { createDkimRouter } from './dkim-routes';
import { createUnsubscribeRouter } from './unsubscribe-routes';
import { createRulesRouter } from './rules-routes';
import { createInboundRulesRouter } from './inbound-rule-routes';
import { createScheduleRouter } from './schedule-routes';
import { createFeedbackRouter } from './feedback-routes';
import type { InboundProcessor } from '../inbound/process-inbound';
import { apiErrorMiddleware } from './error-middleware';
import { createCodecRouter, type CodecServerOptions } from './codec-routes';
import { refuseNulCharacters } from './hostile-input';
import { createAccessControl, principalOf, type AccessControl, type AccessControlOptions } from './auth/access-control';
import { idempotencyKeys } from './idempotency';
import { assertEveryRouteDeclared, mountedRoutes } from './auth/route-access';
import { createSessionRouter } from './auth/session-routes';
import { createApiKeyRouter } from './api-key-routes';
import { createWebhookRouter } from './webhook-routes';
import { createMxSiteRouter } from './mx-site-routes';
import { createOpenApiRouter } from './openapi/routes';
import { createDashboardRouter } from './dashboard-routes';
import { createDeliveryFigureRouter } from './delivery-figure-routes';

/** Access control's settings (the key store comes from `stores`); see accessSettings() in runtime/composition-root.ts. */
export type AccessSettings = Omit<AccessControlOptions, 'store' | 'table' | 'log'>;

export interface ApiDependencies {
  service: DeliveryService;
  stores: Stores;
  verpSecret: string;
  temporalUiUrl?: string;
  /** Recurring deliveries (Temporal Schedules): mounted only when given. */
  schedules?: { client: Client; taskQueue: string };
  /** The inbound side (POST /api/inbound and the feedback, quarantine and denylist endpoints): mounted only when given. */
  inbound?: { processor: InboundProcessor; maxMessageBytes: number };
  /** Event webhooks (subscriptions and their endpoint workflows, docs/webhooks.md): mounted only when given. */
  webhooks?: { client: Client; taskQueue: string };
  /** The codec server of the Temporal Web UI (POST /codec/encode, /codec/decode): mounted only when given. */
  codec?: CodecServerOptions;
  /** API keys, sessions and rate limits (docs/access-control.md). */
  access: AccessSettings;
  /** How long a sending delivery's figures are reused, and the send mode that decides which site a recipient went to. */
  figureSettings?: { DELIVERY_FIGURES_CACHE_MS: number; SEND_MODE: 'direct' | 'relay' };
}

/** The app, and its access control (tests reach the key cache through it). */
export type ApiApp = express.Express & { access: AccessControl };

export function createApp(deps: ApiDependencies): ApiApp {
  const app = express();
  app.disable('x-powered-by');
  const access = createAccessControl({
    ...deps.access,
    store: deps.stores.apiKeys,
    log: (msg, fields) => console.error(JSON.stringify({ msg, ...fields })),
  });
  // Who is calling, and their rate limit, before anything else: no body is parsed for a caller without a key.
  app.use(access.identify);

  app.get('/health', (_req, res) => {
    res.json({ ok: true });
  });

  // The codec server answers CORS preflights (which carry no credentials) itself, then runs the same access check.
  if (deps.codec) app.use(createCodecRouter({ ...deps.codec, access: access.authorize }));
  // The scope each route needs (api/auth/route-access.ts): 401 without a valid key, 403 with too low a scope.
  app.use(access.authorize);
  app.use(express.json({ limit: '50mb' }));
  // Before every router: a NUL in the path, query or JSON body is a 400 naming where, never a database error.
  app.use(refuseNulCharacters);
  // After the caller is known (keys are per API key) and the body parsed (it is part of the request's fingerprint).
  app.use(idempotencyKeys({ store: deps.stores.idempotency, ownerOf: (_req, res) => principalOf(res)?.key.id ?? 'anonymous' }));

  app.use(createSessionRouter({ access, keys: deps.stores.apiKeys }));
  // The description of the routes this process mounted (the optional routers vary), and its viewer (docs/api.md).
  app.use(createOpenApiRouter({ routes: () => mountedRoutes(app).map((r) => `${r.method} ${r.path}`) }));
  // The dashboard's page and files (public, no data) and its settings; its data comes from the routes below.
  app.use(createDashboardRouter({ temporalUiUrl: deps.temporalUiUrl, temporalNamespace: (deps.schedules ?? deps.webhooks)?.client.options.namespace ?? 'default' }));
  app.use(createApiKeyRouter({ keys: deps.stores.apiKeys, audit: deps.stores.audit, authenticator: access.authenticator }));
  app.use(createDeliveryRouter(deps.service, deps.stores.audit));
  app.use(
    createDeliveryFigureRouter({
      service: deps.service,
      deliveries: deps.stores.deliveries,
      log: deps.stores.log,
      figures: deps.stores.figures,
      siteRules: deps.stores.mxSiteRules,
      settings: deps.figureSettings ?? { DELIVERY_FIGURES_CACHE_MS: 10_000, SEND_MODE: 'direct' },
    }),
  );
  app.use(createListRouter(deps.stores.lists));
  app.use(createDkimRouter(deps.stores.keys));
  app.use(createUnsubscribeRouter({ denylist: deps.stores.denylist, verpSecret: deps.verpSecret }));
  app.use(createRulesRouter({ store: deps.stores.qualificationRules }));
  app.use(createInboundRulesRouter({ store: deps.stores.inboundRules, smtpRules: () => deps.stores.qualificationRules.loadCompiled() }));
  app.use(createMxSiteRouter({ siteRules: deps.stores.mxSiteRules, replyRules: deps.stores.mxReplyRules, sites: deps.stores.mxSites }));
  if (deps.inbound) {
    app.use(createFeedbackRouter({ ...deps.inbound, inbound: deps.stores.inbound, quarantine: deps.stores.quarantine }));
  }
  if (deps.webhooks) app.use(createWebhookRouter({ ...deps.webhooks, store: deps.stores.webhooks }));
  if (deps.schedules) app.use(createScheduleRouter({ ...deps.schedules, templates: deps.stores.templates, lists: deps.stores.lists, audit: deps.stores.audit }));

  app.use((_req, res) => {
    res.status(404).json({ error: 'no such endpoint' });
  });
  app.use(apiErrorMiddleware);
  // A route missing from the access table would otherwise be served with the undeclared default: refuse to start.
  assertEveryRouteDeclared(app, access.table);
  return Object.assign(app, { access });
}
