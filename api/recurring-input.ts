/** Input schemas of recurring deliveries: a delivery template (the create-delivery JSON with a listId) and its schedule. */
import { z } from 'zod';
import { isValidTimeZone } from '../domain/local-send-time';
import { createDeliverySchema } from './delivery-input';

/** Fields of the create-delivery JSON that a template may not carry, and why. */
export const REFUSED_TEMPLATE_FIELDS: Record<string, string> = {
  recipients:
    'inline recipients are not accepted for a recurring delivery: upload the list once (POST /api/lists, text/csv) and give its listId; each run copies the list as it is at that moment',
  contactDate: 'contactDate does not apply to a recurring delivery: its schedule decides when each run starts',
};

/**
 * A template: what `POST /api/deliveries` accepts, with a stored list as audience, no contact date, and always
 * auto-confirmed (no one is there to confirm each run). The output is a valid create-delivery input.
 */
export const recurringTemplateSchema = z
  .record(z.string(), z.unknown(), { error: 'template must be a JSON object: the create-delivery body, with listId' })
  .superRefine((t, ctx) => {
    for (const [field, message] of Object.entries(REFUSED_TEMPLATE_FIELDS)) {
      if (field in t) ctx.addIssue({ code: 'custom', path: [field], message });
    }
    if (!('listId' in t)) ctx.addIssue({ code: 'custom', path: ['listId'], message: 'listId is required: the id of a stored list (POST /api/lists) that each run sends to' });
    if (t.autoConfirm === false) {
      ctx.addIssue({ code: 'custom', path: ['autoConfirm'], message: 'a recurring delivery is confirmed automatically at each run (no one is there to confirm it): leave autoConfirm out' });
    }
    const waves = t.waves as { mode?: unknown } | undefined;
    if (waves && typeof waves === 'object' && waves.mode === 'calendar') {
      ctx.addIssue({ code: 'custom', path: ['waves', 'mode'], message: 'calendar waves have fixed dates and cannot repeat: use single, size or ramp_up waves in a recurring delivery' });
    }
  })
  .pipe(createDeliverySchema)
  .transform((d) => ({ ...d, autoConfirm: true as const }));

export type RecurringTemplate = z.infer<typeof recurringTemplateSchema>;

const CRON_SHORTHANDS = ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly'];
const CRON_FIELD = /^[0-9A-Za-z*?,/#-]+$/;

/** A first check of a cron string's shape; Temporal checks the values when the schedule is created. */
function cronProblem(cron: string): string | null {
  if (/^(CRON_)?TZ=/i.test(cron)) return 'give the time zone in schedule.timeZone, not in the cron string';
  if (/^@every\b/i.test(cron)) return 'use schedule.intervalSeconds instead of @every';
  if (cron.startsWith('@')) return CRON_SHORTHANDS.includes(cron.toLowerCase()) ? null : `unknown cron shorthand ${cron} (one of ${CRON_SHORTHANDS.join(', ')})`;
  const fields = cron.replace(/#.*$/, '').trim().split(/\s+/);
  if (fields.length < 5 || fields.length > 7) {
    return `a cron string has 5 fields (minute hour day-of-month month day-of-week), optionally a year (6) and seconds first (7); got ${fields.length}`;
  }
  const bad = fields.find((f) => !CRON_FIELD.test(f));
  return bad ? `cron field "${bad}" has characters a cron field cannot have` : null;
}

export const DEFAULT_CATCHUP_WINDOW_SECONDS = 3600;

export const recurringScheduleSchema = z
  .object(
    {
      cron: z
        .string()
        .trim()
        .min(1, 'cron is empty')
        .max(200)
        .superRefine((c, ctx) => {
          const problem = cronProblem(c);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        })
        .optional(),
      intervalSeconds: z.number().int('intervalSeconds must be a whole number').min(1, 'intervalSeconds must be at least 1').max(366 * 86400).optional(),
      timeZone: z.string().refine(isValidTimeZone, { message: 'timeZone must be an IANA time zone such as Europe/Paris' }).optional(),
      /** How late an occurrence may still start after Temporal was unavailable; older ones are not sent late. */
      catchupWindowSeconds: z.number().int().min(10).max(366 * 86400).default(DEFAULT_CATCHUP_WINDOW_SECONDS),
    },
    { error: 'schedule is required: {"cron": "0 9 * * MON", "timeZone": "Europe/Paris"} or {"intervalSeconds": 86400}' },
  )
  .strict()
  .refine((s) => (s.cron === undefined) !== (s.intervalSeconds === undefined), { message: 'give exactly one of cron or intervalSeconds', path: ['cron'] })
  .refine((s) => s.timeZone === undefined || s.cron !== undefined, { message: 'timeZone applies to cron schedules only', path: ['timeZone'] });

export type RecurringScheduleInput = z.infer<typeof recurringScheduleSchema>;

export const createRecurringSchema = z
  .object({
    template: recurringTemplateSchema,
    schedule: recurringScheduleSchema,
    paused: z.boolean().default(false),
  })
  .strict();

export const scheduleNoteSchema = z.object({ reason: z.string().max(500).optional() }).strict();
export const recurringIdParam = z.uuid({ message: 'not a recurring delivery id' });
export const recurringListQuery = z.object({ limit: z.coerce.number().int().min(1).max(200).default(50) });
