/**
 * The shapes of the API's answers, for the OpenAPI description (api/openapi/document.ts). Requests are described from
 * the schemas the routes validate with; answers are built in the handlers without a schema, so their shapes are
 * written here, and test/openapi.test.ts checks real answers of the running API against them (so they cannot drift
 * unnoticed). Objects whose content is large or still evolving (a delivery's analysis, a recurring delivery's state)
 * are loose: the fields named are always there, others may be added.
 */
import { z } from 'zod';
import { API_SCOPES } from '../../domain/api-scopes';
import { DELIVERY_PHASES } from '../../domain/delivery-lifecycle';
import type { AuthFailure } from '../auth/key-authenticator';
import type { RuleOrigin } from '../../db/rule-table-store';

const dateTime = z.iso.datetime({ offset: true });
const uuid = z.uuid();
const phase = z.enum(DELIVERY_PHASES).describe('the delivery workflow\'s phase after the action');
const nextLink = z.string().nullable().describe('the URL of the next page (keyset paging), null on the last page');

// ---------------------------------------------------------------- errors

/** What every 400 (and most 4xx) says: the reason, and for invalid input each field that is wrong. */
export const errorResponse = z.object({
  error: z.string().describe('what is wrong, in words'),
  issues: z
    .array(z.object({ path: z.string().describe('the field, dotted ("recipients.3.email"); empty for the whole body'), message: z.string() }))
    .optional()
    .describe('one entry per invalid field (400 only)'),
});

/** Every reason a request without a usable key is refused with (401), plus those of 403, 429 and 503. */
const AUTH_FAILURES = ['missing_key', 'malformed_key', 'unknown_key', 'revoked_key', 'invalid_session', 'expired_session'] as const satisfies readonly AuthFailure[];
// A new AuthFailure must be added above: this line stops compiling otherwise.
const _everyAuthFailureListed: Exclude<AuthFailure, (typeof AUTH_FAILURES)[number]> extends never ? true : never = true;
void _everyAuthFailureListed;

export const authErrorResponse = z.object({
  error: z.string(),
  reason: z.enum([...AUTH_FAILURES, 'insufficient_scope', 'csrf_token_required', 'rate_limited', 'auth_unavailable']),
  requiredScope: z.enum(API_SCOPES).optional().describe('403 insufficient_scope: the scope the route needs'),
  keyScopes: z.array(z.enum(API_SCOPES)).optional().describe("403 insufficient_scope: the key's scopes"),
});

// ---------------------------------------------------------------- health, session, unsubscribe

export const healthResponse = z.object({ ok: z.literal(true) });

const keySummary = z.object({ id: uuid, name: z.string(), prefix: z.string(), scopes: z.array(z.enum(API_SCOPES)) });

export const sessionOpenedResponse = z.object({
  key: keySummary,
  expiresAt: dateTime,
  csrfToken: z.string().describe('send it as X-CSRF-Token with every request of the session that changes something'),
});
export const sessionResponse = z.object({
  key: keySummary,
  via: z.enum(['key', 'session']),
  expiresAt: dateTime.optional(),
  csrfToken: z.string().optional(),
});
export const signedOutResponse = z.object({ signedOut: z.literal(true) });

export const unsubscribedResponse = z.object({ unsubscribed: z.literal(true), new: z.boolean().describe('false when the address was already on the denylist') });

// ---------------------------------------------------------------- deliveries

export const deliveryCreatedResponse = z.object({
  id: uuid,
  workflowId: z.string(),
  recipients: z.number().int().describe('recipients stored (inline or copied from the list)'),
  links: z.object({ self: z.string(), recipients: z.string() }),
});

export const deliverySummary = z.looseObject({
  id: uuid,
  name: z.string(),
  fromAddress: z.string(),
  fromName: z.string().nullable(),
  subject: z.string(),
  state: z.enum(DELIVERY_PHASES),
  autoConfirm: z.boolean(),
  validitySeconds: z.number().int(),
  contactDate: dateTime.nullable(),
  createdAt: dateTime,
  confirmedAt: dateTime.nullable(),
  sendingStartedAt: dateTime.nullable(),
  completedAt: dateTime.nullable(),
});
export const deliveryListResponse = z.object({ deliveries: z.array(deliverySummary), next: nextLink });

export const deliveryDetailResponse = z.looseObject({
  id: uuid,
  name: z.string(),
  state: z.enum(DELIVERY_PHASES),
  from: z.object({ address: z.string(), name: z.string().nullable() }),
  subject: z.string(),
  validitySeconds: z.number().int(),
  contactDate: dateTime.nullable(),
  createdAt: dateTime,
  kpis: z.looseObject({}).describe('EFS KPIs: to deliver, taken into account, sent, failed, complaints, success rate'),
  kpisSource: z.enum(['workflow', 'delivery_log']),
  temporalUnavailable: z.boolean(),
  kpisAt: dateTime.nullable(),
  analysis: z.unknown().describe('the analysis report (null until analysed)'),
  paused: z.boolean(),
  pauseReason: z.looseObject({}).nullable(),
  waves: z.array(
    z.object({
      index: z.number().int(),
      plannedStart: dateTime,
      size: z.number().int(),
      handedOver: z.number().int(),
      startedAt: dateTime.nullable(),
      handedOverAt: dateTime.nullable(),
    }),
  ),
  workflow: z.looseObject({ workflowId: z.string() }).nullable(),
});

export const confirmedResponse = z.object({ id: uuid, confirmed: z.literal(true), phase });
export const cancelRequestedResponse = z.object({ id: uuid, cancelRequested: z.literal(true), phase });
export const pausedResponse = z.object({ id: uuid, paused: z.literal(true), phase });
export const resumedResponse = z.object({ id: uuid, paused: z.literal(false), phase });
export const rescheduledResponse = z.object({ id: uuid, contactDate: dateTime.nullable(), phase });
export const reanalysingResponse = z.object({ id: uuid, reanalysing: z.literal(true), phase });
export const proofsResponse = z.object({
  id: uuid,
  proofs: z.array(z.object({ address: z.string(), messageId: z.string(), accepted: z.boolean(), reply: z.looseObject({ code: z.number().int() }) })),
});

export const messagePreviewResponse = z.object({
  subject: z.string().describe('the subject as the recipient gets it (line breaks a field brought in made spaces)'),
  html: z.string().nullable().describe('the HTML part, personalised (field values HTML-escaped); null without one'),
  text: z.string().nullable().describe('the text part, personalised; null without one'),
  fields: z.array(z.string()).describe('the fields the templates read'),
  missingFields: z.array(z.string()).describe('fields the templates read that this recipient lacks or has empty: the analysis would exclude it'),
});

export const recipientPageResponse = z.object({
  recipients: z.array(z.looseObject({ recipientId: z.number().int(), address: z.string(), status: z.string() })),
  next: nextLink,
});
export const recipientDetailResponse = z.object({
  recipient: z.looseObject({ recipientId: z.number().int() }),
  transitions: z.array(z.looseObject({})),
  attempts: z.array(z.looseObject({})),
  workflowId: z.string(),
});

const figureCounts = {
  recipients: z.number().int(),
  excluded: z.number().int(),
  cancelled: z.number().int(),
  pending: z.number().int(),
  takenIntoAccount: z.number().int().describe('handed over, not sent nor failed (softWaiting included)'),
  softWaiting: z.number().int().describe('attempted at least once and still taken into account: waiting for a retry'),
  sent: z.number().int(),
  failed: z.number().int(),
  toDeliver: z.number().int().describe('recipients - excluded - cancelled'),
  successPercent: z.number().describe('sent / toDeliver in percent, two decimals'),
};
export const deliveryTimelineResponse = z.object({
  deliveryId: uuid,
  from: dateTime.nullable().describe('when sending started; null (and no point) before it did'),
  to: dateTime.nullable().describe('now while it sends, its end once ended'),
  bucketSeconds: z.number().nullable().describe('the width of each bucket, a round number chosen from the time span'),
  points: z.array(
    z.object({
      at: dateTime.describe('the end of the bucket: the figures as they stood then (the last point: the delivery log now)'),
      takenIntoAccount: z.number().int(),
      softWaiting: z.number().int(),
      sent: z.number().int(),
      failed: z.number().int(),
    }),
  ),
});
export const deliveryDomainsResponse = z.object({
  deliveryId: uuid,
  domains: z.array(z.object({ domain: z.string().describe("'' for addresses that are not valid"), ...figureCounts })),
  others: z.object({ domains: z.number().int().describe('how many domains are added up here'), ...figureCounts }),
});
export const deliveryMxSitesResponse = z.object({
  deliveryId: uuid,
  sites: z.array(
    z.object({
      site: z.string().nullable().describe('the site key as the MX rules make it; null: no attempt yet and no domain rule'),
      ruleId: z.string().nullable(),
      provider: z.string().nullable(),
      mxHosts: z.array(z.string()).describe('the MX hosts its attempts went to (at most 10)'),
      domainCount: z.number().int(),
      ...figureCounts,
    }),
  ),
});
export const recipientLiveResponse = z.object({
  workflowId: z.string(),
  temporalUnavailable: z.boolean().describe('Temporal did not answer within 5 s: state is null'),
  state: z
    .looseObject({
      status: z.string(),
      attempts: z.number().int(),
      nextRetryAt: dateTime.nullable(),
      retryWindowEndsAt: dateTime.nullable(),
      lastReply: z.looseObject({ code: z.number().int() }).nullable(),
    })
    .nullable(),
});

// ---------------------------------------------------------------- lists

export const listSummary = z.object({
  id: uuid,
  name: z.string(),
  memberCount: z.number().int(),
  fields: z.array(z.string()).describe('the CSV columns besides email: personalisation fields'),
  createdAt: dateTime,
});
export const listsResponse = z.object({ lists: z.array(listSummary) });
export const listDetail = listSummary.extend({
  sample: z
    .object({ email: z.string(), fields: z.record(z.string(), z.unknown()) })
    .nullable()
    .describe('the first member (first CSV row): its address and fields, for previewing the message it would get'),
});

// ---------------------------------------------------------------- recurring deliveries

export const recurringDeliveryResponse = z.looseObject({
  id: uuid,
  name: z.string(),
  scheduleId: z.string(),
  schedule: z.looseObject({}),
  template: z.looseObject({}),
  createdAt: dateTime,
  state: z.looseObject({ exists: z.boolean(), paused: z.boolean().nullable(), nextActionTimes: z.array(dateTime) }),
  deliveries: z.array(z.looseObject({ id: uuid, state: z.string() })).describe('the deliveries its runs created'),
  warnings: z.array(z.string()),
  links: z.looseObject({ self: z.string() }),
});
export const recurringListResponse = z.object({ recurringDeliveries: z.array(recurringDeliveryResponse) });
export const recurringTriggeredResponse = z.object({ id: uuid, triggered: z.literal(true), links: z.object({ self: z.string() }) });

// ---------------------------------------------------------------- inbound, feedback, quarantine, denylist

export const inboundOutcomeResponse = z.looseObject({ id: z.string(), duplicate: z.boolean(), links: z.object({ self: z.string() }) });
export const inboundListResponse = z.object({ messages: z.array(z.looseObject({ id: z.string() })), next: nextLink });
export const inboundMessageResponse = z.looseObject({ id: z.string(), links: z.object({ raw: z.string() }) });
export const inboundResolvedResponse = z.object({ id: z.string(), resolved: z.literal(true) });
export const recipientFeedbackResponse = z.object({ feedback: z.array(z.looseObject({})) });
export const addressPageResponse = z.object({ addresses: z.array(z.looseObject({ address: z.string() })), next: nextLink });
export const quarantineEntryResponse = z.looseObject({ address: z.string() });
export const releasedResponse = z.object({ address: z.string(), released: z.literal(true) });
export const denylistAddedResponse = z.object({ address: z.string(), added: z.boolean().describe('false when it was already on the denylist (200)') });
export const denylistRemovedResponse = z.object({ address: z.string(), removed: z.literal(true) });

// ---------------------------------------------------------------- DKIM

export const dkimKeyResponse = z.object({
  domain: z.string(),
  selector: z.string(),
  algorithm: z.enum(['rsa-sha256', 'ed25519-sha256']),
  active: z.boolean(),
  createdAt: dateTime,
  dnsRecord: z.object({ name: z.string(), type: z.literal('TXT'), value: z.string() }).describe('the TXT record to publish'),
});
export const dkimKeysResponse = z.object({ keys: z.array(dkimKeyResponse) });

// ---------------------------------------------------------------- rule tables (qualification, inbound, MX)

/**
 * What every rule table adds to a stored rule. The rule fields themselves come from the table's own schema (the one
 * PUT validates with): api/openapi/document.ts joins the two.
 */
export const storedRuleFields = z.object({
  enabled: z.boolean(),
  origin: z.enum(['seed', 'api'] as const satisfies readonly RuleOrigin[]).describe("'seed': as the seed file wrote it; 'api': changed through the API"),
  updatedAt: dateTime,
});

/** A rule table's list: the seed version applied, the table's revision, and the rules (`rules` items: the stored rule). */
export const ruleListEnvelope = z.object({
  seedVersion: z.number().int().describe('the seed file version applied (0: none)'),
  revision: z.number().int().nullable().describe('bumped by every change; null when the table was never written'),
  updatedAt: dateTime.nullable(),
  rules: z.array(z.unknown()),
});

export const qualificationTestResponse = z.object({
  reply: z.object({ code: z.number().int(), enhancedCode: z.string().nullable(), text: z.string() }),
  domain: z.string().nullable(),
  qualification: z.looseObject({ ruleId: z.string() }),
  ruleId: z.string(),
  matched: z.boolean().describe('false when no rule matched and the default qualification applies'),
  rulesEvaluated: z.number().int(),
  evaluationMs: z.number(),
});
export const inboundTestResponse = z.object({
  classification: z.looseObject({}),
  rulesEvaluated: z.number().int(),
  evaluationMs: z.number().describe('time spent parsing and classifying the message, in milliseconds'),
});
export const mxSiteTestResponse = z.looseObject({ domain: z.string(), matchedBy: z.enum(['domain', 'mx_host', 'default']), rule: z.looseObject({ id: z.string() }), site: z.string().nullable() });
export const mxReplyTestResponse = z.looseObject({ matched: z.boolean(), ruleId: z.string().nullable(), action: z.string().nullable() });
export const mxSitesResponse = z.object({ sites: z.array(z.looseObject({ site: z.string(), state: z.string() })) });
export const mxSiteResponse = z.looseObject({ site: z.string(), state: z.string(), events: z.array(z.looseObject({})) });
export const mxSiteChangedResponse = z.looseObject({ site: z.string(), state: z.string(), change: z.string().nullable().describe('what the request changed (null: nothing to change)') });

// ---------------------------------------------------------------- API keys, audit log

export const apiKeyResponse = z.object({
  id: uuid,
  name: z.string(),
  prefix: z.string().describe('the first characters of the key, to recognise it'),
  scopes: z.array(z.enum(API_SCOPES)),
  createdAt: dateTime,
  createdBy: z.object({ keyId: uuid.nullable(), name: z.string() }),
  lastUsedAt: dateTime.nullable(),
  revokedAt: dateTime.nullable(),
});
export const apiKeyCreatedResponse = apiKeyResponse.extend({
  secret: z.string().describe('the key itself: shown in this answer only (only its SHA-256 is kept)'),
  note: z.string(),
});
export const apiKeysResponse = z.object({ keys: z.array(apiKeyResponse) });
export const apiKeyRevokedResponse = apiKeyResponse.extend({ revoked: z.literal(true), alreadyRevoked: z.boolean() });
export const auditLogResponse = z.object({
  entries: z.array(
    z.object({
      id: z.number().int(),
      at: dateTime,
      actor: z.object({ keyId: uuid.nullable(), name: z.string() }),
      action: z.string().describe('<target type>.<verb>, e.g. delivery.confirm'),
      target: z.object({ type: z.string(), id: z.string() }),
      details: z.record(z.string(), z.unknown()),
    }),
  ),
  next: nextLink,
});

// ---------------------------------------------------------------- webhooks

export const webhookResponse = z.looseObject({
  id: uuid,
  url: z.string(),
  eventTypes: z.array(z.string()),
  enabled: z.boolean(),
  disabledReason: z.string().nullable(),
  links: z.looseObject({ self: z.string() }),
});
export const webhookCreatedResponse = webhookResponse.extend({ secret: z.string().describe('the signing secret: also readable later at GET /api/webhooks/{id}/secret (admin)') });
export const webhooksResponse = z.object({ webhooks: z.array(webhookResponse) });
export const webhookSecretResponse = z.object({ id: uuid, secret: z.string() });
export const webhookAttemptsResponse = z.object({ attempts: z.array(z.looseObject({})), next: nextLink });
export const webhookReplayResponse = z.object({ eventId: z.string(), messageId: z.string(), enabled: z.boolean() });
