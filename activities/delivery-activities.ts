/** Activities of the delivery workflow: analysis, state, handing pages of recipients over, KPIs, cancellation. */
import type { ActivityDependencies } from './dependencies';
import type { DeliveryState } from '../db/delivery-store';
import type { ClaimedRecipient } from '../db/delivery-log';
import type { DeliveryKpis } from '../domain/efs-status';
import { analysePopulation } from '../db/delivery-analysis';
import { hasBlockingErrors, type AnalysisFinding, type AnalysisReport } from '../domain/analysis-report';
import { compileMessage } from '../domain/message-template';
import { MAX_RETRY_WINDOW_MS } from '../domain/retry-schedule';

export interface AnalysisSummary {
  targeted: number;
  toDeliver: number;
  excluded: number;
  exclusions: AnalysisReport['exclusions'];
  findings: AnalysisFinding[];
  confirmable: boolean;
}

export function createDeliveryActivities(deps: ActivityDependencies) {
  return {
    /** Runs exclusions and content checks, stores the report on the delivery, returns its summary. */
    async analyseDelivery(deliveryId: string): Promise<AnalysisSummary> {
      const delivery = await deps.store.get(deliveryId);
      if (!delivery) throw new Error(`delivery ${deliveryId} does not exist`);
      const population = await analysePopulation(deps.pool, deliveryId);
      const excluded = Object.values(population.exclusions).reduce((a, b) => a + (b ?? 0), 0);
      const findings: AnalysisFinding[] = [];
      if (!delivery.subject.trim()) findings.push({ severity: 'error', code: 'NO_SUBJECT', message: 'The message has no subject.' });
      if (!delivery.html && !delivery.text) findings.push({ severity: 'error', code: 'NO_BODY', message: 'The message has neither an HTML nor a text part.' });
      try {
        compileMessage({ subject: delivery.subject, html: delivery.html, text: delivery.text });
      } catch (e) {
        findings.push({ severity: 'error', code: 'TEMPLATE_INVALID', message: `The message template does not compile: ${(e as Error).message}` });
      }
      const keys = await deps.keys.signingKeys(delivery.fromDomain);
      if (keys.length === 0) {
        findings.push({ severity: 'error', code: 'NO_DKIM_KEY', message: `No active DKIM key for the From domain ${delivery.fromDomain}.` });
      }
      if (delivery.validitySeconds * 1000 > MAX_RETRY_WINDOW_MS) {
        findings.push({
          severity: 'warning',
          code: 'VALIDITY_CAPPED',
          message: 'The validity period is longer than 3.5 days: soft-bounce retries stop 3.5 days after each message is first handed over.',
        });
      }
      const toDeliver = population.targeted - excluded;
      if (toDeliver === 0) findings.push({ severity: 'error', code: 'NOTHING_TO_DELIVER', message: 'Every targeted address was excluded.' });
      const report: AnalysisReport = {
        analysedAt: new Date().toISOString(),
        targeted: population.targeted,
        excluded,
        toDeliver,
        exclusions: population.exclusions,
        topDomains: population.topDomains,
        findings,
        confirmable: !hasBlockingErrors(findings),
      };
      await deps.pool.query('UPDATE deliveries SET analysis = $2 WHERE id = $1', [deliveryId, JSON.stringify(report)]);
      return { targeted: report.targeted, toDeliver, excluded, exclusions: report.exclusions, findings, confirmable: report.confirmable };
    },

    async setDeliveryState(deliveryId: string, state: DeliveryState): Promise<void> {
      await deps.store.setState(deliveryId, state);
    },

    /** Hands the next page of recipients to the sending stage; returns their ids and domains (never addresses). */
    async claimRecipientPage(input: { deliveryId: string; afterRecipientId: number; limit: number }): Promise<ClaimedRecipient[]> {
      return deps.log.claimPage(input.deliveryId, input.afterRecipientId, input.limit);
    },

    async readDeliveryKpis(deliveryId: string): Promise<DeliveryKpis> {
      return deps.log.kpis(deliveryId);
    },

    async cancelPendingRecipients(deliveryId: string): Promise<number> {
      return deps.log.cancelPending(deliveryId);
    },
  };
}
