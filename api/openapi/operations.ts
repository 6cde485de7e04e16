/**
 * What the OpenAPI description says of each route, keyed by exactly the "METHOD /path" strings of ROUTE_ACCESS
 * (api/auth/route-access.ts): the type below makes a route missing here, or an entry for no declared route, a compile
 * error, and test/openapi.test.ts checks the document against the routes actually mounted.
 *
 * Request bodies, queries and path parameters are the zod schemas the routes validate with (imported, never copied);
 * api/openapi/document.ts turns them into JSON Schema with zod's own z.toJSONSchema. Where a route file does not export
 * its schema, the entry says so in words and the schema is left open; exporting the schema and naming it here makes it
 * exact.
 */
import type { z } from 'zod';
import type { ROUTE_ACCESS } from '../auth/route-access';
import {
  cancelSchema,
  confirmSchema,
  createDeliverySchema,
  exportQuerySchema,
  listDeliveriesQuery,
  localSendTimeSchema,
  pageQuerySchema,
  previewMessageSchema,
  proofSchema,
  recipientSchema,
  rescheduleSchema,
  updateDeliverySchema,
  uuidParam,
  waveSpecSchema,
} from '../delivery-input';
import { createRecurringSchema, recurringIdParam, recurringListQuery, recurringScheduleSchema, recurringTemplateSchema, scheduleNoteSchema } from '../recurring-input';
import { recipientIdParam } from '../delivery-routes';
import { domainsQuery, timelineQuery } from '../delivery-figure-routes';
import { listIdParam, listNameQuery } from '../list-routes';
import { addKeySchema, domain as dkimDomain, selector as dkimSelector, setKeyActiveSchema } from '../dkim-routes';
import { listQuery as qualificationListQuery, ruleIdParam as qualificationRuleIdParam, testBody as qualificationTestBody } from '../rules-routes';
import { listQuery as inboundRuleListQuery, ruleIdParam as inboundRuleIdParam, testBody as inboundRuleTestBody } from '../inbound-rule-routes';
import { patchBody as ruleEnableBody } from '../rule-table-routes';
import { denylistBody, listDenylistQuery, listInboundQuery, listQuarantineQuery, messageIdParam } from '../feedback-routes';
import { apiKeyIdParam, auditQuery, createKeyBody, listKeysQuery } from '../api-key-routes';
import { payloadsBody } from '../codec-routes';
import { createWebhookSchema, updateWebhookSchema, webhookDeliveriesQuery } from '../webhook-routes';
import { replyTestBody, siteListQuery, siteTestBody, suspendBody } from '../mx-site-routes';
import { mxRuleIdSchema, mxSiteRuleSchema } from '../../domain/mx-rules/mx-site-rule';
import { mxReplyRuleSchema } from '../../domain/mx-rules/mx-reply-rule';
import { qualificationRuleSchema } from '../../domain/bounce-rules/qualification-rule';
import { inboundRuleSchema } from '../../domain/bounce-rules/inbound-rule';
import { WEBHOOK_EVENT_TYPES } from '../../domain/webhook-events';
import * as r from './responses';

export type RouteKey = keyof typeof ROUTE_ACCESS;

/** The document's tags, in the order the viewer shows them, with their descriptions. */
export const TAGS = {
  Deliveries: 'Create a delivery (inline recipients or a stored list), follow it, confirm and control it, read its recipients.',
  Lists: 'Recipient lists uploaded as CSV, streamed into Postgres.',
  'Recurring deliveries': 'A delivery template sent on a Temporal Schedule; each run is an ordinary, auto-confirmed delivery.',
  'Inbound and feedback': 'Bounces, relay reports and complaints forwarded to the API; what each recipient received.',
  'Quarantine and denylist': 'Addresses kept from sending: quarantined after failures, or on the denylist (unsubscribes, complaints, manual).',
  'DKIM keys': 'Signing keys with the DNS records to publish.',
  'Qualification rules': 'How SMTP replies are qualified (hard, soft, ignored; reason; retry class).',
  'Inbound rules': 'How non-standard bounce messages are classified.',
  'MX sites and rules': 'Receiving sites: their sending limits (site rules), how their replies slow them down (reply rules), their live state.',
  Webhooks: 'Event webhooks: subscriptions, their signing secret, delivery log, replay.',
  'API keys and audit log': 'Keys with their scopes, and who changed what.',
  Sessions: 'Cookie sessions for browsers, opened with a key.',
  Codec: "The Temporal Web UI's remote codec: decrypts payloads for people allowed to read.",
  Dashboard: "The browser dashboard's settings (its page and files are public, under Public; its data comes from the routes above).",
  Public: 'Routes that take no key: health, the one-click unsubscribe, the sign-in page, this description, the dashboard page.',
} as const;
export type Tag = keyof typeof TAGS;

/** A named JSON Schema built by the generator rather than straight from one zod schema (see document.ts). */
export interface ComponentRef {
  component: string;
}
export type SchemaSource = z.ZodType | ComponentRef;

export interface ParamDoc {
  description: string;
  /** A query parameter the route cannot do without (path parameters always are). */
  required?: true;
  /** The schema the route validates the parameter with; without one the parameter is documented as a string. */
  schema?: z.ZodType;
}

export type BodyDoc =
  /**
   * A JSON body: its schema (a named request component), and an example for readers (the viewer would otherwise make
   * one up from the patterns); test/openapi.test.ts checks every example against its schema.
   */
  | { schema: SchemaSource; required?: boolean; description?: string; example?: unknown }
  /** A JSON body whose schema the route file does not export: an object, described in words. */
  | { openObject: string; required?: boolean }
  /** A body that is not JSON (a CSV upload, a raw message). */
  | { contentType: string; description: string; format?: 'binary' };

export interface ResponseDoc {
  description: string;
  /** JSON answer: a named response component (or request component when the answer has the request's shape). */
  schema?: SchemaSource;
  /** A non-JSON answer. */
  contentType?: string;
}

export interface OperationDoc {
  operationId: string;
  summary: string;
  tag: Tag;
  description?: string;
  params?: Record<string, ParamDoc>;
  /** The query string: the route's zod object, or parameters described one by one. */
  query?: z.ZodObject | Record<string, ParamDoc>;
  body?: BodyDoc;
  /** Successful answers (and refusals particular to this route); the common ones are added by the generator. */
  responses: Record<number, ResponseDoc>;
  /** Why the route itself answers 409 (the Idempotency-Key's 409 is added to every state-changing route). */
  conflict?: string;
  /** What a 404 means here (routes with path parameters get one by default; false: never a 404). */
  notFound?: string | false;
  /** The route runs before the Idempotency-Key middleware (the codec server). */
  noIdempotencyKey?: true;
  /** The route refuses a session cookie (it needs the key itself). */
  keyOnly?: true;
}

/** Request bodies and their parts, as named components (input side of the zod schemas). */
export const REQUEST_COMPONENTS = {
  CreateDeliveryRequest: createDeliverySchema,
  UpdateDeliveryRequest: updateDeliverySchema,
  WaveSpec: waveSpecSchema,
  LocalSendTime: localSendTimeSchema,
  Recipient: recipientSchema,
  ConfirmDeliveryRequest: confirmSchema,
  DeliveryNoteRequest: cancelSchema,
  RescheduleRequest: rescheduleSchema,
  ProofRequest: proofSchema,
  MessagePreviewRequest: previewMessageSchema,
  CreateRecurringDeliveryRequest: createRecurringSchema,
  RecurringTemplate: recurringTemplateSchema,
  RecurringSchedule: recurringScheduleSchema,
  ScheduleNoteRequest: scheduleNoteSchema,
  DenylistAddRequest: denylistBody,
  AddDkimKeyRequest: addKeySchema,
  SetDkimKeyActiveRequest: setKeyActiveSchema,
  CreateWebhookRequest: createWebhookSchema,
  UpdateWebhookRequest: updateWebhookSchema,
  SuspendMxSiteRequest: suspendBody,
  MxSiteTestRequest: siteTestBody,
  MxReplyTestRequest: replyTestBody,
  RuleEnableRequest: ruleEnableBody,
  QualificationTestRequest: qualificationTestBody,
  InboundRuleTestRequest: inboundRuleTestBody,
  CreateApiKeyRequest: createKeyBody,
  CodecPayloads: payloadsBody,
} satisfies Record<string, z.ZodType>;

/** Answers, as named components (output side). */
export const RESPONSE_COMPONENTS = {
  Error: r.errorResponse,
  AuthError: r.authErrorResponse,
  Health: r.healthResponse,
  SessionOpened: r.sessionOpenedResponse,
  Session: r.sessionResponse,
  SignedOut: r.signedOutResponse,
  Unsubscribed: r.unsubscribedResponse,
  DeliveryCreated: r.deliveryCreatedResponse,
  DeliverySummary: r.deliverySummary,
  DeliveryList: r.deliveryListResponse,
  Delivery: r.deliveryDetailResponse,
  DeliveryConfirmed: r.confirmedResponse,
  DeliveryCancelRequested: r.cancelRequestedResponse,
  DeliveryPaused: r.pausedResponse,
  DeliveryResumed: r.resumedResponse,
  DeliveryRescheduled: r.rescheduledResponse,
  DeliveryReanalysing: r.reanalysingResponse,
  Proofs: r.proofsResponse,
  MessagePreview: r.messagePreviewResponse,
  RecipientPage: r.recipientPageResponse,
  RecipientDetail: r.recipientDetailResponse,
  DeliveryTimeline: r.deliveryTimelineResponse,
  DeliveryDomains: r.deliveryDomainsResponse,
  DeliveryMxSites: r.deliveryMxSitesResponse,
  RecipientLive: r.recipientLiveResponse,
  List: r.listSummary,
  ListDetail: r.listDetail,
  Lists: r.listsResponse,
  RecurringDelivery: r.recurringDeliveryResponse,
  RecurringDeliveries: r.recurringListResponse,
  RecurringTriggered: r.recurringTriggeredResponse,
  InboundOutcome: r.inboundOutcomeResponse,
  InboundMessages: r.inboundListResponse,
  InboundMessage: r.inboundMessageResponse,
  InboundResolved: r.inboundResolvedResponse,
  RecipientFeedback: r.recipientFeedbackResponse,
  AddressPage: r.addressPageResponse,
  QuarantineEntry: r.quarantineEntryResponse,
  QuarantineReleased: r.releasedResponse,
  DenylistAdded: r.denylistAddedResponse,
  DenylistRemoved: r.denylistRemovedResponse,
  DkimKey: r.dkimKeyResponse,
  DkimKeys: r.dkimKeysResponse,
  QualificationTestResult: r.qualificationTestResponse,
  InboundRuleTestResult: r.inboundTestResponse,
  MxSiteTestResult: r.mxSiteTestResponse,
  MxReplyTestResult: r.mxReplyTestResponse,
  MxSites: r.mxSitesResponse,
  MxSite: r.mxSiteResponse,
  MxSiteChanged: r.mxSiteChangedResponse,
  ApiKey: r.apiKeyResponse,
  ApiKeyCreated: r.apiKeyCreatedResponse,
  ApiKeys: r.apiKeysResponse,
  ApiKeyRevoked: r.apiKeyRevokedResponse,
  AuditLog: r.auditLogResponse,
  Webhook: r.webhookResponse,
  WebhookCreated: r.webhookCreatedResponse,
  Webhooks: r.webhooksResponse,
  WebhookSecret: r.webhookSecretResponse,
  WebhookAttempts: r.webhookAttemptsResponse,
  WebhookReplay: r.webhookReplayResponse,
} satisfies Record<string, z.ZodType>;

/**
 * The rule tables: each gets `<name>` (a stored rule: the table's rule schema and storedRuleFields), `<name>Write`
 * (the PUT body: the rule, its id optional, plus the read-only fields a GET returns, which PUT ignores) and
 * `<name>List`, built by the generator from the rule schema the store validates with.
 */
export const RULE_TABLES = {
  QualificationRule: qualificationRuleSchema,
  InboundRule: inboundRuleSchema,
  MxSiteRule: mxSiteRuleSchema,
  MxReplyRule: mxReplyRuleSchema,
} satisfies Record<string, z.ZodObject>;

const ref = (component: string): ComponentRef => ({ component });

const deliveryId: ParamDoc = { description: "the delivery's id", schema: uuidParam };
const recipientId: ParamDoc = { description: "the recipient's number within the delivery (recipientId in the recipient pages)", schema: recipientIdParam };
const noteBody = (what: string): BodyDoc => ({ schema: cancelSchema, required: false, description: `optional: why (${what})` });

type RuleTableKey<Base extends string> = `GET ${Base}` | `${'GET' | 'PUT' | 'PATCH' | 'DELETE'} ${Base}/:id`;

function ruleTableOperations<Base extends string>(
  base: Base,
  o: { noun: string; component: string; tag: Tag; idParam?: z.ZodType; listQuery: OperationDoc['query']; idPrefix: string },
) {
  const id: ParamDoc = { description: `the ${o.noun}'s id (a lowercase slug)`, schema: o.idParam };
  const list: OperationDoc = {
    operationId: `list${o.idPrefix}s`,
    summary: `List the ${o.noun}s`,
    tag: o.tag,
    description: `Every ${o.noun} in evaluation order (priority, then id), with the seed version and the table's revision.`,
    query: o.listQuery,
    responses: { 200: { description: `the ${o.noun}s`, schema: ref(`${o.component}List`) } },
  };
  const read: OperationDoc = {
    operationId: `get${o.idPrefix}`,
    summary: `Read one ${o.noun}`,
    tag: o.tag,
    params: { id },
    responses: { 200: { description: `the ${o.noun}`, schema: ref(o.component) } },
  };
  const put: OperationDoc = {
    operationId: `put${o.idPrefix}`,
    summary: `Create or replace a ${o.noun}`,
    tag: o.tag,
    description:
      `The body is the rule; its \`id\`, when given, must be the URL's (rules are never renamed). \`enabled\` may be set; ` +
      '`origin` and `updatedAt` (what a GET returns) are ignored, so a GET answer can be edited and sent back. The rule is ' +
      'checked as a whole (its sample must match it, patterns run on RE2): a refusal is a 400 listing every problem.',
    params: { id },
    body: { schema: ref(`${o.component}Write`) },
    responses: { 200: { description: 'replaced', schema: ref(o.component) }, 201: { description: 'created', schema: ref(o.component) } },
    notFound: false,
  };
  const patch: OperationDoc = {
    operationId: `set${o.idPrefix}Enabled`,
    summary: `Enable or disable a ${o.noun}`,
    tag: o.tag,
    params: { id },
    body: { schema: ruleEnableBody },
    responses: { 200: { description: `the ${o.noun} as stored now`, schema: ref(o.component) } },
  };
  const remove: OperationDoc = {
    operationId: `delete${o.idPrefix}`,
    summary: `Delete a ${o.noun}`,
    tag: o.tag,
    description: 'A later seed file does not bring it back.',
    params: { id },
    responses: { 204: { description: 'deleted' } },
  };
  const ops = {} as Record<RuleTableKey<Base>, OperationDoc>;
  ops[`GET ${base}`] = list;
  ops[`GET ${base}/:id`] = read;
  ops[`PUT ${base}/:id`] = put;
  ops[`PATCH ${base}/:id`] = patch;
  ops[`DELETE ${base}/:id`] = remove;
  return ops;
}

const loadedRuleConflict = 'a stored rule that the current validation refuses (written around the API): the answer names it; fix it (PUT) or disable it (PATCH)';

const webhookId: ParamDoc = { description: "the subscription's id (a UUID)" };
const eventTypesText = WEBHOOK_EVENT_TYPES.map((t) => `\`${t}\``).join(', ');

export const OPERATIONS = {
  'GET /health': {
    operationId: 'health',
    summary: 'Liveness',
    tag: 'Public',
    description: 'For load balancers and probes: no key, no rate limit.',
    responses: { 200: { description: 'the API process answers', schema: r.healthResponse } },
  },
  'POST /u/:id/:rid/:token': {
    operationId: 'oneClickUnsubscribe',
    summary: 'One-click unsubscribe (RFC 8058)',
    tag: 'Public',
    description:
      'The URL of the List-Unsubscribe header; mailbox providers POST `List-Unsubscribe=One-Click` to it. The HMAC token in the ' +
      'link is the authentication. The address goes on the denylist.',
    params: { id: deliveryId, rid: recipientId, token: { description: 'the HMAC of the delivery and recipient, from the link' } },
    body: { contentType: 'application/x-www-form-urlencoded', description: '`List-Unsubscribe=One-Click` (the body is not read)' },
    responses: {
      200: { description: 'the address is on the denylist', schema: r.unsubscribedResponse },
      403: { description: 'the token does not match the delivery and recipient', schema: r.errorResponse },
    },
  },

  'GET /session': {
    operationId: 'signInPage',
    summary: 'Sign-in page',
    tag: 'Public',
    description: 'A static page where a person pastes a key to open a cookie session (POST /api/session). It holds no data.',
    responses: { 200: { description: 'the page', contentType: 'text/html' } },
  },
  'POST /api/session': {
    operationId: 'openSession',
    summary: 'Open a cookie session',
    tag: 'Sessions',
    description:
      'Sets an HttpOnly, signed, SameSite=Strict cookie (`ede_session`) standing for the key that made this call. A session ' +
      'may read; to change anything it must also send the `X-CSRF-Token` answered here. Sign in with the key itself: a ' +
      'session cannot extend itself.',
    keyOnly: true,
    responses: { 201: { description: 'signed in; the cookie is set', schema: r.sessionOpenedResponse } },
  },
  'GET /api/session': {
    operationId: 'getSession',
    summary: 'Who is signed in',
    tag: 'Sessions',
    responses: { 200: { description: 'the key behind this request, and the session when there is one', schema: r.sessionResponse } },
  },
  'DELETE /api/session': {
    operationId: 'closeSession',
    summary: 'Sign out',
    tag: 'Sessions',
    responses: { 200: { description: 'the session cookie is cleared', schema: r.signedOutResponse } },
  },

  'POST /codec/encode': {
    operationId: 'codecEncode',
    summary: 'Seal payloads (remote codec)',
    tag: 'Codec',
    description: "The Temporal Web UI's remote codec protocol. Answers CORS preflights for the origins in CODEC_CORS_ORIGINS.",
    body: { schema: payloadsBody },
    noIdempotencyKey: true,
    responses: { 200: { description: 'the payloads, sealed', schema: payloadsBody } },
  },
  'POST /codec/decode': {
    operationId: 'codecDecode',
    summary: 'Open payloads (remote codec)',
    tag: 'Codec',
    description: 'A payload that cannot be opened (its key rotated out) comes back as it was.',
    body: { schema: payloadsBody },
    noIdempotencyKey: true,
    responses: { 200: { description: 'the payloads, decrypted', schema: payloadsBody } },
  },

  'POST /api/deliveries': {
    operationId: 'createDelivery',
    summary: 'Create a delivery',
    tag: 'Deliveries',
    description:
      'Inline recipients (up to 100,000) or a stored list (`listId`), never both; `html` or `text` at least. The delivery is ' +
      'analysed, then waits for confirmation unless `autoConfirm`. Send an `Idempotency-Key` so that a retry after a timeout ' +
      'cannot create a second delivery.',
    body: {
      schema: createDeliverySchema,
      example: {
        name: 'Spring newsletter',
        from: { address: 'news@example.com', name: 'Example News' },
        subject: 'Hello {{firstName}}',
        html: '<p>Hello {{firstName}}</p>',
        text: 'Hello {{firstName}}',
        recipients: [
          { email: 'ada@example.com', fields: { firstName: 'Ada' } },
          { email: 'grace@example.com', fields: { firstName: 'Grace' } },
        ],
        waves: { mode: 'size', percent: 50, periodSeconds: 3600 },
        validity: '2d',
        autoConfirm: false,
      },
    },
    responses: { 201: { description: 'created; analysis runs', schema: r.deliveryCreatedResponse } },
    notFound: 'the list given as listId does not exist',
  },
  'GET /api/deliveries': {
    operationId: 'listDeliveries',
    summary: 'Deliveries, newest first, with filters',
    tag: 'Deliveries',
    description:
      'Narrowed by state (one or several), creation date (`createdFrom`, `createdTo`) and text in the name or subject (`q`). ' +
      'Keyset paging on (createdAt, id): follow `next`, which carries the filters and the position to the microsecond.',
    query: listDeliveriesQuery,
    responses: { 200: { description: 'newest first; `next` is the following page, null on the last one', schema: r.deliveryListResponse } },
  },
  'GET /api/deliveries/:id': {
    operationId: 'getDelivery',
    summary: 'A delivery: phase, analysis, waves, KPIs',
    tag: 'Deliveries',
    description:
      "KPIs come from the workflow's query while it runs, from the delivery log once it has ended or while Temporal does not " +
      'answer (`kpisSource`, `temporalUnavailable`).',
    params: { id: deliveryId },
    responses: { 200: { description: 'the delivery', schema: r.deliveryDetailResponse } },
  },
  'GET /api/deliveries/:id/recipients': {
    operationId: 'listRecipients',
    summary: "Page through a delivery's recipients",
    tag: 'Deliveries',
    description:
      'The delivery log, in recipient order, narrowed by status, address prefix, exact domain, failure type and reason (all ' +
      'together). Keyset paging on recipientId: `next` carries every filter; a full page always has one (possibly empty).',
    params: { id: deliveryId },
    query: pageQuerySchema,
    responses: { 200: { description: 'a page of the delivery log (keyset paging on recipientId)', schema: r.recipientPageResponse } },
  },
  'GET /api/deliveries/:id/recipients.csv': {
    operationId: 'exportRecipientsCsv',
    summary: "Export a delivery's recipients as CSV (streamed)",
    tag: 'Deliveries',
    description:
      'Every recipient the same filters select, in recipient order, with the columns recipientId, address, domain, status, ' +
      'exclusionReason, failureType, failureReason, attempts, lastSmtpCode, lastEnhancedCode, lastReply, lastMxHost, ' +
      'handedOverAt, finalAt, updatedAt (a header row, CRLF line ends, dates as in the JSON pages; a text starting with ' +
      '= + - @ gets a leading apostrophe so that a spreadsheet runs nothing). Streamed as it is read: a delivery of a ' +
      'million recipients is never held in memory, and the reading stops when the client goes away.',
    params: { id: deliveryId },
    query: exportQuerySchema,
    responses: { 200: { description: 'the CSV, as an attachment', contentType: 'text/csv; charset=utf-8' } },
  },
  'GET /api/deliveries/:id/recipients/:rid': {
    operationId: 'getRecipient',
    summary: 'One recipient: status, transitions, SMTP attempts',
    tag: 'Deliveries',
    params: { id: deliveryId, rid: recipientId },
    responses: { 200: { description: 'the recipient', schema: r.recipientDetailResponse } },
  },
  'GET /api/deliveries/:id/timeline': {
    operationId: 'getDeliveryTimeline',
    summary: "A delivery's EFS statuses over time",
    tag: 'Deliveries',
    description:
      'Cumulative counts (taken into account, soft bounces waiting, sent, failed) at the end of each time bucket since ' +
      'sending started, the width a round number chosen from the span. The last point is the delivery log now: its sent, ' +
      'failed and takenIntoAccount are the KPIs. One aggregate over the recipients; reused for DELIVERY_FIGURES_CACHE_MS ' +
      'while the delivery sends.',
    params: { id: deliveryId },
    query: timelineQuery,
    responses: { 200: { description: 'the timeline (no point before sending started)', schema: r.deliveryTimelineResponse } },
  },
  'GET /api/deliveries/:id/domains': {
    operationId: 'getDeliveryDomains',
    summary: "A delivery's figures per recipient domain",
    tag: 'Deliveries',
    description: 'The domains with the most recipients, and the others added up: rows and `others` together are the whole delivery.',
    params: { id: deliveryId },
    query: domainsQuery,
    responses: { 200: { description: 'most recipients first', schema: r.deliveryDomainsResponse } },
  },
  'GET /api/deliveries/:id/mx-sites': {
    operationId: 'getDeliveryMxSites',
    summary: "A delivery's figures per receiving site",
    tag: 'Deliveries',
    description:
      "Recipients per site, the site decided as the sender decides it (MX rules by domain, else by MX host) from each " +
      "recipient's domain and the MX host its last attempt recorded. Recipients without an attempt and without a domain rule " +
      'have site null. The sites together are the whole delivery.',
    params: { id: deliveryId },
    responses: { 200: { description: 'most recipients first', schema: r.deliveryMxSitesResponse } },
  },
  'GET /api/deliveries/:id/recipients/:rid/live': {
    operationId: 'getRecipientLive',
    summary: "A recipient workflow's live view",
    tag: 'Deliveries',
    description:
      "The recipient workflow's query (status, attempts, next retry, retry window, last reply). `temporalUnavailable` with " +
      'a null state when Temporal does not answer within 5 s.',
    params: { id: deliveryId, rid: recipientId },
    responses: { 200: { description: 'the live view', schema: r.recipientLiveResponse } },
    notFound: 'no such recipient, or its workflow does not exist (not started yet, or its history is gone after retention)',
  },
  'POST /api/deliveries/:id/confirm': {
    operationId: 'confirmDelivery',
    summary: 'Confirm a delivery',
    tag: 'Deliveries',
    params: { id: deliveryId },
    body: { schema: confirmSchema, required: false },
    responses: { 200: { description: 'confirmed: sending starts at the contact date (now when none)', schema: r.confirmedResponse } },
    conflict: 'not confirmable now: still analysing, blocking analysis errors, already confirmed, cancelled or ended (the answer says which)',
  },
  'POST /api/deliveries/:id/cancel': {
    operationId: 'cancelDelivery',
    summary: 'Cancel a delivery',
    tag: 'Deliveries',
    params: { id: deliveryId },
    body: noteBody('kept with the delivery'),
    responses: { 202: { description: 'cancellation requested: recipients not yet sent are cancelled', schema: r.cancelRequestedResponse } },
    conflict: 'the delivery has ended',
  },
  'POST /api/deliveries/:id/pause': {
    operationId: 'pauseDelivery',
    summary: 'Pause sending',
    tag: 'Deliveries',
    params: { id: deliveryId },
    body: noteBody('shown in pauseReason'),
    responses: { 200: { description: 'paused', schema: r.pausedResponse } },
    conflict: 'already paused, or the delivery has ended',
  },
  'POST /api/deliveries/:id/resume': {
    operationId: 'resumeDelivery',
    summary: 'Resume sending',
    tag: 'Deliveries',
    params: { id: deliveryId },
    responses: { 200: { description: 'resumed', schema: r.resumedResponse } },
    conflict: 'not paused, or the delivery has ended',
  },
  'PUT /api/deliveries/:id/contact-date': {
    operationId: 'rescheduleDelivery',
    summary: 'Change the contact date',
    tag: 'Deliveries',
    description: 'Until sending starts. `null`: send as soon as confirmed.',
    params: { id: deliveryId },
    body: { schema: rescheduleSchema },
    responses: { 200: { description: 'the new contact date', schema: r.rescheduledResponse } },
    conflict: 'sending has started, or the delivery has ended',
  },
  'PATCH /api/deliveries/:id': {
    operationId: 'editDelivery',
    summary: 'Change content, validity, waves or local-time sending',
    tag: 'Deliveries',
    description: 'Before confirmation only; analysis runs again.',
    params: { id: deliveryId },
    body: { schema: updateDeliverySchema, example: { subject: 'Hello again {{firstName}}', validity: '36h' } },
    responses: { 202: { description: 'changed; analysing again', schema: r.reanalysingResponse } },
    conflict: 'the delivery is confirmed (or ended): its content no longer changes',
  },
  'POST /api/deliveries/:id/proofs': {
    operationId: 'sendProofs',
    summary: 'Send proofs',
    tag: 'Deliveries',
    description: 'Rendered, signed and marked `[Proof]`, to up to 20 addresses; outside the KPIs and the delivery log.',
    params: { id: deliveryId },
    body: { schema: proofSchema, example: { addresses: ['editor@example.com'] } },
    responses: { 200: { description: 'what each receiving server answered', schema: r.proofsResponse } },
  },

  'POST /api/deliveries/preview': {
    operationId: 'previewMessage',
    summary: 'Render a message for one recipient',
    tag: 'Deliveries',
    description:
      "The subject, HTML and text templates rendered for a sample recipient by the engine's own renderer, as a delivery " +
      'would send them (before MIME encoding and signing). Nothing is stored. A template that does not compile or render ' +
      'is a 400 whose issue names the part (`subject`, `html` or `text`) with the template error and its line.',
    body: {
      schema: previewMessageSchema,
      example: { subject: 'Hello {{firstName}}', html: '<p>Hello {{firstName}}</p>', text: 'Hello {{firstName}}', fields: { email: 'ada@example.com', firstName: 'Ada' } },
    },
    responses: { 200: { description: 'the message as this recipient would get it', schema: r.messagePreviewResponse } },
  },

  'POST /api/lists': {
    operationId: 'uploadList',
    summary: 'Upload a recipient list (CSV)',
    tag: 'Lists',
    description:
      'A CSV with a header row and an `email` column; other columns become personalisation fields. Streamed into Postgres ' +
      '(COPY): size is not limited by memory. A NUL byte or a malformed line refuses the whole list (400 naming the line).',
    query: { name: { description: "the list's name", schema: listNameQuery, required: true } },
    body: { contentType: 'text/csv', description: 'header row, then one recipient per line' },
    responses: {
      201: { description: 'stored', schema: r.listSummary },
      415: { description: 'the body is not text/csv', schema: r.errorResponse },
    },
  },
  'GET /api/lists': {
    operationId: 'listLists',
    summary: 'Stored lists',
    tag: 'Lists',
    responses: { 200: { description: 'every stored list', schema: r.listsResponse } },
  },
  'GET /api/lists/:id': {
    operationId: 'getList',
    summary: 'One stored list',
    tag: 'Lists',
    params: { id: { description: "the list's id", schema: listIdParam } },
    responses: { 200: { description: 'the list, with its first member as a sample', schema: r.listDetail } },
  },

  'POST /api/recurring-deliveries': {
    operationId: 'createRecurringDelivery',
    summary: 'Create a recurring delivery',
    tag: 'Recurring deliveries',
    description:
      'A template (the create-delivery body with a `listId`) and a schedule (cron with a time zone, or an interval). Each run ' +
      'copies the list as it is then and is confirmed automatically; runs never overlap (an occurrence due while the previous ' +
      'run goes on is skipped).',
    body: {
      schema: createRecurringSchema,
      example: {
        template: { name: 'Weekly digest', from: 'digest@example.com', subject: 'This week', text: 'Hello {{firstName}}', listId: '0b6f3f5e-8a4c-4d55-9a3e-2f1c7e9d4b21', validity: '12h' },
        schedule: { cron: '0 9 * * MON', timeZone: 'Europe/Paris' },
      },
    },
    responses: { 201: { description: 'created, with its Temporal Schedule', schema: r.recurringDeliveryResponse } },
    notFound: 'the template\'s listId names no stored list',
  },
  'GET /api/recurring-deliveries': {
    operationId: 'listRecurringDeliveries',
    summary: 'Recurring deliveries',
    tag: 'Recurring deliveries',
    query: recurringListQuery,
    responses: { 200: { description: 'each with its schedule state and the deliveries its runs created', schema: r.recurringListResponse } },
  },
  'GET /api/recurring-deliveries/:id': {
    operationId: 'getRecurringDelivery',
    summary: 'One recurring delivery',
    tag: 'Recurring deliveries',
    params: { id: { description: "the recurring delivery's id", schema: recurringIdParam } },
    responses: { 200: { description: 'the template, its schedule as Temporal has it, its runs', schema: r.recurringDeliveryResponse } },
  },
  'POST /api/recurring-deliveries/:id/pause': {
    operationId: 'pauseRecurringDelivery',
    summary: 'Pause the schedule',
    tag: 'Recurring deliveries',
    params: { id: { description: "the recurring delivery's id", schema: recurringIdParam } },
    body: { schema: scheduleNoteSchema, required: false, description: 'optional: why (the schedule\'s note)' },
    responses: { 200: { description: 'paused', schema: r.recurringDeliveryResponse } },
    conflict: 'already paused, or its schedule no longer exists',
  },
  'POST /api/recurring-deliveries/:id/unpause': {
    operationId: 'unpauseRecurringDelivery',
    summary: 'Unpause the schedule',
    tag: 'Recurring deliveries',
    params: { id: { description: "the recurring delivery's id", schema: recurringIdParam } },
    body: { schema: scheduleNoteSchema, required: false, description: 'optional: why (the schedule\'s note)' },
    responses: { 200: { description: 'unpaused', schema: r.recurringDeliveryResponse } },
    conflict: 'not paused, or its schedule no longer exists',
  },
  'POST /api/recurring-deliveries/:id/trigger': {
    operationId: 'triggerRecurringDelivery',
    summary: 'Run now',
    tag: 'Recurring deliveries',
    description: "Outside the schedule's times, also while paused; never alongside a run still going.",
    params: { id: { description: "the recurring delivery's id", schema: recurringIdParam } },
    responses: { 202: { description: 'a run starts', schema: r.recurringTriggeredResponse } },
    conflict: 'a run is still going, or its schedule no longer exists',
  },
  'DELETE /api/recurring-deliveries/:id': {
    operationId: 'deleteRecurringDelivery',
    summary: 'Delete a recurring delivery',
    tag: 'Recurring deliveries',
    description: 'Removes the schedule, then the template; deliveries already created stay, and a run still going finishes.',
    params: { id: { description: "the recurring delivery's id", schema: recurringIdParam } },
    responses: { 204: { description: 'deleted' } },
  },

  'POST /api/inbound': {
    operationId: 'postInboundMessage',
    summary: 'Forward a bounce, report or complaint',
    tag: 'Inbound and feedback',
    description:
      'A raw RFC 5322 message as a relay or an ESP received it: stored, classified, attributed to its recipient and applied, as ' +
      'if the inbound listener had received it. The same message twice is stored once (200, `duplicate: true`).',
    body: { contentType: 'message/rfc822', description: 'the raw message (text/plain is accepted too)', format: 'binary' },
    responses: {
      200: { description: 'already received: nothing applied again', schema: r.inboundOutcomeResponse },
      202: { description: 'stored and applied; the body says what it changed', schema: r.inboundOutcomeResponse },
      415: { description: 'the Content-Type is not message/rfc822', schema: r.errorResponse },
    },
  },
  'GET /api/inbound': {
    operationId: 'listInboundMessages',
    summary: 'Received messages',
    tag: 'Inbound and feedback',
    description: '`review=true`: the review table of messages that could not be attributed.',
    query: listInboundQuery,
    responses: { 200: { description: 'newest first', schema: r.inboundListResponse } },
  },
  'GET /api/inbound/:id': {
    operationId: 'getInboundMessage',
    summary: 'One received message with its classification',
    tag: 'Inbound and feedback',
    params: { id: { description: "the message's numeric id", schema: messageIdParam } },
    responses: { 200: { description: 'the message', schema: r.inboundMessageResponse } },
  },
  'GET /api/inbound/:id/raw': {
    operationId: 'getInboundMessageRaw',
    summary: 'The raw message',
    tag: 'Inbound and feedback',
    params: { id: { description: "the message's numeric id", schema: messageIdParam } },
    responses: { 200: { description: 'as received', contentType: 'message/rfc822' } },
  },
  'POST /api/inbound/:id/resolve': {
    operationId: 'resolveInboundMessage',
    summary: 'Take a message off the review table',
    tag: 'Inbound and feedback',
    params: { id: { description: "the message's numeric id", schema: messageIdParam } },
    responses: { 200: { description: 'resolved (the message stays stored)', schema: r.inboundResolvedResponse } },
    notFound: 'the message is not in the review table',
  },
  'GET /api/deliveries/:id/recipients/:recipientId/feedback': {
    operationId: 'getRecipientFeedback',
    summary: 'The asynchronous feedback a recipient received',
    tag: 'Inbound and feedback',
    params: { id: deliveryId, recipientId },
    responses: { 200: { description: 'late bounces, relay reports, complaints, and what each changed', schema: r.recipientFeedbackResponse } },
  },
  'GET /api/quarantine': {
    operationId: 'listQuarantine',
    summary: 'Quarantined addresses',
    tag: 'Quarantine and denylist',
    query: listQuarantineQuery,
    responses: { 200: { description: 'a page, by address', schema: r.addressPageResponse } },
  },
  'GET /api/quarantine/:address': {
    operationId: 'getQuarantineEntry',
    summary: "An address's quarantine record",
    tag: 'Quarantine and denylist',
    params: { address: { description: 'the email address' } },
    responses: { 200: { description: 'its failures and quarantine', schema: r.quarantineEntryResponse } },
  },
  'DELETE /api/quarantine/:address': {
    operationId: 'releaseQuarantine',
    summary: 'Release an address',
    tag: 'Quarantine and denylist',
    description: 'It may be mailed again; its failure count starts from zero.',
    params: { address: { description: 'the email address' } },
    responses: { 200: { description: 'released', schema: r.releasedResponse } },
  },
  'GET /api/denylist': {
    operationId: 'listDenylist',
    summary: 'The denylist',
    tag: 'Quarantine and denylist',
    query: listDenylistQuery,
    responses: { 200: { description: 'a page, by address', schema: r.addressPageResponse } },
  },
  'POST /api/denylist': {
    operationId: 'addToDenylist',
    summary: 'Add an address to the denylist',
    tag: 'Quarantine and denylist',
    body: { schema: denylistBody, example: { address: 'someone@example.com', reason: 'manual', note: 'asked by phone' } },
    responses: {
      200: { description: 'it was already there', schema: r.denylistAddedResponse },
      201: { description: 'added', schema: r.denylistAddedResponse },
    },
  },
  'DELETE /api/denylist/:address': {
    operationId: 'removeFromDenylist',
    summary: 'Remove an address from the denylist',
    tag: 'Quarantine and denylist',
    params: { address: { description: 'the email address' } },
    responses: { 200: { description: 'removed', schema: r.denylistRemovedResponse } },
  },

  'GET /api/dkim/keys': {
    operationId: 'listDkimKeys',
    summary: 'DKIM keys and their DNS records',
    tag: 'DKIM keys',
    description: 'Public keys and the TXT records to publish; private keys never leave the store.',
    query: { domain: { description: 'only the keys of this domain', schema: dkimDomain } },
    responses: { 200: { description: 'the keys', schema: r.dkimKeysResponse } },
  },
  'POST /api/dkim/keys': {
    operationId: 'addDkimKey',
    summary: 'Add a DKIM key',
    tag: 'DKIM keys',
    description: 'Generates an RSA or Ed25519 key under the selector, or imports one (`privateKeyPem`).',
    body: { schema: addKeySchema, example: { domain: 'example.com', selector: 's2', algorithm: 'ed25519-sha256' } },
    responses: { 201: { description: 'added and active', schema: r.dkimKeyResponse } },
    conflict: 'the selector is already in use for the domain',
  },
  'PATCH /api/dkim/keys/:domain/:selector': {
    operationId: 'setDkimKeyActive',
    summary: 'Activate or deactivate a DKIM key',
    tag: 'DKIM keys',
    params: { domain: { description: 'the signing domain', schema: dkimDomain }, selector: { description: 'the selector', schema: dkimSelector } },
    body: { schema: setKeyActiveSchema },
    responses: { 200: { description: 'the key as stored now', schema: r.dkimKeyResponse } },
  },

  ...ruleTableOperations('/api/qualification-rules', {
    noun: 'qualification rule',
    component: 'QualificationRule',
    tag: 'Qualification rules',
    idParam: qualificationRuleIdParam,
    listQuery: qualificationListQuery,
    idPrefix: 'QualificationRule',
  }),
  'POST /api/qualification-rules/test': {
    operationId: 'testQualificationRules',
    summary: 'Qualify a reply with the stored rules',
    tag: 'Qualification rules',
    description: "Changes nothing; says which rule matched and what the worker's evaluation cost.",
    body: { schema: qualificationTestBody, example: { reply: '550 5.1.1 <ada@example.com>: Recipient address rejected: User unknown', domain: 'example.com' } },
    responses: { 200: { description: 'the qualification', schema: r.qualificationTestResponse } },
    conflict: loadedRuleConflict,
  },
  ...ruleTableOperations('/api/inbound-rules', {
    noun: 'inbound rule',
    component: 'InboundRule',
    tag: 'Inbound rules',
    idParam: inboundRuleIdParam,
    listQuery: inboundRuleListQuery,
    idPrefix: 'InboundRule',
  }),
  'POST /api/inbound-rules/test': {
    operationId: 'testInboundRules',
    summary: 'Classify a message with the stored rules',
    tag: 'Inbound rules',
    description: 'Changes nothing.',
    body: { schema: inboundRuleTestBody },
    responses: { 200: { description: 'the classification', schema: r.inboundTestResponse } },
    conflict: loadedRuleConflict,
  },

  'GET /api/mx-sites': {
    operationId: 'listMxSites',
    summary: 'Receiving sites and their live state',
    tag: 'MX sites and rules',
    description: 'Each site: its rule, the limits it is sent at now, connections, messages in flight, replies of the last hour, last change.',
    query: siteListQuery,
    responses: { 200: { description: 'the sites', schema: r.mxSitesResponse } },
    conflict: loadedRuleConflict,
  },
  'GET /api/mx-sites/:site': {
    operationId: 'getMxSite',
    summary: 'One receiving site, with its recent events',
    tag: 'MX sites and rules',
    params: { site: { description: "the site's key (as GET /api/mx-sites lists it)" } },
    responses: { 200: { description: 'the site', schema: r.mxSiteResponse } },
    notFound: 'the site has not been sent to',
    conflict: loadedRuleConflict,
  },
  'POST /api/mx-sites/:site/suspend': {
    operationId: 'suspendMxSite',
    summary: 'Hold every message to a site',
    tag: 'MX sites and rules',
    description: "A provider's incident, a delisting in progress: nothing is sent to the site for the time given, recorded with the reason.",
    params: { site: { description: "the site's key (as GET /api/mx-sites lists it)" } },
    body: { schema: ref('SuspendMxSiteRequest'), example: { seconds: 3600, reason: 'provider incident: deferring everything' } },
    responses: { 200: { description: 'the site as it is now, with the change made', schema: r.mxSiteChangedResponse } },
    notFound: 'no enabled rule for the site, or the site is not one of its rule',
  },
  'POST /api/mx-sites/:site/resume': {
    operationId: 'resumeMxSite',
    summary: 'Send to a suspended site again',
    tag: 'MX sites and rules',
    description: 'Only the suspension ends: limits lowered by throttling replies recover at their own pace.',
    params: { site: { description: "the site's key (as GET /api/mx-sites lists it)" } },
    responses: { 200: { description: 'the site as it is now, with the change made', schema: r.mxSiteChangedResponse } },
    notFound: 'no enabled rule for the site, or the site is not one of its rule',
    conflict: 'the site is not suspended',
  },
  ...ruleTableOperations('/api/mx-rules', {
    noun: 'MX site rule',
    component: 'MxSiteRule',
    tag: 'MX sites and rules',
    idParam: mxRuleIdSchema,
    listQuery: { provider: { description: 'only the rules of this provider' } },
    idPrefix: 'MxSiteRule',
  }),
  'POST /api/mx-rules/test': {
    operationId: 'testMxSiteRules',
    summary: 'Which rule and site a domain falls under',
    tag: 'MX sites and rules',
    description: 'Changes nothing; the API does no DNS lookup (give the MX host to match rules by MX host).',
    body: { schema: ref('MxSiteTestRequest'), example: { domain: 'example.com', mxHost: 'aspmx.l.google.com' } },
    responses: { 200: { description: 'the matching rule and site', schema: r.mxSiteTestResponse } },
    conflict: loadedRuleConflict,
  },
  ...ruleTableOperations('/api/mx-reply-rules', {
    noun: 'MX reply rule',
    component: 'MxReplyRule',
    tag: 'MX sites and rules',
    idParam: mxRuleIdSchema,
    listQuery: { provider: { description: 'only the rules of this provider' } },
    idPrefix: 'MxReplyRule',
  }),
  'POST /api/mx-reply-rules/test': {
    operationId: 'testMxReplyRules',
    summary: 'What a reply would do to its site',
    tag: 'MX sites and rules',
    description: 'Changes nothing.',
    body: { schema: ref('MxReplyTestRequest'), example: { reply: '421 4.7.0 Try again later, closing connection.' } },
    responses: { 200: { description: 'the matching reply rule and its action', schema: r.mxReplyTestResponse } },
    conflict: loadedRuleConflict,
  },

  'POST /api/keys': {
    operationId: 'createApiKey',
    summary: 'Create an API key',
    tag: 'API keys and audit log',
    description: 'The secret is in this answer only; the engine keeps its SHA-256.',
    body: { schema: createKeyBody, example: { name: 'crm integration', scopes: ['send'] } },
    responses: { 201: { description: 'created', schema: r.apiKeyCreatedResponse } },
  },
  'GET /api/keys': {
    operationId: 'listApiKeys',
    summary: 'API keys',
    tag: 'API keys and audit log',
    description: 'Never the secret nor its hash.',
    query: listKeysQuery,
    responses: { 200: { description: 'the keys', schema: r.apiKeysResponse } },
  },
  'DELETE /api/keys/:id': {
    operationId: 'revokeApiKey',
    summary: 'Revoke an API key',
    tag: 'API keys and audit log',
    description: 'Refused at once by this process; by other API processes within API_KEY_CACHE_SECONDS. Its sessions end with it.',
    params: { id: { description: "the key's id", schema: apiKeyIdParam } },
    responses: { 200: { description: 'revoked (alreadyRevoked says whether it was before)', schema: r.apiKeyRevokedResponse } },
  },
  'GET /api/audit-log': {
    operationId: 'getAuditLog',
    summary: 'The audit log',
    tag: 'API keys and audit log',
    description: 'Every change made through the API, with the key that made it; newest first.',
    query: auditQuery,
    responses: { 200: { description: 'a page of entries', schema: r.auditLogResponse } },
  },

  'POST /api/webhooks': {
    operationId: 'createWebhook',
    summary: 'Subscribe an endpoint to events',
    tag: 'Webhooks',
    description: 'Events are signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`) with the secret answered here.',
    body: {
      schema: ref('CreateWebhookRequest'),
      description: `\`eventTypes\` defaults to every type: ${eventTypesText}.`,
      example: { url: 'https://hooks.example.com/email-events', eventTypes: ['recipient.sent', 'recipient.failed'], description: 'CRM sync' },
    },
    responses: { 201: { description: 'subscribed; its endpoint workflow runs', schema: r.webhookCreatedResponse } },
  },
  'GET /api/webhooks': {
    operationId: 'listWebhooks',
    summary: 'Webhook subscriptions',
    tag: 'Webhooks',
    responses: { 200: { description: 'the subscriptions (never their secret)', schema: r.webhooksResponse } },
  },
  'GET /api/webhooks/:id': {
    operationId: 'getWebhook',
    summary: 'One subscription with its delivery status',
    tag: 'Webhooks',
    params: { id: webhookId },
    responses: { 200: { description: "the subscription, its status and its endpoint workflow's live state", schema: r.webhookResponse } },
  },
  'PATCH /api/webhooks/:id': {
    operationId: 'updateWebhook',
    summary: 'Change a subscription',
    tag: 'Webhooks',
    body: {
      schema: ref('UpdateWebhookRequest'),
      description: 'At least one field; `description: null` clears it; `disabledReason` goes with `enabled: false`.',
      example: { enabled: false, disabledReason: 'receiver being migrated' },
    },
    params: { id: webhookId },
    responses: { 200: { description: 'the subscription as stored now', schema: r.webhookResponse } },
  },
  'DELETE /api/webhooks/:id': {
    operationId: 'deleteWebhook',
    summary: 'Delete a subscription',
    tag: 'Webhooks',
    params: { id: webhookId },
    responses: { 204: { description: 'deleted; its endpoint workflow ends' } },
  },
  'GET /api/webhooks/:id/secret': {
    operationId: 'getWebhookSecret',
    summary: 'The signing secret',
    tag: 'Webhooks',
    description: 'Each read is in the audit log.',
    params: { id: webhookId },
    responses: { 200: { description: 'the secret', schema: r.webhookSecretResponse } },
  },
  'GET /api/webhooks/:id/deliveries': {
    operationId: 'listWebhookAttempts',
    summary: "An endpoint's recent deliveries",
    tag: 'Webhooks',
    params: { id: webhookId },
    query: webhookDeliveriesQuery,
    responses: { 200: { description: 'attempts with their status codes, newest first', schema: r.webhookAttemptsResponse } },
  },
  'POST /api/webhooks/:id/enable': {
    operationId: 'enableWebhook',
    summary: 'Enable a disabled endpoint again',
    tag: 'Webhooks',
    description: 'It goes on from its cursor: what happened while it was disabled (within the retention) is sent first.',
    params: { id: webhookId },
    responses: { 200: { description: 'enabled', schema: r.webhookResponse } },
    conflict: 'the subscription is already enabled',
  },
  'POST /api/webhooks/:id/events/:eventId/replay': {
    operationId: 'replayWebhookEvent',
    summary: 'Send one event again',
    tag: 'Webhooks',
    params: { id: webhookId, eventId: { description: "the event's id, `evt_<number>`" } },
    responses: { 202: { description: 'queued, before the events that follow the cursor', schema: r.webhookReplayResponse } },
    notFound: 'no such subscription, or the event does not exist (or is older than the retention)',
  },

  'GET /api/openapi.json': {
    operationId: 'getOpenApiDocument',
    summary: 'This description (OpenAPI 3.1)',
    tag: 'Public',
    description: 'The routes this API process serves. The same document, for every route, is docs/openapi.json in the repository.',
    responses: { 200: { description: 'the OpenAPI 3.1.0 document', contentType: 'application/json' } },
  },
  'GET /docs/api': {
    operationId: 'apiReferencePage',
    summary: 'API reference (viewer)',
    tag: 'Public',
    description: 'This description rendered by Swagger UI, served from the engine itself (no CDN).',
    responses: { 200: { description: 'the page', contentType: 'text/html' } },
  },
  'GET /docs/api/assets/:file': {
    operationId: 'apiReferenceAsset',
    summary: "The viewer's script and style sheet",
    tag: 'Public',
    params: { file: { description: 'one of the files the page loads' } },
    responses: { 200: { description: 'the file (JavaScript or CSS)', contentType: 'application/octet-stream' } },
    notFound: 'not a file of the viewer',
  },

  'GET /dashboard': {
    operationId: 'dashboardPage',
    summary: 'Delivery dashboard (page)',
    tag: 'Public',
    description:
      'The browser dashboard (docs/dashboard.md): a static page that signs in with a key (POST /api/session) and shows what the ' +
      'routes of this API answer, with the scopes of the key. It holds no data.',
    responses: { 200: { description: 'the page', contentType: 'text/html' } },
  },
  'GET /dashboard/assets/:file': {
    operationId: 'dashboardAsset',
    summary: "The dashboard's modules, libraries and style sheet",
    tag: 'Public',
    params: { file: { description: 'one of the files the page loads' } },
    responses: { 200: { description: 'the file (JavaScript or CSS)', contentType: 'application/octet-stream' } },
    notFound: 'not a file of the dashboard',
  },
  'GET /api/dashboard/config': {
    operationId: 'getDashboardConfig',
    summary: "The dashboard's settings",
    tag: 'Dashboard',
    description:
      'What the dashboard needs to know of this installation: `temporalUi` ({url, namespace}, for links to workflows) or null when not configured, and `webhookEventTypes` (what a subscription can ask for).',
    responses: { 200: { description: '`{"temporalUi": {"url", "namespace"} | null, "webhookEventTypes": [string]}`', contentType: 'application/json' } },
  },
} satisfies Record<RouteKey, OperationDoc>;

// Every declared route is described, and nothing else: an entry for a route ROUTE_ACCESS does not declare is an error.
type Extra = Exclude<keyof typeof OPERATIONS, RouteKey>;
const _noExtraOperation: Extra extends never ? true : never = true;
void _noExtraOperation;
