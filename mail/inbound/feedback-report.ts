/** RFC 5965 (ARF) feedback report fields: Feedback-Type, Original-Rcpt-To, Original-Mail-From. */

export interface FeedbackReportFields {
  feedbackType: string | null;
  /** Every Original-Rcpt-To, lower case, in order (a report may name several). */
  originalRcptTo: string[];
  originalMailFrom: string | null;
}

function address(value: string): string | null {
  const m = /<?([^\s<>;"]+@[^\s<>;"]+?)>?\s*$/.exec(value.trim());
  return m ? m[1].toLowerCase() : null;
}

export function parseFeedbackReport(text: string): FeedbackReportFields {
  const out: FeedbackReportFields = { feedbackType: null, originalRcptTo: [], originalMailFrom: null };
  for (const line of text.replace(/\r/g, '').split('\n')) {
    const m = /^([A-Za-z-]+)\s*:\s*(.*)$/.exec(line);
    if (!m) continue;
    const name = m[1].toLowerCase();
    const value = m[2].trim();
    if (name === 'feedback-type' && !out.feedbackType) out.feedbackType = (/^[A-Za-z0-9-]+/.exec(value)?.[0] ?? '').toLowerCase() || null;
    else if (name === 'original-rcpt-to' || name === 'removal-recipient') {
      const a = address(value);
      if (a && !out.originalRcptTo.includes(a)) out.originalRcptTo.push(a);
    } else if (name === 'original-mail-from' && !out.originalMailFrom) out.originalMailFrom = address(value);
  }
  return out;
}
