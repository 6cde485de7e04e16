/** Recurring deliveries: each run of a template's schedule creates one ordinary delivery from the template, exactly once. */
import { ApplicationFailure } from '@temporalio/activity';
import { ZodError } from 'zod';
import type { ActivityDependencies } from './dependencies';
import type { RecurringMarker } from '../db/delivery-templates';
import { recurringTemplateSchema } from '../api/recurring-input';
import type { WaveSpec } from '../domain/wave-plan';
import { createDelivery, ListNotFoundError, workflowInputFor } from '../deliveries/create-delivery';
import type { CreatedFromTemplate, RecurringActivities } from '../workflows/contract';

const UNIQUE_VIOLATION = '23505';

export function createRecurringActivities(deps: ActivityDependencies): RecurringActivities {
  // Runs are auto-confirmed and have no contact date: each starts sending as soon as its analysis passes.
  const found = (d: { id: string; validitySeconds: number; recipientCount: number }): CreatedFromTemplate => ({
    deliveryId: d.id,
    recipients: d.recipientCount,
    workflowInput: workflowInputFor(deps.settings, { id: d.id, autoConfirm: true, contactDate: null, validitySeconds: d.validitySeconds }),
    created: false,
  });

  return {
    async createDeliveryFromTemplate(input) {
      // A retry after the first attempt committed (timeout, worker crash) finds that delivery instead of making another.
      const existing = await deps.templates.deliveryOfRun(input.runKey);
      if (existing) return found(existing);

      const template = await deps.templates.get(input.templateId);
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
      const recurring: RecurringMarker = { templateId: input.templateId, runKey: input.runKey };
      try {
        const created = await createDelivery(
          { stores: deps, settings: deps.settings },
          {
            name: `${t.name} (${new Date(input.runAtMs).toISOString().slice(0, 16).replace('T', ' ')} UTC)`,
            from: { address: t.from.address, name: t.from.name },
            replyTo: t.replyTo,
            subject: t.subject,
            html: t.html,
            text: t.text,
            validitySeconds: t.validity,
            autoConfirm: true,
            options: { waves: t.waves as WaveSpec, ...(t.localSendTime ? { localSendTime: t.localSendTime } : {}), recurring },
            audience: { listId: t.listId! },
          },
        );
        return { deliveryId: created.id, recipients: created.recipientCount, workflowInput: created.workflowInput, created: true };
      } catch (e) {
        if (e instanceof ListNotFoundError) throw ApplicationFailure.nonRetryable(`list ${t.listId} of template ${input.templateId} no longer exists`, 'ListNotFound');
        // Two attempts of one run raced (the first timed out but still committed): the unique run key kept one delivery.
        if ((e as { code?: string }).code === UNIQUE_VIOLATION) {
          const winner = await deps.templates.deliveryOfRun(input.runKey);
          if (winner) return found(winner);
        }
        throw e;
      }
    },
  };
}
