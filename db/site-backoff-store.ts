/**
 * Shared back-off of throttling receiving sites, so every worker process slows down together.
 * Times are given by the caller on the workflow clock (the one retry windows use), not read from this process.
 */
import type { Pool } from 'pg';
import { siteBackoffMs } from '../domain/site-backoff';

export class SiteBackoffStore {
  private readonly cache = new Map<string, { at: number; untilMs: number; level: number }>();

  constructor(
    private readonly pool: Pool,
    /** How long a read is trusted: a site's back-off reaches every worker within this. */
    private readonly cacheMs = 1_000,
  ) {}

  /** Epoch ms until which the site is backed off (0 when it is not), and its level. */
  async current(site: string): Promise<{ untilMs: number; level: number }> {
    const hit = this.cache.get(site);
    if (hit && Date.now() - hit.at < this.cacheMs) return hit;
    const r = await this.pool.query<{ until: Date; level: number }>('SELECT until, level FROM receiving_site_backoff WHERE site = $1', [site]);
    const entry = { at: Date.now(), untilMs: r.rows[0]?.until.getTime() ?? 0, level: r.rows[0]?.level ?? 0 };
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(site, entry);
    return entry;
  }

  /** A throttling reply: the next level of back-off for the whole site (a site quiet for an hour starts again at level 1). */
  async throttled(site: string, reply: string, scale: number, nowMs: number): Promise<number> {
    const cur = await this.pool.query<{ until: Date; level: number }>('SELECT until, level FROM receiving_site_backoff WHERE site = $1', [site]);
    const row = cur.rows[0];
    const level = row && row.until.getTime() > nowMs - 3_600_000 ? row.level + 1 : 1;
    const untilMs = nowMs + Math.round(siteBackoffMs(level) * scale);
    // Concurrent workers may both raise it: keep the longest back-off and the highest level.
    const r = await this.pool.query<{ until: Date; level: number }>(
      `INSERT INTO receiving_site_backoff AS b (site, until, level, last_reply) VALUES ($1, to_timestamp($2 / 1000.0), $3, $4)
       ON CONFLICT (site) DO UPDATE SET until = GREATEST(b.until, EXCLUDED.until), level = GREATEST(b.level, EXCLUDED.level),
         last_reply = EXCLUDED.last_reply, updated_at = now()
       RETURNING until, level`,
      [site, untilMs, level, reply.slice(0, 500)],
    );
    const saved = r.rows[0];
    this.cache.set(site, { at: Date.now(), untilMs: saved.until.getTime(), level: saved.level });
    return saved.until.getTime();
  }

  /** A message got through: the site recovers (its level resets). */
  async recovered(site: string, nowMs: number): Promise<void> {
    const hit = await this.current(site);
    if (hit.level === 0) return;
    await this.pool.query('DELETE FROM receiving_site_backoff WHERE site = $1 AND until <= to_timestamp($2 / 1000.0)', [site, nowMs]);
    this.cache.delete(site);
  }
}
