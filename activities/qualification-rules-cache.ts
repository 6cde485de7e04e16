/**
 * The qualification rules a worker uses, held compiled in memory and refreshed from Postgres when the rule set's change
 * marker moves. Qualifying stays synchronous and allocation-free; only the periodic check touches the database.
 */
import type { CompiledRule } from '../domain/bounce-rules/qualification-rule';
import { getDefaultRules, qualifySmtpReply } from '../domain/bounce-rules/qualify-smtp-reply';
import type { Qualification } from '../domain/failure';
import type { SmtpReply } from '../domain/smtp-reply';
import type { QualificationRuleStore } from '../db/qualification-rule-store';

export interface QualificationRulesCacheOptions {
  /** How often the change marker is checked, in seconds (default 10). */
  refreshSeconds?: number;
  /** Rules used until the first load from the store succeeds (default: the bundled seed table). */
  fallback?: () => readonly CompiledRule[];
  /** Structured log line; defaults to JSON on the console. */
  log?: (entry: Record<string, unknown>) => void;
}

export class QualificationRulesCache {
  private rules: readonly CompiledRule[];
  private revision: number | null = null;
  private loaded = false;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<boolean> | null = null;
  private lastError: string | null = null;
  private readonly refreshMs: number;
  private readonly log: (entry: Record<string, unknown>) => void;

  constructor(
    private readonly store: Pick<QualificationRuleStore, 'changeMarker' | 'loadCompiled'>,
    opts: QualificationRulesCacheOptions = {},
  ) {
    const seconds = opts.refreshSeconds ?? 10;
    if (!(seconds > 0)) throw new Error(`QualificationRulesCache: refreshSeconds must be positive, got ${seconds}`);
    this.refreshMs = seconds * 1000;
    this.rules = (opts.fallback ?? getDefaultRules)();
    this.log =
      opts.log ??
      ((entry) => {
        const line = JSON.stringify(entry);
        if (entry.level === 'error') console.error(line);
        else console.log(line);
      });
  }

  /** Synchronous qualification against the current table; bound, so it can be passed around as a function. */
  readonly qualify = (reply: SmtpReply, recipientDomain?: string): Qualification => qualifySmtpReply(reply, this.rules, recipientDomain);

  /** The table in use, in evaluation order. */
  get current(): readonly CompiledRule[] {
    return this.rules;
  }

  /** 'store' once a load from Postgres succeeded, 'fallback' before. */
  get source(): 'store' | 'fallback' {
    return this.loaded ? 'store' : 'fallback';
  }

  /** Change marker of the table in use (null while on the fallback). */
  get loadedRevision(): number | null {
    return this.loaded ? this.revision : null;
  }

  /**
   * Reloads the table when the store's change marker moved (or always with `force`). Resolves true when it reloaded.
   * Errors are logged (once per distinct error) and swallowed: the previous table stays in use. A store that was
   * never written (no seed, no edit) leaves the fallback in place. Concurrent calls share one refresh.
   */
  refresh(opts: { force?: boolean } = {}): Promise<boolean> {
    if (this.inFlight) {
      if (!opts.force) return this.inFlight;
      // A forced refresh must observe writes made before it was asked for: chain one after the running one.
      return this.inFlight.then(() => this.refresh(opts));
    }
    this.inFlight = this.doRefresh(opts.force ?? false).finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  private async doRefresh(force: boolean): Promise<boolean> {
    try {
      // The marker first, then the rules: a write landing in between makes the next check reload again, never miss it.
      const marker = await this.store.changeMarker();
      if (marker === null) return false;
      if (!force && this.loaded && marker === this.revision) return false;
      const rules = await this.store.loadCompiled();
      this.rules = Object.freeze(rules);
      this.revision = marker;
      this.loaded = true;
      this.lastError = null;
      this.log({ msg: 'qualification rules loaded', revision: marker, rules: rules.length });
      return true;
    } catch (e) {
      const message = (e as Error)?.message ?? String(e);
      if (message !== this.lastError) {
        this.lastError = message;
        this.log({
          level: 'error',
          msg: 'qualification rules refresh failed; keeping the current table',
          source: this.source,
          revision: this.loadedRevision,
          error: message,
        });
      }
      return false;
    }
  }

  /** Loads once (never throws: the fallback stays until a load succeeds), then checks every refreshSeconds. Idempotent. */
  async start(): Promise<void> {
    if (this.timer) return;
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
    await this.refresh();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
