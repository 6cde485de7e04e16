/** The API's input schemas (zod): what a caller may send, with messages that say what is wrong. */
import { z } from 'zod';
import { isValidTimeZone } from '../domain/local-send-time';
import { headerValueProblem } from '../domain/header-value';

/** A string that ends up in a message header: no CR, LF, NUL or other control character (header injection). */
const headerText = (field: string) =>
  z.string().superRefine((v, ctx) => {
    const problem = headerValueProblem(field, v);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** How far in the past a contact date may be and still mean "now" (clocks of API callers drift). */
export const CONTACT_DATE_GRACE_MS = 60_000;

/**
 * A contact date: an ISO date-time with its offset, not in the past (beyond CONTACT_DATE_GRACE_MS). "Send as soon as
 * confirmed" is said by leaving it out (or null where a date is being changed), not by a date in the past.
 */
const contactDateSchema = z.iso.datetime({ offset: true }).refine((s) => Date.parse(s) >= Date.now() - CONTACT_DATE_GRACE_MS, {
  message: 'contactDate is in the past: give a future date, or leave contactDate out to send as soon as the delivery is confirmed',
});

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
const MAX_VALIDITY_SECONDS = 30 * 86400;

/** A validity given as seconds (number) or a duration such as "90m", "36h", "5d". */
export const validitySchema = z.union([z.number(), z.string()]).transform((v, ctx) => {
  let seconds: number;
  if (typeof v === 'number') seconds = v;
  else {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$/i.exec(v);
    if (!m) {
      ctx.addIssue({ code: 'custom', message: 'validity must be seconds or a duration like "90m", "36h", "5d"' });
      return z.NEVER;
    }
    seconds = Number(m[1]) * DURATION_UNITS[m[2].toLowerCase()];
  }
  if (!Number.isFinite(seconds) || seconds < 1 || seconds > MAX_VALIDITY_SECONDS) {
    ctx.addIssue({ code: 'custom', message: `validity must be between 1 second and ${MAX_VALIDITY_SECONDS / 86400} days` });
    return z.NEVER;
  }
  return Math.round(seconds);
});

const fieldValue = z.union([z.string(), z.number(), z.boolean(), z.null()]);

export const recipientSchema = z.object({
  email: z.string().trim().min(1, 'email is empty').max(320, 'email is longer than 320 characters'),
  fields: z.record(z.string().min(1).max(100), fieldValue).optional(),
});

const mailbox = z.union(
  [
    z.email().transform((address) => ({ address, name: undefined as string | undefined })),
    z.object({ address: z.email(), name: headerText('from.name').max(200).optional() }),
  ],
  { error: 'must be an email address, or {"address": "...", "name": "..."}' },
);

export const MAX_INLINE_RECIPIENTS = 100_000;

const waveCount = z.object({ size: z.number().int().positive().optional(), percent: z.number().positive().max(100).optional() });
const exactlyOneOf = (w: { size?: number; percent?: number }) => (w.size === undefined) !== (w.percent === undefined);

export const waveSpecSchema = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('single') }).strict(),
  waveCount
    .extend({ mode: z.literal('size'), periodSeconds: z.number().int().min(0).max(30 * 86400) })
    .strict()
    .refine(exactlyOneOf, { message: 'a size wave needs exactly one of size or percent' }),
  z
    .object({
      mode: z.literal('calendar'),
      waves: z
        .array(waveCount.extend({ startAt: z.iso.datetime({ offset: true }) }).strict().refine(exactlyOneOf, { message: 'each calendar wave needs exactly one of size or percent' }))
        .min(1, 'a calendar needs at least one wave')
        .max(1000),
    })
    .strict(),
  z
    .object({
      mode: z.literal('ramp_up'),
      // The preset for a new sending IP; every value can be overridden.
      initialSize: z.number().int().positive().default(1_000),
      growthFactor: z.number().min(1).max(10).default(2),
      periodSeconds: z.number().int().min(0).default(86_400),
      maxSize: z.number().int().positive().default(500_000),
    })
    .strict(),
]);

export const localSendTimeSchema = z
  .object({
    time: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'time must be HH:mm (24 h)'),
    defaultTimeZone: z.string().refine(isValidTimeZone, { message: 'defaultTimeZone must be an IANA time zone such as Europe/Paris' }),
    timeZoneField: z.string().min(1).max(100).default('timezone'),
  })
  .strict();

export const createDeliverySchema = z
  .object({
    name: z.string().trim().min(1, 'name is required').max(200),
    from: mailbox,
    replyTo: z.email().optional(),
    subject: headerText('subject').min(1, 'subject is required').max(998, 'subject is longer than a header line may be (998)'),
    html: z.string().max(5_000_000).optional(),
    text: z.string().max(5_000_000).optional(),
    recipients: z
      .array(recipientSchema)
      .min(1, 'at least one recipient is required')
      .max(MAX_INLINE_RECIPIENTS, `inline recipients are limited to ${MAX_INLINE_RECIPIENTS}; upload a CSV list (POST /api/lists) for more`)
      .optional(),
    listId: z.uuid({ message: 'listId must be the id of a stored list' }).optional(),
    waves: waveSpecSchema.default({ mode: 'single' }),
    localSendTime: localSendTimeSchema.optional(),
    validity: validitySchema.default(5 * 86400),
    autoConfirm: z.boolean().default(false),
    contactDate: contactDateSchema.transform((s) => new Date(s)).optional(),
  })
  .strict()
  .refine((d) => d.html !== undefined || d.text !== undefined, { message: 'html or text is required', path: ['html'] })
  .refine((d) => (d.recipients === undefined) !== (d.listId === undefined), { message: 'give exactly one of recipients (inline) or listId', path: ['recipients'] });

export type CreateDeliveryInput = z.infer<typeof createDeliverySchema>;

export const pageQuerySchema = z.object({
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  status: z.enum(['pending', 'excluded', 'taken_into_account', 'sent', 'failed', 'cancelled']).optional(),
});

/** Changes allowed before confirmation; each re-runs analysis. */
export const updateDeliverySchema = z
  .object({
    name: z.string().trim().min(1).max(200).optional(),
    subject: headerText('subject').min(1).max(998).optional(),
    html: z.string().max(5_000_000).nullable().optional(),
    text: z.string().max(5_000_000).nullable().optional(),
    validity: validitySchema.optional(),
    waves: waveSpecSchema.optional(),
    localSendTime: localSendTimeSchema.nullable().optional(),
  })
  .strict()
  .refine((d) => Object.keys(d).length > 0, { message: 'nothing to change' });

export const rescheduleSchema = z.object({ contactDate: contactDateSchema.nullable() }).strict();
export const proofSchema = z.object({ addresses: z.array(z.email()).min(1).max(20) }).strict();

export const confirmSchema = z.object({ confirmedBy: z.string().max(200).optional() }).strict();
export const cancelSchema = z.object({ reason: z.string().max(500).optional() }).strict();
export const uuidParam = z.uuid({ message: 'not a delivery id' });
