/**
 * The MX rules a worker uses (site rules and reply rules), held in memory and reloaded when a table's change marker
 * moves. Checked at most every `refreshMs` and only when used, so an idle process makes no queries; until the first
 * load succeeds (or when a table was never written) the bundled seed files are used.
 */
import type { MxSiteRule } from '../../domain/mx-rules/mx-site-rule';
import type { CompiledMxReplyRule } from '../../domain/mx-rules/mx-reply-rule';

interface TableSource<T> {
  changeMarker(): Promise<number | null>;
  loadCompiled(): Promise<T[]>;
}

class CachedTable<T> {
  private rules: readonly T[];
  private revision: number | null = null;
  private checkedAt = 0;
  private checkedOnce = false;
  private inFlight: Promise<void> | null = null;
  private lastError: string | null = null;

  constructor(
    private readonly name: string,
    private readonly source: TableSource<T>,
    fallback: () => T[],
    private readonly refreshMs: number,
    private readonly log: (entry: Record<string, unknown>) => void,
  ) {
    this.rules = Object.freeze(fallback());
  }

  /**
   * The rules in evaluation order, checked against the store when the last check is older than refreshMs. Until the
   * first check has finished every caller waits for it: a message must not be sent by the bundled seed when the store
   * has other rules.
   */
  async current(): Promise<readonly T[]> {
    if (!this.checkedOnce || Date.now() - this.checkedAt >= this.refreshMs) await this.refresh();
    return this.rules;
  }

  refresh(force = false): Promise<void> {
    if (this.inFlight) return force ? this.inFlight.then(() => this.refresh(true)) : this.inFlight;
    this.inFlight = this.load(force).finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  private async load(force: boolean): Promise<void> {
    this.checkedAt = Date.now();
    try {
      await this.loadNow(force);
    } finally {
      this.checkedOnce = true;
    }
  }

  private async loadNow(force: boolean): Promise<void> {
    try {
      const marker = await this.source.changeMarker();
      if (marker === null || (!force && marker === this.revision)) return;
      const rules = await this.source.loadCompiled();
      this.rules = Object.freeze(rules);
      this.revision = marker;
      this.lastError = null;
    } catch (e) {
      // Keep the last good table; say it once per distinct problem.
      const message = (e as Error)?.message ?? String(e);
      if (message !== this.lastError) {
        this.lastError = message;
        this.log({ level: 'error', msg: `${this.name} refresh failed; keeping the current table`, error: message });
      }
    }
  }
}

export class MxRulesCache {
  private readonly sites: CachedTable<MxSiteRule>;
  private readonly replies: CachedTable<CompiledMxReplyRule>;

  constructor(
    stores: { siteRules: TableSource<MxSiteRule>; replyRules: TableSource<CompiledMxReplyRule> },
    fallback: { siteRules: () => MxSiteRule[]; replyRules: () => CompiledMxReplyRule[] },
    opts: { refreshMs?: number; log?: (entry: Record<string, unknown>) => void } = {},
  ) {
    const refreshMs = opts.refreshMs ?? 5_000;
    const log = opts.log ?? ((entry) => console.error(JSON.stringify(entry)));
    this.sites = new CachedTable('MX site rules', stores.siteRules, fallback.siteRules, refreshMs, log);
    this.replies = new CachedTable('MX reply rules', stores.replyRules, fallback.replyRules, refreshMs, log);
  }

  siteRules(): Promise<readonly MxSiteRule[]> {
    return this.sites.current();
  }

  replyRules(): Promise<readonly CompiledMxReplyRule[]> {
    return this.replies.current();
  }

  /** Reloads both tables now (after an edit, in tests). */
  async refresh(): Promise<void> {
    await Promise.all([this.sites.refresh(true), this.replies.refresh(true)]);
  }
}
