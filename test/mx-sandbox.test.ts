// Sandbox MX tests: the behaviour table as pure functions, then the server driven over real TCP by nodemailer.

import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import type SMTPPool from 'nodemailer/lib/smtp-pool';
import type SMTPTransport from 'nodemailer/lib/smtp-transport';
import { BEHAVIOUR_RULES, behaviourFor, rcptVerdict } from '../mx-sandbox/recipient-behaviour';
import { SandboxMx, scanMessageId } from '../mx-sandbox/sandbox-mx';

interface SmtpSendError extends Error {
  code?: string;
  responseCode?: number;
  response?: string;
  command?: string;
}

function transportTo(port: number, extra: Partial<SMTPTransport.Options> = {}) {
  return nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, tls: { rejectUnauthorized: false }, ...extra });
}

function pooledTransportTo(port: number, extra: Partial<SMTPPool.Options> = {}) {
  return nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, tls: { rejectUnauthorized: false }, ...extra, pool: true });
}

async function sendExpectingError(send: Promise<unknown>): Promise<SmtpSendError> {
  try {
    await send;
  } catch (err) {
    return err as SmtpSendError;
  }
  throw new Error('expected the send to fail');
}

const FROM = 'sender@engine.test';

describe('recipient behaviour table', () => {
  it('maps every documented example to its rule', () => {
    for (const rule of BEHAVIOUR_RULES) {
      expect(behaviourFor(rule.example).kind, rule.example).toBe(rule.kind);
    }
  });

  it('matches the local part case-insensitively and defaults to accept', () => {
    expect(behaviourFor('HARD-Bob@Example.test')).toEqual({ kind: 'unknown' });
    expect(behaviourFor('unknown.user@x.test')).toEqual({ kind: 'unknown' });
    expect(behaviourFor('Blocked@x.test')).toEqual({ kind: 'spam' });
    expect(behaviourFor('alice@hard.test')).toEqual({ kind: 'accept' });
  });

  it('parses counted variants and keeps the bare prefixes as always-on', () => {
    expect(behaviourFor('fail2-bob@x.test')).toEqual({ kind: 'fail', failFirst: 2 });
    expect(behaviourFor('throttle3-bob@x.test')).toEqual({ kind: 'throttle', failFirst: 3 });
    expect(behaviourFor('throttle@x.test')).toEqual({ kind: 'throttle' });
    expect(behaviourFor('fail-forever@x.test')).toEqual({ kind: 'fail' });
  });

  it('lets a domain override win over the local part', () => {
    const overrides = { 'deny.test': 'disabled', 'flaky.test': { kind: 'fail', failFirst: 1 } } as const;
    expect(behaviourFor('alice@DENY.test', overrides)).toEqual({ kind: 'disabled' });
    expect(behaviourFor('slow@flaky.test', overrides)).toEqual({ kind: 'fail', failFirst: 1 });
    expect(behaviourFor('hard@other.test', overrides)).toEqual({ kind: 'unknown' });
  });

  it('greylists until the delay has passed since the first sighting, and never on first sight', () => {
    const grey = { kind: 'greylist' } as const;
    const at = (attempt: number, now: number, greylistDelayMs: number) =>
      rcptVerdict('g@x.test', grey, { attempt, firstSeenAt: 1000, now, greylistDelayMs }).action;
    expect(at(1, 1000, 0)).toBe('reply');
    expect(at(2, 1000, 0)).toBe('accept');
    expect(at(2, 1100, 300)).toBe('reply');
    expect(at(3, 1300, 300)).toBe('accept');
  });
});

describe('scanMessageId', () => {
  it('unfolds the header and ignores the body', () => {
    const msg = Buffer.from('Subject: x\r\nMessage-ID:\r\n <abc@engine.test>\r\n\r\nMessage-ID: <body@nope>\r\n');
    expect(scanMessageId(msg)).toBe('<abc@engine.test>');
    expect(scanMessageId(Buffer.from('Subject: x\r\n\r\nMessage-ID: <body@nope>'))).toBeNull();
  });
});

describe('SandboxMx over TCP', () => {
  const SLOW_MS = 300;
  const mx = new SandboxMx({ slowMs: SLOW_MS });
  let port = 0;
  let transport: ReturnType<typeof transportTo>;

  beforeAll(async () => {
    ({ port } = await mx.start());
    transport = transportTo(port);
  });

  afterAll(async () => {
    transport.close();
    await mx.stop();
  });

  it('accepts by default, stores the raw message, and records STARTTLS', async () => {
    const info = await transport.sendMail({ from: FROM, to: 'alice@inbox.test', subject: 'Hello sandbox', text: 'body text' });
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as /);

    const [stored, ...more] = mx.acceptedFor('ALICE@inbox.test');
    expect(more).toHaveLength(0);
    expect(stored).toMatchObject({ mailFrom: FROM, rcptTo: 'alice@inbox.test', tls: true, messageId: info.messageId });
    expect(stored?.raw?.toString()).toContain('Subject: Hello sandbox');
    expect(stored?.sizeBytes).toBe(stored?.raw?.length);
  });

  it('accepts plain clients that never upgrade', async () => {
    const plain = transportTo(port, { ignoreTLS: true });
    await plain.sendMail({ from: FROM, to: 'plain@inbox.test', subject: 'clear', text: 'x' });
    plain.close();
    expect(mx.acceptedFor('plain@inbox.test')[0]?.tls).toBe(false);
  });

  it('bounces hard/unknown with 550 5.1.1 at RCPT', async () => {
    const err = await sendExpectingError(transport.sendMail({ from: FROM, to: 'hard-bob@inbox.test', text: 'x' }));
    expect(err.responseCode).toBe(550);
    expect(err.response).toContain('5.1.1');
    expect(err.response).toContain('<hard-bob@inbox.test>: user unknown');
    expect(mx.rejections().find((r) => r.address === 'hard-bob@inbox.test')).toMatchObject({
      code: 550,
      enhancedCode: '5.1.1',
      stage: 'rcpt',
      behaviour: 'unknown',
    });
  });

  it('answers full with 452 4.2.2 and disabled with 550 5.2.1', async () => {
    const full = await sendExpectingError(transport.sendMail({ from: FROM, to: 'full-bob@inbox.test', text: 'x' }));
    expect(full.responseCode).toBe(452);
    expect(full.response).toContain('4.2.2');
    const disabled = await sendExpectingError(transport.sendMail({ from: FROM, to: 'disabled-bob@inbox.test', text: 'x' }));
    expect(disabled.responseCode).toBe(550);
    expect(disabled.response).toContain('5.2.1');
  });

  it('greylists the first attempt and accepts the retry', async () => {
    const mail = { from: FROM, to: 'grey-bob@inbox.test', text: 'x' };
    const first = await sendExpectingError(transport.sendMail(mail));
    expect(first.responseCode).toBe(451);
    expect(first.response).toContain('4.7.1 Greylisted');
    await transport.sendMail(mail);
    expect(mx.attemptsFor('grey-bob@inbox.test')).toBe(2);
    expect(mx.acceptedFor('grey-bob@inbox.test')).toHaveLength(1);
  });

  it('fails fail2- twice with 451 4.3.0, then accepts, counting attempts across connections', async () => {
    const mail = { from: FROM, to: 'fail2-bob@inbox.test', text: 'x' };
    for (let i = 0; i < 2; i++) {
      const err = await sendExpectingError(transportTo(port).sendMail(mail));
      expect(err.responseCode).toBe(451);
      expect(err.response).toContain('4.3.0');
    }
    await transportTo(port).sendMail(mail);
    expect(mx.attemptsFor('fail2-bob@inbox.test')).toBe(3);
    expect(mx.acceptedFor('fail2-bob@inbox.test')).toHaveLength(1);
  });

  it('throttles with 421 4.7.0, and throttle<N>- only the first N times', async () => {
    const err = await sendExpectingError(transport.sendMail({ from: FROM, to: 'throttle-bob@inbox.test', text: 'x' }));
    expect(err.responseCode).toBe(421);
    expect(err.response).toContain('4.7.0');

    const counted = { from: FROM, to: 'throttle1-bob@inbox.test', text: 'x' };
    expect((await sendExpectingError(transport.sendMail(counted))).responseCode).toBe(421);
    await transport.sendMail(counted);
    expect(mx.acceptedFor('throttle1-bob@inbox.test')).toHaveLength(1);
  });

  it('rejects spam with 554 5.7.1 after DATA and stores nothing', async () => {
    const err = await sendExpectingError(transport.sendMail({ from: FROM, to: 'spam-bob@inbox.test', text: 'buy now' }));
    expect(err.responseCode).toBe(554);
    expect(err.response).toContain('5.7.1');
    expect(mx.acceptedFor('spam-bob@inbox.test')).toHaveLength(0);
    expect(mx.rejections().find((r) => r.address === 'spam-bob@inbox.test')?.stage).toBe('data');
  });

  it('drops the connection without a reply', async () => {
    const err = await sendExpectingError(transport.sendMail({ from: FROM, to: 'drop-bob@inbox.test', text: 'x' }));
    expect(err.code).toBe('ECONNECTION');
    expect(err.responseCode).toBeUndefined();
    expect(mx.rejections().find((r) => r.address === 'drop-bob@inbox.test')).toMatchObject({ code: null, behaviour: 'drop' });
  });

  it('holds the DATA reply for slow recipients', async () => {
    const started = Date.now();
    await transport.sendMail({ from: FROM, to: 'slow-bob@inbox.test', text: 'x' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(SLOW_MS - 20);
    expect(mx.acceptedFor('slow-bob@inbox.test')).toHaveLength(1);
  });

  it('answers each recipient of one transaction and stores the message once per accepted recipient', async () => {
    const info = await transport.sendMail({
      from: FROM,
      to: ['multi-a@inbox.test', 'hard-multi@inbox.test', 'multi-b@inbox.test'],
      text: 'x',
    });
    expect(info.accepted).toEqual(['multi-a@inbox.test', 'multi-b@inbox.test']);
    expect(info.rejected).toEqual(['hard-multi@inbox.test']);
    const [a] = mx.acceptedFor('multi-a@inbox.test');
    const [b] = mx.acceptedFor('multi-b@inbox.test');
    expect(a?.queueId).toBe(b?.queueId);
    expect(a?.id).not.toBe(b?.id);
    expect(a?.raw).toBe(b?.raw); // one buffer shared, not a copy per recipient
    expect(mx.acceptedFor('hard-multi@inbox.test')).toHaveLength(0);
  });

  it('counts accepted messages per recipient', async () => {
    const pooled = pooledTransportTo(port, { maxConnections: 2 });
    await Promise.all(
      ['count@inbox.test', 'count@inbox.test', 'Count@Inbox.test', 'other-count@inbox.test'].map((to) =>
        pooled.sendMail({ from: FROM, to, text: 'x' }),
      ),
    );
    pooled.close();
    const counts = mx.countsByRecipient();
    expect(counts.get('count@inbox.test')).toBe(3);
    expect(counts.get('other-count@inbox.test')).toBe(1);
    expect(mx.attemptsFor('COUNT@inbox.test')).toBe(3);
  });

  it('emits accepted for every stored record', async () => {
    const seen: string[] = [];
    const listener = (m: { rcptTo: string }) => seen.push(m.rcptTo);
    mx.on('accepted', listener);
    await transport.sendMail({ from: FROM, to: ['ev1@inbox.test', 'ev2@inbox.test'], text: 'x' });
    mx.off('accepted', listener);
    expect(seen).toEqual(['ev1@inbox.test', 'ev2@inbox.test']);
  });
});

describe('SandboxMx options and lifecycle', () => {
  it('keeps metadata only without keepRaw, honours domain overrides, and resets', async () => {
    const mx = new SandboxMx({ keepRaw: false, domainBehaviours: { 'Deny.test': 'unknown' } });
    const { port } = await mx.start();
    const transport = transportTo(port);
    try {
      const info = await transport.sendMail({ from: FROM, to: 'meta@inbox.test', subject: 'meta', text: 'x'.repeat(200_000) });
      const [stored] = mx.accepted();
      expect(stored?.raw).toBeNull();
      expect(stored?.messageId).toBe(info.messageId);
      expect(stored?.sizeBytes).toBeGreaterThan(200_000);

      const err = await sendExpectingError(transport.sendMail({ from: FROM, to: 'alice@deny.test', text: 'x' }));
      expect(err.responseCode).toBe(550);

      mx.reset();
      expect(mx.accepted()).toHaveLength(0);
      expect(mx.rejections()).toHaveLength(0);
      expect(mx.attemptsFor('meta@inbox.test')).toBe(0);
      expect(mx.acceptedCount()).toBe(0);
    } finally {
      transport.close();
      await mx.stop();
    }
  });

  it('caps stored records with maxRecords while counters stay exact', async () => {
    const mx = new SandboxMx({ maxRecords: 2, keepRaw: false });
    const { port } = await mx.start();
    const pooled = pooledTransportTo(port);
    try {
      for (let i = 0; i < 5; i++) await pooled.sendMail({ from: FROM, to: `cap${i}@inbox.test`, text: 'x' });
      expect(mx.accepted().map((m) => m.rcptTo)).toEqual(['cap3@inbox.test', 'cap4@inbox.test']);
      expect(mx.acceptedCount()).toBe(5);
      expect(mx.countsByRecipient().size).toBe(5);
    } finally {
      pooled.close();
      await mx.stop();
    }
  });

  it('stops promptly with an idle pooled connection open and frees the port', async () => {
    const mx = new SandboxMx();
    const { port } = await mx.start();
    const pooled = pooledTransportTo(port);
    await pooled.sendMail({ from: FROM, to: 'idle@inbox.test', text: 'x' });

    const started = Date.now();
    await mx.stop();
    expect(Date.now() - started).toBeLessThan(1500);
    pooled.close();

    const again = new SandboxMx({ port });
    await expect(again.start()).resolves.toEqual({ port });
    await again.stop();
  });

  it('stops within the grace period while a slow reply is held, recording nothing', async () => {
    const mx = new SandboxMx({ slowMs: 10_000 });
    const { port } = await mx.start();
    const transport = transportTo(port);
    const sending = sendExpectingError(transport.sendMail({ from: FROM, to: 'slow-stop@inbox.test', text: 'x' }));
    await new Promise((resolve) => setTimeout(resolve, 300)); // long enough for DATA to be in and the reply held

    const started = Date.now();
    await mx.stop();
    expect(Date.now() - started).toBeLessThan(1500);
    const err = await sending;
    expect(err.responseCode === 421 || err.code === 'ECONNECTION').toBe(true);
    expect(mx.accepted()).toHaveLength(0);
    transport.close();
  });

  it('rejects start() on a port already in use', async () => {
    const first = new SandboxMx();
    const { port } = await first.start();
    try {
      await expect(new SandboxMx({ port }).start()).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await first.stop();
    }
  });
});

describe('SandboxMx outages (the fault suite switches them on and off)', () => {
  /** What a client sees when it opens a TCP connection: connected, or the error code. */
  const tcpConnect = (port: number) =>
    new Promise<string>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });

  it('cuts transactions in the middle of DATA without a reply and stores nothing, until told to stop', async () => {
    const mx = new SandboxMx({ keepRaw: false });
    const { port } = await mx.start();
    const transport = transportTo(port);
    try {
      mx.dropInData(60_000);
      expect(mx.outageStatus()).toMatchObject({ droppingInData: true, droppedInData: 0 });
      const mail = { from: FROM, to: 'cut@inbox.test', subject: 'cut', text: 'x'.repeat(50_000) };
      const err = await sendExpectingError(transport.sendMail(mail));
      // A broken pipe while the body is still being written, or the close seen while waiting for the reply.
      expect(['ESOCKET', 'ECONNECTION']).toContain(err.code);
      expect(err.responseCode).toBeUndefined();
      // The envelope was accepted (the cut came after RCPT), the message was not.
      expect(mx.attemptsFor('cut@inbox.test')).toBe(1);
      expect(mx.acceptedCount()).toBe(0);
      expect(mx.rejections()).toEqual([expect.objectContaining({ address: 'cut@inbox.test', behaviour: 'outage', stage: 'data', code: null })]);
      expect(mx.outageStatus().droppedInData).toBe(1);

      mx.stopDroppingInData();
      await transport.sendMail(mail);
      expect(mx.countsByRecipient().get('cut@inbox.test')).toBe(1);
      expect(mx.outageStatus()).toMatchObject({ droppingInData: false, droppedInData: 1 });
    } finally {
      transport.close();
      await mx.stop();
    }
  });

  it('stops cutting by itself when the period is over, and checks its arguments', async () => {
    const mx = new SandboxMx({ keepRaw: false });
    const { port } = await mx.start();
    const transport = transportTo(port);
    try {
      expect(() => mx.dropInData(0)).toThrow(RangeError);
      expect(() => mx.dropInData(1000, 1.5)).toThrow(RangeError);
      mx.dropInData(150);
      await new Promise((r) => setTimeout(r, 200));
      await transport.sendMail({ from: FROM, to: 'after-cut@inbox.test', text: 'x' });
      expect(mx.acceptedCount()).toBe(1);
      expect(mx.outageStatus()).toMatchObject({ droppingInData: false, droppedInData: 0 });
    } finally {
      transport.close();
      await mx.stop();
    }
  });

  it('refuses connections for a period, cuts the open ones, then listens on the same port again', async () => {
    const mx = new SandboxMx({ keepRaw: false });
    const { port } = await mx.start();
    const pooled = pooledTransportTo(port, { maxConnections: 1 });
    try {
      await pooled.sendMail({ from: FROM, to: 'before@inbox.test', text: 'x' }); // leaves an idle pooled connection open
      const started = Date.now();
      const refusal = mx.refuseConnections(600);
      expect(mx.outageStatus()).toMatchObject({ refusingConnections: true, refusals: 1, connectionsCut: 1 });
      expect(await tcpConnect(port)).toBe('ECONNREFUSED');
      await expect(mx.refuseConnections(100)).rejects.toThrow(/already refusing/);
      const duringRefusal = await sendExpectingError(transportTo(port).sendMail({ from: FROM, to: 'during@inbox.test', text: 'x' }));
      expect(duringRefusal.message).toMatch(/ECONNREFUSED/);
      expect(mx.attemptsFor('during@inbox.test')).toBe(0);

      await refusal;
      expect(Date.now() - started).toBeGreaterThanOrEqual(580);
      expect(mx.outageStatus().refusingConnections).toBe(false);
      expect(await tcpConnect(port)).toBe('connected');
      await pooled.sendMail({ from: FROM, to: 'after@inbox.test', text: 'x' });
      expect(mx.countsByRecipient()).toEqual(new Map([['before@inbox.test', 1], ['after@inbox.test', 1]]));
    } finally {
      pooled.close();
      await mx.stop();
    }
  });

  it('ends a refusal early on request, and stop() during a refusal frees the port', async () => {
    const mx = new SandboxMx();
    const { port } = await mx.start();
    const refusal = mx.refuseConnections(60_000);
    await mx.stopRefusing();
    await refusal;
    expect(await tcpConnect(port)).toBe('connected');

    const second = mx.refuseConnections(60_000);
    const started = Date.now();
    await mx.stop();
    await second;
    expect(Date.now() - started).toBeLessThan(1500);
    const again = new SandboxMx({ port });
    await expect(again.start()).resolves.toEqual({ port });
    await again.stop();
  });
});
