/**
 * Recipients and their error lines in a bounce that is not a DSN (qmail, Exim, old Sendmail, Notes, carriers' own
 * formats): the human text before the returned message, split at the lines that name an address.
 */

export interface BodyRecipient {
  recipient: string;
  /** The lines about this recipient (its address line included), up to the next address or the returned message. */
  segment: string;
}

/**
 * Where the returned message starts inside a text body. Wording families: "below this line is a copy", "original
 * message follows", "---- The header of the original message", "Returned mail/message", "Enclosed is a copy".
 */
const RETURNED_MESSAGE_MARKER =
  /^(?:[ \t]*[-=_*]{2,}.*(?:below this line|original message|returned message|returned mail|copy of|header|headers|undelivered message|message text|unsent message|message follows|enclosed).*|.*below this line is a copy.*|[ \t]*original message follows.*|.*(?:original|returned|undelivered) message (?:header|headers|follows).*|.*(?:message )?headers follow\.?[ \t]*)$/im;
/** A header line that only starts a message's header block (a bounce's own prose never starts with it). */
const FIRST_HEADER = /^(?:Return-Path|Received|Delivered-To|DKIM-Signature|X-Original-To|Message-I[Dd]|MIME-Version|Authentication-Results|ARC-Seal|Content-Type):[ \t]/i;
const ANY_HEADER = /^[A-Za-z][A-Za-z0-9-]*:[ \t]/;

/** Index of the first line of a header block: a FIRST_HEADER line, or three header lines in a row. -1 when none. */
function headerBlockStart(lines: string[]): number {
  for (let i = 0; i < lines.length; i++) {
    if (FIRST_HEADER.test(lines[i])) return i;
    if (ANY_HEADER.test(lines[i])) {
      let n = 1;
      for (let j = i + 1; j < lines.length && n < 3; j++) {
        if (/^[ \t]+\S/.test(lines[j])) continue;
        if (!ANY_HEADER.test(lines[j])) break;
        n++;
      }
      if (n >= 3) return i;
    }
  }
  return -1;
}

/** An address alone on a line (maybe in <> or quotes, maybe followed by ":" or "..."), or "<addr>: text". */
const ADDRESS_LINE = /^[ \t]*(?:RCPT To:|To:|Recipient:|Recipient address:|Failed recipient:|Original-Recipient:|Addressed To:|\(?[0-9]+\)?)?[ \t]*["'<]?([^\s<>"'@:;,()]+@[A-Za-z0-9][A-Za-z0-9.-]*[A-Za-z0-9])["'>]?(?:\.\.\.|:|[ \t]*$|[ \t]+(?:\(|on\b|<<<|\.\.\.|-|SMTP|host\b))/i;

/** Sendmail's per-recipient summary line: "550 <a@b>... User unknown" (a reply code, the address, "...", the reason). */
const SENDMAIL_SUMMARY = /^[ \t]*[45]\d\d[ \t]+<?[^\s<>@]+@[^\s<>]+?>?\.\.\.[ \t]*\S/;

/**
 * A text body read raw because its multipart boundary did not match (see classify.ts): drops the MIME boundary lines and
 * the part headers after them, so that the part headers are not taken for a returned message's header block.
 */
export function stripMimePartHeaders(body: string): string {
  const lines = body.replace(/\r/g, '').split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (/^--\S+$/.test(lines[i].trim()) && i + 1 < lines.length && /^Content-[A-Za-z-]+:/i.test(lines[i + 1])) {
      i++;
      while (i < lines.length && lines[i].trim() !== '') i++;
      continue;
    }
    if (/^--\S+--$/.test(lines[i].trim())) continue;
    out.push(lines[i]);
  }
  return out.join('\n');
}

/** The part of `text` before the returned message. */
export function humanPart(text: string): string {
  const t = text.replace(/\r/g, '');
  let end = t.length;
  const marker = t.search(RETURNED_MESSAGE_MARKER);
  if (marker > 0) end = marker;
  const lines = t.slice(0, end).split('\n');
  const block = headerBlockStart(lines);
  if (block > 0) end = lines.slice(0, block).join('\n').length;
  return t.slice(0, end);
}

/** Addresses the bounce body reports, each with its lines, in the order they appear; `ignore` drops the bounce's own senders. */
export function findBodyRecipients(text: string, ignore: ReadonlySet<string> = new Set()): BodyRecipient[] {
  const lines = humanPart(text).split('\n');
  const found: Array<{ recipient: string; start: number }> = [];
  for (let i = 0; i < lines.length; i++) {
    const m = ADDRESS_LINE.exec(lines[i]);
    if (!m) continue;
    const address = m[1].toLowerCase().replace(/\.$/, '');
    if (ignore.has(address) || /^(mailer-daemon|postmaster)@/.test(address)) continue;
    found.push({ recipient: address, start: i });
  }
  if (found.length === 0) {
    // No address on a line of its own: the first addresses quoted in <> in the text ("There was an error delivering
    // your mail to <a@b>."), each with the rest of the human text as its lines.
    for (let i = 0; i < lines.length; i++) {
      for (const m of lines[i].matchAll(/<([^\s<>"'@:;,()]+@[A-Za-z0-9][A-Za-z0-9.-]*[A-Za-z0-9])>/g)) {
        const address = m[1].toLowerCase();
        if (ignore.has(address) || /^(mailer-daemon|postmaster)@/.test(address) || found.some((f) => f.recipient === address)) continue;
        found.push({ recipient: address, start: i });
      }
    }
    if (found.length > 0) {
      // One address: the rest of the text is about it. Several on different lines (Zoho: "a@b Invalid Address,
      // ERROR_CODE :550, ..." one line per recipient): each has its own lines, up to the next address's line.
      const starts = [...new Set(found.map((f) => f.start))];
      return found.map((f) => {
        if (starts.length < 2) return { recipient: f.recipient, segment: lines.slice(f.start).join('\n') };
        const next = starts.find((s) => s > f.start) ?? lines.length;
        return { recipient: f.recipient, segment: lines.slice(f.start, next).join('\n') };
      });
    }
  }
  const out: BodyRecipient[] = [];
  const seen = new Map<string, BodyRecipient>();
  for (let k = 0; k < found.length; k++) {
    const end = k + 1 < found.length ? found[k + 1].start : lines.length;
    let segment = lines.slice(found[k].start, Math.min(end, found[k].start + 25)).join('\n');
    if (SENDMAIL_SUMMARY.test(lines[found[k].start])) {
      // Sendmail's "550 <a@b>... reason" line closes what the transcript said about a@b: its lines are the transcript
      // lines just above it (back to "While talking to" or the previous summary line), not the lines below it, which
      // belong to the next recipient.
      let from = found[k].start;
      while (from > 0 && from > (k > 0 ? found[k - 1].start + 1 : 0) && !/^\s*(While talking to|-{3,})/i.test(lines[from - 1])) from--;
      // Lines below it that are not another reply or transcript line still belong to it (a filter's "SMTP command: DATA").
      let to = found[k].start + 1;
      while (to < Math.min(end, found[k].start + 25) && !/^\s*([45]\d\d[ \t-]|While talking to|>>>|<<<)/i.test(lines[to])) to++;
      segment = [lines[found[k].start], ...lines.slice(from, found[k].start), ...lines.slice(found[k].start + 1, to)].join('\n');
    }
    const already = seen.get(found[k].recipient);
    if (already) {
      // The same address again (Sendmail names it in the transcript and in the summary): one recipient, both texts.
      already.segment += `\n${segment}`;
      continue;
    }
    const r = { recipient: found[k].recipient, segment };
    seen.set(r.recipient, r);
    out.push(r);
  }
  return out;
}

/** Phrases saying the reply answered the message data (Postfix, Exim, dma, mail filters). */
const AFTER_DATA = /in\s+reply\s+to\s+(?:end\s+of\s+)?DATA\s+command|after\s+(?:end\s+of\s+data|DATA\b)|final\s+DATA|SMTP command[: \t]*\n[ \t]*DATA\b/i;

/**
 * A Sendmail transcript in the recipient's own lines (the transcript above its summary line) where ">>> DATA" is
 * answered by "<<< 5xx": the remote refused the message itself, whatever the summary line says afterwards.
 */
const DATA_IN_OWN_TRANSCRIPT = />>>\s*DATA[ \t]*\n\s*<<<\s*5\d\d/i;

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * True when the text shows the remote refused the message data rather than this recipient: a 5xx after DATA applies to
 * the message (RFC 5321 3.3), so a "user unknown" there is a content filter's wording, not proof the mailbox is gone.
 * Wording families: Postfix "(in reply to end of DATA command)", Exim "after end of data", "final DATA", a filter's
 * "SMTP command: DATA"; Sendmail transcripts where ">>> DATA" is answered by "<<< 5xx" naming this recipient (a 503
 * "need RCPT" there only echoes an earlier RCPT failure). `lines` is the recipient's own text; `human` the whole
 * notice, searched around the recipient's address.
 */
export function refusedAtData(lines: string, human: string, recipient: string | null): boolean {
  if (AFTER_DATA.test(lines) || DATA_IN_OWN_TRANSCRIPT.test(lines)) return true;
  if (!recipient) return false;
  const addr = escapeRegex(recipient);
  if (new RegExp(`(?:^|\\n)>>> DATA[ \\t]*\\n<<< 5\\d\\d[^\\n]*${addr}`, 'i').test(human)) return true;
  // The notice's own paragraph about this recipient (Postfix: "<a@b>: host x said: 550 ... (in reply to end of DATA command)").
  const at = human.toLowerCase().indexOf(recipient.toLowerCase());
  if (at < 0) return false;
  const paragraph = human.slice(at, at + 600).split(/\n[ \t]*\n/)[0];
  return AFTER_DATA.test(paragraph);
}

/**
 * Phrases saying the reply answered the envelope sender or our client's greeting, before any recipient was named
 * (Postfix "in reply to MAIL FROM/HELO/EHLO command", Exim "after MAIL FROM" / "after EHLO", Sendmail transcripts
 * ">>> MAIL From:" answered by "<<< 4xx/5xx", qmail "sender was rejected" / "my name was rejected").
 */
const AFTER_MAIL_FROM =
  /in\s+reply\s+to\s+(?:MAIL\s+FROM|HELO|EHLO)\s+command|after\s+(?:MAIL\s+FROM|HELO|EHLO)\b|>>>\s*MAIL\s+From:[^\n]*\n\s*<<<\s*[45]\d\d|sender was rejected|my name was rejected/i;

/**
 * True when the recipient's lines show the remote refused our envelope sender (the reply to MAIL FROM), so that a
 * "user unknown" or "no such domain" in it is about the sender, not about the recipient (RFC 5321 3.3: MAIL precedes
 * any RCPT). `lines` is the recipient's own text; `human` the whole notice, read in the recipient's paragraph.
 */
export function refusedAtMailFrom(lines: string, human: string, recipient: string | null): boolean {
  if (AFTER_MAIL_FROM.test(lines)) return true;
  if (!recipient) return false;
  const at = human.toLowerCase().indexOf(recipient.toLowerCase());
  if (at < 0) return false;
  const paragraph = human.slice(at, at + 600).split(/\n[ \t]*\n/)[0];
  return AFTER_MAIL_FROM.test(paragraph);
}

/**
 * Phrases saying the reply answered RCPT TO, i.e. the recipient address itself (Postfix "(in reply to RCPT TO command)",
 * Exim "after RCPT TO:" / "after RCPT command", qmail "does not like recipient.", "did not like our RCPT TO", a
 * Sendmail transcript ">>> RCPT To:" answered by "<<< 5xx", "[RCPT_TO]" tags).
 */
const AFTER_RCPT = /in\s+reply\s+to\s+RCPT\s+TO\s+command|after\s+RCPT\b|did\s+not\s+like\s+our\s+RCPT|does\s+not\s+like\s+recipient|most\s+progress\s+was\s+RCPT|\[RCPT_TO\]|>>>\s*RCPT\s+To:[^\n]*\n\s*<<<\s*5\d\d/i;

/** True when the recipient's lines (or its paragraph in the notice) show the reply answered RCPT TO. */
export function repliedToRcpt(lines: string, human: string, recipient: string | null): boolean {
  if (AFTER_RCPT.test(lines)) return true;
  if (!recipient) return false;
  const at = human.toLowerCase().indexOf(recipient.toLowerCase());
  if (at < 0) return false;
  const paragraph = human.slice(at, at + 600).split(/\n[ \t]*\n/)[0];
  return AFTER_RCPT.test(paragraph);
}
