/** Set-based analysis of a delivery's target population in Postgres: exclusions by reason, counts, top domains. */
import type { Pool } from 'pg';
import type { ExclusionReason } from '../domain/analysis-report';

export interface PopulationAnalysis {
  targeted: number;
  exclusions: Partial<Record<ExclusionReason, number>>;
  topDomains: { domain: string; count: number }[];
}

/**
 * Re-runnable: clears earlier exclusions first, then excludes in a fixed order (syntax, then duplicates among the
 * remaining addresses, keeping the first occurrence) so each address has exactly one exclusion reason.
 */
export async function analysePopulation(pool: Pool, deliveryId: string): Promise<PopulationAnalysis> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(
      `UPDATE delivery_recipients SET status = 'pending', exclusion_reason = NULL, updated_at = now()
       WHERE delivery_id = $1 AND status = 'excluded'`,
      [deliveryId],
    );
    await client.query(
      `UPDATE delivery_recipients SET status = 'excluded', exclusion_reason = 'invalid_address', final_at = now(), updated_at = now()
       WHERE delivery_id = $1 AND status = 'pending' AND syntax_problem IS NOT NULL`,
      [deliveryId],
    );
    await client.query(
      `UPDATE delivery_recipients r SET status = 'excluded', exclusion_reason = 'duplicate', final_at = now(), updated_at = now()
       FROM (
         SELECT recipient_id, row_number() OVER (PARTITION BY address_key ORDER BY recipient_id) AS rn
         FROM delivery_recipients WHERE delivery_id = $1 AND status = 'pending'
       ) d
       WHERE r.delivery_id = $1 AND r.recipient_id = d.recipient_id AND d.rn > 1`,
      [deliveryId],
    );
    const counts = await client.query<{ reason: string | null; n: number }>(
      `SELECT exclusion_reason AS reason, count(*)::int AS n FROM delivery_recipients WHERE delivery_id = $1 GROUP BY exclusion_reason`,
      [deliveryId],
    );
    const top = await client.query<{ domain: string; count: number }>(
      `SELECT domain, count(*)::int AS count FROM delivery_recipients
       WHERE delivery_id = $1 AND status = 'pending' GROUP BY domain ORDER BY count DESC, domain LIMIT 10`,
      [deliveryId],
    );
    await client.query('COMMIT');
    const exclusions: Partial<Record<ExclusionReason, number>> = {};
    let targeted = 0;
    for (const row of counts.rows) {
      targeted += row.n;
      if (row.reason) exclusions[row.reason as ExclusionReason] = row.n;
    }
    return { targeted, exclusions, topDomains: top.rows };
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    client.release();
  }
}
