/**
 * `npm run api-key`: manages API keys straight in Postgres, for the first admin key and for recovering from a lost one.
 *
 *   npm run api-key -- create --name "ops laptop" --scopes admin       # prints the key, once
 *   npm run api-key -- create --name "dashboard" --scopes read --json  # {"id", "name", "scopes", "secret"}
 *   npm run api-key -- list [--all]                                    # --all: revoked keys too
 *   npm run api-key -- revoke <id or prefix>
 *
 * Postgres: DATABASE_URL; without it the embedded cluster of `npm start` under DATA_DIR (reached on EMBEDDED_PG_PORT
 * while `npm start` runs, started for the command otherwise). Every change is in the audit log as "command line".
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Pool } from 'pg';
import { parseSettings, type Settings } from '../config/settings';
import { createPool } from '../db/pool';
import { migrate } from '../db/migrate';
import { ApiKeyStore, COMMAND_LINE_ACTOR, createApiKey, type ApiKeyRecord } from '../db/api-key-store';
import { API_SCOPES, isApiScope, type ApiScope } from '../domain/api-scopes';
import { embeddedConnectionString, startEmbeddedPostgres } from '../stack/postgres';
import { describeStartupFailure } from '../stack/startup-error';

const USAGE = `usage:
  npm run api-key -- create --name NAME --scopes read|send|admin[,...] [--json]
  npm run api-key -- list [--all] [--json]
  npm run api-key -- revoke ID_OR_PREFIX`;

class UsageError extends Error {}

/** A pool on the configured database, or on the embedded cluster (already running, or started for this command). */
async function openDatabase(s: Settings): Promise<{ pool: Pool; close: () => Promise<void> }> {
  if (s.DATABASE_URL) {
    const pool = createPool(s.DATABASE_URL, 2);
    return { pool, close: () => pool.end() };
  }
  const running = createPool(embeddedConnectionString(s.EMBEDDED_PG_PORT), 2);
  try {
    await running.query('SELECT 1');
    return { pool: running, close: () => running.end() };
  } catch (e) {
    await running.end().catch(() => {});
    if ((e as NodeJS.ErrnoException).code !== 'ECONNREFUSED') throw e;
  }
  // Same folder as the embedded stack (stack/embedded-stack.ts), so that `npm start` finds the key afterwards.
  const pg = await startEmbeddedPostgres({ dataDir: path.join(s.DATA_DIR, 'postgres'), port: s.EMBEDDED_PG_PORT });
  const pool = createPool(pg.connectionString, 2);
  return {
    pool,
    close: async () => {
      await pool.end();
      await pg.stop();
    },
  };
}

function parseScopes(text: string | undefined): ApiScope[] {
  const scopes = (text ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  const wrong = scopes.filter((x) => !isApiScope(x));
  if (scopes.length === 0 || wrong.length) throw new UsageError(`--scopes takes ${API_SCOPES.join(', ')} (comma-separated)${wrong.length ? `, not ${wrong.join(', ')}` : ''}`);
  return scopes as ApiScope[];
}

function line(k: ApiKeyRecord): string {
  const used = k.lastUsedAt ? `last used ${k.lastUsedAt.toISOString()}` : 'never used';
  const state = k.revokedAt ? `REVOKED ${k.revokedAt.toISOString()}` : used;
  return `${k.id}  ${k.prefix}…  ${k.scopes.join(',').padEnd(16)} ${JSON.stringify(k.name)}  created ${k.createdAt.toISOString()} by ${k.createdBy.name}  ${state}`;
}

async function main() {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { name: { type: 'string' }, scopes: { type: 'string' }, all: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } },
    strict: true,
  });
  const [command, target] = positionals;
  if (!command || !['create', 'list', 'revoke'].includes(command)) throw new UsageError(command ? `unknown command "${command}"` : 'a command is required');
  const s = parseSettings(process.env);
  // Checked before Postgres starts: a typo must not cost a cluster start.
  const scopes = command === 'create' ? parseScopes(values.scopes) : [];
  if (command === 'create' && !values.name?.trim()) throw new UsageError('--name is required (who or what the key is for)');
  if (command === 'revoke' && !target) throw new UsageError('revoke needs the key id or its prefix (npm run api-key -- list)');

  const db = await openDatabase(s);
  try {
    await migrate(db.pool);
    const store = new ApiKeyStore(db.pool);
    if (command === 'create') {
      const { key, secret } = await createApiKey(db.pool, { name: values.name!, scopes, createdBy: COMMAND_LINE_ACTOR });
      if (values.json) {
        console.log(JSON.stringify({ id: key.id, name: key.name, scopes: key.scopes, secret }));
        return;
      }
      console.log(`API key "${key.name}" (${key.scopes.join(', ')}), id ${key.id}:\n\n  ${secret}\n`);
      console.log('It is shown this once (only its SHA-256 is stored). Send it as "Authorization: Bearer <key>", e.g.');
      console.log(`  curl -H "Authorization: Bearer ${secret}" ${s.PUBLIC_URL ?? `http://127.0.0.1:${s.API_PORT}`}/api/deliveries`);
    } else if (command === 'list') {
      const keys = await store.list({ includeRevoked: values.all });
      if (values.json) console.log(JSON.stringify(keys));
      else console.log(keys.length ? keys.map(line).join('\n') : 'no API keys (create one: npm run api-key -- create --name NAME --scopes admin)');
    } else {
      const all = await store.list({ includeRevoked: true });
      const matches = all.filter((k) => k.id === target || k.prefix === target || k.prefix === target!.replace(/…$/, ''));
      if (matches.length !== 1) throw new UsageError(matches.length ? `"${target}" matches ${matches.length} keys: give the id` : `no key with id or prefix "${target}"`);
      const r = (await store.revoke(matches[0].id, COMMAND_LINE_ACTOR))!;
      console.log(r.revoked ? `revoked: ${line(r.key)}` : `already revoked: ${line(r.key)}`);
      // Running API processes stop accepting it within API_KEY_CACHE_SECONDS.
      console.log(`API processes refuse it within ${s.API_KEY_CACHE_SECONDS} s (API_KEY_CACHE_SECONDS).`);
    }
  } finally {
    await db.close();
  }
}

main().catch((e) => {
  // node:util parseArgs refuses unknown options with ERR_PARSE_ARGS_* codes: a usage mistake too.
  const usage = e instanceof UsageError || String((e as NodeJS.ErrnoException).code ?? '').startsWith('ERR_PARSE_ARGS');
  if (usage) console.error(`api-key: ${(e as Error).message}\n${USAGE}`);
  else console.error(`api-key: ${describeStartupFailure(e)}`);
  process.exit(usage ? 2 : 1);
});
