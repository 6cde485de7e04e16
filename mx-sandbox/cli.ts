// Standalone entry for the sandbox MX: `tsx mx-sandbox/cli.ts --port 2525 [--greylist-delay-ms N] [--slow-ms N] [--no-keep-raw] [--verbose]`.

import { parseArgs } from 'node:util';
import { SandboxMx } from './sandbox-mx';

function intOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got "${value}"`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '2525' },
      host: { type: 'string' },
      'greylist-delay-ms': { type: 'string' },
      'slow-ms': { type: 'string' },
      'no-keep-raw': { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
    },
    strict: true,
  });

  const mx = new SandboxMx({
    port: intOption('port', values.port),
    host: values.host,
    greylistDelayMs: intOption('greylist-delay-ms', values['greylist-delay-ms']),
    slowMs: intOption('slow-ms', values['slow-ms']),
    // A standalone sandbox usually soaks up benchmark traffic and nobody reads the bodies back.
    keepRaw: !values['no-keep-raw'],
  });
  if (values.verbose) {
    mx.on('accepted', (m) => console.log(`accepted ${m.queueId} ${m.mailFrom || '<>'} -> ${m.rcptTo} ${m.sizeBytes}B tls=${m.tls}`));
    mx.on('rejected', (r) => console.log(`rejected ${r.address} at ${r.stage}: ${r.code === null ? r.text : `${r.code} ${r.enhancedCode} ${r.text}`}`));
  }

  const { port } = await mx.start();
  console.log(`sandbox MX listening on ${values.host ?? '127.0.0.1'}:${port}`);

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: stopping (accepted ${mx.acceptedCount()}, rejected ${mx.rejections().length})`);
    mx.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
