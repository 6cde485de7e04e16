/** Starts what every integration test shares: a Temporal dev server (the project's CLI build), embedded Postgres, the workflow bundle. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { parseSettings } from '../../config/settings';
import { locateTemporalCli } from '../../stack/temporal-cli';
import { startDevServer } from '../../stack/temporal-dev-server';
import { startEmbeddedPostgres } from '../../stack/postgres';
import { describeStartupFailure } from '../../stack/startup-error';
import { freePort } from '../../stack/ports';
import { createPool } from '../../db/pool';
import { migrate } from '../../db/migrate';
import { seedQualificationRules } from '../../db/qualification-rule-store';
import { seedMxRules } from '../../db/mx-rule-store';
import { workflowsPath } from '../../workers/create-worker';
import { workflowBundleConverterOptions } from '../../runtime/data-converter-codec';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    databaseUrl: string;
    workflowBundlePath: string;
    temporalCliPath: string;
  }
}

export default async function setup(project: TestProject) {
  let temporal: Awaited<ReturnType<typeof startDevServer>> | null = null;
  let pg: Awaited<ReturnType<typeof startEmbeddedPostgres>> | null = null;
  let tmp: string | null = null;
  const teardown = async () => {
    await temporal?.stop();
    await pg?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  };
  let cli = '';
  let temporalPort = 0;
  try {
    const s = parseSettings(process.env);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'email-delivery-test-'));
    // Postgres runs as its own user when the tests run as root: it must be able to enter this folder (when the tmpdir
    // itself is out of its reach, stack/postgres-location.ts keeps the cluster elsewhere and says so).
    fs.chmodSync(tmp, 0o755);
    cli = locateTemporalCli({ explicit: s.TEMPORAL_CLI, toolsDir: s.TOOLS_DIR });
    temporalPort = await freePort();
    const [uiPort, pgPort] = [await freePort(), await freePort()];
    temporal = await startDevServer({ cliPath: cli, address: `127.0.0.1:${temporalPort}`, uiPort, namespace: 'default', logFile: path.join(tmp, 'temporal.log') });
    pg = await startEmbeddedPostgres({
      dataDir: path.join(tmp, 'pg'),
      port: pgPort,
      persistent: false,
      log: (m) => console.log(`[test setup] ${m}`),
    });
    const pool = createPool(pg.connectionString, 2);
    await migrate(pool);
    await seedQualificationRules(pool);
    // The MX rules every worker sends by (a test that edits one through the API edits a seeded table).
    await seedMxRules(pool);
    await pool.end();
    // The failure converter the workers use (failure messages inside sealed payloads) must be in the bundle too.
    const bundle = await bundleWorkflowCode({ workflowsPath: workflowsPath(), ...workflowBundleConverterOptions(), logger: new DefaultLogger('WARN') });
    fs.writeFileSync(path.join(tmp, 'workflow-bundle.js'), bundle.code);
  } catch (e) {
    await teardown().catch(() => {});
    // One line saying what failed and what to do. Thrown instead, it would come after vitest's misleading
    // "No test files found" (or, for a rejection without an Error, after nothing at all).
    process.stderr.write(`\ntest setup failed: ${describeStartupFailure(e)}\n`);
    process.exit(1);
  }
  const bundlePath = path.join(tmp, 'workflow-bundle.js');

  project.provide('temporalAddress', `127.0.0.1:${temporalPort}`);
  project.provide('databaseUrl', pg.connectionString);
  project.provide('workflowBundlePath', bundlePath);
  project.provide('temporalCliPath', cli);

  return teardown;
}
