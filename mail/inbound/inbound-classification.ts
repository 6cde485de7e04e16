/**
 * What the inbound side learns from one message received at the bounce domain (a DSN, a non-standard bounce, an
 * auto-reply or a complaint report): the shape shared by the classifier, the SMTP listener, `POST /api/inbound`,
 * the CLI classifier and the effect on the delivery log.
 */
import type { FailureReason } from '../../domain/failure';

/** What kind of message it is. `bounce` is a non-standard bounce qualified by the inbound rules. */
export type InboundKind = 'dsn' | 'bounce' | 'arf' | 'auto_reply' | 'unknown';

/**
 * What the message says about one recipient.
 * - hard: the address will never work (quarantined at once);
 * - soft: the message failed or is delayed for a reason that says nothing final about the address;
 * - ignored: nothing to do (auto-reply, unparseable noise);
 * - complaint: the recipient reported the message (ARF): the address goes on the denylist;
 * - delivered: a delivery report (Action delivered, or relayed by the last DSN-capable hop).
 */
export type InboundResultType = 'hard' | 'soft' | 'ignored' | 'complaint' | 'delivered';

/** RFC 3464 Action values (lower case); null when the message is not a DSN. */
export type DsnAction = 'failed' | 'delayed' | 'delivered' | 'relayed' | 'expanded';

export interface InboundRecipientResult {
  /** The address the report is about (Final-Recipient, else Original-Recipient, else the one the text names), lower case; null when none is found. */
  recipient: string | null;
  /** Original-Recipient when the DSN gives one (our ORCPT), lower case. */
  originalRecipient: string | null;
  action: DsnAction | null;
  type: InboundResultType;
  /** One of the design's fixed reasons; null for `delivered` and `complaint`. */
  reason: FailureReason | null;
  /** RFC 3463 enhanced status code ("5.1.1"), when found. */
  status: string | null;
  /** Basic SMTP reply code (550), when found. */
  replyCode: number | null;
  /** Diagnostic-Code text (or the reply text found in the body), without the "smtp;" type. */
  diagnosticCode: string | null;
  remoteMta: string | null;
  /** What decided: "dsn:status", "smtp-rule:<id>", "inbound-rule:<id>", "arf", "rfc3834", ... */
  rule: string;
}

export interface InboundClassification {
  kind: InboundKind;
  /** In the order the message reports them; one entry for a message about one address. */
  recipients: InboundRecipientResult[];
  /** Original-Envelope-Id of the DSN (the ENVID we sent), when present. */
  originalEnvelopeId: string | null;
  /** Message-ID of the original message, found in the returned headers or the ARF report, without angle brackets. */
  originalMessageId: string | null;
  /** Return-Path / envelope sender of the original message found in the returned headers (a VERP address), lower case. */
  originalReturnPath: string | null;
  /** ARF Feedback-Type (abuse, fraud, opt-out, ...) when kind is `arf`. */
  feedbackType: string | null;
  /** Of the inbound message itself, for the audit table. */
  messageId: string | null;
  from: string | null;
  subject: string | null;
}
