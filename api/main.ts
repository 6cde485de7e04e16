/** API process entry (production layout): serves the HTTP API against the configured Temporal and Postgres. */
import { Client, Connection } from '@temporalio/client';
import { settings } from '../config/settings';
import { loadSecrets } from '../config/secrets';
import { createPool } from '../db/pool';
import { migrate } from '../db/migrate';
import { seedQualificationRules } from '../db/qualification-rule-store';
import { DkimKeyStore } from '../db/dkim-key-store';
import { KeyCipher } from '../mail/dkim-keys';
import { createApp } from './app';
import { DeliveryService } from './delivery-service';

async function main() {
  const s = settings();
  if (!s.DATABASE_URL) throw new Error('DATABASE_URL is required to run the API on its own (npm start runs the embedded stack)');
  const pool = createPool(s.DATABASE_URL);
  await migrate(pool);
  await seedQualificationRules(pool);
  const secrets = loadSecrets(s);
  const keys = new DkimKeyStore(pool, new KeyCipher(secrets.keyEncryptionSecret));
  const connection = await Connection.connect({ address: s.TEMPORAL_ADDRESS });
  const client = new Client({ connection, namespace: s.TEMPORAL_NAMESPACE });
  const service = new DeliveryService({ client, pool, keys, taskQueue: s.TASK_QUEUE, dkimSelector: s.DKIM_SELECTOR, kpiRefreshMs: s.KPI_REFRESH_SECONDS * 1000 });
  const app = createApp({ service, keys, pool, verpSecret: secrets.verpSecret, schedules: { client, taskQueue: s.TASK_QUEUE } });
  const server = app.listen(s.API_PORT, '0.0.0.0', () => console.log(JSON.stringify({ msg: 'api listening', port: s.API_PORT })));
  const stop = () => server.close(() => void Promise.all([pool.end(), connection.close()]).then(() => process.exit(0)));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
