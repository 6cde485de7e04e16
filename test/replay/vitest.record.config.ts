/**
 * Runs test/replay/record-histories.ts (`npm run replay:record`): the recorder of the replay histories, kept out of the
 * default suite (its file name does not end in .test.ts). Same global setup as vitest.config.ts: a real Temporal dev
 * server, embedded Postgres and the workflow bundle of the current code.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('../..', import.meta.url));

export default defineConfig({
  test: {
    root,
    include: ['test/replay/record-histories.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    fileParallelism: false,
    // A failed scenario means nothing is published: stop at the first one rather than wait out every other timeout
    // (\`npm run replay:record -- --bail 0\` runs them all).
    bail: 1,
    pool: 'forks',
    // Scenarios run one after the other; each sets its own, shorter, timeout.
    testTimeout: 120_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
  },
});
