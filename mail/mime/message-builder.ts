/** Builds a recipient's MIME message deterministically, so the send activity can rebuild the bytes the DKIM activity signed. */
import { createHash } from 'node:crypto';
import MailComposer from 'nodemailer/lib/mail-composer';
import type { MessageContent } from '../../domain/message-template';

export interface MessageEnvelopeFields {
  from: { address: string; name: string | null };
  to: string;
  replyTo: string | null;
  /** Stable per delivery and recipient: the same on every attempt. */
  messageId: string;
  /** The Date header: the first handover instant, so a retry rebuilds identical bytes. */
  date: Date;
  listUnsubscribeUrl: string;
  listUnsubscribeMailto: string | null;
  /** Gmail's Feedback-ID (campaign:customer:sender), lets feedback loops group complaints per delivery. */
  feedbackId: string;
  /** Marks test sends made before confirmation. */
  proof?: boolean;
}

export function stableMessageId(deliveryId: string, recipientId: number, fromDomain: string): string {
  return `<${deliveryId}.${recipientId}@${fromDomain}>`;
}

/** Returns the full RFC 5322 message (CRLF line ends) without any DKIM-Signature header. */
export async function buildMessage(content: MessageContent, f: MessageEnvelopeFields): Promise<Buffer> {
  const unsubscribe = [`<${f.listUnsubscribeUrl}>`];
  if (f.listUnsubscribeMailto) unsubscribe.push(`<mailto:${f.listUnsubscribeMailto}>`);
  const headers: Record<string, string> = {
    'List-Unsubscribe': unsubscribe.join(', '),
    'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
    'Feedback-ID': f.feedbackId,
  };
  if (f.proof) headers['X-Proof'] = 'yes';
  const composer = new MailComposer({
    from: f.from.name ? { name: f.from.name, address: f.from.address } : f.from.address,
    to: f.to,
    replyTo: f.replyTo ?? undefined,
    subject: content.subject,
    html: content.html ?? undefined,
    text: content.text ?? undefined,
    messageId: f.messageId,
    date: f.date,
    headers,
    // Multipart boundaries are random by default; derive them from the Message-ID to make the bytes reproducible.
    baseBoundary: createHash('sha256').update(f.messageId).digest('hex').slice(0, 24),
    // Nothing else varies between builds: nodemailer picks transfer encodings from the content alone.
  } as ConstructorParameters<typeof MailComposer>[0] & { baseBoundary: string });
  return composer.compile().build();
}
