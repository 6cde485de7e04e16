/** Start-up failures told in one line: what failed, why, and what to do about it. */
import type { Settings } from '../config/settings';

/** A failure whose message is already the one line to show: "<what> failed: <why> — <what to do>". */
export class StartupError extends Error {
  override name = 'StartupError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The settings that name a port, so that "port N is in use" can say which variable moves it. */
function portSettings(s: Partial<Settings> | undefined): { name: string; port: number }[] {
  if (!s) return [];
  const out: { name: string; port: number }[] = [];
  for (const name of ['API_PORT', 'SANDBOX_MX_PORT', 'INBOUND_SMTP_PORT', 'EMBEDDED_PG_PORT', 'TEMPORAL_UI_PORT'] as const) {
    const v = s[name];
    if (typeof v === 'number') out.push({ name, port: v });
  }
  const temporalPort = Number(s.TEMPORAL_ADDRESS?.split(':').pop());
  if (Number.isInteger(temporalPort)) out.push({ name: 'TEMPORAL_ADDRESS', port: temporalPort });
  return out;
}

const SERVER_OF: Record<string, string> = {
  API_PORT: 'the API',
  SANDBOX_MX_PORT: 'the sandbox MX',
  INBOUND_SMTP_PORT: 'the inbound listener (bounces and complaints)',
  EMBEDDED_PG_PORT: 'embedded Postgres',
  TEMPORAL_UI_PORT: 'the Temporal Web UI',
  TEMPORAL_ADDRESS: 'the Temporal dev server',
};

function portOfUrl(url: string): number | null {
  try {
    const u = new URL(url);
    return Number(u.port || 5432);
  } catch {
    return null;
  }
}

/** A port that is taken: which setting moves it, and how to find who holds it. */
export function portInUseHint(port: number, setting: string | undefined): string {
  const move = setting ? `set ${setting} to a free port` : 'choose a free port';
  return `stop the process listening there (\`ss -ltnp 'sport = :${port}'\` names it) or ${move}`;
}

/**
 * One line for any start-up failure. Known causes (a taken port, a wrong setting) get their remedy; anything else keeps
 * the first line of its message.
 */
export function describeStartupFailure(e: unknown, settings?: Partial<Settings>): string {
  return explainStartupFailure(e, settings).line;
}

/** The one line, and whether the cause is a known one (an unknown one deserves its stack trace somewhere). */
export function explainStartupFailure(e: unknown, settings?: Partial<Settings>): { line: string; known: boolean } {
  const line = knownCause(e, settings);
  if (line) return { line, known: true };
  if (!(e instanceof Error)) return { line: `start-up failed: ${String(e)}`, known: false };
  const code = (e as NodeJS.ErrnoException).code;
  const first = e.message.split('\n').find((l) => l.trim())?.trim() || `${e.name}${code ? ` (${code})` : ''}`;
  return { line: first, known: false };
}

function knownCause(e: unknown, settings?: Partial<Settings>): string | null {
  if (e instanceof StartupError) return e.message;
  if (!(e instanceof Error)) return null;
  // Node reports a refused connection to "localhost" (IPv4 and IPv6 tried) as an AggregateError with no message.
  if (e instanceof AggregateError && e.errors[0] instanceof Error) return knownCause(e.errors[0], settings);
  const err = e as NodeJS.ErrnoException & { port?: number; address?: string };
  if (err.code === 'EADDRINUSE') {
    const port = err.port ?? Number(/:(\d+)\s*$/.exec(err.message)?.[1]);
    const setting = portSettings(settings).find((p) => p.port === port)?.name;
    const what = setting ? SERVER_OF[setting] : 'a server';
    return `${what} failed to start: port ${port}${err.address ? ` on ${err.address}` : ''} is already in use${setting ? ` (${setting})` : ''} — ${portInUseHint(port, setting)}`;
  }
  if (err.message.startsWith('Invalid configuration:')) {
    const issues = err.message.split('\n').slice(1).map((l) => l.trim()).filter(Boolean);
    return `invalid configuration: ${issues.join('; ')} — fix these environment variables (see "Configuration" in README.md)`;
  }
  if (err.code === 'ECONNREFUSED') {
    const port = err.port ?? Number(/:(\d+)\s*$/.exec(err.message)?.[1]);
    const at = err.address && err.port ? `${err.address}:${err.port}` : err.message.replace(/^connect ECONNREFUSED /, '');
    if (settings?.DATABASE_URL && portOfUrl(settings.DATABASE_URL) === port) {
      return `Postgres connection failed: nothing listens at ${at} (DATABASE_URL) — start that server, or fix DATABASE_URL (unset, the stack runs its own Postgres)`;
    }
    if (settings?.TEMPORAL_EXTERNAL && Number(settings.TEMPORAL_ADDRESS?.split(':').pop()) === port) {
      return `Temporal connection failed: nothing listens at ${at} (TEMPORAL_ADDRESS) — start that server, or unset TEMPORAL_EXTERNAL to run the dev server`;
    }
    return `connection failed: nothing listens at ${at} — start that server, or check DATABASE_URL / TEMPORAL_ADDRESS`;
  }
  // The Temporal client (Rust core) reports a refused connection as a transport error.
  if (/tcp connect error|ConnectionRefused/.test(err.message)) {
    const where = settings?.TEMPORAL_ADDRESS ? ` at ${settings.TEMPORAL_ADDRESS} (TEMPORAL_ADDRESS)` : '';
    const hint = settings?.TEMPORAL_EXTERNAL ? 'start that server, or unset TEMPORAL_EXTERNAL to run the dev server' : 'check TEMPORAL_ADDRESS';
    return `Temporal connection failed: nothing listens${where} — ${hint}`;
  }
  // Postgres refusals (SQLSTATE codes) while connecting to DATABASE_URL.
  if (err.code === '28P01' || err.code === '28000') {
    return `Postgres connection failed: ${err.message} — fix the user and password in DATABASE_URL`;
  }
  if (err.code === '3D000') {
    return `Postgres connection failed: ${err.message} — create that database, or fix DATABASE_URL`;
  }
  return null;
}
