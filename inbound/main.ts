/**
 * Inbound listener process entry: the SMTP server of BOUNCE_DOMAIN (INBOUND_SMTP_PORT), connected to Postgres (the
 * delivery log) and to Temporal (to signal open recipient workflows); runs until SIGINT/SIGTERM.
 */
import { Connection } from '@temporalio/client';
import { settings } from '../config/settings';
import { buildInboundListener, buildInboundProcessor, buildTemporalClient, openRuntime } from '../runtime/composition-root';

async function main() {
  const s = settings();
  const rt = await openRuntime(s);
  const connection = await Connection.connect({ address: s.TEMPORAL_ADDRESS });
  const client = buildTemporalClient(rt, connection);
  const listener = buildInboundListener(rt, buildInboundProcessor(rt, client));
  const { port } = await listener.start();
  console.log(JSON.stringify({ msg: 'inbound listener started', port, bounceDomain: s.BOUNCE_DOMAIN, feedback: s.FEEDBACK_LOCAL_PARTS }));
  const stop = async () => {
    await listener.stop();
    await connection.close();
    await rt.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
