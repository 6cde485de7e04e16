/**
 * The classifier against 330 real bounces, auto-replies and complaint reports (../shared/bounces) and the reference
 * analyzer's expected result per recipient (manifest.tsv). Prints every miss; docs/bounce-classification.md explains
 * the reason mapping and records the figures.
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { classifyInboundMessage } from '../mail/inbound/classify';
import { parseDsnFields } from '../mail/inbound/dsn-fields';
import { replyInText } from '../mail/inbound/reply-in-text';
import { qualifyWithDefaultRules } from '../domain/bounce-rules/qualify-smtp-reply';
import type { InboundRecipientResult } from '../mail/inbound/inbound-classification';
import type { FailureReason } from '../domain/failure';

/**
 * The shared corpus beside the project (../shared/bounces) when it is there, so an updated corpus is scored as it is;
 * otherwise the copy kept with the tests (test/fixtures/bounce-corpus, same files and licence), so that a clone on its
 * own still runs the scoring.
 */
const SHARED_CORPUS = join(__dirname, '..', '..', 'shared', 'bounces');
const CORPUS = existsSync(join(SHARED_CORPUS, 'manifest.tsv')) ? SHARED_CORPUS : join(__dirname, 'fixtures', 'bounce-corpus');

/** What the reference's reason names mean in the design's terms (docs/bounce-classification.md, "Reason mapping"). */
type Expected = { reason: FailureReason; also?: FailureReason[] } | { special: 'complaint' | 'delivered' | 'ignored' };
const REFUSED = [
  'filtered',
  'rejected',
  'blocked',
  'policyviolation',
  'spamdetected',
  'authfailure',
  'requireptr',
  'badreputation',
  'securityerror',
  'contenterror',
  'virusdetected',
  'norelaying',
  'notcompliantrfc',
  'speeding',
  'toomanyconn',
  'exceedlimit',
  'mesgtoobig',
  'syntaxerror',
] as const;
const REASON_MAPPING: Record<string, Expected> = {
  // The reference files a syntactically invalid recipient (X.1.3) under userunknown; our hard reason for it is invalid_address.
  userunknown: { reason: 'user_unknown', also: ['invalid_address'] },
  hasmoved: { reason: 'user_unknown' },
  hostunknown: { reason: 'invalid_domain' },
  notaccept: { reason: 'invalid_domain' },
  mailboxfull: { reason: 'mailbox_full' },
  suspend: { reason: 'account_disabled' },
  expired: { reason: 'unreachable' },
  networkerror: { reason: 'unreachable' },
  systemerror: { reason: 'not_defined' },
  mailererror: { reason: 'not_defined' },
  undefined: { reason: 'not_defined' },
  onhold: { reason: 'not_defined' },
  vacation: { special: 'ignored' },
  feedback: { special: 'complaint' },
  delivered: { special: 'delivered' },
  ...Object.fromEntries(REFUSED.map((r) => [r, { reason: 'refused' as FailureReason }])),
};

interface Row {
  file: string;
  index: number;
  status: string;
  reason: string;
  bounce: 'hard' | 'soft';
}

function manifest(): Row[] {
  const lines = readFileSync(join(CORPUS, 'manifest.tsv'), 'utf8').trim().split('\n').slice(1);
  return lines.map((l) => {
    const [file, index, status, , reason, bounce] = l.split('\t');
    return { file, index: Number(index), status, reason, bounce: bounce as 'hard' | 'soft' };
  });
}

/** Our type on the reference's hard/soft axis: complaint, delivered and ignored rows are what the reference calls soft. */
function hardOrSoft(r: InboundRecipientResult): 'hard' | 'soft' {
  return r.type === 'hard' ? 'hard' : 'soft';
}

function reasonAgrees(expected: Expected, r: InboundRecipientResult): boolean {
  if ('special' in expected) return r.type === expected.special;
  return r.reason === expected.reason || (r.reason !== null && (expected.also ?? []).includes(r.reason));
}

describe('bounce corpus', () => {
  it('has a corpus to score (../shared/bounces, else the copy in test/fixtures)', () => {
    // A missing corpus must fail, not skip: the figures below are the acceptance.
    expect(existsSync(join(CORPUS, 'manifest.tsv')), `no bounce corpus at ${CORPUS}`).toBe(true);
  });

  it('agrees with the reference on hard/soft (>= 97 %) and on the reason (>= 90 %)', async () => {
    const rows = manifest();
    const byFile = new Map<string, InboundRecipientResult[]>();
    for (const file of new Set(rows.map((r) => r.file))) {
      byFile.set(file, (await classifyInboundMessage(readFileSync(join(CORPUS, file)))).recipients);
    }
    let typeOk = 0;
    let reasonOk = 0;
    const misses: string[] = [];
    for (const row of rows) {
      const expected = REASON_MAPPING[row.reason];
      expect(expected, `unmapped reference reason ${row.reason}`).toBeDefined();
      const got = byFile.get(row.file)?.[row.index];
      const t = got !== undefined && hardOrSoft(got) === row.bounce;
      const r = got !== undefined && reasonAgrees(expected, got);
      if (t) typeOk++;
      if (r) reasonOk++;
      if (!t || !r) {
        misses.push(
          `${row.file} #${row.index}: expected ${row.bounce} ${row.reason} (${row.status || '-'}), got ` +
            (got ? `${got.type} ${got.reason ?? '-'} (${got.status ?? '-'}) by ${got.rule}` : 'no such recipient'),
        );
      }
    }
    const typePct = (100 * typeOk) / rows.length;
    const reasonPct = (100 * reasonOk) / rows.length;
    console.log(
      `bounce corpus: ${rows.length} recipients; hard/soft ${typeOk} (${typePct.toFixed(1)} %), reason ${reasonOk} (${reasonPct.toFixed(1)} %); ${misses.length} misses:\n  ${misses.join('\n  ')}`,
    );
    expect(typePct).toBeGreaterThanOrEqual(97);
    expect(reasonPct).toBeGreaterThanOrEqual(90);
  });

  it('qualifies the Diagnostic-Code texts with the SMTP qualification rules alone: >= 90 % hard/soft agreement', () => {
    const rows = manifest();
    let total = 0;
    let ok = 0;
    const misses: string[] = [];
    for (const file of new Set(rows.map((r) => r.file))) {
      const raw = readFileSync(join(CORPUS, file), 'utf8');
      const dsn = parseDsnFields(raw);
      dsn.recipients.forEach((f, index) => {
        const row = rows.find((r) => r.file === file && r.index === index);
        if (!row || !f.diagnosticCode || !(f.action === 'failed' || f.action === null)) return;
        total++;
        const rcpt = f.finalRecipient ?? f.originalRecipient;
        const q = qualifyWithDefaultRules(replyInText(f.diagnosticCode, f.status, 5), rcpt ? rcpt.slice(rcpt.lastIndexOf('@') + 1) : undefined);
        const got = q.type === 'hard' ? 'hard' : 'soft';
        if (got === row.bounce) ok++;
        else misses.push(`${file} #${index}: expected ${row.bounce} ${row.reason}, got ${q.type} ${q.reason} by ${q.ruleId}: ${f.diagnosticCode.slice(0, 120)}`);
      });
    }
    const pct = (100 * ok) / total;
    console.log(`SMTP rules on ${total} Diagnostic-Codes: hard/soft ${ok} (${pct.toFixed(1)} %); misses:\n  ${misses.join('\n  ')}`);
    expect(total).toBeGreaterThan(100);
    expect(pct).toBeGreaterThanOrEqual(90);
  });
});
