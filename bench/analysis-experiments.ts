/**
 * `--experiments`: what would make analysis fast and plan-proof, measured on scratch deliveries of the same list.
 *
 * The situation reproduced is production's: delivery_recipients already holds earlier deliveries (all final) and its
 * statistics describe them; a new delivery is copied in and analysed before any ANALYZE sees it (autovacuum only
 * re-analyses after 10% of a table changed, so on a big table it never does in time). Autovacuum is switched off on
 * the table for the duration, so every variant starts from exactly those statistics. Each variant gets a fresh copy of
 * the list, runs the product's analysePopulation (with one change at most), and the delivery is deleted afterwards.
 */
import { BENCH_FROM, BENCH_TEMPLATE, profileAnalysePopulation, REQUIRED_FIELDS, type StepTiming } from './analysis-bench';
import type { BenchStack } from './stack';
import { round, secondsSince } from './measure';

// The product's join on ranked rows (commit bf58056) with r.status = 'pending' added back to the outer side, as the
// other exclusion steps have it: shows whether the join's plan stays safe when the outer rows can come from the status index.
export const DUPLICATE_AS_UPDATE_FROM = `UPDATE delivery_recipients r SET status = 'excluded', exclusion_reason = 'duplicate', final_at = now(), updated_at = now()
  FROM (SELECT recipient_id, row_number() OVER (PARTITION BY address_key ORDER BY recipient_id) AS rn
        FROM delivery_recipients WHERE delivery_id = $1 AND status = 'pending') d
  WHERE r.delivery_id = $1 AND r.status = 'pending' AND r.recipient_id = d.recipient_id AND d.rn > 1`;

interface Variant {
  name: string;
  setup?: string[];
  replace?: Record<string, string>;
  /** DDL before the copy and after the variant (an index under test). */
  before?: string[];
  after?: string[];
}

export const VARIANTS: Variant[] = [
  { name: 'as is (statistics from before the copy)' },
  { name: 'ANALYZE delivery_recipients first', setup: ['ANALYZE delivery_recipients'] },
  { name: 'SET LOCAL enable_nestloop = off', setup: ['SET LOCAL enable_nestloop = off'] },
  // The duplicate step's sort of a million keys spills to disk at the default work_mem (4 MB).
  { name: 'SET LOCAL enable_nestloop = off, work_mem = 64MB', setup: ['SET LOCAL enable_nestloop = off', "SET LOCAL work_mem = '64MB'"] },
  { name: 'duplicate join with r.status = pending on the outer side', replace: { 'exclude duplicate': DUPLICATE_AS_UPDATE_FROM } },
];

export interface ExperimentResult {
  variant: string;
  copySeconds: number;
  analysisSeconds: number;
  timedOut: boolean;
  steps: StepTiming[];
  /** First lines of the plain EXPLAIN of the duplicate step under the same statistics. */
  duplicatePlan: string[];
  exclusions: Record<string, number>;
}

export async function runAnalysisExperiments(
  stack: BenchStack,
  opts: { listId: string; statementTimeoutSeconds: number; only?: string[]; log: (m: string) => void },
): Promise<ExperimentResult[]> {
  const { log } = opts;
  const results: ExperimentResult[] = [];
  await stack.pool.query('ALTER TABLE delivery_recipients SET (autovacuum_enabled = false)');
  try {
    // The statistics every variant starts from: earlier deliveries only.
    await stack.pool.query('ANALYZE delivery_recipients');
    for (const v of VARIANTS.filter((x) => !opts.only || opts.only.some((o) => x.name.includes(o)))) {
      for (const ddl of v.before ?? []) await stack.pool.query(ddl);
      const c0 = performance.now();
      const created = await stack.service.store.create(
        { name: `bench experiment: ${v.name}`, from: BENCH_FROM, ...BENCH_TEMPLATE, validitySeconds: 86_400, autoConfirm: false, options: {} },
        { listId: opts.listId },
      );
      const copySeconds = round(secondsSince(c0), 2);
      const plan = await profileAnalysePopulation(stack.pool, created.id, REQUIRED_FIELDS, { explain: 'plan', setup: v.setup?.filter((s) => !/^ANALYZE/i.test(s)), replace: v.replace });
      const run = await profileAnalysePopulation(stack.pool, created.id, REQUIRED_FIELDS, { setup: v.setup, replace: v.replace, timeoutMs: opts.statementTimeoutSeconds * 1000 });
      const counts = await stack.probe.query<{ reason: string; n: number }>(
        `SELECT exclusion_reason AS reason, count(*)::int AS n FROM delivery_recipients WHERE delivery_id = $1 AND exclusion_reason IS NOT NULL GROUP BY 1`,
        [created.id],
      );
      const r: ExperimentResult = {
        variant: v.name,
        copySeconds,
        analysisSeconds: run.seconds,
        timedOut: run.timedOut,
        steps: run.steps,
        duplicatePlan: (plan.steps.find((s) => s.step === 'exclude duplicate')?.plan ?? []).slice(0, 12),
        exclusions: Object.fromEntries(counts.rows.map((x) => [x.reason, x.n])),
      };
      results.push(r);
      log(`experiment "${v.name}": copy ${copySeconds} s, analysis ${run.seconds} s${run.timedOut ? ` (TIMED OUT at ${opts.statementTimeoutSeconds} s)` : ''}; duplicate step ${run.steps.find((s) => s.step === 'exclude duplicate')?.seconds ?? '–'} s`);
      const d0 = performance.now();
      await stack.pool.query('DELETE FROM deliveries WHERE id = $1', [created.id]);
      for (const ddl of v.after ?? []) await stack.pool.query(ddl);
      await stack.pool.query('VACUUM ANALYZE delivery_recipients');
      log(`  (scratch delivery removed and table vacuumed in ${secondsSince(d0).toFixed(1)} s)`);
    }
  } finally {
    await stack.pool.query('ALTER TABLE delivery_recipients RESET (autovacuum_enabled)');
  }
  return results;
}
