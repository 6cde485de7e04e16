/**
 * Telling "Postgres could not be reached or went away" (worth trying again in a moment) from an error of the statement
 * itself (a bug or a constraint: trying again changes nothing).
 */

/** SQLSTATE classes of a server that is restarting, shutting down, out of connections, or of a lost connection. */
const UNAVAILABLE_SQLSTATE_CLASSES = new Set(['08', '53', '57']);

export function isDatabaseUnavailable(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  // A server error carries its five-character SQLSTATE: only the classes above say "not now".
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return UNAVAILABLE_SQLSTATE_CLASSES.has(code.slice(0, 2));
  // No SQLSTATE: the socket (ECONNREFUSED, ECONNRESET, ...) or the client ("Connection terminated unexpectedly",
  // "Client has encountered a connection error and is not queryable").
  return e instanceof Error;
}

/**
 * Runs `work` until it succeeds, trying again while the database is unavailable, for at most `forMs` (backing off
 * from 250 ms to 2 s); the last error is thrown after that, or at once when it is not about availability.
 */
export async function whileDatabaseUnavailable<T>(work: () => Promise<T>, forMs: number): Promise<T> {
  const started = Date.now();
  for (let delay = 250; ; delay = Math.min(delay * 2, 2_000)) {
    try {
      return await work();
    } catch (e) {
      if (!isDatabaseUnavailable(e) || Date.now() - started + delay > forMs) throw e;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
