/** Local TCP ports: a free one for a test or bench server, and a check that a configured one is free before a server starts. */
import net from 'node:net';
import { portInUseHint, StartupError } from './startup-error';

/** A port the OS reports free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/**
 * Fails with one line naming `setting` when host:port is taken (a server started on a taken port may look ready while
 * another process answers). `failed` opens the line ("embedded Postgres failed"); `extra` adds a remedy of its own.
 * Any other refusal is left for the server itself to report.
 */
export function assertPortFree(o: { host: string; port: number; setting: string; failed: string; extra?: string }): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const s = net.createServer();
    s.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') {
        reject(new StartupError(`${o.failed}: ${o.host}:${o.port} is already in use (${o.setting}) — ${portInUseHint(o.port, o.setting)}${o.extra ?? ''}`));
      } else resolve();
    });
    s.listen(o.port, o.host, () => s.close(() => resolve()));
  });
}
