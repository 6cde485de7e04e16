/** The bundled seed tables (rules/inbound-rules.json and the SMTP qualification seed), validated and compiled on first use. */
import seed from '../../rules/inbound-rules.json';
import { loadInboundRuleSet, type CompiledInboundRule, type InboundRuleTables } from './inbound-rule';
import { getDefaultRules } from './qualify-smtp-reply';

export const DEFAULT_INBOUND_RULES_VERSION: number = seed.version;

let defaultInbound: readonly CompiledInboundRule[] | undefined;

export function getDefaultInboundRules(): readonly CompiledInboundRule[] {
  if (defaultInbound === undefined) defaultInbound = Object.freeze(loadInboundRuleSet(seed).rules);
  return defaultInbound;
}

/** Both seed tables, as classifyInboundMessage uses them when given none. */
export function getDefaultInboundRuleTables(): InboundRuleTables {
  return { inbound: getDefaultInboundRules(), smtp: getDefaultRules() };
}
