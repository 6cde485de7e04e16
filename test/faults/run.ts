/**
 * `npm run test:faults [-- --reduced] [-- vitest options]`: runs the fault suite with vitest, then prints the result
 * table it wrote (test-results/fault-suite.md). `--reduced` (or FAULTS_REDUCED=1) runs the shorter variant meant for CI.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const args = process.argv.slice(2);
const reduced = args.includes('--reduced') || process.env.FAULTS_REDUCED === '1';
const passThrough = args.filter((a) => a !== '--reduced');
const results = path.join(ROOT, 'test-results', 'fault-suite.md');
// A table left by an earlier run must not pass for this run's.
fs.rmSync(results, { force: true });

const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--config', 'test/faults/vitest.config.ts', ...passThrough], {
  cwd: ROOT,
  stdio: 'inherit',
  env: { ...process.env, FAULTS_REDUCED: reduced ? '1' : '0' },
});
if (fs.existsSync(results)) {
  process.stdout.write(`\n${fs.readFileSync(results, 'utf8')}\n(written to ${path.relative(ROOT, results)} and fault-suite.json)\n`);
} else {
  process.stdout.write('\nthe fault suite wrote no result table: it failed before its first fault, or while writing it (see above)\n');
}
process.exit(r.status ?? 1);
