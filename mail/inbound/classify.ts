/**
 * Classifies one message received at the bounce domain (DSN, non-standard bounce, auto-reply, complaint report):
 * DSN fields first (qualified with the SMTP qualification rules), then the inbound rules for what a reply does not say.
 * Used by the SMTP listener, POST /api/inbound and the CLI (scripts/classify.ts). Never throws on bad input.
 */
import { simpleParser, type ParsedMail } from 'mailparser';
import type { CompiledRule } from '../../domain/bounce-rules/qualification-rule';
import { qualifySmtpReply } from '../../domain/bounce-rules/qualify-smtp-reply';
import { matchInboundRules, type CompiledInboundRule, type InboundRuleKind, type InboundRuleTables } from '../../domain/bounce-rules/inbound-rule';
import { getDefaultInboundRuleTables } from '../../domain/bounce-rules/default-inbound-rules';
import type { FailureReason, FailureType } from '../../domain/failure';
import type { DsnAction, InboundClassification, InboundKind, InboundRecipientResult } from './inbound-classification';
import { parseDsnFields, type DsnRecipientFields } from './dsn-fields';
import { findInlineReturnedHeaders, mergeReturnedHeaders, parseReturnedHeaders, type ReturnedHeaders } from './returned-headers';
import { findBodyRecipients, humanPart, refusedAtData, refusedAtMailFrom, repliedToRcpt, stripMimePartHeaders } from './bounce-body';
import { replyInText } from './reply-in-text';
import { parseFeedbackReport } from './feedback-report';
import { autoReplyHeader } from './auto-reply';

export type { InboundRuleTables } from '../../domain/bounce-rules/inbound-rule';

const DSN_PART = /^(message|text)\/(global-)?delivery-status$/;
const RETURNED_PART = /^(message\/(rfc822|global|rfc822-headers|global-headers)|text\/(rfc822-headers|rfc822))$/;
const FEEDBACK_PART = /^message\/feedback-report$/;
const ACTIONS: readonly DsnAction[] = ['failed', 'delayed', 'delivered', 'relayed', 'expanded'];
/** Bounce kinds of inbound rules (auto-replies are looked for separately). */
const FAILURE_KINDS: readonly InboundRuleKind[] = ['bounce', 'delayed'];

/** What the classifier knows about the message while it decides. */
interface MessageView {
  from: string;
  fromAddress: string | null;
  subject: string;
  /** The text body (or the HTML one as text), delivery-status fields included when the MTA put them there. */
  text: string;
  /** The text before any returned message. */
  human: string;
  tables: InboundRuleTables;
}

interface Verdict {
  type: FailureType;
  reason: FailureReason;
  rule: string;
  status: string | null;
  replyCode: number | null;
  diagnosticCode: string | null;
  /** A delay warning recognised by an inbound rule. */
  delayed: boolean;
}

function stripAngles(id: string | undefined | null): string | null {
  if (!id) return null;
  const s = id.trim().replace(/^<|>$/g, '').trim();
  return s || null;
}

function htmlAsText(html: string): string {
  return html
    .replace(/<(script|style)[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<br\s*\/?>|<\/(p|div|tr|li|h\d)>/gi, '\n')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&nbsp;/gi, ' ')
    .replace(/&lt;/gi, '<')
    .replace(/&gt;/gi, '>')
    .replace(/&amp;/gi, '&')
    .replace(/&quot;/gi, '"')
    .replace(/[ \t]+/g, ' ');
}

function unknown(partial: Partial<InboundClassification> = {}): InboundClassification {
  return {
    kind: 'unknown',
    recipients: [],
    originalEnvelopeId: null,
    originalMessageId: null,
    originalReturnPath: null,
    feedbackType: null,
    messageId: null,
    from: null,
    subject: null,
    ...partial,
  };
}

/** A rule that only looks at a code (no text, no domain, at most an enhanced code class) says little; inbound rules may know better. */
function isWeakSmtpRule(rule: CompiledRule | undefined): boolean {
  if (!rule) return true;
  return rule.pattern === null && !rule.domain && (rule.enhancedCode === null || rule.enhancedCode.endsWith('.'));
}

const weakCache = new WeakMap<readonly CompiledRule[], Map<string, boolean>>();
function weakness(smtp: readonly CompiledRule[]): Map<string, boolean> {
  let m = weakCache.get(smtp);
  if (!m) {
    m = new Map(smtp.map((r) => [r.id, isWeakSmtpRule(r)]));
    weakCache.set(smtp, m);
  }
  return m;
}

const byIdCache = new WeakMap<readonly CompiledRule[], Map<string, CompiledRule>>();
function ruleById(smtp: readonly CompiledRule[], id: string): CompiledRule | undefined {
  let m = byIdCache.get(smtp);
  if (!m) {
    m = new Map(smtp.map((r) => [r.id, r]));
    byIdCache.set(smtp, m);
  }
  return m.get(id);
}

/**
 * Whether a hard user_unknown answered to the message data is read as a filter's refusal. Not when the reporting MTA's
 * own Status says X.1.1 (it classified the reply as a bad mailbox), nor when a provider rule matched: a provider rule
 * knows that provider answers unknown users after DATA (Yahoo's "dd This user doesn't have a yahoo.com account").
 */
function dataPhaseApplies(smtp: readonly CompiledRule[], ruleId: string, status: string | null): boolean {
  if (status === '5.1.1') return false;
  const rule = ruleById(smtp, ruleId);
  return rule === undefined || rule.provider === 'generic';
}

/** The generic user-unknown wording (rule generic-user-unknown), also used by the rules that qualify it by its code. */
const USER_UNKNOWN_RULE_ID = 'generic-user-unknown';
/** True for a rule with the generic user-unknown wording as its pattern but another qualification (decided by its code). */
function isUserUnknownWordingRule(smtp: readonly CompiledRule[], ruleId: string): boolean {
  const rule = ruleById(smtp, ruleId);
  const generic = ruleById(smtp, USER_UNKNOWN_RULE_ID);
  return rule !== undefined && generic !== undefined && rule.id !== generic.id && rule.pattern !== null && rule.pattern === generic.pattern;
}

const splitCache = new WeakMap<readonly CompiledInboundRule[], { wording: CompiledInboundRule[]; envelope: CompiledInboundRule[] }>();
/** Rules that read the text (wording) apart from rules on the sender or subject only (envelope). */
function splitRules(rules: readonly CompiledInboundRule[]) {
  let s = splitCache.get(rules);
  if (!s) {
    s = { wording: rules.filter((r) => r.bodyRegex !== null), envelope: rules.filter((r) => r.bodyRegex === null) };
    splitCache.set(rules, s);
  }
  return s;
}

function fromInboundRule(rule: CompiledInboundRule, base: Omit<Verdict, 'type' | 'reason' | 'rule' | 'delayed'>): Verdict {
  return { ...base, type: rule.type, reason: rule.reason, rule: `inbound-rule:${rule.id}`, delayed: rule.kind === 'delayed' };
}

/**
 * Qualifies one failed or delayed recipient: the SMTP rules on its reply (Diagnostic-Code or error lines), unless only a
 * code-level rule or the fallback matched, in which case the inbound rules read its lines, then the whole human text.
 */
function qualifyFailure(view: MessageView, recipient: string | null, source: string, status: string | null, defaultClass: 4 | 5, fromDsn: boolean): Verdict {
  const reply = replyInText(source, status, defaultClass);
  const domain = recipient && recipient.includes('@') ? recipient.slice(recipient.lastIndexOf('@') + 1) : undefined;
  const q = qualifySmtpReply(reply, view.tables.smtp, domain);
  const base = {
    status: status ?? reply.enhancedCode,
    replyCode: reply.codeFound ? reply.code : null,
    diagnosticCode: source.trim() ? source.replace(/\s+/g, ' ').trim() : null,
  };
  // The fallback is only worth keeping when the enhanced code itself says the address is invalid (hard).
  const weak = q.ruleId === 'default' ? q.type !== 'hard' : (weakness(view.tables.smtp).get(q.ruleId) ?? true);
  if (!weak) {
    if (q.type === 'hard' && q.reason === 'user_unknown' && dataPhaseApplies(view.tables.smtp, q.ruleId, status) && refusedAtData(source, view.human, recipient)) {
      return { ...base, type: 'soft', reason: 'refused', rule: `smtp-rule:${q.ruleId}+data-phase`, delayed: false };
    }
    // A user-unknown wording that a rule read as a refusal because of its code (X.2, X.3, X.7) is the mailbox after all
    // when the notice shows it answered RCPT TO: the command names what was refused (RFC 5321 3.3).
    if (q.type === 'soft' && q.reason === 'refused' && isUserUnknownWordingRule(view.tables.smtp, q.ruleId) && repliedToRcpt(source, view.human, recipient)) {
      return { ...base, type: 'hard', reason: 'user_unknown', rule: `smtp-rule:${q.ruleId}+rcpt-phase`, delayed: false };
    }
    // A reply to MAIL FROM is about our envelope sender: whatever it says of a user or a domain, the recipient is not in question.
    if (q.type === 'hard' && refusedAtMailFrom(source, view.human, recipient)) {
      return { ...base, type: 'soft', reason: 'refused', rule: `smtp-rule:${q.ruleId}+sender-phase`, delayed: false };
    }
    return { ...base, type: q.type, reason: q.reason, rule: q.ruleId === 'default' ? (fromDsn && status ? 'dsn:status' : 'default') : `smtp-rule:${q.ruleId}`, delayed: false };
  }
  // No rule read the reply itself, but the notice shows which command it answered: a reply to MAIL FROM or to our
  // greeting refuses our sender or our client, a 5xx to the message data refuses the message (RFC 5321 3.3). Either
  // way this recipient was not refused, the message was: soft refused, whatever wording the rest of the notice has.
  if (reply.codeFound && refusedAtMailFrom(source, view.human, recipient)) {
    return { ...base, type: 'soft', reason: 'refused', rule: `${phaseRuleName(q.ruleId, fromDsn, status)}+sender-phase`, delayed: false };
  }
  if (reply.codeFound && reply.code >= 500 && refusedAtData(source, view.human, recipient)) {
    return { ...base, type: 'soft', reason: 'refused', rule: `${phaseRuleName(q.ruleId, fromDsn, status)}+data-phase`, delayed: false };
  }
  // Wording rules on this recipient's lines, then on the whole human text; rules on the sender or subject alone last.
  const { wording, envelope } = splitRules(view.tables.inbound);
  const matched =
    (source.trim() ? matchInboundRules({ from: view.from, subject: view.subject, body: source }, wording, FAILURE_KINDS) : null) ??
    matchInboundRules({ from: view.from, subject: view.subject, body: view.human }, wording, FAILURE_KINDS) ??
    matchInboundRules({ from: view.from, subject: view.subject, body: view.human }, envelope, FAILURE_KINDS);
  if (matched && (matched.bodyRegex !== null || q.ruleId === 'default')) {
    if (matched.type === 'hard' && refusedAtMailFrom(source, view.human, recipient)) {
      return { ...base, type: 'soft', reason: 'refused', rule: `inbound-rule:${matched.id}+sender-phase`, delayed: false };
    }
    return fromInboundRule(matched, base);
  }
  const rule = q.ruleId !== 'default' ? `smtp-rule:${q.ruleId}` : fromDsn && status ? 'dsn:status' : 'default';
  return { ...base, type: q.type, reason: q.reason, rule, delayed: false };
}

/** The rule name a command-phase verdict is reported under: the code-level SMTP rule that matched, else the fallback. */
function phaseRuleName(ruleId: string, fromDsn: boolean, status: string | null): string {
  return ruleId !== 'default' ? `smtp-rule:${ruleId}` : fromDsn && status ? 'dsn:status' : 'default';
}

function result(
  recipient: string | null,
  originalRecipient: string | null,
  action: DsnAction | null,
  verdict: Pick<Verdict, 'rule' | 'status' | 'replyCode' | 'diagnosticCode'> & { type: InboundRecipientResult['type']; reason: FailureReason | null },
  remoteMta: string | null,
): InboundRecipientResult {
  return {
    recipient,
    originalRecipient,
    action,
    type: verdict.type,
    reason: verdict.reason,
    status: verdict.status,
    replyCode: verdict.replyCode,
    diagnosticCode: verdict.diagnosticCode,
    remoteMta,
    rule: verdict.rule,
  };
}

function dsnRecipient(view: MessageView, f: DsnRecipientFields): InboundRecipientResult {
  const action = (ACTIONS as readonly string[]).includes(f.action ?? '') ? (f.action as DsnAction) : null;
  const recipient = f.finalRecipient ?? f.originalRecipient;
  if (action === 'delivered' || action === 'relayed' || action === 'expanded') {
    return result(
      recipient,
      f.originalRecipient,
      action,
      { type: 'delivered', reason: null, rule: `dsn:action-${action}`, status: f.status, replyCode: null, diagnosticCode: f.diagnosticCode },
      f.remoteMta,
    );
  }
  const delayed = action === 'delayed' || (action === null && f.status !== null && f.status.startsWith('4.') && !f.diagnosticCode);
  // Without a Diagnostic-Code, the notice's own lines about this recipient carry the reply (OpenSMTPD, Postfix).
  const source = f.diagnosticCode ?? (recipient ? (findBodyRecipients(view.human).find((b) => b.recipient === recipient)?.segment ?? '') : '');
  const verdict = qualifyFailure(view, recipient, source, f.status, delayed ? 4 : 5, true);
  // A delay says nothing final: soft whatever the reply (the effect only updates the reason).
  const type = delayed || verdict.delayed ? 'soft' : verdict.type;
  return result(recipient, f.originalRecipient, action ?? (delayed ? 'delayed' : 'failed'), { ...verdict, type }, f.remoteMta);
}

function header(mail: ParsedMail, name: string): string | null {
  const v = mail.headers.get(name);
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && 'value' in (v as object)) return String((v as { value: unknown }).value);
  return String(v);
}

/**
 * What a message received at the bounce domain says, per recipient. `rules` defaults to the seed tables
 * (rules/inbound-rules.json and rules/smtp-qualification-rules.json). Never throws: unreadable input is kind `unknown`.
 */
export async function classifyInboundMessage(raw: Buffer | string, rules?: InboundRuleTables): Promise<InboundClassification> {
  const tables = rules ?? getDefaultInboundRuleTables();
  const parts = mboxMessages(raw);
  if (parts === null) return classifyOne(raw, tables);
  const results: InboundClassification[] = [];
  // Split as latin1 (one char per byte) so that a Buffer's 8-bit parts go back to the parser byte for byte.
  for (const part of parts) results.push(await classifyOne(typeof raw === 'string' ? part : Buffer.from(part, 'latin1'), tables));
  // The first message describes the whole; the others add their recipients when they are the same kind of report.
  const [first, ...rest] = results;
  return { ...first, recipients: [...first.recipients, ...rest.filter((r) => r.kind === first.kind).flatMap((r) => r.recipients)] };
}

/** An mbox "From " postmark line (the envelope sender and an asctime date), which starts each message of an mbox file. */
const MBOX_POSTMARK = /^From \S+ +(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} \d\d:\d\d(?::\d\d)? (?:[A-Z]{3,4} )?\d{4}[ \t]*$/;

/**
 * The messages of an mbox (notices saved from a mail client or forwarded in bulk): null unless the input starts with a
 * postmark line. Each message runs from one postmark, at the start of the input or after an empty line, to the next.
 */
function mboxMessages(raw: Buffer | string): string[] | null {
  const head = typeof raw === 'string' ? raw.slice(0, 200) : raw.subarray(0, 200).toString('latin1');
  if (!MBOX_POSTMARK.test(head.split(/\r?\n/, 1)[0])) return null;
  const text = typeof raw === 'string' ? raw : raw.toString('latin1');
  const lines = text.split('\n');
  const messages: string[] = [];
  let current: string[] | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '');
    if (MBOX_POSTMARK.test(line) && (i === 0 || lines[i - 1].replace(/\r$/, '') === '')) {
      if (current) messages.push(current.join('\n'));
      current = [];
      continue;
    }
    current?.push(lines[i]);
  }
  if (current) messages.push(current.join('\n'));
  return messages;
}

async function classifyOne(raw: Buffer | string, tables: InboundRuleTables): Promise<InboundClassification> {
  let mail: ParsedMail;
  try {
    mail = await simpleParser(raw, { skipImageLinks: true, skipTextToHtml: true, skipTextLinks: true, skipHtmlToText: true });
  } catch {
    return unknown();
  }
  try {
    return classifyParsed(mail, tables, bodyOf(raw));
  } catch {
    // A malformed message must not stop the listener: report it as unknown, keep what was read.
    return unknown({ messageId: stripAngles(mail.messageId), from: mail.from?.text ?? null, subject: mail.subject ?? null });
  }
}

function classifyParsed(mail: ParsedMail, tables: InboundRuleTables, rawBody: string): InboundClassification {
  const fromAddress = mail.from?.value?.[0]?.address?.toLowerCase() ?? null;
  const subject = mail.subject ?? '';
  const from = mail.from?.text ?? '';
  let text = (mail.text && mail.text.trim() ? mail.text : typeof mail.html === 'string' ? htmlAsText(mail.html) : '').replace(/\r/g, '');
  if (mail.attachments.length === 0 && (!text.trim() || text.trim() === 'false') && rawBody) {
    // A multipart whose boundary parameter does not match its body (some MTAs get it wrong): read the body as text.
    text = stripMimePartHeaders(rawBody);
  }
  const view: MessageView = { from, fromAddress, subject, text, human: humanPart(text), tables };
  const base = {
    messageId: stripAngles(mail.messageId),
    from: from || null,
    subject: mail.subject ?? null,
  };

  const parts = mail.attachments.map((a) => ({ type: (a.contentType ?? '').toLowerCase(), content: a.content ? a.content.toString('utf8') : '' }));
  const returned = mergeReturnedHeaders(
    ...parts.filter((p) => RETURNED_PART.test(p.type)).map((p) => parseReturnedHeaders(p.content)),
    findInlineReturnedHeaders(text.slice(view.human.length)),
  );
  const original = { originalMessageId: stripAngles(returned.messageId), originalReturnPath: returned.returnPath };

  // Complaint reports (RFC 5965).
  const contentType = mail.headers.get('content-type') as { value?: string; params?: Record<string, string> } | undefined;
  const reportType = contentType?.params?.['report-type']?.toLowerCase() ?? null;
  const feedbackPart = parts.find((p) => FEEDBACK_PART.test(p.type));
  if (feedbackPart || reportType === 'feedback-report') {
    return arf(feedbackPart?.content ?? text, returned, base, original);
  }

  // Microsoft's complaint feedback (JMRP): not ARF, the complained-about message attached with the recipient in
  // X-HmXmrOriginalRecipient.
  const jmrp = [...parts.filter((p) => RETURNED_PART.test(p.type)).map((p) => p.content), text, rawBody]
    .map((c) => /^X-HmXmrOriginalRecipient:[ \t]*<?([^\s<>]+@[^\s<>]+)>?/im.exec(c)?.[1])
    .find(Boolean);
  if (jmrp) {
    return {
      kind: 'arf',
      recipients: [result(jmrp.toLowerCase(), null, null, { type: 'complaint', reason: null, rule: 'arf:jmrp', status: null, replyCode: null, diagnosticCode: null }, null)],
      originalEnvelopeId: null,
      ...original,
      feedbackType: 'abuse',
      ...base,
    };
  }

  // Delivery status notifications (RFC 3464), in their own part or inline.
  const dsnParts = parts.filter((p) => DSN_PART.test(p.type));
  let dsn = parseDsnFields(dsnParts.map((p) => p.content).join('\n\n'));
  if (dsn.recipients.length === 0) dsn = parseDsnFields(text);
  if (dsn.recipients.length > 0) {
    return {
      kind: 'dsn',
      recipients: dsn.recipients.map((f) => dsnRecipient(view, f)),
      originalEnvelopeId: dsn.originalEnvelopeId,
      ...original,
      feedbackType: null,
      ...base,
    };
  }

  // Amazon SES event notifications sent by mail (SNS): a JSON document; a Delivery event reports delivered recipients.
  const sesDelivered = sesDeliveryRecipients(text);
  if (sesDelivered.length > 0) {
    return {
      kind: 'dsn',
      recipients: sesDelivered.map((r) =>
        result(r, null, 'delivered', { type: 'delivered', reason: null, rule: 'ses:delivery', status: null, replyCode: null, diagnosticCode: null }, null),
      ),
      originalEnvelopeId: null,
      ...original,
      feedbackType: null,
      ...base,
    };
  }

  // An unsubscribe request by mail (RFC 2369 mailto: List-Unsubscribe, subject "unsubscribe"): the recipient opts out.
  if (/^\s*unsubscribe\s*$/i.test(subject) && fromAddress) {
    return {
      kind: 'arf',
      recipients: [result(fromAddress, null, null, { type: 'complaint', reason: null, rule: 'rfc2369:unsubscribe', status: null, replyCode: null, diagnosticCode: null }, null)],
      originalEnvelopeId: null,
      ...original,
      feedbackType: 'opt-out',
      ...base,
    };
  }

  // A bounce the inbound rules recognise (its sender, subject or wording) is a bounce even when the MTA marks it
  // Auto-Submitted: auto-replied, as Exim does.
  const wholeRule = matchInboundRules({ from, subject, body: view.human }, tables.inbound, FAILURE_KINDS);
  if (!wholeRule) {
    // Auto-replies: RFC 3834 headers, then the inbound rules' subjects and bodies.
    const byHeader = autoReplyHeader((name) => header(mail, name));
    const autoRule = byHeader ? null : matchInboundRules({ from, subject, body: view.human }, tables.inbound, ['auto_reply']);
    if (byHeader || autoRule) {
      const rule = byHeader ? 'rfc3834' : `inbound-rule:${autoRule!.id}`;
      return {
        kind: 'auto_reply',
        recipients: [result(fromAddress, null, null, { type: 'ignored', reason: 'error_ignored', rule, status: null, replyCode: null, diagnosticCode: null }, null)],
        originalEnvelopeId: null,
        ...original,
        feedbackType: null,
        ...base,
      };
    }
  }

  // Non-standard bounces: the addresses the body names, each qualified from its own lines.
  const ignore = new Set<string>([...(fromAddress ? [fromAddress] : []), ...addressesOf(mail.to), ...(returned.from ? [returned.from] : []), ...(returned.returnPath ? [returned.returnPath] : [])]);
  const found = findBodyRecipients(text, ignore);
  if (found.length === 0 && !wholeRule) return unknown({ ...base, ...original });
  const delayedMessage = wholeRule?.kind === 'delayed';
  const targets = found.length > 0 ? found : (returned.to.length ? returned.to : [null]).map((r) => ({ recipient: r, segment: '' }));
  const recipients = targets.map((t) => {
    const verdict = qualifyFailure(view, t.recipient, t.segment, null, delayedMessage ? 4 : 5, false);
    const delayed = delayedMessage || verdict.delayed;
    return result(t.recipient, null, delayed ? 'delayed' : 'failed', { ...verdict, type: delayed ? 'soft' : verdict.type }, null);
  });
  return { kind: 'bounce' as InboundKind, recipients, originalEnvelopeId: null, ...original, feedbackType: null, ...base };
}

/** Recipients of an Amazon SES "Delivery" notification (JSON in the text body); empty for anything else. */
function sesDeliveryRecipients(text: string): string[] {
  const start = text.indexOf('{"notificationType"');
  if (start < 0) return [];
  const end = text.lastIndexOf('}');
  if (end <= start) return [];
  try {
    const doc = JSON.parse(text.slice(start, end + 1)) as {
      notificationType?: string;
      delivery?: { recipients?: unknown };
      mail?: { destination?: unknown };
    };
    if (doc.notificationType !== 'Delivery') return [];
    const list = Array.isArray(doc.delivery?.recipients) ? doc.delivery.recipients : Array.isArray(doc.mail?.destination) ? doc.mail.destination : [];
    return list.filter((r): r is string => typeof r === 'string' && r.includes('@')).map((r) => r.toLowerCase());
  } catch {
    return [];
  }
}

/** The raw body after the header block, as text (only used when MIME parsing found nothing). */
function bodyOf(raw: Buffer | string): string {
  const s = typeof raw === 'string' ? raw : raw.toString('latin1');
  const i = s.search(/\r?\n\r?\n/);
  return i < 0 ? '' : s.slice(i).replace(/\r/g, '').trim();
}

function addressesOf(field: ParsedMail['to']): string[] {
  const list = Array.isArray(field) ? field : field ? [field] : [];
  return list.flatMap((a) => a.value.map((v) => (v.address ?? '').toLowerCase()).filter(Boolean));
}

function arf(
  reportText: string,
  returned: ReturnedHeaders,
  base: { messageId: string | null; from: string | null; subject: string | null },
  original: { originalMessageId: string | null; originalReturnPath: string | null },
): InboundClassification {
  const report = parseFeedbackReport(reportText);
  const addresses = report.originalRcptTo.length ? report.originalRcptTo : returned.to.length ? returned.to : [null];
  return {
    kind: 'arf',
    recipients: addresses.map((a) =>
      result(a, null, null, { type: 'complaint', reason: null, rule: 'arf', status: null, replyCode: null, diagnosticCode: null }, null),
    ),
    originalEnvelopeId: null,
    originalMessageId: original.originalMessageId,
    originalReturnPath: original.originalReturnPath ?? report.originalMailFrom,
    feedbackType: report.feedbackType,
    ...base,
  };
}
