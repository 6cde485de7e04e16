/**
 * One rule table in Postgres with the life cycle every data-driven rule set shares: seeded from a versioned file under an
 * advisory lock, edited through the API, loaded compiled by the workers, with a change marker in rule_set_versions.
 * db/qualification-rule-store.ts and db/inbound-rule-store.ts each describe their table (columns, row mapping,
 * validation, compilation); the SQL and its guarantees live here once.
 */
import type { Pool, PoolClient } from 'pg';
import { inTransaction } from './transaction';
import { insertAuditEntry, type AuditActor } from './audit-log-store';

export type RuleOrigin = 'seed' | 'api';

/** A rule as stored: the rule itself plus its state. */
export type StoredRule<R> = R & {
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

/** Who changes a rule through the API, and what the audit log calls the rule set's rules (e.g. 'qualification_rule'). */
export interface RuleChangeAudit {
  actor: AuditActor;
  targetType: string;
}

export interface RuleSetState {
  /** Seed version applied, 0 when none. */
  version: number;
  /** Bumped by every change; null when the rule set was never written (workers then keep the bundled rules). */
  revision: number | null;
  updatedAt: string | null;
}

/** The columns every rule table has besides the rule's own. */
export interface RuleTableRow {
  id: string;
  enabled: boolean;
  origin: RuleOrigin;
  updated_at: Date;
}

/** What makes one rule table: its name, its columns, and how rules are mapped, validated and compiled. */
export interface RuleTableDefinition<Rule extends { id: string }, Compiled, Row extends RuleTableRow, FilterColumn extends string = string> {
  /** The table (a constant of the code: it is written into the SQL text). */
  table: string;
  /** Name of the rule set in rule_set_versions (default of the store's constructor). */
  ruleSetName: string;
  /** Serialises seeding between processes starting together (distinct from every other advisory lock). */
  seedLockKey: number;
  /** The seed applied when none is given. */
  bundledSeed: unknown;
  /** The rule's own columns (all but id, enabled, origin, deleted_at, updated_at) with their SQL types, in table order. */
  fields: ReadonlyArray<readonly [column: string, sqlType: string]>;
  /** The column `list` may filter on (constant of the code; also the filter's key). */
  filterColumn: FilterColumn;
  /** Row → rule, in the shape the zod schema accepts (so GET → edit → PUT round-trips). Not validated. */
  rowToRule(row: Row): Rule;
  /** Rule → the snake_case record written through jsonb_to_recordset (keys: id and the field columns). */
  ruleToRecord(rule: Rule): Record<string, unknown>;
  /** One rule for writing through the API: throws the rule set's 400 error naming the field otherwise. */
  validateRule(input: unknown): Rule;
  /** A whole seed file: one bad rule refuses it all, naming the rule. */
  validateSeed(seedJson: unknown): { version: number; rules: Rule[] };
  /** A row read back for the workers: throws naming the row if it was written around the API. */
  compileStored(rule: Rule, id: string): Compiled;
}

/** The SQL fragments of a table, built once from its definition. */
function sqlOf(def: RuleTableDefinition<{ id: string }, unknown, RuleTableRow>) {
  const fields = def.fields.map(([name]) => name);
  const ruleFields = fields.join(', ');
  return {
    ruleFields,
    columns: `id, ${ruleFields}, enabled, origin, updated_at`,
    setRuleFields: fields.map((f) => `${f} = EXCLUDED.${f}`).join(', '),
    recordset: `jsonb_to_recordset($1::jsonb) AS r(id text, ${def.fields.map(([name, type]) => `${name} ${type}`).join(', ')})`,
    storedTuple: fields.map((f) => `${def.table}.${f}`).join(', '),
    excludedTuple: fields.map((f) => `EXCLUDED.${f}`).join(', '),
  };
}

export class RuleTableStore<Rule extends { id: string }, Compiled, Row extends RuleTableRow, FilterColumn extends string = string> {
  private readonly sql: ReturnType<typeof sqlOf>;

  constructor(
    protected readonly pool: Pool,
    private readonly def: RuleTableDefinition<Rule, Compiled, Row, FilterColumn>,
    private readonly setName = def.ruleSetName,
  ) {
    this.sql = sqlOf(def as unknown as RuleTableDefinition<{ id: string }, unknown, RuleTableRow>);
  }

  private toStored(row: Row): StoredRule<Rule> {
    return { ...this.def.rowToRule(row), enabled: row.enabled, origin: row.origin, updatedAt: row.updated_at.toISOString() };
  }

  /**
   * Applies a seed file `{version, rules}` when its version is newer than the stored one, in one transaction under an
   * advisory lock (several processes may start at once: one applies, the others then find the version applied).
   * New rules are inserted; seed-origin rules are updated (their `enabled` flag is kept: an operator may have turned
   * one off); rules edited or deleted through the API are never overwritten; seed-origin rules absent from the new
   * seed are deleted. The whole seed is validated first: one bad rule refuses it all, naming the rule.
   */
  async seed(seedJson: unknown = this.def.bundledSeed): Promise<SeedResult> {
    const set = this.def.validateSeed(seedJson);
    const version = set.version;
    const { table } = this.def;
    const { ruleFields, setRuleFields, recordset, storedTuple, excludedTuple } = this.sql;
    return inTransaction(this.pool, async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [this.def.seedLockKey]);
      const state = await c.query<{ version: number }>('SELECT version FROM rule_set_versions WHERE name = $1', [this.setName]);
      const previousVersion = state.rows[0]?.version ?? 0;
      const result: SeedResult = { applied: false, version, previousVersion, inserted: [], updated: [], keptApiEdited: [], retired: [] };
      if (previousVersion >= version) return result;

      const existing = new Map((await c.query<{ id: string; origin: RuleOrigin }>(`SELECT id, origin FROM ${table}`)).rows.map((r) => [r.id, r.origin]));
      // Updates only seed-origin rows, and only when something differs, so that updated_at keeps meaning "last change".
      const written = await c.query<{ id: string }>(
        `INSERT INTO ${table} (id, ${ruleFields}, origin)
         SELECT id, ${ruleFields}, 'seed' FROM ${recordset}
         ON CONFLICT (id) DO UPDATE SET ${setRuleFields}, deleted_at = NULL, updated_at = now()
         WHERE ${table}.origin = 'seed'
           AND (${table}.deleted_at IS NOT NULL OR (${storedTuple}) IS DISTINCT FROM (${excludedTuple}))
         RETURNING id`,
        [JSON.stringify(set.rules.map((r) => this.def.ruleToRecord(r)))],
      );
      const writtenIds = new Set(written.rows.map((r) => r.id));
      for (const r of set.rules) {
        if (!existing.has(r.id)) result.inserted.push(r.id);
        else if (writtenIds.has(r.id)) result.updated.push(r.id);
        else if (existing.get(r.id) === 'api') result.keptApiEdited.push(r.id);
      }
      const retired = await c.query<{ id: string }>(
        `UPDATE ${table} SET deleted_at = now(), updated_at = now()
         WHERE origin = 'seed' AND deleted_at IS NULL AND NOT (id = ANY($1::text[])) RETURNING id`,
        [set.rules.map((r) => r.id)],
      );
      result.retired = retired.rows.map((r) => r.id).sort();
      await this.bump(c, version);
      result.applied = true;
      return result;
    });
  }

  /** Every rule (disabled ones included, deleted ones not), in evaluation order; optionally only those of one value of the filter column. */
  async list(filter: { [K in FilterColumn]?: string } = {}): Promise<StoredRule<Rule>[]> {
    const value: string | undefined = filter[this.def.filterColumn];
    const r = await this.pool.query<Row>(
      `SELECT ${this.sql.columns} FROM ${this.def.table}
       WHERE deleted_at IS NULL AND ($1::text IS NULL OR ${this.def.filterColumn} = $1) ORDER BY priority, id`,
      [value ?? null],
    );
    return r.rows.map((row) => this.toStored(row));
  }

  async get(id: string): Promise<StoredRule<Rule> | null> {
    const r = await this.pool.query<Row>(`SELECT ${this.sql.columns} FROM ${this.def.table} WHERE id = $1 AND deleted_at IS NULL`, [id]);
    return r.rows[0] ? this.toStored(r.rows[0]) : null;
  }

  /**
   * Creates or replaces a rule through the API (origin 'api': later seeds leave it alone). Validated with the zod
   * schema, compiled, and checked against its own sample; throws the rule set's invalid-rule error otherwise.
   * `enabled` defaults to true for a new rule and is kept for an existing one.
   */
  async upsert(input: unknown, opts: { enabled?: boolean; audit?: RuleChangeAudit } = {}): Promise<{ rule: StoredRule<Rule>; created: boolean }> {
    const rule = this.def.validateRule(input);
    const { table } = this.def;
    const { ruleFields, setRuleFields, recordset, columns } = this.sql;
    return inTransaction(this.pool, async (c) => {
      const before = await c.query<{ deleted_at: Date | null }>(`SELECT deleted_at FROM ${table} WHERE id = $1 FOR UPDATE`, [rule.id]);
      const created = before.rows.length === 0 || before.rows[0].deleted_at !== null;
      const r = await c.query<Row>(
        `INSERT INTO ${table} (id, ${ruleFields}, enabled, origin)
         SELECT id, ${ruleFields}, COALESCE($2::boolean, true), 'api' FROM ${recordset}
         ON CONFLICT (id) DO UPDATE SET ${setRuleFields}, origin = 'api', updated_at = now(),
           enabled = CASE WHEN $2::boolean IS NOT NULL THEN $2::boolean
                          WHEN ${table}.deleted_at IS NOT NULL THEN true
                          ELSE ${table}.enabled END,
           deleted_at = NULL
         RETURNING ${columns}`,
        [JSON.stringify([this.def.ruleToRecord(rule)]), opts.enabled ?? null],
      );
      await this.bump(c);
      const stored = this.toStored(r.rows[0]);
      if (opts.audit) await this.audit(c, opts.audit, 'put', rule.id, { created, enabled: stored.enabled });
      return { rule: stored, created };
    });
  }

  /** Turns a rule on or off; keeps its origin (a disabled seed rule still gets seed updates, and stays disabled). Null when unknown. */
  async setEnabled(id: string, enabled: boolean, audit?: RuleChangeAudit): Promise<StoredRule<Rule> | null> {
    return inTransaction(this.pool, async (c) => {
      const r = await c.query<Row>(
        `UPDATE ${this.def.table} SET enabled = $2, updated_at = CASE WHEN enabled = $2 THEN updated_at ELSE now() END
         WHERE id = $1 AND deleted_at IS NULL RETURNING ${this.sql.columns}`,
        [id, enabled],
      );
      if (r.rows.length === 0) return null;
      await this.bump(c);
      if (audit) await this.audit(c, audit, enabled ? 'enable' : 'disable', id);
      return this.toStored(r.rows[0]);
    });
  }

  /**
   * Deletes a rule; false when unknown. The row stays as a tombstone marked 'api', so a newer seed does not bring a
   * deleted seed rule back; a PUT of the same id creates it again.
   */
  async delete(id: string, audit?: RuleChangeAudit): Promise<boolean> {
    return inTransaction(this.pool, async (c) => {
      const r = await c.query(`UPDATE ${this.def.table} SET deleted_at = now(), origin = 'api', updated_at = now() WHERE id = $1 AND deleted_at IS NULL`, [id]);
      if ((r.rowCount ?? 0) === 0) return false;
      await this.bump(c);
      if (audit) await this.audit(c, audit, 'delete', id);
      return true;
    });
  }

  /**
   * The enabled rules, validated and compiled, in evaluation order (priority, then id). Throws an error naming the rule
   * if a row is invalid (only possible when written around the API): workers then keep their last good table.
   */
  async loadCompiled(): Promise<Compiled[]> {
    const r = await this.pool.query<Row>(`SELECT ${this.sql.columns} FROM ${this.def.table} WHERE enabled AND deleted_at IS NULL ORDER BY priority, id`);
    return r.rows.map((row) => this.def.compileStored(this.def.rowToRule(row), row.id));
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

  /** The audit entry of a change through the API, in the change's transaction. */
  private audit(c: PoolClient, a: RuleChangeAudit, verb: string, id: string, details: Record<string, unknown> = {}): Promise<void> {
    return insertAuditEntry(c, { actor: a.actor, action: `${a.targetType}.${verb}`, targetType: a.targetType, targetId: id, details: { ruleSet: this.setName, ...details } });
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
