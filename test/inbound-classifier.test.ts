/** The inbound classifier on small hand-written messages: DSNs, delays, delivery reports, ARF, auto-replies, non-standard bounces, garbage. */
import { describe, expect, it } from 'vitest';
import { classifyInboundMessage } from '../mail/inbound/classify';
import { parseDsnFields } from '../mail/inbound/dsn-fields';
import { loadInboundRuleSet, matchInboundRules } from '../domain/bounce-rules/inbound-rule';
import { getDefaultInboundRules } from '../domain/bounce-rules/default-inbound-rules';
import { getDefaultRules } from '../domain/bounce-rules/qualify-smtp-reply';
import { matchesOwnSample, validateInboundRule, InvalidInboundRuleError } from '../domain/bounce-rules/inbound-rule-validation';
import seed from '../rules/inbound-rules.json';

const VERP = 'b-12-34-abcdef@bounces.example.net';

function dsn(report: string, opts: { returned?: string; human?: string } = {}): string {
  return [
    'From: Mail Delivery System <MAILER-DAEMON@mx.example.org>',
    `To: ${VERP}`,
    'Subject: Undelivered Mail Returned to Sender',
    'Message-ID: <dsn-1@mx.example.org>',
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=delivery-status; boundary="B"',
    '',
    '--B',
    'Content-Type: text/plain',
    '',
    opts.human ?? 'I am sorry to have to inform you that your message could not be delivered.',
    '',
    '--B',
    'Content-Type: message/delivery-status',
    '',
    report,
    '',
    '--B',
    'Content-Type: text/rfc822-headers',
    '',
    opts.returned ?? `Return-Path: <${VERP}>\nMessage-ID: <orig-1@example.net>\nFrom: news@example.net\nTo: alice@example.com\nSubject: News`,
    '',
    '--B--',
    '',
  ].join('\r\n');
}

describe('DSN (RFC 3464)', () => {
  it('reports every recipient in order, qualified from its Diagnostic-Code with the SMTP rules', async () => {
    const c = await classifyInboundMessage(
      dsn(
        [
          'Reporting-MTA: dns; mx.example.org',
          'Original-Envelope-Id: env-42',
          '',
          'Original-Recipient: rfc822; Alice@Example.com',
          'Final-Recipient: rfc822; alice@example.com',
          'Action: failed',
          'Status: 5.1.1',
          'Remote-MTA: dns; mx.example.com',
          'Diagnostic-Code: smtp; 550 5.1.1 <alice@example.com>: Recipient address rejected:',
          '    User unknown in local recipient table',
          '',
          'Final-Recipient: rfc822; bob@example.com',
          'Action: failed',
          'Status: 5.2.2',
          'Diagnostic-Code: smtp; 552 5.2.2 Mailbox full',
          '',
          'Final-Recipient: rfc822; carol@example.com',
          'Action: failed',
          'Status: 5.7.1',
          'Diagnostic-Code: smtp; 554 5.7.1 Message rejected as spam',
        ].join('\r\n'),
      ),
    );
    expect(c.kind).toBe('dsn');
    expect(c.originalEnvelopeId).toBe('env-42');
    expect(c.originalMessageId).toBe('orig-1@example.net');
    expect(c.originalReturnPath).toBe(VERP);
    expect(c.messageId).toBe('dsn-1@mx.example.org');
    expect(c.recipients.map((r) => [r.recipient, r.type, r.reason])).toEqual([
      ['alice@example.com', 'hard', 'user_unknown'],
      ['bob@example.com', 'soft', 'mailbox_full'],
      ['carol@example.com', 'soft', 'refused'],
    ]);
    expect(c.recipients[0]).toMatchObject({
      originalRecipient: 'alice@example.com',
      action: 'failed',
      status: '5.1.1',
      replyCode: 550,
      remoteMta: 'mx.example.com',
      rule: 'smtp-rule:generic-postfix-user-unknown',
    });
    expect(c.recipients[0].diagnosticCode).toMatch(/^550 5\.1\.1 .*User unknown in local recipient table$/);
  });

  it('makes Action: delayed soft whatever the reply says', async () => {
    const c = await classifyInboundMessage(
      dsn('Final-Recipient: rfc822; dave@example.com\r\nAction: delayed\r\nStatus: 4.4.1\r\nDiagnostic-Code: smtp; connect to mx.example.com: Connection timed out\r\nWill-Retry-Until: Fri, 1 Jan 2027 00:00:00 +0000'),
    );
    expect(c.recipients).toHaveLength(1);
    expect(c.recipients[0]).toMatchObject({ recipient: 'dave@example.com', action: 'delayed', type: 'soft', reason: 'unreachable', status: '4.4.1' });
  });

  it('reads Action: delivered and relayed as delivery reports', async () => {
    const c = await classifyInboundMessage(
      dsn('Final-Recipient: rfc822; erin@example.com\r\nAction: delivered\r\nStatus: 2.0.0\r\n\r\nFinal-Recipient: rfc822; frank@example.com\r\nAction: relayed\r\nStatus: 2.0.0'),
    );
    expect(c.recipients.map((r) => [r.recipient, r.type, r.reason, r.action])).toEqual([
      ['erin@example.com', 'delivered', null, 'delivered'],
      ['frank@example.com', 'delivered', null, 'relayed'],
    ]);
  });

  it('finds the DSN fields inline in a text/plain body too', async () => {
    const raw = [
      'From: MAILER-DAEMON@mx.example.org',
      'Subject: Delivery Status Notification (Failure)',
      '',
      'An error occurred while trying to deliver the mail to the following recipients:',
      'grace@example.com',
      '',
      'Action: failed',
      'Final-Recipient: rfc822; grace@example.com',
      'Diagnostic-Code: smtp; 550 5.1.1 user unknown',
      'Status: 5.1.1',
      '',
    ].join('\n');
    const c = await classifyInboundMessage(raw);
    expect(c.kind).toBe('dsn');
    expect(c.recipients).toHaveLength(1);
    expect(c.recipients[0]).toMatchObject({ recipient: 'grace@example.com', type: 'hard', reason: 'user_unknown' });
  });

  it('parses folded Diagnostic-Code lines and typed addresses', () => {
    const f = parseDsnFields('Final-Recipient: RFC822; <Heidi@Example.com>\nAction: Failed\nStatus: 5.0.0 (permanent failure)\nDiagnostic-Code: X-Postfix; host x said:\n  550 no\n');
    expect(f.recipients[0]).toMatchObject({ finalRecipient: 'heidi@example.com', action: 'failed', status: '5.0.0', diagnosticType: 'x-postfix', diagnosticCode: 'host x said: 550 no' });
  });
});

describe('complaints (ARF, RFC 5965)', () => {
  it('is a complaint with its feedback type, the recipient from Original-Rcpt-To, and the original message', async () => {
    const raw = [
      'From: feedback@isp.example',
      `To: ${VERP}`,
      'Subject: Abuse report',
      'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=feedback-report; boundary="F"',
      '',
      '--F',
      'Content-Type: text/plain',
      '',
      'This is an email abuse report.',
      '--F',
      'Content-Type: message/feedback-report',
      '',
      'Feedback-Type: abuse',
      'User-Agent: SomeGenerator/1.0',
      'Version: 1',
      'Original-Rcpt-To: <ivan@example.com>',
      '--F',
      'Content-Type: message/rfc822',
      '',
      `Return-Path: <${VERP}>`,
      'Message-ID: <orig-9@example.net>',
      'To: someone-else@example.com',
      'Subject: News',
      '',
      'Hello',
      '--F--',
      '',
    ].join('\r\n');
    const c = await classifyInboundMessage(raw);
    expect(c).toMatchObject({ kind: 'arf', feedbackType: 'abuse', originalMessageId: 'orig-9@example.net', originalReturnPath: VERP });
    expect(c.recipients).toEqual([expect.objectContaining({ recipient: 'ivan@example.com', type: 'complaint', reason: null, rule: 'arf' })]);
  });

  it("falls back on the original message's To when the report has no Original-Rcpt-To", async () => {
    const raw = [
      'From: fbl@isp.example',
      'Content-Type: multipart/report; report-type=feedback-report; boundary="F"',
      '',
      '--F',
      'Content-Type: message/feedback-report',
      '',
      'Feedback-Type: opt-out',
      '--F',
      'Content-Type: text/rfc822-headers',
      '',
      'To: judy@example.com',
      'Message-ID: <orig-10@example.net>',
      '--F--',
      '',
    ].join('\r\n');
    const c = await classifyInboundMessage(raw);
    expect(c.feedbackType).toBe('opt-out');
    expect(c.recipients.map((r) => r.recipient)).toEqual(['judy@example.com']);
  });
});

describe('auto-replies', () => {
  it('ignores an RFC 3834 auto-reply (English)', async () => {
    const raw = 'From: Kim <kim@example.com>\nTo: news@example.net\nSubject: Re: News\nAuto-Submitted: auto-replied\n\nI am on holiday until Monday.\n';
    const c = await classifyInboundMessage(raw);
    expect(c.kind).toBe('auto_reply');
    expect(c.recipients).toEqual([expect.objectContaining({ recipient: 'kim@example.com', type: 'ignored', reason: 'error_ignored', rule: 'rfc3834' })]);
  });

  it('ignores an out-of-office reply known only by its subject (French, German)', async () => {
    for (const subject of ['Réponse automatique : Actualités', 'Abwesenheitsnotiz: News']) {
      const raw = `From: leo@example.fr\nTo: news@example.net\nSubject: =?UTF-8?B?${Buffer.from(subject).toString('base64')}?=\n\nJe suis absent.\n`;
      const c = await classifyInboundMessage(raw);
      expect(c.kind, subject).toBe('auto_reply');
      expect(c.recipients[0]).toMatchObject({ recipient: 'leo@example.fr', type: 'ignored', reason: 'error_ignored', rule: 'inbound-rule:subject-out-of-office' });
    }
  });

  it('ignores X-Autoreply and Precedence: auto_reply', async () => {
    for (const h of ['X-Autoreply: yes', 'Precedence: auto_reply']) {
      const c = await classifyInboundMessage(`From: m@example.com\nSubject: Hello\n${h}\n\nAway.\n`);
      expect(c.kind, h).toBe('auto_reply');
    }
  });
});

describe('non-standard bounces', () => {
  it('qualifies a qmail bounce per recipient, from its reply lines', async () => {
    const raw = [
      'From: MAILER-DAEMON@mx.example.org',
      `To: ${VERP}`,
      'Subject: failure notice',
      '',
      'Hi. This is the qmail-send program at mx.example.org.',
      "I'm afraid I wasn't able to deliver your message to the following addresses.",
      "This is a permanent error; I've given up. Sorry it didn't work out.",
      '',
      '<mallory@example.com>:',
      'Sorry, no mailbox here by that name. (#5.1.1)',
      '',
      '<niaj@example.com>:',
      '192.0.2.7 does not like recipient.',
      'Remote host said: 552 5.2.2 Mailbox is full',
      'Giving up on 192.0.2.7.',
      '',
      '--- Below this line is a copy of the message.',
      '',
      `Return-Path: <${VERP}>`,
      'Message-ID: <orig-11@example.net>',
      'To: mallory@example.com, niaj@example.com',
      '',
      'Hello',
      '',
    ].join('\n');
    const c = await classifyInboundMessage(raw);
    expect(c.kind).toBe('bounce');
    expect(c.originalMessageId).toBe('orig-11@example.net');
    expect(c.originalReturnPath).toBe(VERP);
    expect(c.recipients.map((r) => [r.recipient, r.type, r.reason])).toEqual([
      ['mallory@example.com', 'hard', 'user_unknown'],
      ['niaj@example.com', 'soft', 'mailbox_full'],
    ]);
    expect(c.recipients[1]).toMatchObject({ status: '5.2.2', replyCode: 552 });
  });

  it('recognises an Exim bounce although Exim marks it Auto-Submitted: auto-replied', async () => {
    const raw = [
      'From: Mail Delivery System <Mailer-Daemon@mx.example.org>',
      'Subject: Mail delivery failed: returning message to sender',
      'Auto-Submitted: auto-replied',
      '',
      'This message was created automatically by mail delivery software.',
      '',
      'A message that you sent could not be delivered to one or more of its',
      'recipients. This is a permanent error. The following address(es) failed:',
      '',
      '  olivia@nowhere.example',
      '    Unrouteable address',
      '',
    ].join('\n');
    const c = await classifyInboundMessage(raw);
    expect(c.kind).toBe('bounce');
    expect(c.recipients[0]).toMatchObject({ recipient: 'olivia@nowhere.example', type: 'hard', reason: 'invalid_domain' });
  });
});

describe('the command a reply answered', () => {
  it('reads a reply to MAIL FROM or to our greeting as a refusal of the message, even in a delay warning', async () => {
    const raw = [
      'From: Mail Delivery System <Mailer-Daemon@mx.example.org>',
      'Subject: Warning: message delayed',
      '',
      'A message that you sent has not yet been delivered to one or more of its',
      'recipients after more than 24 hours on the queue on mx.example.org.',
      '',
      'The address to which the message has not yet been delivered is:',
      '',
      '  peggy@example.com',
      '    host mx.example.com [192.0.2.9]',
      '    Delay reason: SMTP error from remote mail server after MAIL FROM:<news@example.net> SIZE=1024:',
      '    450 service permits 2 unverifyable sending IPs',
      '',
      'No action is required on your part. Delivery attempts will continue for some time.',
      '',
    ].join('\n');
    const c = await classifyInboundMessage(raw);
    expect(c.recipients[0]).toMatchObject({ recipient: 'peggy@example.com', type: 'soft', reason: 'refused', action: 'delayed' });
    expect(c.recipients[0].rule).toMatch(/\+sender-phase$/);

    const qmail = [
      'From: MAILER-DAEMON@mx.example.org',
      'Subject: failure notice',
      '',
      'Hi. This is the qmail-send program at mx.example.org.',
      "I'm afraid I wasn't able to deliver your message to the following addresses.",
      '',
      '<trent@example.com>:',
      'Connected to 192.0.2.12 but my name was rejected.',
      'Remote host said: 501 5.0.0 Invalid domain name',
      "I'm not going to try again; this message has been in the queue too long.",
      '',
    ].join('\n');
    expect((await classifyInboundMessage(qmail)).recipients[0]).toMatchObject({ type: 'soft', reason: 'refused' });
  });

  it('reads a Sendmail transcript where DATA was answered with a 5xx as a refusal of the message', async () => {
    const raw = [
      'From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.org>',
      'Subject: Returned mail: see transcript for details',
      '',
      '   ----- Transcript of session follows -----',
      'While talking to mx.example.com:',
      '>>> DATA',
      '<<< 550 Your message looks redundant',
      '554 <victor@example.com>... Remote protocol error: Connection reset by peer during result wait',
      '',
    ].join('\n');
    const c = await classifyInboundMessage(raw);
    expect(c.recipients[0]).toMatchObject({ recipient: 'victor@example.com', type: 'soft', reason: 'refused' });
    expect(c.recipients[0].rule).toMatch(/\+data-phase$/);
  });
});

describe('mbox files', () => {
  it('reads every message of an mbox and reports their recipients in order', async () => {
    const report = (rcpt: string) =>
      dsn([`Reporting-MTA: dns; mx.example.org`, '', `Final-Recipient: rfc822; ${rcpt}`, 'Action: failed', 'Status: 5.1.1', `Diagnostic-Code: smtp; 550 5.1.1 <${rcpt}>: User unknown`].join('\r\n'));
    const raw = ['From MAILER-DAEMON  Thu Apr 29 23:34:45 2015', report('ann@example.com'), 'From MAILER-DAEMON  Thu Apr 29 23:35:02 2015', report('ben@example.com')].join('\r\n');
    const c = await classifyInboundMessage(Buffer.from(raw));
    expect(c.kind).toBe('dsn');
    expect(c.recipients.map((r) => [r.recipient, r.type, r.reason])).toEqual([
      ['ann@example.com', 'hard', 'user_unknown'],
      ['ben@example.com', 'hard', 'user_unknown'],
    ]);
  });
});

describe('garbage', () => {
  it('returns kind unknown and never throws', async () => {
    for (const raw of ['', 'not a mail at all', Buffer.from([0, 1, 2, 255, 254]), 'Content-Type: multipart/mixed; boundary="x"\n\n--x\n\x00\x01', 'Subject: hi\n\nhello\n']) {
      const c = await classifyInboundMessage(raw);
      expect(c.kind).toBe('unknown');
      expect(c.recipients).toEqual([]);
    }
  });
});

describe('inbound rule table', () => {
  it('the seed loads, is versioned, and every rule matches its own sample', () => {
    const set = loadInboundRuleSet(seed);
    expect(set.version).toBe(seed.version);
    expect(set.rules.length).toBe(seed.rules.length);
    for (const r of getDefaultInboundRules()) expect(matchesOwnSample(r), r.id).toBe(true);
    expect(getDefaultRules().length).toBeGreaterThan(60);
  });

  it('refuses a rule without a sample for its condition, a bad regex, or one that misses its sample', () => {
    const base = {
      id: 't-rule',
      priority: 1,
      source: 'test',
      kind: 'bounce',
      from: null,
      subject: null,
      body: 'no such user',
      type: 'hard',
      reason: 'user_unknown',
      retryClass: 'none',
      sample: { body: 'x: no such user here' },
      note: 'test',
    };
    expect(validateInboundRule(base).id).toBe('t-rule');
    const issues = (input: unknown) => {
      try {
        validateInboundRule(input);
      } catch (e) {
        expect(e).toBeInstanceOf(InvalidInboundRuleError);
        return (e as InvalidInboundRuleError).issues.map((i) => i.path);
      }
      throw new Error('accepted');
    };
    expect(issues({ ...base, sample: {} })).toContain('sample.body');
    expect(issues({ ...base, body: 'user (unknown' })).toContain('body');
    expect(issues({ ...base, sample: { body: 'something else' } })).toContain('sample');
    expect(issues({ ...base, kind: 'auto_reply' })).toContain('type');
    expect(issues({ ...base, type: 'ignored', reason: 'error_ignored', retryClass: 'transient' })).toContain('retryClass');
  });
});

describe('inbound rule patterns run on RE2', () => {
  const base = {
    id: 't-re2',
    priority: 1,
    source: 'test',
    kind: 'bounce',
    from: null,
    subject: null,
    body: 'no such user',
    type: 'hard',
    reason: 'user_unknown',
    retryClass: 'none',
    sample: { body: 'x: no such user here' },
    note: 'test',
  };
  const refusal = (input: unknown) => {
    try {
      validateInboundRule(input);
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidInboundRuleError);
      return (e as InvalidInboundRuleError).issues;
    }
    throw new Error('accepted');
  };

  it('refuses look-around and backreferences, naming the field and the construct', () => {
    expect(refusal({ ...base, body: '(?<!not )no such user' })).toEqual([
      { path: 'body', message: expect.stringMatching(/^invalid body regex .*look-behind .*linear-time regex engine \(RE2\) does not support/) },
    ]);
    expect(refusal({ ...base, subject: '(?=Undeliv)Undelivered', sample: { ...base.sample, subject: 'Undelivered' } })[0]).toMatchObject({
      path: 'subject',
      message: expect.stringMatching(/look-ahead/),
    });
    expect(refusal({ ...base, from: '(mailer)-\\1', sample: { ...base.sample, from: 'mailer-mailer' } })[0]).toMatchObject({
      path: 'from',
      message: expect.stringMatching(/backreference/),
    });
  });

  it('evaluates a catastrophic-backtracking body pattern on a 100,000-character body in linear time', () => {
    const rule = validateInboundRule({ ...base, body: '^(a|aa)+$', sample: { body: 'aaaa' } });
    const [miss, hit] = [`${'a'.repeat(99_999)}!`, `intro\n${'a'.repeat(99_994)}`];
    for (const [body, expected] of [
      [miss, null],
      [hit, 't-re2'],
    ] as const) {
      const start = performance.now();
      const matched = matchInboundRules({ from: '', subject: '', body }, [rule]);
      // Measured a few ms on the loaded 2-core test machine: 100 ms is a wide margin.
      expect(performance.now() - start).toBeLessThan(100);
      expect(matched?.id ?? null).toBe(expected);
    }
  });

  it('anchors a body pattern on its lines, as before', () => {
    const rule = validateInboundRule({ ...base, body: '^no such user$', sample: { body: 'The error:\nno such user\nbye' } });
    expect(matchInboundRules({ from: '', subject: '', body: 'a\nNO SUCH USER\nb' }, [rule])?.id).toBe('t-re2');
    expect(matchInboundRules({ from: '', subject: '', body: 'a: no such user here' }, [rule])).toBeNull();
  });
});
