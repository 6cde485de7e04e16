/** The sending stage on real deliveries: DKIM (RSA, Ed25519, dual) verified on captured mail, headers, VERP, STARTTLS, MX fallback, relay mode, site back-off. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, TEST_SECRETS, type Harness } from './support/harness';
import { apiCall, waitUntil } from './support/http';
import { verifyDkim } from './support/dkim-verify';
import { decodeVerp } from '../domain/verp';
import { SandboxMx } from '../mx-sandbox/sandbox-mx';
import { freePort } from '../stack/ports';
import { recipientStateQuery, recipientWorkflowId } from '../workflows/contract';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ env: { RETRY_TIME_SCALE: '0.01' } });
});
afterAll(async () => {
  await h?.stop();
});

const api = async (method: string, path: string, body?: unknown) => {
  const r = await apiCall(h.apiUrl, method, path, body);
  return { status: r.status, body: r.json };
};

async function txtRecords(domain: string): Promise<Record<string, string>> {
  const keys = (await api('GET', `/api/dkim/keys?domain=${domain}`)).body.keys as { dnsRecord: { name: string; value: string } }[];
  return Object.fromEntries(keys.map((k) => [k.dnsRecord.name, k.dnsRecord.value]));
}

function header(raw: Buffer, name: string): string | null {
  const head = raw.toString('utf8').split('\r\n\r\n')[0].replace(/\r\n[ \t]+/g, ' ');
  const m = new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(head);
  return m ? m[1] : null;
}

describe('DKIM on delivered messages', () => {
  const cases: [string, string, ('rsa-sha256' | 'ed25519-sha256')[]][] = [
    ['RSA-2048 (generated on first delivery)', 'rsa-only.example', ['rsa-sha256']],
    ['Ed25519', 'ed-only.example', ['ed25519-sha256']],
    ['dual RSA + Ed25519', 'dual.example', ['rsa-sha256', 'ed25519-sha256']],
  ];
  it.each(cases)('%s: every captured message verifies, aligned with From; one changed body byte breaks it', async (_name, domain, algorithms) => {
    if (algorithms.includes('ed25519-sha256')) {
      if (algorithms.includes('rsa-sha256')) expect((await api('POST', '/api/dkim/keys', { domain, selector: 'rsa1', algorithm: 'rsa-sha256' })).status).toBe(201);
      const added = await api('POST', '/api/dkim/keys', { domain, selector: 'ed1', algorithm: 'ed25519-sha256' });
      expect(added.status).toBe(201);
      expect(added.body.dnsRecord.value).toMatch(/^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);
    }
    const to = [`ada@${domain}-rcpt.example`, `alan@${domain}-rcpt.example`];
    const id = await h.createDelivery({ name: `dkim ${domain}`, from: { address: `news@${domain}`, name: 'News' }, subject: 'Hello {{firstName}}', html: '<p>Hello {{firstName}}</p>', text: 'Hello {{firstName}}', recipients: to.map((email) => ({ email, fields: { firstName: 'You' } })), autoConfirm: true });
    await h.waitForPhase(id, ['completed']);
    const txt = await txtRecords(domain);
    expect(Object.keys(txt)).toHaveLength(algorithms.length);
    for (const address of to) {
      const [m] = h.mx.acceptedFor(address);
      expect(m, address).toBeDefined();
      const results = await verifyDkim(m.raw!, txt);
      expect(results.map((r) => r.algorithm).sort()).toEqual([...algorithms].sort());
      for (const r of results) {
        expect(r.result).toBe('pass');
        expect(r.domain).toBe(domain);
      }
      const tampered = Buffer.from(m.raw!);
      const at = tampered.indexOf('Hello You', tampered.indexOf('\r\n\r\n'));
      tampered[at] = 'J'.charCodeAt(0);
      for (const r of await verifyDkim(tampered, txt)) expect(r.result).not.toBe('pass');
    }
  });

  it('rotation: a new selector of the same algorithm takes over; the DNS records of both stay listed', async () => {
    const domain = 'rotate.example';
    expect((await api('POST', '/api/dkim/keys', { domain, selector: 'jan', algorithm: 'rsa-sha256' })).status).toBe(201);
    expect((await api('POST', '/api/dkim/keys', { domain, selector: 'jan', algorithm: 'rsa-sha256' })).status).toBe(409);
    expect((await api('POST', '/api/dkim/keys', { domain, selector: 'feb', algorithm: 'rsa-sha256' })).status).toBe(201);
    const id = await h.createDelivery({ name: 'rotation', from: `news@${domain}`, subject: 'x', text: 'y', recipients: [{ email: 'r1@rotated-rcpt.example' }], autoConfirm: true });
    await h.waitForPhase(id, ['completed']);
    const [m] = h.mx.acceptedFor('r1@rotated-rcpt.example');
    expect(header(m.raw!, 'DKIM-Signature')).toMatch(/s=feb;/);
    expect((await verifyDkim(m.raw!, await txtRecords(domain)))[0].result).toBe('pass');
    expect((await api('PATCH', `/api/dkim/keys/${domain}/nope`, { active: false })).status).toBe(404);
    expect((await api('POST', '/api/dkim/keys', { domain: 'not a domain', selector: 'x' })).status).toBe(400);
  });
});

describe('headers, envelope and transport', () => {
  it('stable Message-ID across attempts, Date, one-click List-Unsubscribe, VERP with a valid HMAC, STARTTLS', async () => {
    const email = 'grey-hdr@headers-rcpt.example';
    const id = await h.createDelivery({ name: 'headers', from: 'news@headers.example', subject: 'x', text: 'y', recipients: [{ email }], autoConfirm: true });
    await h.waitForPhase(id, ['completed']);
    const [m] = h.mx.acceptedFor(email);
    const attempts = await h.service.log.attempts(id, 1);
    expect(attempts.length).toBe(2); // greylisted once, accepted on the retry
    expect(new Set(attempts.map((a) => a.messageId))).toEqual(new Set([`<${id}.1@headers.example>`]));
    expect(m.messageId).toBe(`<${id}.1@headers.example>`);
    expect(Date.parse(header(m.raw!, 'Date')!)).toBeGreaterThan(Date.now() - 120_000);
    expect(header(m.raw!, 'List-Unsubscribe')).toMatch(new RegExp(`^<http://127\\.0\\.0\\.1:\\d+/u/${id}/1/[A-Za-z0-9_-]+>$`));
    expect(header(m.raw!, 'List-Unsubscribe-Post')).toBe('List-Unsubscribe=One-Click');
    expect(decodeVerp(m.mailFrom, TEST_SECRETS.verpSecret, h.settings.BOUNCE_DOMAIN)).toEqual({ deliveryId: id, recipientId: 1 });
    expect(decodeVerp(m.mailFrom.replace(/-([0-9a-f]+)@/, '-00$1@'), TEST_SECRETS.verpSecret)).toBeNull();
    expect(m.tls).toBe(true);
    const view = await h.client.workflow.getHandle(recipientWorkflowId(id, 1)).query(recipientStateQuery);
    expect(view).toMatchObject({ status: 'sent', attempts: 2 });
  });

  it('tries MX hosts by preference and falls back when the best one is down', async () => {
    const down = 'invalid-host-port-1';
    // A port nothing listens on, fresh for this run: the receiving site is keyed by its first MX host, and site state
    // (a suspension after a refused connection) lives in the shared database, so a fixed port would inherit another
    // test's suspension.
    const closedPort = await freePort();
    const fallback = await startHarness({ env: { MX_OVERRIDES: JSON.stringify({ '*': `127.0.0.1:${closedPort},127.0.0.1:${h.mx.listeningPort}` }) }, worker: true });
    try {
      const id = await fallback.createDelivery({ name: 'fallback', from: 'news@fallback.example', subject: 'x', text: 'y', recipients: [{ email: `${down}@fallback-rcpt.example` }], autoConfirm: true });
      await fallback.waitForPhase(id, ['completed']);
      expect(h.mx.acceptedFor(`${down}@fallback-rcpt.example`)).toHaveLength(1);
      const [attempt] = await fallback.service.log.attempts(id, 1);
      expect(attempt).toMatchObject({ outcome: 'accepted', smtpCode: 250, mxHost: '127.0.0.1' });
    } finally {
      await fallback.stop();
    }
  });

  it('relay mode hands everything to the smart host over STARTTLS with authentication', async () => {
    const relay = new SandboxMx({ port: 0 });
    const { port } = await relay.start();
    const r = await startHarness({
      env: {
        SEND_MODE: 'relay',
        SMTP_RELAY_HOST: '127.0.0.1',
        SMTP_RELAY_PORT: String(port),
        SMTP_RELAY_USER: 'relay-user',
        SMTP_RELAY_PASSWORD: 'secret',
        SMTP_RELAY_TLS_VERIFY: 'false',
        // This relay sends no reports: the recipient counts as sent when the confirmation window ends.
        RELAY_CONFIRMATION_WINDOW_SECONDS: '2',
      },
    });
    try {
      const id = await r.createDelivery({ name: 'relay', from: 'news@relay.example', subject: 'x', text: 'y', recipients: [{ email: 'someone@anywhere-rcpt.example' }], autoConfirm: true });
      await r.waitForPhase(id, ['completed']);
      const [m] = relay.acceptedFor('someone@anywhere-rcpt.example');
      expect(m).toMatchObject({ tls: true, authUser: 'relay-user' });
      expect(r.mx.acceptedFor('someone@anywhere-rcpt.example')).toHaveLength(0);
      // DSN requested from the smart host: success reports too, with our ENVID and the original recipient.
      expect(m.dsn).toMatchObject({ notify: ['SUCCESS', 'FAILURE', 'DELAY'], orcpt: 'rfc822;someone@anywhere-rcpt.example', ret: 'HDRS' });
      expect(m.dsn.envid).toMatch(/^b-[0-9a-f]{32}-/);
      const transitions = await r.service.log.transitions(id, 1);
      expect(transitions.map((t: { toStatus: string; source: string }) => `${t.toStatus}:${t.source}`)).toEqual([
        'taken_into_account:handover',
        'taken_into_account:relay',
        'sent:confirmation_window',
      ]);
    } finally {
      await r.stop();
      await relay.stop();
    }
  });
});

describe('throttling slows the whole receiving site down (MX rules, docs/mx-rules.md)', () => {
  it('a throttling reply halves the site\'s rate for every worker, through Postgres, recorded with its cause', async () => {
    const domain = 'throttled-site.example';
    const site = `default@127.0.0.1:${h.mx.listeningPort}`;
    const id = await h.createDelivery({ name: 'throttle', from: 'news@backoff.example', subject: 'x', text: 'y', recipients: [{ email: `throttle2-first@${domain}` }], autoConfirm: true });
    // The sandbox's host is a catch-all site of its own; the 421 matches the reply rule any-421 (slow_down).
    const seen = await waitUntil(
      'slow-down event',
      async () => {
        const r = await api('GET', `/api/mx-sites/${encodeURIComponent(site)}`);
        return r.status === 200 && r.body.events.find((e: { kind: string }) => e.kind === 'slow_down') ? r.body : null;
      },
      15_000,
    );
    const event = seen.events.find((e: { kind: string }) => e.kind === 'slow_down');
    expect(event).toMatchObject({ causeRule: 'any-421', fromState: 'normal', toState: 'slowed', fromPerSecond: null });
    expect(event.causeReply).toMatch(/421 4\.7\.0 Too many messages/);
    expect(event.toPerSecond).toBeGreaterThan(0);
    expect(seen.rule).toMatchObject({ id: 'default', scope: 'mx_host' });
    const done = await h.waitForPhase(id, ['completed']);
    expect(done.kpis).toMatchObject({ sent: 1 });
    // The 421 is an attempt of ours (qualified, retried on our timer), not something the connection re-sent on its own.
    const attempts = (await h.service.log.attempts(id, 1)).map((a) => [a.outcome, a.smtpCode]);
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(attempts.slice(0, -1)).toEqual(attempts.slice(0, -1).map(() => ['soft', 421]));
    expect(attempts.at(-1)).toEqual(['accepted', 250]);
    // Quiet for MX_RECOVERY_QUIET_SECONDS (300 s × RETRY_TIME_SCALE 0.01 here): it recovers step by step, recorded too.
    const recovered = await waitUntil(
      'recovery',
      async () => {
        const r = await api('GET', `/api/mx-sites/${encodeURIComponent(site)}`);
        return r.body.state === 'normal' ? r.body : null;
      },
      30_000,
      250,
    );
    expect(recovered.events[0]).toMatchObject({ kind: 'recover', toState: 'normal', causeRule: null });
    expect(recovered.limits.perSecond).toBeNull();
  });

  it('holds the messages for a suspended site until the suspension ends, server-side, without counting an attempt', async () => {
    const domain = 'backed-off-site.example';
    const ruleId = `backed-off-${Date.now().toString(36)}`;
    // Its own site (a domain rule), so that other domains on the same sandbox host are not held.
    const put = await api('PUT', `/api/mx-rules/${ruleId}`, {
      priority: 50,
      provider: 'test',
      domains: [domain],
      mxHosts: [],
      scope: 'site',
      maxConnections: 2,
      messagesPerConnection: 10,
      perSecond: null,
      perHour: null,
      note: 'sending-stage test: a site suspended by another worker',
    });
    expect(put.status).toBe(201);
    await h.deps.mxRules.refresh();
    // Longer than MX_REMOTE_WAIT_MS (5 s): the wait is the server's, not one in memory.
    const untilMs = Date.now() + 20_000;
    // As another worker's suspend reply rule would have left it.
    await h.pool.query(
      `INSERT INTO mx_sites (site, rule_id, state, suspended_until, last_change_at, last_signal_at) VALUES ($1, $1, 'suspended', to_timestamp($2 / 1000.0), now(), now())`,
      [ruleId, untilMs],
    );
    try {
      const id = await h.createDelivery({
        name: 'site suspended',
        from: 'news@backoff.example',
        subject: 'x',
        text: 'y',
        recipients: [{ email: `a@${domain}` }, { email: `b@${domain}` }, { email: 'other@elsewhere-rcpt.example' }],
        autoConfirm: true,
      });
      await h.waitForPhase(id, ['completed']);
      for (const [rid, local] of [[1, 'a'], [2, 'b']] as const) {
        const [m] = h.mx.acceptedFor(`${local}@${domain}`);
        expect(m.receivedAt.getTime()).toBeGreaterThanOrEqual(untilMs);
        expect(await h.service.log.attempts(id, rid)).toHaveLength(1);
        // The wait was the regular activity's, retried by the server: one scheduled/started/completed, no timer, whatever the number of retries.
        const history = await h.client.workflow.getHandle(recipientWorkflowId(id, rid)).fetchHistory();
        const events = history.events ?? [];
        const scheduled = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'sendRecipientMessageWhenSiteAllows');
        expect(scheduled).toHaveLength(1);
        const started = events.filter((e) => e.activityTaskStartedEventAttributes);
        expect(started).toHaveLength(1);
        expect(started[0].activityTaskStartedEventAttributes!.attempt).toBeGreaterThanOrEqual(2);
        expect(events.filter((e) => e.timerStartedEventAttributes)).toHaveLength(0);
      }
      // Other sites are not held.
      expect(h.mx.acceptedFor('other@elsewhere-rcpt.example')[0].receivedAt.getTime()).toBeLessThan(untilMs);
    } finally {
      await api('DELETE', `/api/mx-rules/${ruleId}`);
    }
  });
});
