/**
 * The rule tables the inbound classifier uses, as stored in Postgres (inbound rules and SMTP qualification rules, both
 * editable through the API): loaded once, then reloaded only when a table's change marker moved, checked at most
 * every few seconds, so an edit reaches the listener and POST /api/inbound within that time without a query per message.
 */
import type { InboundRuleStore } from '../db/inbound-rule-store';
import type { QualificationRuleStore } from '../db/qualification-rule-store';
import type { InboundRuleTables } from '../mail/inbound/classify';

const CHECK_EVERY_MS = 5_000;

export class InboundRuleTablesCache {
  private tables: InboundRuleTables | undefined;
  private markers = '';
  private checkedAt = 0;
  private loading: Promise<InboundRuleTables> | undefined;

  constructor(private readonly stores: { inboundRules: InboundRuleStore; qualificationRules: QualificationRuleStore }) {}

  current(): Promise<InboundRuleTables> {
    if (this.tables && Date.now() - this.checkedAt < CHECK_EVERY_MS) return Promise.resolve(this.tables);
    this.loading ??= this.refresh().finally(() => (this.loading = undefined));
    return this.loading;
  }

  private async refresh(): Promise<InboundRuleTables> {
    const [inbound, smtp] = await Promise.all([this.stores.inboundRules.changeMarker(), this.stores.qualificationRules.changeMarker()]);
    const markers = `${inbound}:${smtp}`;
    if (!this.tables || markers !== this.markers) {
      const [inboundRules, smtpRules] = await Promise.all([this.stores.inboundRules.loadCompiled(), this.stores.qualificationRules.loadCompiled()]);
      this.tables = { inbound: inboundRules, smtp: smtpRules };
      this.markers = markers;
    }
    this.checkedAt = Date.now();
    return this.tables;
  }
}
