/** API process entry (production layout): serves the HTTP API against the configured Temporal and Postgres. */
import { Connection } from '@temporalio/client';
import { settings } from '../config/settings';
import { buildApi, buildDeliveryService, buildTemporalClient, openRuntime } from '../runtime/composition-root';

async function main() {
  const s = settings();
  const rt = await openRuntime(s);
  const connection = await Connection.connect({ address: s.TEMPORAL_ADDRESS });
  const client = buildTemporalClient(rt, connection);
  const app = buildApi(rt, { service: buildDeliveryService(rt, client), client, temporalUiUrl: s.TEMPORAL_UI_URL });
  const server = app.listen(s.API_PORT, '0.0.0.0', (err?: Error) => {
    // Express 5 hands a listen error (port taken) to the callback.
    if (err) {
      console.error(`api: cannot listen on port ${s.API_PORT} (API_PORT): ${err.message}`);
      process.exit(1);
    }
    console.log(JSON.stringify({ msg: 'api listening', port: s.API_PORT }));
  });
  const stop = () => server.close(() => void Promise.all([rt.close(), connection.close()]).then(() => process.exit(0)));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
