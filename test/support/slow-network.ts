/**
 * A TCP proxy standing for the network between the worker and a receiving MX: it delays every chunk, and the end of
 * each stream, by `latencyMs` in each direction. On loopback an SMTP transaction takes a millisecond or two and a
 * fault would hardly ever find one in flight; over a real network it is round trips, as here.
 */
import net from 'node:net';

export interface SlowNetwork {
  port: number;
  /** Connections opened through the proxy whose upstream connect failed (the MX refused them). */
  refusedUpstream(): number;
  close(): void;
}

export async function startSlowNetwork(targetPort: number, latencyMs: number): Promise<SlowNetwork> {
  const sockets = new Set<net.Socket>();
  let refused = 0;
  const forward = (from: net.Socket, to: net.Socket) => {
    let lastAt = 0; // release times never go backwards, so the bytes keep their order
    const later = (fn: () => void) => {
      lastAt = Math.max(lastAt, Date.now() + latencyMs);
      setTimeout(fn, lastAt - Date.now());
    };
    // Like a network, it still delivers what a killed process had already written, then the close.
    from.on('data', (chunk: Buffer) => later(() => to.writable && to.write(chunk)));
    from.on('close', () => later(() => to.end()));
    from.on('error', () => undefined);
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    let connected = false;
    upstream.once('connect', () => (connected = true));
    // The MX refused (it is down): the client's connection is reset, the nearest a proxy that already accepted it can
    // come to a refusal. The client sees a connection-level failure at once, as with ECONNREFUSED.
    upstream.once('error', () => {
      if (connected) return;
      refused += 1;
      setTimeout(() => client.resetAndDestroy(), latencyMs);
    });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    refusedUpstream: () => refused,
    close() {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}
