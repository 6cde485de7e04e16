import { defineConfig } from 'vitest/config';

/**
 * `npm run test:cluster`: the production layout test, apart from `npm test` (it builds and runs its own Temporal
 * server on Postgres and needs no dev server). CI runs it after `npm test`.
 */
export default defineConfig({
  test: {
    include: ['test/cluster/**/*.cluster-test.ts'],
    fileParallelism: false,
    pool: 'forks',
    testTimeout: 600_000,
    hookTimeout: 900_000,
  },
});
