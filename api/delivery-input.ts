/** The API's input schemas (zod): what a caller may send, with messages that say what is wrong. */
import { z } from 'zod';

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
    z.object({ address: z.email(), name: z.string().max(200).optional() }),
  ],
  { error: 'must be an email address, or {"address": "...", "name": "..."}' },
);

export const MAX_INLINE_RECIPIENTS = 100_000;

export const createDeliverySchema = z
  .object({
    name: z.string().trim().min(1, 'name is required').max(200),
    from: mailbox,
    replyTo: z.email().optional(),
    subject: z.string().min(1, 'subject is required').max(998, 'subject is longer than a header line may be (998)'),
    html: z.string().max(5_000_000).optional(),
    text: z.string().max(5_000_000).optional(),
    recipients: z.array(recipientSchema).min(1, 'at least one recipient is required').max(MAX_INLINE_RECIPIENTS, `inline recipients are limited to ${MAX_INLINE_RECIPIENTS}; upload a CSV for more`),
    validity: validitySchema.default(5 * 86400),
    autoConfirm: z.boolean().default(false),
    contactDate: z.iso.datetime({ offset: true }).transform((s) => new Date(s)).optional(),
  })
  .strict()
  .refine((d) => d.html !== undefined || d.text !== undefined, { message: 'html or text is required', path: ['html'] });

export type CreateDeliveryInput = z.infer<typeof createDeliverySchema>;

export const pageQuerySchema = z.object({
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  status: z.enum(['pending', 'excluded', 'taken_into_account', 'sent', 'failed', 'cancelled']).optional(),
});

export const confirmSchema = z.object({ confirmedBy: z.string().max(200).optional() }).strict();
export const cancelSchema = z.object({ reason: z.string().max(500).optional() }).strict();
export const uuidParam = z.uuid({ message: 'not a delivery id' });
