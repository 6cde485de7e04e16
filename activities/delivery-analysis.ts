/** The analysis activity: exclusions, content checks, counts, wave plan and validity, stored as the delivery's report. */
import { publicUrl, type ActivityDependencies } from './dependencies';
import type { AnalysisSummary, DeliveryActivities } from '../workflows/contract';
import { hasBlockingErrors, type AnalysisFinding, type AnalysisReport } from '../domain/analysis-report';
import { compileMessage, type CompiledMessage } from '../domain/message-template';
import { MAX_RETRY_WINDOW_MS } from '../domain/retry-schedule';
import { calendarShortfall, planWaves } from '../domain/wave-plan';
import { DEFAULT_DELIVERY_OPTIONS, type DeliveryOptions } from '../domain/delivery-options';
import { isValidTimeZone } from '../domain/local-send-time';
import { buildMessage, stableMessageId } from '../mail/mime/message-builder';
import { encodedHtmlPartSize } from '../mail/mime/html-part-size';
import { oneClickUnsubscribeUrl } from '../mail/list-unsubscribe/one-click';

/** Big webmails (Gmail) clip HTML messages above about 102 KB. */
export const CLIP_SIZE_BYTES = 102 * 1024;
const SAMPLE_SIZE = 20;

export function createAnalysisActivities(deps: ActivityDependencies): Pick<DeliveryActivities, 'analyseDelivery'> {
  return {
    /** Runs exclusions and checks, stores the full report on the delivery, returns its summary. */
    async analyseDelivery(input: { deliveryId: string; plannedStartMs: number }): Promise<AnalysisSummary> {
      const delivery = await deps.deliveries.get(input.deliveryId);
      if (!delivery) throw new Error(`delivery ${input.deliveryId} does not exist`);
      const options: DeliveryOptions = { ...DEFAULT_DELIVERY_OPTIONS, ...(delivery.options as Partial<DeliveryOptions>) };
      const findings: AnalysisFinding[] = [];
      const add = (severity: AnalysisFinding['severity'], code: string, message: string) => findings.push({ severity, code, message });

      // --- content ---
      if (!delivery.subject.trim()) add('error', 'NO_SUBJECT', 'The message has no subject.');
      if (!delivery.html && !delivery.text) add('error', 'NO_BODY', 'The message has neither an HTML nor a text part.');
      if (delivery.html && !delivery.text) add('warning', 'NO_TEXT_PART', 'The message has no text part; some filters score HTML-only mail as spam.');
      let compiled: CompiledMessage | null = null;
      try {
        compiled = compileMessage({ subject: delivery.subject, html: delivery.html, text: delivery.text });
      } catch (e) {
        add('error', 'TEMPLATE_INVALID', `The message template does not compile: ${(e as Error).message}`);
      }
      const keys = await deps.keys.signingKeys(delivery.fromDomain);
      if (keys.length === 0) add('error', 'NO_DKIM_KEY', `No active DKIM key for the From domain ${delivery.fromDomain}: messages would be unsigned.`);
      const unsubscribeBase = publicUrl(deps.settings);
      if (!/^https:\/\//.test(unsubscribeBase)) {
        add('warning', 'UNSUBSCRIBE_NOT_PUBLIC', `The one-click List-Unsubscribe URL (${unsubscribeBase}) is not public HTTPS: Gmail and Yahoo require working one-click unsubscribe for bulk mail. Set PUBLIC_URL.`);
      }

      // --- population ---
      const requiredFields = (compiled?.fields ?? []).filter((f) => f !== 'email');
      const population = await deps.analysis.analysePopulation(input.deliveryId, requiredFields);
      const excluded = Object.values(population.exclusions).reduce((a, b) => a + (b ?? 0), 0);
      const toDeliver = population.targeted - excluded;
      if (toDeliver === 0) add('error', 'NOTHING_TO_DELIVER', 'Every targeted address was excluded: there is nothing to deliver.');
      if (population.exclusions.missing_field) {
        add('warning', 'MISSING_FIELDS', `${population.exclusions.missing_field} recipients lack a field the message uses (${requiredFields.join(', ')}) and are excluded.`);
      }

      // --- sample render and size ---
      if (compiled) {
        let largest = 0;
        for (const r of await deps.analysis.sampleRecipients(input.deliveryId, SAMPLE_SIZE)) {
          try {
            const content = compiled.render({ ...r.fields, email: r.address });
            const raw = await buildMessage(content, {
              from: { address: delivery.fromAddress, name: delivery.fromName },
              to: r.address,
              replyTo: delivery.replyTo,
              messageId: stableMessageId(delivery.id, r.recipientId, delivery.fromDomain),
              date: new Date(),
              // A placeholder token: only the size matters here.
              listUnsubscribeUrl: oneClickUnsubscribeUrl(unsubscribeBase, delivery.id, r.recipientId, 'x'),
              listUnsubscribeMailto: null,
              feedbackId: 'analysis',
            });
            // Gmail clips on the size of the HTML it receives (encoded); text-only messages are not clipped.
            if (content.html !== null) largest = Math.max(largest, encodedHtmlPartSize(raw));
          } catch (e) {
            add('error', 'TEMPLATE_RENDER_FAILED', `The message does not render for recipient ${r.recipientId}: ${(e as Error).message}`);
            break;
          }
        }
        if (largest > CLIP_SIZE_BYTES) {
          add('warning', 'MESSAGE_TOO_BIG', `The message is ${Math.round(largest / 1024)} KB: Gmail clips messages above 102 KB.`);
        }
      }

      // --- time zones ---
      if (options.localSendTime) {
        const zones = await deps.analysis.timeZoneValues(input.deliveryId, options.localSendTime.timeZoneField);
        const fallback = zones.filter((z) => !z.zone || !isValidTimeZone(z.zone)).reduce((a, z) => a + z.count, 0);
        if (fallback > 0) {
          add('warning', 'TIME_ZONE_DEFAULTED', `${fallback} recipients have no valid time zone in "${options.localSendTime.timeZoneField}" and will be sent at ${options.localSendTime.time} ${options.localSendTime.defaultTimeZone}.`);
        }
      }

      // --- waves and validity ---
      const startMs = Math.max(input.plannedStartMs, delivery.contactDate?.getTime() ?? 0);
      const rate = deps.settings.ESTIMATED_SEND_RATE_PER_SECOND;
      const wavePlan = planWaves(options.waves, toDeliver, startMs, rate);
      const shortfall = calendarShortfall(options.waves, toDeliver);
      if (shortfall > 0) add('warning', 'CALENDAR_REMAINDER', `The calendar waves cover ${toDeliver - shortfall} of ${toDeliver} recipients; the last wave takes the other ${shortfall}.`);
      if (shortfall < 0) add('warning', 'CALENDAR_OVERBOOKED', `The calendar waves ask for ${toDeliver - shortfall} recipients but only ${toDeliver} are deliverable; later waves are smaller.`);
      const validityEndMs = startMs + delivery.validitySeconds * 1000;
      const last = wavePlan[wavePlan.length - 1];
      if (last && last.startAtMs > validityEndMs) {
        add('error', 'LAST_WAVE_AFTER_VALIDITY', `Wave ${last.index} would start ${new Date(last.startAtMs).toISOString()}, after the validity ends (${new Date(validityEndMs).toISOString()}).`);
      }
      if (delivery.validitySeconds * 1000 > MAX_RETRY_WINDOW_MS) {
        add('warning', 'VALIDITY_CAPPED', 'The validity period is longer than 3.5 days: soft-bounce retries stop 3.5 days after each message is first handed over.');
      }

      const report: AnalysisReport & Record<string, unknown> = {
        analysedAt: new Date().toISOString(),
        targeted: population.targeted,
        excluded,
        toDeliver,
        exclusions: population.exclusions,
        topDomains: population.topDomains,
        domainCount: population.domainCount,
        findings,
        confirmable: !hasBlockingErrors(findings),
        wavePlan: wavePlan.map((w) => ({ ...w, startAt: new Date(w.startAtMs).toISOString(), estimatedEnd: new Date(w.estimatedEndMs).toISOString() })),
        estimatedDurationSeconds: last ? Math.ceil((last.estimatedEndMs - startMs) / 1000) : 0,
        estimatedRatePerSecond: rate,
        requiredFields,
      };
      await deps.deliveries.saveAnalysis(input.deliveryId, report);
      return {
        targeted: report.targeted,
        toDeliver,
        excluded,
        exclusions: report.exclusions,
        findings,
        confirmable: report.confirmable,
        options,
        ratePerSecond: rate,
        wavePlan,
        validitySeconds: delivery.validitySeconds,
      };
    },
  };
}
