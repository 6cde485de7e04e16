/**
 * The inbound rules in Postgres: seeded from the versioned file rules/inbound-rules.json, edited through the API,
 * loaded compiled by whoever classifies inbound mail. Same life cycle as the SMTP qualification rules
 * (db/rule-table-store.ts): seed-origin rows follow newer seeds, API-edited or deleted rows are never overwritten.
 */
import type { Pool } from 'pg';
import type { CompiledInboundRule, InboundRule } from '../domain/bounce-rules/inbound-rule';
import { compileStoredInboundRule, validateInboundRule, validateInboundSeedRuleSet } from '../domain/bounce-rules/inbound-rule-validation';
import { RuleTableStore, type RuleTableDefinition, type RuleTableRow, type SeedResult, type StoredRule } from './rule-table-store';
import bundledSeed from '../rules/inbound-rules.json';

/** Name of this rule set in rule_set_versions. */
export const INBOUND_RULE_SET = 'inbound-rules';

export type StoredInboundRule = StoredRule<InboundRule>;

interface RuleRow extends RuleTableRow {
  priority: number;
  source: string;
  kind: string;
  from_pattern: string | null;
  subject_pattern: string | null;
  body_pattern: string | null;
  type: string;
  reason: string;
  retry_class: string;
  sample: Record<string, string>;
  note: string;
}

const table: RuleTableDefinition<InboundRule, CompiledInboundRule, RuleRow, 'kind'> = {
  table: 'inbound_rules',
  ruleSetName: INBOUND_RULE_SET,
  // Distinct from the other advisory locks.
  seedLockKey: 7_301_554_030,
  bundledSeed,
  validateRule: validateInboundRule,
  validateSeed: validateInboundSeedRuleSet,
  compileStored: compileStoredInboundRule,
  fields: [
    ['priority', 'integer'],
    ['source', 'text'],
    ['kind', 'text'],
    ['from_pattern', 'text'],
    ['subject_pattern', 'text'],
    ['body_pattern', 'text'],
    ['type', 'text'],
    ['reason', 'text'],
    ['retry_class', 'text'],
    ['sample', 'jsonb'],
    ['note', 'text'],
  ],
  filterColumn: 'kind',
  rowToRule(row) {
    return {
      id: row.id,
      priority: row.priority,
      source: row.source,
      kind: row.kind,
      from: row.from_pattern,
      subject: row.subject_pattern,
      body: row.body_pattern,
      type: row.type,
      reason: row.reason,
      retryClass: row.retry_class,
      sample: row.sample,
      note: row.note,
    } as InboundRule;
  },
  ruleToRecord(rule) {
    return {
      id: rule.id,
      priority: rule.priority,
      source: rule.source,
      kind: rule.kind,
      from_pattern: rule.from,
      subject_pattern: rule.subject,
      body_pattern: rule.body,
      type: rule.type,
      reason: rule.reason,
      retry_class: rule.retryClass,
      sample: rule.sample,
      note: rule.note,
    };
  },
};

export class InboundRuleStore extends RuleTableStore<InboundRule, CompiledInboundRule, RuleRow, 'kind'> {
  constructor(pool: Pool, setName = INBOUND_RULE_SET) {
    super(pool, table, setName);
  }
}

/** Applies the bundled seed file (rules/inbound-rules.json): call right after migrate(pool). */
export async function seedInboundRules(pool: Pool): Promise<SeedResult> {
  return new InboundRuleStore(pool).seed(bundledSeed);
}
