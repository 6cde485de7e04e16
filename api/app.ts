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
import { createScheduleRouter } from './schedule-routes';
import { apiErrorMiddleware } from './error-middleware';

export interface ApiDependencies {
  service: DeliveryService;
  stores: Stores;
  verpSecret: string;
  temporalUiUrl?: string;
  /** Recurring deliveries (Temporal Schedules): mounted only when given. */
  schedules?: { client: Client; taskQueue: string };
}

export function createApp(deps: ApiDependencies): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '50mb' }));

  app.get('/health', (_req, res) => {
    res.json({ ok: true });
  });

  app.use(createDeliveryRouter(deps.service));
  app.use(createListRouter(deps.stores.lists));
  app.use(createDkimRouter(deps.stores.keys));
  app.use(createUnsubscribeRouter({ denylist: deps.stores.denylist, verpSecret: deps.verpSecret }));
  app.use(createRulesRouter({ store: deps.stores.qualificationRules }));
  if (deps.schedules) app.use(createScheduleRouter({ ...deps.schedules, templates: deps.stores.templates, lists: deps.stores.lists }));

  app.use((_req, res) => {
    res.status(404).json({ error: 'no such endpoint' });
  });
  app.use(apiErrorMiddleware);
  return app;
}
