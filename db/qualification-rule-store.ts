/**
 * The synchronous qualification rules in Postgres: seeded from the versioned file rules/smtp-qualification-rules.json,
 * edited through the API, loaded compiled by the workers (activities/qualification-rules-cache.ts). The table's life
 * cycle (seeding, edits, change marker) is db/rule-table-store.ts's; this file describes its columns.
 */
import type { Pool } from 'pg';
import type { CompiledRule, QualificationRule } from '../domain/bounce-rules/qualification-rule';
import { compileStoredRule, validateQualificationRule, validateSeedRuleSet } from '../domain/bounce-rules/rule-validation';
import { RuleTableStore, type RuleTableDefinition, type RuleTableRow, type SeedResult, type StoredRule } from './rule-table-store';
import bundledSeed from '../rules/smtp-qualification-rules.json';

export type { RuleOrigin, RuleSetState, SeedResult } from './rule-table-store';

/** Name of this rule set in rule_set_versions. */
export const QUALIFICATION_RULE_SET = 'smtp-qualification-rules';

/** A rule as stored: the rule itself plus its state. */
export type StoredQualificationRule = StoredRule<QualificationRule>;

interface RuleRow extends RuleTableRow {
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
}

const table: RuleTableDefinition<QualificationRule, CompiledRule, RuleRow, 'provider'> = {
  table: 'smtp_qualification_rules',
  ruleSetName: QUALIFICATION_RULE_SET,
  // Any constant, distinct from the migration lock and the other rule tables'.
  seedLockKey: 7_301_554_010,
  bundledSeed,
  validateRule: validateQualificationRule,
  validateSeed: validateSeedRuleSet,
  compileStored: compileStoredRule,
  fields: [
    ['priority', 'integer'],
    ['provider', 'text'],
    ['code', 'text'],
    ['enhanced_code', 'text'],
    ['pattern', 'text'],
    ['domain', 'text'],
    ['type', 'text'],
    ['reason', 'text'],
    ['retry_class', 'text'],
    ['sample', 'text'],
    ['sample_domain', 'text'],
    ['note', 'text'],
  ],
  filterColumn: 'provider',
  rowToRule(row) {
    const rule: Record<string, unknown> = {
      id: row.id,
      priority: row.priority,
      provider: row.provider,
      // Stored as text: a plain number ("550") reads back as a number, a class ("5xx") as a string.
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
  },
  ruleToRecord(rule) {
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
  },
};

export class QualificationRuleStore extends RuleTableStore<QualificationRule, CompiledRule, RuleRow, 'provider'> {
  constructor(pool: Pool, setName = QUALIFICATION_RULE_SET) {
    super(pool, table, setName);
  }
}

/** Applies the bundled seed file (rules/smtp-qualification-rules.json): call right after migrate(pool). */
export async function seedQualificationRules(pool: Pool): Promise<SeedResult> {
  return new QualificationRuleStore(pool).seed(bundledSeed);
}
