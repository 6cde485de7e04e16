/**
 * A lane never waits forever for the RSET that follows a refused recipient (found by the fault suite's (d2), which
 * once left one recipient `taken_into_account` with its first attempt in progress after 300 s, docs/fault-suite.md):
 * nodemailer completes a pending send when the connection dies, but not a pending RSET, so a connection cut between
 * the refusal and the RSET's answer held the attempt, and its site's connection, until the activity timed out.
 *
 * The peer is a real SMTP server over TCP, written out here because the server library answers RSET itself: it greets,
 * accepts EHLO and MAIL, refuses RCPT (550 or 450), then either cuts the connection when RSET arrives or never
 * answers it.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SmtpLane } from '../mail/smtp/smtp-lane';

type OnReset = 'cut' | 'silent' | 'answer';

interface Peer {
  port: number;
  connections: () => number;
  resets: () => number;
  close: () => Promise<void>;
}

/** A minimal SMTP peer: one line in, one reply out, as RFC 5321 has it (no pipelining offered). */
function startPeer(rcptReply: string, onReset: OnReset): Promise<Peer> {
  let connections = 0;
  let resets = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.write('220 peer.test ESMTP\r\n');
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1');
      let nl: number;
      while ((nl = buffered.indexOf('\r\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO' || verb === 'HELO') socket.write('250-peer.test\r\n250 8BITMIME\r\n');
        else if (verb === 'MAIL') socket.write('250 2.1.0 ok\r\n');
        else if (verb === 'RCPT') socket.write(`${rcptReply}\r\n`);
        else if (verb === 'RSET') {
          resets++;
          if (onReset === 'cut') socket.destroy();
          else if (onReset === 'answer') socket.write('250 2.0.0 reset\r\n');
          // 'silent': the reply never comes
        } else if (verb === 'QUIT') {
          socket.end('221 bye\r\n');
        } else socket.write('502 5.5.2 not here\r\n');
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        connections: () => connections,
        resets: () => resets,
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}

const SOCKET_TIMEOUT_MS = 1_500;
const lanes: SmtpLane[] = [];
const peers: Peer[] = [];

function newLane(): SmtpLane {
  const lane = new SmtpLane({ relayMode: false, heloName: 'sender.test', connectTimeoutMs: 2_000, greetingTimeoutMs: 2_000, socketTimeoutMs: SOCKET_TIMEOUT_MS });
  lanes.push(lane);
  return lane;
}

afterEach(async () => {
  for (const l of lanes.splice(0)) await l.close();
  for (const p of peers.splice(0)) await p.close();
});

const envelope = { from: 'bounce@sender.test', to: 'someone@peer.test' };
const raw = Buffer.from('Subject: hi\r\n\r\nhello\r\n');

async function sendTimed(lane: SmtpLane, port: number) {
  const started = Date.now();
  const reply = await lane.send({ host: '127.0.0.1', port, priority: 10 }, false, envelope, raw);
  return { reply, ms: Date.now() - started };
}

describe('a lane after a refused recipient', () => {
  for (const [rcpt, code] of [
    ['550 5.1.1 no such user', 550],
    ['450 4.2.0 greylisted, try later', 450],
  ] as const) {
    it(`reports the ${code} and is free again when the connection is cut during the RSET`, async () => {
      const peer = await startPeer(rcpt, 'cut');
      peers.push(peer);
      const lane = newLane();
      const { reply, ms } = await sendTimed(lane, peer.port);
      expect(reply.code).toBe(code);
      expect(peer.resets()).toBe(1);
      // Without the fix this never resolves (the test times out); with it, as soon as the cut is seen.
      expect(ms).toBeLessThan(SOCKET_TIMEOUT_MS);
      expect(lane.isOpen).toBe(false);
      // The next message opens a new connection.
      const next = await sendTimed(lane, peer.port);
      expect(next.reply.code).toBe(code);
      expect(peer.connections()).toBe(2);
    });
  }

  it('gives up on an RSET that is never answered after the socket timeout, and closes the connection', async () => {
    const peer = await startPeer('550 5.1.1 no such user', 'silent');
    peers.push(peer);
    const lane = newLane();
    const { reply, ms } = await sendTimed(lane, peer.port);
    expect(reply.code).toBe(550);
    expect(ms).toBeGreaterThanOrEqual(SOCKET_TIMEOUT_MS - 100);
    expect(ms).toBeLessThan(SOCKET_TIMEOUT_MS + 3_000);
    expect(lane.isOpen).toBe(false);
  });

  it('keeps the connection for the next message when the RSET is answered', async () => {
    const peer = await startPeer('550 5.1.1 no such user', 'answer');
    peers.push(peer);
    const lane = newLane();
    expect((await sendTimed(lane, peer.port)).reply.code).toBe(550);
    expect(lane.isOpen).toBe(true);
    expect((await sendTimed(lane, peer.port)).reply.code).toBe(550);
    expect(peer.connections()).toBe(1);
    expect(peer.resets()).toBe(2);
  });
});
