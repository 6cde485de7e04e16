/**
 * A receiving site's connections are never lost to a failed read (found by the fault suite, docs/fault-suite.md):
 * a Postgres outage that made the send activity's "is the delivery paused?" read fail right after the message was
 * admitted kept that message's connection busy for the life of the worker; once every connection of the site had
 * leaked that way, the site sent nothing more and the delivery stalled with its recipients `taken_into_account`.
 *
 * - the activity gives the connection back whatever fails after admission (real Postgres, sandbox MX over TCP; only
 *   the phase read is made to fail, as it did in the outage);
 * - the site budget takes back a permit its holder never released (the backstop against any other such leak).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness';
import { createSendingActivities } from '../activities/sending-activities';
import type { ActivityDependencies } from '../activities/dependencies';
import { MxSiteStore } from '../db/mx-site-store';
import { SiteBudget } from '../mail/mx/site-budget';
import { SmtpLane } from '../mail/smtp/smtp-lane';
import type { SendInput } from '../workflows/contract';

const CONNECTIONS = 2;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let h: Harness;

beforeAll(async () => {
  // No worker: the test calls the send activity itself. Two connections per site, so two leaks would stall it.
  h = await startHarness({ worker: false, env: { SMTP_POOL_MAX_CONNECTIONS: String(CONNECTIONS), MX_LOCAL_WAIT_MS: '1000' } });
}, 120_000);

afterAll(async () => {
  await h?.stop();
});

/**
 * The harness's dependencies, except that the delivery's phase reads fail after the first one of each activity
 * instance, and resolving the site takes longer than the activity's phase cache (1 s): the read after admission then
 * goes to Postgres, and fails.
 */
function depsFailingAfterAdmission(): { deps: ActivityDependencies; phaseReads: () => number } {
  let reads = 0;
  const deliveries = new Proxy(h.deps.deliveries, {
    get(target, prop, receiver) {
      if (prop === 'phase') {
        return async (deliveryId: string) => {
          reads++;
          if (reads === 1) return target.phase(deliveryId);
          throw new Error('Connection terminated unexpectedly');
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const realSites = h.deps.sender.sites;
  const sites = new Proxy(realSites, {
    get(target, prop, receiver) {
      if (prop === 'resolve') {
        return async (domain: string) => {
          const site = await target.resolve(domain);
          await sleep(1_200);
          return site;
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const sender = new Proxy(h.deps.sender, {
    get(target, prop, receiver) {
      if (prop === 'sites') return sites;
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { deps: { ...h.deps, deliveries, sender } as ActivityDependencies, phaseReads: () => reads };
}

function sendInput(deliveryId: string, recipientId: number): SendInput {
  const now = Date.now();
  return { deliveryId, recipientId, attempt: 1, dkimSignature: '', retryWindowEndsAt: now + 3_600_000, workflowNowMs: now, reservation: null };
}

describe('site connections survive failures after admission', () => {
  it('a phase read failing after admission gives the connection back: the site still sends', async () => {
    const domain = `permit-leak-${Date.now()}.example`;
    const recipients = Array.from({ length: CONNECTIONS + 1 }, (_, i) => ({ email: `r${i + 1}@${domain}` }));
    const id = await h.createDelivery({ name: 'permit leak', from: 'news@permit-leak.example', subject: 'x', text: 'y', recipients, autoConfirm: false });
    // Handed over to the sending stage, as the delivery workflow does (no worker runs it here).
    expect(await h.deps.log.claimPage(id, 0, 10, 1)).toHaveLength(recipients.length);

    // One failing attempt per connection of the site, each admitted (it holds a connection) before its read fails.
    for (let r = 1; r <= CONNECTIONS; r++) {
      const { deps, phaseReads } = depsFailingAfterAdmission();
      await expect(createSendingActivities(deps).sendRecipientMessage(sendInput(id, r))).rejects.toThrow(/Connection terminated/);
      expect(phaseReads(), 'the read after admission was made (and failed)').toBe(2);
    }
    const { rows: attempted } = await h.pool.query(`SELECT count(*)::int AS n FROM send_attempts WHERE delivery_id = $1`, [id]);
    expect(attempted[0].n, 'no attempt was started by the failing reads').toBe(0);

    // A healthy attempt to the same site: it gets a connection at once and the MX takes the message. Before the fix the
    // two connections were still held, and it was told to wait ("all its 2 connections in use") for ever.
    const outcome = await createSendingActivities(h.deps).sendRecipientMessage(sendInput(id, CONNECTIONS + 1));
    expect(outcome.reply.text).not.toMatch(/connections in use/);
    expect(outcome.outcome).toBe('accepted');
    expect(h.mx.acceptedFor(`r${CONNECTIONS + 1}@${domain}`)).toHaveLength(1);
  }, 60_000);

  it('a permit never released is taken back after the orphan limit, with an error logged', async () => {
    const logged: Record<string, unknown>[] = [];
    const s = h.settings;
    const budget = new SiteBudget(new MxSiteStore(h.pool), h.deps.mxRules, {
      leaseTtlMs: 30_000,
      idleCloseMs: 5_000,
      perProcessMaxConnections: CONNECTIONS,
      perProcessMaxMessages: 100,
      lateToleranceMs: 500,
      reportEveryMs: 100,
      stateCacheMs: 1_000,
      suspendedRecheckMs: 1_000,
      adaptive: { cooldownMs: 1_000, quietMs: 1_000, minPerSecond: 1 },
      timeScale: 1,
      orphanedPermitMs: 500,
      newLane: () =>
        new SmtpLane({ relayMode: false, heloName: 'orphan.test', connectTimeoutMs: s.SMTP_CONNECT_TIMEOUT_MS, greetingTimeoutMs: s.SMTP_GREETING_TIMEOUT_MS, socketTimeoutMs: s.SMTP_SOCKET_TIMEOUT_MS }),
      log: (e) => logged.push(e),
    });
    try {
      const site = await h.deps.sender.sites.resolve(`orphan-${Date.now()}.example`);
      const opts = () => ({ engineNowMs: Date.now(), maxWaitMs: 0, latestMs: Date.now() + 60_000 });
      // Every connection of the site taken by a permit nobody releases.
      for (let i = 0; i < CONNECTIONS; i++) expect((await budget.admit(site, opts())).kind).toBe('go');
      expect((await budget.admit(site, opts())).kind, 'no connection left while the permits are held').toBe('wait');
      // Past the limit, the upkeep takes them back.
      const deadline = Date.now() + 10_000;
      let next = await budget.admit(site, opts());
      while (next.kind !== 'go' && Date.now() < deadline) {
        await sleep(200);
        next = await budget.admit(site, opts());
      }
      expect(next.kind).toBe('go');
      if (next.kind === 'go') next.permit.release();
      expect(logged.filter((e) => String(e.msg).includes('never released')).length).toBeGreaterThanOrEqual(1);
    } finally {
      await budget.close();
    }
  }, 60_000);
});
