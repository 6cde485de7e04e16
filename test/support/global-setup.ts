/** Starts what every integration test shares: a Temporal dev server (the project's CLI build), embedded Postgres, the workflow bundle. */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { parseSettings } from '../../config/settings';
import { locateTemporalCli } from '../../stack/temporal-cli';
import { startDevServer } from '../../stack/temporal-dev-server';
import { startEmbeddedPostgres } from '../../stack/postgres';
import { createPool } from '../../db/pool';
import { migrate } from '../../db/migrate';
import { seedQualificationRules } from '../../db/qualification-rule-store';
import { workflowsPath } from '../../workers/create-worker';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    databaseUrl: string;
    workflowBundlePath: string;
    temporalCliPath: string;
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export default async function setup(project: TestProject) {
  const s = parseSettings(process.env);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'email-delivery-test-'));
  // Postgres runs as its own user when the tests run as root: it must be able to enter this folder.
  fs.chmodSync(tmp, 0o755);
  const cli = locateTemporalCli({ explicit: s.TEMPORAL_CLI, toolsDir: s.TOOLS_DIR });
  const [temporalPort, uiPort, pgPort] = [await freePort(), await freePort(), await freePort()];
  const temporal = await startDevServer({ cliPath: cli, address: `127.0.0.1:${temporalPort}`, uiPort, namespace: 'default', logFile: path.join(tmp, 'temporal.log') });
  let pg: Awaited<ReturnType<typeof startEmbeddedPostgres>> | null = null;
  const teardown = async () => {
    await temporal.stop();
    await pg?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  const bundlePath = path.join(tmp, 'workflow-bundle.js');
  try {
    pg = await startEmbeddedPostgres({ dataDir: path.join(tmp, 'pg'), port: pgPort, persistent: false });
    const pool = createPool(pg.connectionString, 2);
    await migrate(pool);
    await seedQualificationRules(pool);
    await pool.end();
    const bundle = await bundleWorkflowCode({ workflowsPath: workflowsPath(), logger: new DefaultLogger('WARN') });
    fs.writeFileSync(bundlePath, bundle.code);
  } catch (e) {
    await teardown();
    throw e;
  }

  project.provide('temporalAddress', `127.0.0.1:${temporalPort}`);
  project.provide('databaseUrl', pg.connectionString);
  project.provide('workflowBundlePath', bundlePath);
  project.provide('temporalCliPath', cli);

  return teardown;
}
