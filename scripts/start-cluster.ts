/**
 * `npm run start:cluster`: the production layout of docker-compose.yml on this machine, without Docker — Temporal
 * server of the pinned release on its own Postgres (schemas by the schema tool, namespace and search attributes by
 * the same job scripts), the application's Postgres, the API and two workers as separate processes, and a sandbox MX
 * that receives every message (nothing leaves the machine). State is kept under DATA_DIR/cluster between runs.
 *
 *   npm run start:cluster                    # two workers, API on :3000
 *   npm run start:cluster -- --workers 3
 *   npm run start:cluster -- --fresh         # deletes DATA_DIR/cluster first
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseSettings } from '../config/settings';
import { SandboxMx } from '../mx-sandbox/sandbox-mx';
import { startLocalCluster } from '../stack/cluster/local-cluster';
import { describeStartupFailure } from '../stack/startup-error';
import { createPool } from '../db/pool';
import { ApiKeyStore, createApiKey } from '../db/api-key-store';
import type { AuditActor } from '../db/audit-log-store';

const CLUSTER_ACTOR: AuditActor = { keyId: null, name: 'npm run start:cluster' };

/** A fresh admin key for this run (the previous run's is revoked), created in the application's database. */
async function clusterAdminKey(databaseUrl: string): Promise<string> {
  const pool = createPool(databaseUrl, 2);
  try {
    const store = new ApiKeyStore(pool);
    for (const k of await store.list()) {
      if (k.createdBy.keyId === null && k.createdBy.name === CLUSTER_ACTOR.name) await store.revoke(k.id, CLUSTER_ACTOR);
    }
    return (await createApiKey(pool, { name: 'cluster admin (npm run start:cluster)', scopes: ['admin'], createdBy: CLUSTER_ACTOR })).secret;
  } finally {
    await pool.end();
  }
}

async function main() {
  const { values } = parseArgs({
    options: { workers: { type: 'string', default: '2' }, fresh: { type: 'boolean', default: false } },
    strict: true,
  });
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`--workers must be a positive integer, got "${values.workers}"`);
  const s = parseSettings(process.env);
  const dir = path.join(s.DATA_DIR, 'cluster');
  if (values.fresh) fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });

  const mx = new SandboxMx({ port: s.SANDBOX_MX_PORT, keepRaw: false, maxRecords: 100_000 });
  const { port: mxPort } = await mx.start();
  console.log(`· sandbox MX on 127.0.0.1:${mxPort} receives every message`);
  // Secrets are generated once per state folder, as an operator would set them once.
  const secretsFile = path.join(dir, 'secrets.json');
  if (!fs.existsSync(secretsFile)) {
    const random = () => randomBytes(24).toString('base64url');
    fs.writeFileSync(
      secretsFile,
      JSON.stringify({ VERP_SECRET: random(), KEY_ENCRYPTION_SECRET: random(), PAYLOAD_KEYS: `cluster-1:${randomBytes(32).toString('base64')}` }),
      { mode: 0o600 },
    );
  }
  const secrets = JSON.parse(fs.readFileSync(secretsFile, 'utf8')) as Record<string, string>;

  const cluster = await startLocalCluster({
    dir,
    toolsDir: s.TOOLS_DIR,
    persistent: true,
    workers,
    temporalPort: Number(s.TEMPORAL_ADDRESS.split(':')[1]) || undefined,
    apiPort: s.API_PORT,
    appEnv: {
      ...secrets,
      PUBLIC_URL: s.PUBLIC_URL ?? `http://127.0.0.1:${s.API_PORT}`,
      BOUNCE_DOMAIN: s.BOUNCE_DOMAIN,
      SMTP_HELO_NAME: s.SMTP_HELO_NAME,
      SEND_MODE: 'direct',
      MX_OVERRIDES: JSON.stringify({ '*': `127.0.0.1:${mxPort}` }),
    },
  });
  const apiKey = await clusterAdminKey(cluster.databaseUrl);
  console.log(`\nProduction layout running:
  API              ${cluster.apiUrl}/api/deliveries
  API key (admin)  ${apiKey}  (this run's; the next start revokes it)
                   curl -H "Authorization: Bearer ${apiKey}" ${cluster.apiUrl}/api/deliveries
  Temporal         ${cluster.temporalAddress} (namespace ${cluster.namespace}; temporal --address ${cluster.temporalAddress} workflow list)
  workers          ${cluster.workers.length} processes on task queue ${cluster.taskQueue}
  logs             ${path.join(dir, 'logs')}
Ctrl-C stops everything; the databases stay under ${dir}.`);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.log('\nstopping the API, the workers, Temporal and both Postgres clusters');
    await cluster.stop();
    await mx.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

main().catch((e) => {
  console.error(`start:cluster failed: ${describeStartupFailure(e)}`);
  process.exit(1);
});
