/** Every signal, query and update of the project's workflows, defined once for workflows and clients alike. */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { DeliveryKpis, EfsStatus } from '../domain/efs-status';
import type { FailureReason, FailureType, RetryClass } from '../domain/failure';
import type { SmtpReply } from '../domain/smtp-reply';
import type { AnalysisSummary, HandedOverRecipient } from '../activities';
import type { DraftChanges } from '../activities/delivery-activities';

export const TASK_QUEUE_DEFAULT = 'email-delivery';

export type DeliveryPhase =
  | 'analysing'
  | 'awaiting_confirmation'
  | 'analysis_failed'
  | 'scheduled'
  | 'sending'
  | 'paused'
  | 'completed'
  | 'cancelled';

export interface DeliveryWorkflowInput {
  deliveryId: string;
  autoConfirm: boolean;
  /** Epoch ms of the contact date; absent means as soon as confirmed. */
  contactDateMs?: number;
  validitySeconds: number;
  /** Recipients handed over per batch workflow (and per page read from Postgres). */
  pageSize?: number;
  /** Most recipients handed over whose first attempt is not finished yet. */
  maxInFlight?: number;
  kpiRefreshMs?: number;
  /** Carried over continue-as-new. */
  resume?: DeliveryResumeState;
}

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
}

export const deliveryStateQuery = defineQuery<DeliveryStateView>('deliveryState');
export const deliveryKpisQuery = defineQuery<DeliveryKpis | null>('kpis');

export interface ConfirmRequest {
  confirmedBy?: string;
}
export const confirmUpdate = defineUpdate<DeliveryPhase, [ConfirmRequest]>('confirm');
/** No new message starts while paused; retries already waiting keep their timers. */
export const pauseUpdate = defineUpdate<DeliveryPhase, [{ reason?: string }]>('pause');
export const resumeUpdate = defineUpdate<DeliveryPhase, []>('resume');
/** Recipients not yet handed over end as cancelled; in-flight ones finish. */
export const cancelUpdate = defineUpdate<DeliveryPhase, [{ reason?: string }]>('cancel');
/** Changes the contact date (null: as soon as confirmed) until sending starts. */
export const rescheduleUpdate = defineUpdate<DeliveryPhase, [{ contactDateMs: number | null }]>('reschedule');
/** Changes content or options before confirmation; analysis runs again. */
export const editDraftUpdate = defineUpdate<DeliveryPhase, [DraftChanges]>('editDraft');

export interface RecipientWorkflowInput {
  deliveryId: string;
  recipientId: number;
  domain: string;
  validityEndsAtMs: number;
  /** Local-time sending: the message waits until then (epoch ms). */
  sendAtMs?: number | null;
}

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
}

export const recipientStateQuery = defineQuery<RecipientStateView>('recipientState');

export interface RecipientBatchInput {
  deliveryId: string;
  validityEndsAtMs: number;
  recipients: HandedOverRecipient[];
}

export function deliveryWorkflowId(deliveryId: string): string {
  return `delivery-${deliveryId}`;
}
export function recipientWorkflowId(deliveryId: string, recipientId: number): string {
  return `delivery-${deliveryId}-r-${recipientId}`;
}
