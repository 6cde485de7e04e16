/** Recurring deliveries: each run of a template's schedule creates one ordinary delivery from the template, exactly once. */
import { ApplicationFailure } from '@temporalio/activity';
import { ZodError } from 'zod';
import type { ActivityDependencies } from './dependencies';
import { DeliveryTemplateStore, type RecurringMarker } from '../db/delivery-templates';
import { RecipientListStore } from '../db/recipient-lists';
import { recurringTemplateSchema } from '../api/recurring-input';
import type { DeliveryOptions } from '../domain/delivery-options';
import type { WaveSpec } from '../domain/wave-plan';

export interface CreateFromTemplateInput {
  templateId: string;
  /** The run's workflow ID: one delivery per run key, however often the activity is retried. */
  runKey: string;
  /** When the run started (epoch ms), shown in the delivery's name. */
  runAtMs: number;
}

export interface CreatedFromTemplate {
  deliveryId: string;
  validitySeconds: number;
  recipients: number;
  kpiRefreshMs: number;
  /** False when an earlier attempt of this run had already created the delivery. */
  created: boolean;
}

const UNIQUE_VIOLATION = '23505';

export function createRecurringActivities(deps: ActivityDependencies) {
  const templates = new DeliveryTemplateStore(deps.pool);
  const lists = new RecipientListStore(deps.pool);
  const kpiRefreshMs = deps.settings.KPI_REFRESH_SECONDS * 1000;

  return {
    async createDeliveryFromTemplate(input: CreateFromTemplateInput): Promise<CreatedFromTemplate> {
      // A retry after the first attempt committed (timeout, worker crash) finds that delivery instead of making another.
      const existing = await templates.deliveryOfRun(input.runKey);
      if (existing) return { deliveryId: existing.id, validitySeconds: existing.validitySeconds, recipients: existing.recipientCount, kpiRefreshMs, created: false };

      const template = await templates.get(input.templateId);
      if (!template) throw ApplicationFailure.nonRetryable(`delivery template ${input.templateId} no longer exists`, 'TemplateNotFound');
      let t;
      try {
        t = recurringTemplateSchema.parse(template.body);
      } catch (e) {
        if (e instanceof ZodError) {
          const issues = e.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
          throw ApplicationFailure.nonRetryable(`delivery template ${input.templateId} is no longer valid: ${issues}`, 'InvalidTemplate');
        }
        throw e;
      }
      if (!(await lists.get(t.listId!))) throw ApplicationFailure.nonRetryable(`list ${t.listId} of template ${input.templateId} no longer exists`, 'ListNotFound');

      const fromDomain = t.from.address.slice(t.from.address.lastIndexOf('@') + 1).toLowerCase();
      await deps.keys.ensureKey(fromDomain, deps.settings.DKIM_SELECTOR, 'rsa-sha256');

      const recurring: RecurringMarker = { templateId: input.templateId, runKey: input.runKey };
      const options: DeliveryOptions & { recurring: RecurringMarker } = {
        waves: t.waves as WaveSpec,
        ...(t.localSendTime ? { localSendTime: t.localSendTime } : {}),
        recurring,
      };
      try {
        const created = await deps.store.create(
          {
            name: `${t.name} (${new Date(input.runAtMs).toISOString().slice(0, 16).replace('T', ' ')} UTC)`,
            from: { address: t.from.address, name: t.from.name },
            replyTo: t.replyTo,
            subject: t.subject,
            html: t.html,
            text: t.text,
            validitySeconds: t.validity,
            autoConfirm: true,
            options: options as unknown as Record<string, unknown>,
          },
          { listId: t.listId! },
        );
        return { deliveryId: created.id, validitySeconds: t.validity, recipients: created.recipientCount, kpiRefreshMs, created: true };
      } catch (e) {
        // Two attempts of one run raced (the first timed out but still committed): the unique run key kept one delivery.
        if ((e as { code?: string }).code === UNIQUE_VIOLATION) {
          const winner = await templates.deliveryOfRun(input.runKey);
          if (winner) return { deliveryId: winner.id, validitySeconds: winner.validitySeconds, recipients: winner.recipientCount, kpiRefreshMs, created: false };
        }
        throw e;
      }
    },
  };
}
