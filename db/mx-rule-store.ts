/**
 * The MX rules in Postgres: site rules (rules/mx-site-rules.json) and reply rules (rules/mx-reply-rules.json), seeded
 * from their versioned files, edited through the API, loaded by the workers (mail/mx/mx-rules-cache.ts). The life cycle
 * is db/rule-table-store.ts's; this file describes the two tables' columns.
 */
import type { Pool } from 'pg';
import type { MxSiteRule } from '../domain/mx-rules/mx-site-rule';
import type { CompiledMxReplyRule, MxReplyRule } from '../domain/mx-rules/mx-reply-rule';
import {
  compileStoredMxReplyRule,
  compileStoredMxSiteRule,
  validateMxReplyRule,
  validateMxReplySeed,
  validateMxSiteRule,
  validateMxSiteSeed,
} from '../domain/mx-rules/mx-rule-validation';
import { RuleTableStore, type RuleTableDefinition, type RuleTableRow, type SeedResult } from './rule-table-store';
import siteSeed from '../rules/mx-site-rules.json';
import replySeed from '../rules/mx-reply-rules.json';

export const MX_SITE_RULE_SET = 'mx-site-rules';
export const MX_REPLY_RULE_SET = 'mx-reply-rules';

interface SiteRow extends RuleTableRow {
  priority: number;
  provider: string;
  domains: string[];
  mx_hosts: string[];
  scope: string;
  max_connections: number;
  messages_per_connection: number;
  per_second: number | null;
  per_hour: number | null;
  note: string;
}

const siteTable: RuleTableDefinition<MxSiteRule, MxSiteRule, SiteRow, 'provider'> = {
  table: 'mx_site_rules',
  ruleSetName: MX_SITE_RULE_SET,
  // Distinct from the migration lock and the other rule tables'.
  seedLockKey: 7_301_554_033,
  bundledSeed: siteSeed,
  validateRule: validateMxSiteRule,
  validateSeed: validateMxSiteSeed,
  compileStored: compileStoredMxSiteRule,
  fields: [
    ['priority', 'integer'],
    ['provider', 'text'],
    ['domains', 'jsonb'],
    ['mx_hosts', 'jsonb'],
    ['scope', 'text'],
    ['max_connections', 'integer'],
    ['messages_per_connection', 'integer'],
    ['per_second', 'double precision'],
    ['per_hour', 'integer'],
    ['note', 'text'],
  ],
  filterColumn: 'provider',
  rowToRule(row) {
    return {
      id: row.id,
      priority: row.priority,
      provider: row.provider,
      domains: row.domains,
      mxHosts: row.mx_hosts,
      scope: row.scope as MxSiteRule['scope'],
      maxConnections: row.max_connections,
      messagesPerConnection: row.messages_per_connection,
      perSecond: row.per_second,
      perHour: row.per_hour,
      note: row.note,
    };
  },
  ruleToRecord(rule) {
    return {
      id: rule.id,
      priority: rule.priority,
      provider: rule.provider,
      domains: rule.domains,
      mx_hosts: rule.mxHosts,
      scope: rule.scope,
      max_connections: rule.maxConnections,
      messages_per_connection: rule.messagesPerConnection,
      per_second: rule.perSecond,
      per_hour: rule.perHour,
      note: rule.note,
    };
  },
};

interface ReplyRow extends RuleTableRow {
  priority: number;
  provider: string;
  code: string | null;
  enhanced_code: string | null;
  contains: string | null;
  retry_class: string | null;
  action: string;
  suspend_seconds: number | null;
  sample: string;
  note: string;
}

const replyTable: RuleTableDefinition<MxReplyRule, CompiledMxReplyRule, ReplyRow, 'provider'> = {
  table: 'mx_reply_rules',
  ruleSetName: MX_REPLY_RULE_SET,
  seedLockKey: 7_301_554_034,
  bundledSeed: replySeed,
  validateRule: validateMxReplyRule,
  validateSeed: validateMxReplySeed,
  compileStored: compileStoredMxReplyRule,
  fields: [
    ['priority', 'integer'],
    ['provider', 'text'],
    ['code', 'text'],
    ['enhanced_code', 'text'],
    ['contains', 'text'],
    ['retry_class', 'text'],
    ['action', 'text'],
    ['suspend_seconds', 'integer'],
    ['sample', 'text'],
    ['note', 'text'],
  ],
  filterColumn: 'provider',
  rowToRule(row) {
    return {
      id: row.id,
      priority: row.priority,
      provider: row.provider,
      // Stored as text: "421" reads back as a number, a class ("4xx") as a string.
      code: row.code === null ? null : /^\d+$/.test(row.code) ? Number(row.code) : (row.code as '4xx' | '5xx'),
      enhancedCode: row.enhanced_code,
      contains: row.contains,
      retryClass: row.retry_class as MxReplyRule['retryClass'],
      action: row.action as MxReplyRule['action'],
      suspendSeconds: row.suspend_seconds,
      sample: row.sample,
      note: row.note,
    };
  },
  ruleToRecord(rule) {
    return {
      id: rule.id,
      priority: rule.priority,
      provider: rule.provider,
      code: rule.code === null ? null : String(rule.code),
      enhanced_code: rule.enhancedCode,
      contains: rule.contains,
      retry_class: rule.retryClass,
      action: rule.action,
      suspend_seconds: rule.suspendSeconds,
      sample: rule.sample,
      note: rule.note,
    };
  },
};

export class MxSiteRuleStore extends RuleTableStore<MxSiteRule, MxSiteRule, SiteRow, 'provider'> {
  constructor(pool: Pool, setName = MX_SITE_RULE_SET) {
    super(pool, siteTable, setName);
  }
}

export class MxReplyRuleStore extends RuleTableStore<MxReplyRule, CompiledMxReplyRule, ReplyRow, 'provider'> {
  constructor(pool: Pool, setName = MX_REPLY_RULE_SET) {
    super(pool, replyTable, setName);
  }
}

/** The bundled seeds, in rule order (used by workers until the first load from the store succeeds). */
export const BUNDLED_MX_SITE_RULES = (): MxSiteRule[] => validateMxSiteSeed(siteSeed).rules;
export const BUNDLED_MX_REPLY_RULES = (): CompiledMxReplyRule[] => validateMxReplySeed(replySeed).rules;

/** Applies both bundled seed files: call right after migrate(pool). */
export async function seedMxRules(pool: Pool): Promise<{ sites: SeedResult; replies: SeedResult }> {
  return { sites: await new MxSiteRuleStore(pool).seed(siteSeed), replies: await new MxReplyRuleStore(pool).seed(replySeed) };
}
