/**
 * The synchronous qualification rules in Postgres: seeded from the versioned file rules/smtp-qualification-rules.json,
 * edited through the API, loaded compiled by the workers (activities/qualification-rules-cache.ts).
 */
import type { Pool, PoolClient } from 'pg';
import type { CompiledRule, QualificationRule } from '../domain/bounce-rules/qualification-rule';
import { compileStoredRule, validateQualificationRule, validateSeedRuleSet } from '../domain/bounce-rules/rule-validation';
import { inTransaction } from './transaction';
import bundledSeed from '../rules/smtp-qualification-rules.json';

/** Name of this rule set in rule_set_versions. */
export const QUALIFICATION_RULE_SET = 'smtp-qualification-rules';
/** Serialises seeding between processes starting together (any constant, distinct from the migration lock). */
const SEED_LOCK_KEY = 7_301_554_010;

export type RuleOrigin = 'seed' | 'api';

/** A rule as stored: the rule itself plus its state. */
export type StoredQualificationRule = QualificationRule & {
  enabled: boolean;
  /** 'seed': as the seed file wrote it (newer seeds update it); 'api': edited through the API (seeds never touch it). */
  origin: RuleOrigin;
  updatedAt: string;
};

export interface SeedResult {
  /** False when the stored version is already this one or newer (nothing written). */
  applied: boolean;
  version: number;
  previousVersion: number;
  inserted: string[];
  updated: string[];
  /** Seed rules left alone because they were edited or deleted through the API. */
  keptApiEdited: string[];
  /** Seed-origin rules that are no longer in the seed, now deleted. */
  retired: string[];
}

export interface RuleSetState {
  /** Seed version applied, 0 when none. */
  version: number;
  /** Bumped by every change; null when the rule set was never written (workers then keep the bundled rules). */
  revision: number | null;
  updatedAt: string | null;
}

interface RuleRow {
  id: string;
  priority: number;
  provider: string;
  code: string | null;
  enhanced_code: string | null;
  pattern: string | null;
  domain: string | null;
  type: string;
  reason: string;
  retry_class: string;
  sample: string;
  sample_domain: string | null;
  note: string;
  enabled: boolean;
  origin: RuleOrigin;
  updated_at: Date;
}

const COLUMNS = 'id, priority, provider, code, enhanced_code, pattern, domain, type, reason, retry_class, sample, sample_domain, note, enabled, origin, updated_at';

/** Row → rule, in the shape the zod schema accepts (so GET → edit → PUT round-trips). Not validated here. */
function rowToRule(row: RuleRow): QualificationRule {
  const rule: Record<string, unknown> = {
    id: row.id,
    priority: row.priority,
    provider: row.provider,
    code: row.code === null ? null : /^\d+$/.test(row.code) ? Number(row.code) : row.code,
    enhancedCode: row.enhanced_code,
    pattern: row.pattern,
    domain: row.domain,
    type: row.type,
    reason: row.reason,
    retryClass: row.retry_class,
    sample: row.sample,
  };
  if (row.sample_domain !== null) rule.sampleDomain = row.sample_domain;
  rule.note = row.note;
  return rule as QualificationRule;
}

function rowToStored(row: RuleRow): StoredQualificationRule {
  return { ...rowToRule(row), enabled: row.enabled, origin: row.origin, updatedAt: row.updated_at.toISOString() };
}

/** Rule → the snake_case record written by jsonb_to_recordset. */
function ruleToRecord(rule: QualificationRule) {
  return {
    id: rule.id,
    priority: rule.priority,
    provider: rule.provider,
    code: rule.code === null ? null : String(rule.code),
    enhanced_code: rule.enhancedCode,
    pattern: rule.pattern,
    domain: rule.domain ?? null,
    type: rule.type,
    reason: rule.reason,
    retry_class: rule.retryClass,
    sample: rule.sample,
    sample_domain: rule.sampleDomain ?? null,
    note: rule.note,
  };
}

const RECORDSET = `jsonb_to_recordset($1::jsonb) AS r(id text, priority integer, provider text, code text, enhanced_code text, pattern text,
  domain text, type text, reason text, retry_class text, sample text, sample_domain text, note text)`;
const RULE_FIELDS = 'priority, provider, code, enhanced_code, pattern, domain, type, reason, retry_class, sample, sample_domain, note';
const SET_RULE_FIELDS = RULE_FIELDS.split(', ')
  .map((f) => `${f} = EXCLUDED.${f}`)
  .join(', ');

export class QualificationRuleStore {
  constructor(
    private readonly pool: Pool,
    private readonly setName = QUALIFICATION_RULE_SET,
  ) {}

  /**
   * Applies a seed file `{version, rules}` when its version is newer than the stored one, in one transaction under an
   * advisory lock (several processes may start at once: one applies, the others then find the version applied).
   * New rules are inserted; seed-origin rules are updated (their `enabled` flag is kept: an operator may have turned
   * one off); rules edited or deleted through the API are never overwritten; seed-origin rules absent from the new
   * seed are deleted. The whole seed is validated first: one bad rule refuses it all, naming the rule.
   */
  async seed(seedJson: unknown = bundledSeed): Promise<SeedResult> {
    const set = validateSeedRuleSet(seedJson);
    const version = set.version;
    return inTransaction(this.pool, async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [SEED_LOCK_KEY]);
      const state = await c.query<{ version: number }>('SELECT version FROM rule_set_versions WHERE name = $1', [this.setName]);
      const previousVersion = state.rows[0]?.version ?? 0;
      const result: SeedResult = { applied: false, version, previousVersion, inserted: [], updated: [], keptApiEdited: [], retired: [] };
      if (previousVersion >= version) return result;

      const existing = new Map(
        (await c.query<{ id: string; origin: RuleOrigin }>('SELECT id, origin FROM smtp_qualification_rules')).rows.map((r) => [r.id, r.origin]),
      );
      const records = set.rules.map((r) => ruleToRecord(r));
      // Updates only seed-origin rows, and only when something differs, so that updated_at keeps meaning "last change".
      const written = await c.query<{ id: string }>(
        `INSERT INTO smtp_qualification_rules (id, ${RULE_FIELDS}, origin)
         SELECT id, ${RULE_FIELDS}, 'seed' FROM ${RECORDSET}
         ON CONFLICT (id) DO UPDATE SET ${SET_RULE_FIELDS}, deleted_at = NULL, updated_at = now()
         WHERE smtp_qualification_rules.origin = 'seed'
           AND (smtp_qualification_rules.deleted_at IS NOT NULL
             OR (${RULE_FIELDS.split(', ').map((f) => `smtp_qualification_rules.${f}`).join(', ')})
                IS DISTINCT FROM (${RULE_FIELDS.split(', ').map((f) => `EXCLUDED.${f}`).join(', ')}))
         RETURNING id`,
        [JSON.stringify(records)],
      );
      const writtenIds = new Set(written.rows.map((r) => r.id));
      for (const r of set.rules) {
        if (!existing.has(r.id)) result.inserted.push(r.id);
        else if (writtenIds.has(r.id)) result.updated.push(r.id);
        else if (existing.get(r.id) === 'api') result.keptApiEdited.push(r.id);
      }
      const retired = await c.query<{ id: string }>(
        `UPDATE smtp_qualification_rules SET deleted_at = now(), updated_at = now()
         WHERE origin = 'seed' AND deleted_at IS NULL AND NOT (id = ANY($1::text[])) RETURNING id`,
        [set.rules.map((r) => r.id)],
      );
      result.retired = retired.rows.map((r) => r.id).sort();
      await this.bump(c, version);
      result.applied = true;
      return result;
    });
  }

  /** Every rule (disabled ones included, deleted ones not), in evaluation order; optionally one provider's. */
  async list(filter: { provider?: string } = {}): Promise<StoredQualificationRule[]> {
    const r = await this.pool.query<RuleRow>(
      `SELECT ${COLUMNS} FROM smtp_qualification_rules
       WHERE deleted_at IS NULL AND ($1::text IS NULL OR provider = $1) ORDER BY priority, id`,
      [filter.provider ?? null],
    );
    return r.rows.map(rowToStored);
  }

  async get(id: string): Promise<StoredQualificationRule | null> {
    const r = await this.pool.query<RuleRow>(`SELECT ${COLUMNS} FROM smtp_qualification_rules WHERE id = $1 AND deleted_at IS NULL`, [id]);
    return r.rows[0] ? rowToStored(r.rows[0]) : null;
  }

  /**
   * Creates or replaces a rule through the API (origin 'api': later seeds leave it alone). Validated with the zod
   * schema, compiled, and checked against its own sample; throws InvalidQualificationRuleError otherwise.
   * `enabled` defaults to true for a new rule and is kept for an existing one.
   */
  async upsert(input: unknown, opts: { enabled?: boolean } = {}): Promise<{ rule: StoredQualificationRule; created: boolean }> {
    const rule = validateQualificationRule(input);
    return inTransaction(this.pool, async (c) => {
      const before = await c.query<{ deleted_at: Date | null }>('SELECT deleted_at FROM smtp_qualification_rules WHERE id = $1 FOR UPDATE', [rule.id]);
      const created = before.rows.length === 0 || before.rows[0].deleted_at !== null;
      const r = await c.query<RuleRow>(
        `INSERT INTO smtp_qualification_rules (id, ${RULE_FIELDS}, enabled, origin)
         SELECT id, ${RULE_FIELDS}, COALESCE($2::boolean, true), 'api' FROM ${RECORDSET}
         ON CONFLICT (id) DO UPDATE SET ${SET_RULE_FIELDS}, origin = 'api', updated_at = now(),
           enabled = CASE WHEN $2::boolean IS NOT NULL THEN $2::boolean
                          WHEN smtp_qualification_rules.deleted_at IS NOT NULL THEN true
                          ELSE smtp_qualification_rules.enabled END,
           deleted_at = NULL
         RETURNING ${COLUMNS}`,
        [JSON.stringify([ruleToRecord(rule)]), opts.enabled ?? null],
      );
      await this.bump(c);
      return { rule: rowToStored(r.rows[0]), created };
    });
  }

  /** Turns a rule on or off; keeps its origin (a disabled seed rule still gets seed updates, and stays disabled). Null when unknown. */
  async setEnabled(id: string, enabled: boolean): Promise<StoredQualificationRule | null> {
    return inTransaction(this.pool, async (c) => {
      const r = await c.query<RuleRow>(
        `UPDATE smtp_qualification_rules SET enabled = $2, updated_at = CASE WHEN enabled = $2 THEN updated_at ELSE now() END
         WHERE id = $1 AND deleted_at IS NULL RETURNING ${COLUMNS}`,
        [id, enabled],
      );
      if (r.rows.length === 0) return null;
      await this.bump(c);
      return rowToStored(r.rows[0]);
    });
  }

  /**
   * Deletes a rule; false when unknown. The row stays as a tombstone marked 'api', so a newer seed does not bring a
   * deleted seed rule back; a PUT of the same id creates it again.
   */
  async delete(id: string): Promise<boolean> {
    return inTransaction(this.pool, async (c) => {
      const r = await c.query(
        `UPDATE smtp_qualification_rules SET deleted_at = now(), origin = 'api', updated_at = now() WHERE id = $1 AND deleted_at IS NULL`,
        [id],
      );
      if ((r.rowCount ?? 0) === 0) return false;
      await this.bump(c);
      return true;
    });
  }

  /**
   * The enabled rules, validated and compiled, in evaluation order (priority, then id). Throws a QualificationRuleError
   * naming the rule if a row is invalid (only possible when written around the API): workers then keep their last good table.
   */
  async loadCompiled(): Promise<CompiledRule[]> {
    const r = await this.pool.query<RuleRow>(
      `SELECT ${COLUMNS} FROM smtp_qualification_rules WHERE enabled AND deleted_at IS NULL ORDER BY priority, id`,
    );
    return r.rows.map((row) => compileStoredRule(rowToRule(row), row.id));
  }

  /** The change marker: a counter bumped by every write, in commit order. Null when the rule set was never written. One indexed read. */
  async changeMarker(): Promise<number | null> {
    const r = await this.pool.query<{ revision: number }>('SELECT revision FROM rule_set_versions WHERE name = $1', [this.setName]);
    return r.rows[0] ? Number(r.rows[0].revision) : null;
  }

  /** Seed version applied, change marker and time of the last change. */
  async state(): Promise<RuleSetState> {
    const r = await this.pool.query<{ version: number; revision: number; updated_at: Date }>(
      'SELECT version, revision, updated_at FROM rule_set_versions WHERE name = $1',
      [this.setName],
    );
    const row = r.rows[0];
    return row ? { version: row.version, revision: Number(row.revision), updatedAt: row.updated_at.toISOString() } : { version: 0, revision: null, updatedAt: null };
  }

  /** Bumps the change marker (and records a seed version) under the row lock of the writing transaction. */
  private async bump(c: PoolClient, seedVersion = 0): Promise<void> {
    await c.query(
      `INSERT INTO rule_set_versions (name, version, revision) VALUES ($1, $2, 1)
       ON CONFLICT (name) DO UPDATE SET version = GREATEST(rule_set_versions.version, EXCLUDED.version),
         revision = rule_set_versions.revision + 1, updated_at = now()`,
      [this.setName, seedVersion],
    );
  }
}

/** Applies the bundled seed file (rules/smtp-qualification-rules.json): call right after migrate(pool). */
export async function seedQualificationRules(pool: Pool): Promise<SeedResult> {
  return new QualificationRuleStore(pool).seed(bundledSeed);
}
