/** The HTTP API (Express): one router per resource, one error middleware for all of them. */
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

export interface ApiDependencies {
  service: DeliveryService;
  stores: Stores;
  verpSecret: string;
  temporalUiUrl?: string;
  /** Recurring deliveries (Temporal Schedules): mounted only when given. */
  schedules?: { client: Client; taskQueue: string };
  /** The inbound side (POST /api/inbound and the feedback, quarantine and denylist endpoints): mounted only when given. */
  inbound?: { processor: InboundProcessor; maxMessageBytes: number };
  /** The codec server of the Temporal Web UI (POST /codec/encode, /codec/decode): mounted only when given. */
  codec?: CodecServerOptions;
}

export function createApp(deps: ApiDependencies): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '50mb' }));
  // Before every router: a NUL in the path, query or JSON body is a 400 naming where, never a database error.
  app.use(refuseNulCharacters);

  app.get('/health', (_req, res) => {
    res.json({ ok: true });
  });

  if (deps.codec) app.use(createCodecRouter(deps.codec));
  app.use(createDeliveryRouter(deps.service));
  app.use(createListRouter(deps.stores.lists));
  app.use(createDkimRouter(deps.stores.keys));
  app.use(createUnsubscribeRouter({ denylist: deps.stores.denylist, verpSecret: deps.verpSecret }));
  app.use(createRulesRouter({ store: deps.stores.qualificationRules }));
  app.use(createInboundRulesRouter({ store: deps.stores.inboundRules, smtpRules: () => deps.stores.qualificationRules.loadCompiled() }));
  if (deps.inbound) {
    app.use(createFeedbackRouter({ ...deps.inbound, inbound: deps.stores.inbound, quarantine: deps.stores.quarantine }));
  }
  if (deps.schedules) app.use(createScheduleRouter({ ...deps.schedules, templates: deps.stores.templates, lists: deps.stores.lists }));

  app.use((_req, res) => {
    res.status(404).json({ error: 'no such endpoint' });
  });
  app.use(apiErrorMiddleware);
  return app;
}
