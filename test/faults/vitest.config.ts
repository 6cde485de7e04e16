import { defineConfig } from 'vitest/config';

/**
 * `npm run test:faults` (test/faults/run.ts): the fault suite, apart from `npm test`. It starts its own stack as
 * separate processes (Temporal dev server on a file database, embedded Postgres, worker, API) and needs no global
 * setup. `FAULTS_REDUCED=1` (or `npm run test:faults -- --reduced`) runs the shorter variant.
 */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.fault-test.ts'],
    fileParallelism: false,
    pool: 'forks',
    // One test per fault, each a whole delivery sent through its fault: 2,000 recipients took 10 minutes at 4/s on a
    // loaded 2-core host.
    testTimeout: 2_400_000,
    hookTimeout: 300_000,
  },
});
