/**
 * The workflow contract: every input, result, query view, update argument and activity signature that crosses the
 * boundary of the project's workflows, defined once for workflows, activities and clients. It imports no
 * implementation (only pure domain types and the SDK's definition helpers), so it can be read on its own, and a
 * change to it is a change to what running histories replay against (docs/workflow-versioning.md).
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { AnalysisFinding, AnalysisReport } from '../domain/analysis-report';
import type { DeliveryOptions, LocalSendTime } from '../domain/delivery-options';
import type { DeliveryPhase } from '../domain/delivery-lifecycle';
import type { AttemptOutcome, DeliveryKpis, EfsStatus } from '../domain/efs-status';
import type { FailureReason, FailureType, RetryClass } from '../domain/failure';
import type { SmtpReply } from '../domain/smtp-reply';
import type { PlannedWave, WaveSpec } from '../domain/wave-plan';
import type { SafetyStopVerdict } from '../domain/safety-stop';

export type { DeliveryPhase } from '../domain/delivery-lifecycle';
export type { AttemptOutcome } from '../domain/efs-status';

// ---------------------------------------------------------------------------------------------------------------
// Workflow IDs
// ---------------------------------------------------------------------------------------------------------------

export function deliveryWorkflowId(deliveryId: string): string {
  return `delivery-${deliveryId}`;
}
export function recipientWorkflowId(deliveryId: string, recipientId: number): string {
  return `delivery-${deliveryId}-r-${recipientId}`;
}
export function recipientBatchWorkflowId(parentWorkflowId: string, batchNo: number): string {
  return `${parentWorkflowId}-batch-${batchNo}`;
}

// ---------------------------------------------------------------------------------------------------------------
// deliveryWorkflow
// ---------------------------------------------------------------------------------------------------------------

/**
 * Numbers the delivery workflow runs with. Resolved from the settings when the delivery is created and carried in
 * the input and across continue-as-new, so that editing a default never changes the replay of a running delivery.
 */
export interface DeliveryTunables {
  /** Recipients handed over per batch workflow (and per page read from Postgres). */
  pageSize: number;
  /** Most recipients handed over whose first attempt has not ended yet. */
  maxInFlight: number;
  /** KPI refresh interval while recipients are in flight. */
  kpiRefreshMs: number;
  /** The refresh interval backs off to this while nothing changes. */
  maxIdleRefreshMs: number;
  /** History length after which a sending delivery continues as new. */
  historyEventsBeforeContinue: number;
  /** How long recipient workflows wait for asynchronous feedback; absent in deliveries started before it existed. */
  feedbackWindows?: FeedbackWindows;
  /**
   * Batch workflows starting their recipients at once (still within maxInFlight). Absent in deliveries started before
   * it existed: they hand over one batch at a time, waiting for it, exactly as they were recorded.
   */
  parallelBatches?: number;
}

/** How long a recipient workflow stays open for asynchronous feedback after the SMTP transaction. */
export interface FeedbackWindows {
  /** Direct mode: after the receiving MX accepted (a late bounce can still turn sent into failed). 0: close at once. */
  afterAcceptedMs: number;
  /** Relay mode: after the smart host accepted, until a delivery report arrives; with none, the recipient counts as sent. */
  relayConfirmationMs: number;
}

export interface DeliveryWorkflowInput {
  deliveryId: string;
  autoConfirm: boolean;
  /** Epoch ms of the contact date; absent means as soon as confirmed. */
  contactDateMs?: number;
  validitySeconds: number;
  tunables: DeliveryTunables;
  /** Carried over continue-as-new. */
  resume?: DeliveryResumeState;
}

/** What a sending delivery carries into its next run. */
export interface DeliveryResumeState {
  phase: DeliveryPhase;
  paused: boolean;
  afterRecipientId: number;
  validityEndsAtMs: number;
  analysis: AnalysisSummary | null;
  kpis: DeliveryKpis | null;
  batchesStarted: number;
  confirmedBy: string | null;
  waves: WaveProgress[];
  /** A cancel accepted by the previous run that it had not finished handling. */
  cancelRequested?: boolean;
  cancelReason?: string | null;
  /** Why the delivery is paused (absent in runs started before it was recorded). */
  pauseReason?: PauseReason | null;
}

/** Why a delivery is paused: a person (with the reason they gave), or the safety stop (with what it saw). */
export interface PauseReason {
  by: 'user' | 'safety_stop';
  reason: string | null;
  /** Workflow clock when it paused (epoch ms). */
  atMs: number;
  /** The safety stop's figures and thresholds. */
  safetyStop?: SafetyStopVerdict;
}

/** One wave as planned when sending started, and how far it got. */
export interface WaveProgress {
  index: number;
  plannedStartMs: number;
  size: number;
  handedOver: number;
  startedAtMs: number | null;
  handedOverAtMs: number | null;
}

/** The delivery's live state: the `deliveryState` query and the workflow's result. */
export interface DeliveryStateView {
  deliveryId: string;
  phase: DeliveryPhase;
  analysis: AnalysisSummary | null;
  kpis: DeliveryKpis | null;
  /** When the KPIs were last read from the delivery log (epoch ms). */
  kpisAtMs: number | null;
  validityEndsAtMs: number | null;
  contactDateMs: number | null;
  handedOverUpToRecipientId: number;
  batchesStarted: number;
  confirmedBy: string | null;
  paused: boolean;
  cancelReason: string | null;
  waves: WaveProgress[];
  /** Why it is paused, while it is (absent in deliveries started before it was recorded). */
  pauseReason?: PauseReason | null;
}

export const deliveryStateQuery = defineQuery<DeliveryStateView>('deliveryState');
export const deliveryKpisQuery = defineQuery<DeliveryKpis | null>('kpis');

// Update arguments. The API validates its request bodies with zod; the workflow's validators check the arguments
// again with the plain checks below, so a client that bypasses the API (temporal CLI, another SDK) cannot put a
// malformed one in a history. Not zod here: every module the workflow bundle imports is evaluated again for each
// workflow execution, and zod's initialisation cost about 20 ms of worker CPU per recipient workflow (measured with
// `npm run bench -- --only fanout`, docs/benchmarks.md).

/** The first problem of an update argument ("field: what is wrong"), or null when it is well formed. */
export type ArgumentCheck = (value: unknown) => string | null;

export interface ConfirmRequest {
  confirmedBy?: string;
}
export interface PauseRequest {
  reason?: string;
}
export interface CancelRequest {
  reason?: string;
}
export interface RescheduleRequest {
  /** Epoch ms of the new contact date; null: as soon as confirmed. */
  contactDateMs: number | null;
}

/** Draft edits before confirmation (the API validates each field's content; the workflow checks the shape). */
export interface DraftChanges {
  name?: string;
  subject?: string;
  html?: string | null;
  text?: string | null;
  validitySeconds?: number;
  waves?: WaveSpec;
  localSendTime?: LocalSendTime | null;
}

type FieldCheck = (v: unknown) => string | null;
const optionalString =
  (max: number, min = 0): FieldCheck =>
  (v) =>
    v === undefined || (typeof v === 'string' && v.length >= min && v.length <= max) ? null : `must be a string of ${min} to ${max} characters`;
const nullableString: FieldCheck = (v) => (v === undefined || v === null || typeof v === 'string' ? null : 'must be a string or null');
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** An object with only the given fields, each passing its check. */
function objectOf(fields: Record<string, FieldCheck>, opts: { nonEmpty?: boolean } = {}): ArgumentCheck {
  return (value) => {
    if (!isObject(value)) return 'the argument must be an object';
    for (const key of Object.keys(value)) if (!(key in fields)) return `${key}: unknown field`;
    for (const [key, check] of Object.entries(fields)) {
      const problem = check(value[key]);
      if (problem) return `${key}: ${problem}`;
    }
    if (opts.nonEmpty && Object.keys(value).length === 0) return 'nothing to change';
    return null;
  };
}

export const checkConfirmRequest = objectOf({ confirmedBy: optionalString(200) });
export const checkPauseRequest = objectOf({ reason: optionalString(500) });
export const checkCancelRequest = objectOf({ reason: optionalString(500) });
export const checkRescheduleRequest = objectOf({
  contactDateMs: (v) => (v === null || (Number.isSafeInteger(v) && (v as number) >= 0) ? null : 'must be epoch milliseconds (a whole number) or null'),
});
export const checkDraftChanges = objectOf(
  {
    name: optionalString(200, 1),
    subject: optionalString(998, 1),
    html: nullableString,
    text: nullableString,
    validitySeconds: (v) => (v === undefined || (Number.isSafeInteger(v) && (v as number) > 0) ? null : 'must be a positive whole number of seconds'),
    waves: (v) =>
      v === undefined || (isObject(v) && ['single', 'size', 'calendar', 'ramp_up'].includes(v.mode as string))
        ? null
        : 'must be a wave spec with mode single, size, calendar or ramp_up',
    localSendTime: (v) =>
      v === undefined || v === null || (isObject(v) && ['time', 'defaultTimeZone', 'timeZoneField'].every((k) => typeof v[k] === 'string'))
        ? null
        : 'must be null or { time, defaultTimeZone, timeZoneField }',
  },
  { nonEmpty: true },
);

export const confirmUpdate = defineUpdate<DeliveryPhase, [ConfirmRequest]>('confirm');
/** No new message starts while paused; retries already waiting keep their timers. */
export const pauseUpdate = defineUpdate<DeliveryPhase, [PauseRequest]>('pause');
export const resumeUpdate = defineUpdate<DeliveryPhase, []>('resume');
/** Recipients not yet handed over end as cancelled; in-flight ones finish. */
export const cancelUpdate = defineUpdate<DeliveryPhase, [CancelRequest]>('cancel');
/** Changes the contact date (null: as soon as confirmed) until sending starts. */
export const rescheduleUpdate = defineUpdate<DeliveryPhase, [RescheduleRequest]>('reschedule');
/** Changes content or options before confirmation; analysis runs again. */
export const editDraftUpdate = defineUpdate<DeliveryPhase, [DraftChanges]>('editDraft');

// ---------------------------------------------------------------------------------------------------------------
// recipientBatchWorkflow and recipientWorkflow
// ---------------------------------------------------------------------------------------------------------------

/** A recipient handed to the sending stage: what its workflow needs, never its address. */
export interface HandedOverRecipient {
  recipientId: number;
  domain: string;
  /** Epoch ms before which the message must not be sent (local-time sending), or null. */
  sendAtMs: number | null;
}

export interface RecipientBatchInput {
  deliveryId: string;
  validityEndsAtMs: number;
  recipients: HandedOverRecipient[];
  feedbackWindows?: FeedbackWindows;
}

export interface RecipientWorkflowInput {
  deliveryId: string;
  recipientId: number;
  domain: string;
  validityEndsAtMs: number;
  /** Local-time sending: the message waits until then (epoch ms). */
  sendAtMs?: number | null;
  /** Absent (recipients started before feedback windows existed): the workflow ends with the SMTP transaction. */
  feedbackWindows?: FeedbackWindows;
}

/** Asynchronous feedback about one recipient (a DSN, a complaint, a delivery report), signalled by the inbound side. */
export interface RecipientFeedback {
  /** Epoch ms when the inbound message was received. */
  receivedAtMs: number;
  /** hard, soft, ignored, complaint or delivered (mail/inbound/inbound-classification.ts). */
  type: 'hard' | 'soft' | 'ignored' | 'complaint' | 'delivered';
  reason: FailureReason | null;
  /** RFC 3464 Action, when the message was a DSN. */
  action: string | null;
  /** Enhanced status code. */
  status: string | null;
  remoteMta: string | null;
  /** The recipient's row in the delivery log after the feedback was applied: the workflow mirrors it. */
  after: { status: EfsStatus; failureType: FailureType | null; failureReason: FailureReason | null };
  /** Id of the stored inbound message (GET /api/inbound/:id). */
  inboundMessageId: string;
}

export const recipientFeedbackSignal = defineSignal<[RecipientFeedback]>('feedback');

export interface RecipientStateView {
  deliveryId: string;
  recipientId: number;
  status: EfsStatus;
  failureType: FailureType | null;
  failureReason: FailureReason | null;
  retryClass: RetryClass | null;
  attempts: number;
  /** Local-time sending: when the first attempt is due. */
  sendAtMs: number | null;
  nextRetryAtMs: number | null;
  retryWindowEndsAtMs: number;
  lastReply: SmtpReply | null;
  /** Asynchronous feedback received while the workflow was open, oldest first. */
  feedback?: RecipientFeedback[];
  /** While set, the workflow waits for feedback until then (relay confirmation window, or late bounces in direct mode). */
  feedbackWindowEndsAtMs?: number | null;
  /** Who said the current status: smtp (the reply), dsn, complaint, confirmation_window (relay mode, no report). */
  statusSource?: string | null;
}

export const recipientStateQuery = defineQuery<RecipientStateView>('recipientState');

// ---------------------------------------------------------------------------------------------------------------
// proofWorkflow and recurringDeliveryWorkflow
// ---------------------------------------------------------------------------------------------------------------

export interface ProofInput {
  deliveryId: string;
  addresses: string[];
}

export interface ProofResult {
  address: string;
  messageId: string;
  accepted: boolean;
  reply: SmtpReply;
}

export interface RecurringDeliveryInput {
  templateId: string;
}

export interface RecurringRunResult {
  templateId: string;
  deliveryId: string;
  deliveryWorkflowId: string;
  recipients: number;
  phase: DeliveryPhase;
  kpis: DeliveryKpis | null;
}

// ---------------------------------------------------------------------------------------------------------------
// Activities: what the workflows call, implemented in activities/ (createActivities is checked against this)
// ---------------------------------------------------------------------------------------------------------------

export interface AnalyseDeliveryInput {
  deliveryId: string;
  /** Contact date, or the workflow's now: the wave plan and validity checks start from it. */
  plannedStartMs: number;
}

/** What the delivery workflow keeps of the analysis report (the full report is stored on the delivery). */
export interface AnalysisSummary {
  targeted: number;
  toDeliver: number;
  excluded: number;
  exclusions: AnalysisReport['exclusions'];
  findings: AnalysisFinding[];
  confirmable: boolean;
  /** What the workflow needs to run the waves (re-read on every analysis, so edits take effect). */
  options: DeliveryOptions;
  ratePerSecond: number;
  wavePlan: PlannedWave[];
  validitySeconds: number;
}

export interface ClaimRecipientPageInput {
  deliveryId: string;
  afterRecipientId: number;
  limit: number;
  wave: number;
  /** Local-time sending: each message waits for this wall time in its recipient's zone, not before notBeforeMs. */
  localSendTime?: LocalSendTime;
  notBeforeMs: number;
}

export interface SignInput {
  deliveryId: string;
  recipientId: number;
}

export interface SignResult {
  dkimSignature: string;
  messageId: string;
}

export interface SendInput {
  deliveryId: string;
  recipientId: number;
  /** 1 for the first attempt; the same number on every activity retry of that attempt. */
  attempt: number;
  /** DKIM-Signature header block from signRecipientMessage. */
  dkimSignature: string;
  retryWindowEndsAt: number;
  /**
   * The workflow's clock when it scheduled this attempt (epoch ms). Retry times are computed on the workflow's
   * clock, which is the one its timers and the retry window use (and the one a time-skipping test server moves).
   */
  workflowNowMs: number;
  /** A slot of the receiving site's budget reserved by an earlier deferral of this attempt (docs/mx-rules.md). */
  reservation?: SiteSlotReservation | null;
}

/** A reserved slot of a receiving site's message budget: which site, when (epoch ms, pacing clock), and its epoch. */
export interface SiteSlotReservation {
  site: string;
  slotMs: number;
  epoch: number;
}

/** What an attempt did: small, so it can sit in the workflow history. */
export interface SendOutcome {
  attempt: number;
  /** deferred: nothing was sent (delivery paused before a first attempt, or the receiving site is backed off). */
  outcome: AttemptOutcome | 'deferred';
  status: EfsStatus;
  failureType: FailureType | null;
  failureReason: FailureReason | null;
  retryClass: RetryClass | null;
  reply: SmtpReply;
  /** Epoch ms of the next retry (soft bounces inside the retry window), else null. */
  nextRetryAt: number | null;
  /** The same as a delay from the moment the outcome was recorded, for the workflow's durable timer. */
  retryInMs: number | null;
  /** True when this result was read back from the log instead of sent now (activity retry after a crash). */
  replayed: boolean;
  /** Relay mode: the smart host accepted; the recipient stays taken_into_account until a report or the window's end. */
  awaitingReport?: boolean;
  /**
   * Deferred because the receiving site had no budget within the local activity's wait: the workflow hands the attempt
   * to sendRecipientMessageWhenSiteAllows with the reservation (absent for other deferrals and in older histories).
   */
  siteWait?: { site: string; reason: string; reservation: SiteSlotReservation | null };
}

/** The recipient's row after its relay confirmation window ended (sent unless a report said otherwise). */
export interface ConfirmedRecipient {
  status: EfsStatus;
  failureType: FailureType | null;
  failureReason: FailureReason | null;
  /** True when this call made it sent (no report arrived); false when a report had already decided. */
  confirmedByWindow: boolean;
}

export interface CreateFromTemplateInput {
  templateId: string;
  /** The run's workflow ID: one delivery per run key, however often the activity is retried. */
  runKey: string;
  /** When the run started (epoch ms), shown in the delivery's name. */
  runAtMs: number;
}

export interface CreatedFromTemplate {
  deliveryId: string;
  recipients: number;
  /** The delivery workflow's input, resolved when the delivery was created (as for a delivery created through the API). */
  workflowInput: DeliveryWorkflowInput;
  /** False when an earlier attempt of this run had already created the delivery. */
  created: boolean;
}

export interface DeliveryActivities {
  /** Exclusions, content checks, counts and wave plan; the full report is stored on the delivery. */
  analyseDelivery(input: AnalyseDeliveryInput): Promise<AnalysisSummary>;
  /** Mirrors the workflow's phase into the delivery table (read by the send activity and the API), with why it is paused. */
  setDeliveryPhase(input: { deliveryId: string; phase: DeliveryPhase; pauseReason?: PauseReason | null }): Promise<void>;
  updateDeliveryDraft(input: { deliveryId: string; changes: DraftChanges }): Promise<void>;
  setContactDate(input: { deliveryId: string; contactDateMs: number | null }): Promise<void>;
  /** Hands the next page of recipients to the sending stage; returns their ids and domains (never addresses). */
  claimRecipientPage(input: ClaimRecipientPageInput): Promise<HandedOverRecipient[]>;
  /** The KPIs, and the safety stop's verdict when a sending delivery's last N attempts pass its thresholds. */
  readDeliveryKpis(input: { deliveryId: string }): Promise<DeliveryKpis & { safetyStop?: SafetyStopVerdict }>;
  /** Every recipient not handed over yet → cancelled, in chunks with a heartbeat between them; returns how many. */
  cancelPendingRecipients(input: { deliveryId: string }): Promise<number>;
}

export interface RecipientActivities {
  /** Builds the recipient's message and returns only its DKIM signature; the body never enters the history. */
  signRecipientMessage(input: SignInput): Promise<SignResult>;
  /** One SMTP attempt, recorded before and after, never repeated once the receiver accepted the message. */
  sendRecipientMessage(input: SendInput): Promise<SendOutcome>;
  /** The same attempt for a message that waits for its site's budget: a regular activity the server retries at the slot. */
  sendRecipientMessageWhenSiteAllows(input: SendInput): Promise<SendOutcome>;
  /** Relay mode, window over with no report: taken_into_account → sent (source confirmation_window), idempotent. */
  confirmAfterReportWindow(input: { deliveryId: string; recipientId: number }): Promise<ConfirmedRecipient>;
}

export interface ProofActivities {
  sendProofs(input: ProofInput): Promise<ProofResult[]>;
}

export interface RecurringActivities {
  createDeliveryFromTemplate(input: CreateFromTemplateInput): Promise<CreatedFromTemplate>;
}

export type Activities = DeliveryActivities & RecipientActivities & ProofActivities & RecurringActivities & WebhookActivities;

// ---------------------------------------------------------------------------------------------------------------
// webhookEndpointWorkflow: one per webhook subscription (docs/webhooks.md)
// ---------------------------------------------------------------------------------------------------------------

export function webhookEndpointWorkflowId(subscriptionId: string): string {
  return `webhook-endpoint-${subscriptionId}`;
}

export interface WebhookEndpointInput {
  subscriptionId: string;
  /** Carried over continue-as-new. */
  resume?: WebhookEndpointResume;
}

export interface WebhookEndpointResume {
  disabled: boolean;
  disabledReason: string | null;
  messagesDelivered: number;
  eventsDelivered: number;
}

/** The endpoint's live state (the `webhookEndpointState` query). */
export interface WebhookEndpointView {
  subscriptionId: string;
  /** waiting: long-polling the outbox; delivering: a message is being sent or retried; disabled: waits for enable. */
  phase: 'waiting' | 'delivering' | 'disabled';
  /** The message being sent (the webhook-id), while delivering. */
  messageId: string | null;
  disabledReason: string | null;
  messagesDelivered: number;
  eventsDelivered: number;
}

export const webhookEndpointStateQuery = defineQuery<WebhookEndpointView>('webhookEndpointState');
/** The subscription was enabled again (the API wrote it first): resume from the cursor. */
export const webhookEnableSignal = defineSignal('webhookEnable');
/** The subscription was disabled through the API (written first): stop waiting or retrying at once. */
export const webhookDisableSignal = defineSignal<[WebhookDisableRequest]>('webhookDisable');
export interface WebhookDisableRequest {
  reason: string | null;
}

/** How a message is retried: read from the worker's settings with each message, so a change applies to the next one. */
export interface WebhookRetryTunables {
  initialIntervalMs: number;
  maximumIntervalMs: number;
  /** After this long without success, the endpoint is disabled. */
  windowMs: number;
  /** Time limit of one HTTP attempt. */
  attemptTimeoutMs: number;
}

export type WebhookPollResult =
  | { kind: 'message'; messageId: string; eventCount: number; retry: WebhookRetryTunables }
  /** Nothing new within the long poll's wait. */
  | { kind: 'idle' }
  | { kind: 'disabled'; reason: string | null }
  /** The subscription was deleted. */
  | { kind: 'gone' };

export interface WebhookDelivered {
  statusCode: number | null;
  eventCount: number;
}

export interface WebhookActivities {
  /** Long poll: returns the next message to send (cut from the outbox), or idle after about a minute; heartbeats. */
  awaitWebhookMessage(input: { subscriptionId: string }): Promise<WebhookPollResult>;
  /** One signed POST of the message, logged; throws on anything but a 2xx (retried by the activity's retry policy). */
  deliverWebhookMessage(input: { subscriptionId: string; messageId: string }): Promise<WebhookDelivered>;
  /** Disables the subscription with the reason the API shows: the retry window is over, or the endpoint said 410. */
  disableWebhookEndpoint(input: { subscriptionId: string; cause: 'retry_window' | 'gone'; windowMs: number }): Promise<{ reason: string }>;
}
