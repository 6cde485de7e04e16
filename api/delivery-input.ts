/** The API's input schemas (zod): what a caller may send, with messages that say what is wrong. */
import { z } from 'zod';
import { isValidTimeZone } from '../domain/local-send-time';
import { headerValueProblem } from '../domain/header-value';
import { domainToASCII } from 'node:url';
import { EFS_STATUSES } from '../domain/efs-status';
import { FAILURE_REASONS, FAILURE_TYPES } from '../domain/failure';
import { DELIVERY_PHASES, type DeliveryPhase } from '../domain/delivery-lifecycle';

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

/** At most this many fields in a preview's sample recipient (a stored list has at most 100 columns). */
export const MAX_PREVIEW_FIELDS = 200;

/**
 * POST /api/deliveries/preview: a message rendered for one sample recipient, as a delivery would render it. The same
 * limits as a delivery's content; the subject may be empty (a form being filled in), not broken across lines.
 */
export const previewMessageSchema = z
  .object({
    subject: headerText('subject').max(998, 'subject is longer than a header line may be (998)'),
    html: z.string().max(5_000_000).nullable().optional(),
    text: z.string().max(5_000_000).nullable().optional(),
    fields: z
      .record(z.string().min(1).max(100), fieldValue)
      .refine((f) => Object.keys(f).length <= MAX_PREVIEW_FIELDS, { message: `fields holds at most ${MAX_PREVIEW_FIELDS} fields` })
      .default({})
      .describe("the sample recipient's fields, its address as `email` (a delivery renders each recipient with its fields and `email`)"),
  })
  .strict();

/** How long an address search may be: an address is at most 320 characters, a longer prefix matches nothing. */
const MAX_ADDRESS_SEARCH = 320;

/**
 * An exact domain as the log stores it (db/migrations/001: lower-case ASCII, punycode for an internationalised one),
 * so that "Exämple.com" finds the recipients of xn--exmple-cua.com.
 */
const domainFilter = z
  .string()
  .trim()
  .min(1, 'domain is empty')
  .max(253, 'domain is longer than 253 characters')
  .transform((v, ctx) => {
    const ascii = domainToASCII(v.normalize('NFC')).toLowerCase().replace(/\.$/, '');
    if (ascii === '') {
      ctx.addIssue({ code: 'custom', message: 'domain is not a domain name (example.com)' });
      return z.NEVER;
    }
    return ascii;
  });

/**
 * What a delivery's log can be narrowed to, for its JSON pages and its CSV export alike (each filter has an index,
 * db/migrations/040_delivery_log_search.sql). Filters combine (AND).
 */
export const recipientFilterSchema = z.object({
  status: z.enum(EFS_STATUSES).optional(),
  address: z
    .string()
    .trim()
    .min(1, 'address is empty: leave it out to list every address')
    .max(MAX_ADDRESS_SEARCH, `address is longer than ${MAX_ADDRESS_SEARCH} characters`)
    .optional()
    .describe('the start of the address, case-insensitive ("bob", "bob@exa")'),
  domain: domainFilter.optional().describe("the address's domain, exactly (case-insensitive; an internationalised domain in Unicode or punycode)"),
  failureType: z.enum(FAILURE_TYPES).optional().describe('hard, soft or ignored: what the last failure says about the address'),
  failureReason: z.enum(FAILURE_REASONS).optional().describe("the last failure's reason"),
});
export type RecipientFilterInput = z.infer<typeof recipientFilterSchema>;

/** GET /api/deliveries/:id/recipients: keyset paging on recipientId, with the log's filters. */
export const pageQuerySchema = recipientFilterSchema.extend({
  after: z.coerce.number().int().min(0).default(0).describe('the recipientId the page starts after (the `next` link carries it)'),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** GET /api/deliveries/:id/recipients.csv: the same filters, every matching row. */
export const exportQuerySchema = recipientFilterSchema;

/**
 * A state filter: one phase, several separated by commas, or the parameter repeated (`state=sending&state=paused`).
 * One message names every unknown value and the phases there are.
 */
const stateFilter = z.union([z.string(), z.array(z.string())]).transform((v, ctx) => {
  const states = (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim());
  const unknown = states.filter((s) => !(DELIVERY_PHASES as readonly string[]).includes(s));
  if (unknown.length > 0) {
    ctx.addIssue({ code: 'custom', message: `state ${unknown.map((s) => JSON.stringify(s)).join(', ')} is not a delivery state: give one or several of ${DELIVERY_PHASES.join(', ')}` });
    return z.NEVER;
  }
  return [...new Set(states)] as DeliveryPhase[];
});

/**
 * An instant, or a date alone (UTC): `createdFrom` starts at it (the day's start), `createdTo` ends just before it, or
 * after the day it names, so that `createdFrom=2025-05-01&createdTo=2025-05-01` is that whole day. Kept as text for
 * Postgres to read: an instant given to the microsecond stays one (a Date would round it to the millisecond).
 */
const instantOrDay = (field: string, bound: 'from' | 'to') =>
  z.union([z.iso.datetime({ offset: true }), z.iso.date()], { error: `${field} must be an ISO date (2025-05-01) or a date-time with its offset (2025-05-01T09:00:00Z)` }).transform((v) => {
    if (v.length > 10) return v;
    return bound === 'from' ? `${v}T00:00:00Z` : new Date(Date.parse(`${v}T00:00:00Z`) + 86_400_000).toISOString();
  });

/**
 * GET /api/deliveries: newest first, keyset paging on (createdAt, id). `before` (with `beforeId`) is the position the
 * `next` link carries; `before` alone (an instant) still lists what was created before it.
 */
export const listDeliveriesQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(200).default(50),
    before: z.iso.datetime({ offset: true }).optional().describe('list deliveries created before this instant (the `next` link carries it, to the microsecond)'),
    beforeId: z.uuid({ message: 'beforeId must be a delivery id' }).optional().describe('with `before`: the last delivery of the previous page (ties on createdAt)'),
    state: stateFilter.optional().describe(`one phase or several, comma-separated or the parameter repeated: ${DELIVERY_PHASES.join(', ')}`),
    createdFrom: instantOrDay('createdFrom', 'from').optional().describe('created at or after this instant; a date alone: from the start of that day (UTC)'),
    createdTo: instantOrDay('createdTo', 'to').optional().describe('created before this instant; a date alone: up to the end of that day (UTC)'),
    q: z.string().trim().min(1, 'q is empty: leave it out to list every delivery').max(200, 'q is longer than 200 characters').optional().describe('text in the name or the subject, case-insensitive'),
  })
  .refine((v) => v.beforeId === undefined || v.before !== undefined, { message: 'beforeId goes with before (use the next link as it is)', path: ['beforeId'] })
  .refine((v) => !v.createdFrom || !v.createdTo || Date.parse(v.createdFrom) < Date.parse(v.createdTo), { message: 'createdTo must come after createdFrom', path: ['createdTo'] });
export type ListDeliveriesQuery = z.infer<typeof listDeliveriesQuery>;

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
