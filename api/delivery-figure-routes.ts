/**
 * A delivery's figures for its dashboard page (docs/api.md, "Delivery figures"): EFS statuses over time, the top
 * recipient domains, the receiving sites; and a recipient workflow's live view. Reads only (scope read).
 */
import { Router } from 'express';
import { z } from 'zod';
import type { Settings } from '../config/settings';
import type { DeliveryFigures, FigureCounts } from '../db/delivery-figures';
import type { DeliveryRow, DeliveryStore } from '../db/delivery-store';
import type { DeliveryLog } from '../db/delivery-log';
import type { MxSiteRuleStore } from '../db/mx-rule-store';
import { isEndedPhase } from '../domain/delivery-lifecycle';
import { timelineBuckets } from '../domain/timeline-buckets';
import { siteOfRecordedHost } from '../mail/mx/site-resolver';
import { recipientWorkflowId } from '../workflows/contract';
import type { DeliveryService } from './delivery-service';
import { deliveryIdParam, recipientIdParam } from './delivery-routes';
import { NotFoundError } from './http-errors';
import { SharedReads } from './shared-reads';

export const timelineQuery = z.object({
  buckets: z.coerce.number().int().min(2).max(500).default(60).describe('at most this many time buckets (a round width is chosen from the time span)'),
});
export const domainsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(20).describe('how many domains, most recipients first; the rest are added up in `others`'),
});

/** Success % as the KPIs define it: sent / (recipients - excluded - cancelled), two decimals. */
function withSuccess<T extends FigureCounts>(c: T): T & { toDeliver: number; successPercent: number } {
  const toDeliver = c.recipients - c.excluded - c.cancelled;
  return { ...c, toDeliver, successPercent: toDeliver === 0 ? 0 : Math.round((c.sent / toDeliver) * 10_000) / 100 };
}

function addCounts(a: FigureCounts, b: FigureCounts): FigureCounts {
  return {
    recipients: a.recipients + b.recipients,
    excluded: a.excluded + b.excluded,
    cancelled: a.cancelled + b.cancelled,
    pending: a.pending + b.pending,
    takenIntoAccount: a.takenIntoAccount + b.takenIntoAccount,
    softWaiting: a.softWaiting + b.softWaiting,
    sent: a.sent + b.sent,
    failed: a.failed + b.failed,
  };
}

export interface DeliveryFigureDeps {
  service: DeliveryService;
  deliveries: DeliveryStore;
  log: DeliveryLog;
  figures: DeliveryFigures;
  siteRules: MxSiteRuleStore;
  settings: Pick<Settings, 'DELIVERY_FIGURES_CACHE_MS' | 'SEND_MODE'>;
}

export function createDeliveryFigureRouter(deps: DeliveryFigureDeps): Router {
  const router = Router();
  /**
   * Answers of a sending delivery, per delivery, figure and parameter, for DELIVERY_FIGURES_CACHE_MS: each figure is an
   * aggregate over every recipient (a few hundred ms at a million), so Postgres runs it once per interval whatever the
   * number of pages polling it. The promise is kept, so that concurrent reads share one statement.
   */
  const shared = new SharedReads<unknown>(deps.settings.DELIVERY_FIGURES_CACHE_MS, { maxEntries: 1000 });
  function cached<T>(d: DeliveryRow, key: string, read: () => Promise<T>): Promise<T> {
    if (isEndedPhase(d.state)) return read();
    return shared.get(`${d.id} ${key}`, read) as Promise<T>;
  }

  async function delivery(id: string): Promise<DeliveryRow> {
    const d = await deps.deliveries.get(id);
    if (!d) throw new NotFoundError(`delivery ${id} does not exist`);
    return d;
  }

  router.get('/api/deliveries/:id/timeline', async (req, res) => {
    const id = deliveryIdParam(req);
    const q = timelineQuery.parse(req.query);
    const d = await delivery(id);
    if (!d.sendingStartedAt) {
      res.json({ deliveryId: id, from: null, to: null, bucketSeconds: null, points: [] });
      return;
    }
    res.json(
      await cached(d, `timeline ${q.buckets}`, async () => {
        // Up to now while it sends; an ended delivery up to its end (a late bounce after it counts in the last bucket).
        const to = isEndedPhase(d.state) && d.completedAt ? d.completedAt : new Date();
        const b = timelineBuckets(d.sendingStartedAt!, to, q.buckets);
        const points = await deps.figures.timeline(id, { from: b.from, widthMs: b.widthMs, buckets: b.count });
        return {
          deliveryId: id,
          from: b.from.toISOString(),
          to: to.toISOString(),
          bucketSeconds: b.widthMs / 1000,
          // Each point is the figures at the end of its bucket; the last one's end is `to`.
          points: points.map((p) => ({ ...p, at: new Date(Math.min(p.at.getTime(), to.getTime())).toISOString() })),
        };
      }),
    );
  });

  router.get('/api/deliveries/:id/domains', async (req, res) => {
    const id = deliveryIdParam(req);
    const q = domainsQuery.parse(req.query);
    const d = await delivery(id);
    res.json(
      await cached(d, `domains ${q.limit}`, async () => {
        const { domains, others } = await deps.figures.domains(id, q.limit);
        return { deliveryId: id, domains: domains.map(withSuccess), others: withSuccess(others) };
      }),
    );
  });

  router.get('/api/deliveries/:id/mx-sites', async (req, res) => {
    const id = deliveryIdParam(req);
    const d = await delivery(id);
    res.json(
      await cached(d, 'mx-sites', async () => {
        const [rows, rules] = await Promise.all([deps.figures.byDomainAndMxHost(id), deps.siteRules.loadCompiled()]);
        const sites = new Map<string, { site: string | null; ruleId: string | null; provider: string | null; mxHosts: Set<string>; domains: Set<string>; counts: FigureCounts }>();
        for (const row of rows) {
          const match = siteOfRecordedHost(row.domain, row.mxHost, rules, deps.settings.SEND_MODE);
          const key = match?.site ?? '';
          const entry = sites.get(key) ?? {
            site: match?.site ?? null,
            ruleId: match?.rule.id ?? null,
            provider: match?.rule.provider ?? null,
            mxHosts: new Set<string>(),
            domains: new Set<string>(),
            counts: { recipients: 0, excluded: 0, cancelled: 0, pending: 0, takenIntoAccount: 0, softWaiting: 0, sent: 0, failed: 0 },
          };
          if (row.mxHost) entry.mxHosts.add(row.mxHost);
          entry.domains.add(row.domain);
          entry.counts = addCounts(entry.counts, row);
          sites.set(key, entry);
        }
        const list = [...sites.values()]
          .map((s) => ({
            site: s.site,
            ruleId: s.ruleId,
            provider: s.provider,
            mxHosts: [...s.mxHosts].sort().slice(0, 10),
            domainCount: s.domains.size,
            ...withSuccess(s.counts),
          }))
          // Most recipients first; recipients without a site yet (null: no attempt, no domain rule) last.
          .sort((a, b) => Number(a.site === null) - Number(b.site === null) || b.recipients - a.recipients || String(a.site).localeCompare(String(b.site)));
        return { deliveryId: id, sites: list };
      }),
    );
  });

  router.get('/api/deliveries/:id/recipients/:rid/live', async (req, res) => {
    const id = deliveryIdParam(req);
    // Parsed as a named field, so that a refusal names `rid`.
    const { rid } = z.object({ rid: recipientIdParam }).parse({ rid: req.params.rid });
    if (!(await deps.log.recipient(id, rid))) throw new NotFoundError(`recipient ${rid} of delivery ${id} does not exist`);
    const workflowId = recipientWorkflowId(id, rid);
    const live = await deps.service.recipientLiveState(id, rid);
    if (live.workflow === 'not_found') {
      res.status(404).json({ error: `recipient workflow ${workflowId} does not exist: not started yet, or its history is gone`, workflowId, temporalUnavailable: false });
      return;
    }
    const s = live.state;
    const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
    res.json({
      workflowId,
      temporalUnavailable: live.temporalUnavailable,
      state: s
        ? {
            status: s.status,
            failureType: s.failureType,
            failureReason: s.failureReason,
            retryClass: s.retryClass,
            attempts: s.attempts,
            sendAt: iso(s.sendAtMs),
            nextRetryAt: iso(s.nextRetryAtMs),
            retryWindowEndsAt: iso(s.retryWindowEndsAtMs),
            lastReply: s.lastReply,
            feedbackWindowEndsAt: iso(s.feedbackWindowEndsAtMs),
            statusSource: s.statusSource ?? null,
            feedback: (s.feedback ?? []).length,
          }
        : null,
    });
  });

  return router;
}
