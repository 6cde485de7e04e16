/**
 * Reads shared by every caller asking for the same thing within a short interval: the first call runs the read, the
 * calls that arrive while it runs or within `ttlMs` after it started get the same promise. Many open dashboard pages
 * polling one delivery then cost one read per interval, not one per page. A failed read is not shared with later
 * callers, and a change made through this process forgets its key at once (`forget`), so the writer's next read sees
 * its own change; other API processes see it within `ttlMs`.
 *
 * With `staleMs`, an answer older than `ttlMs` (but not older than `ttlMs + staleMs`) is still given at once while one
 * new read runs behind it (stale-while-revalidate): a read that is slow now and then (a workflow query waiting behind
 * a busy worker) delays no caller once the key has been read.
 */
export class SharedReads<T> {
  private readonly entries = new Map<string, { atMs: number; value: Promise<T>; settled?: T; refreshing?: boolean }>();

  constructor(
    private readonly ttlMs: number,
    private readonly o: { maxEntries?: number; staleMs?: number } = {},
  ) {}

  get(key: string, read: () => Promise<T>): Promise<T> {
    if (this.ttlMs <= 0) return read();
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && now - hit.atMs < this.ttlMs) return hit.value;
    if (hit && hit.settled !== undefined && now - hit.atMs < this.ttlMs + (this.o.staleMs ?? 0)) {
      if (!hit.refreshing) {
        hit.refreshing = true;
        // The new answer replaces this one when it arrives; if it fails, the stale one stays until it is too old.
        this.start(key, read).catch(() => {
          if (this.entries.get(key) === hit) hit.refreshing = false;
        });
      }
      return Promise.resolve(hit.settled);
    }
    return this.start(key, read, true);
  }

  forget(key: string): void {
    this.entries.delete(key);
  }

  /** Runs the read; its entry replaces the key's once it succeeds (or at once when `now`: callers share it). */
  private start(key: string, read: () => Promise<T>, now = false): Promise<T> {
    const maxEntries = this.o.maxEntries ?? 10_000;
    if (this.entries.size >= maxEntries) {
      const t = Date.now();
      for (const [k, e] of this.entries) if (t - e.atMs >= this.ttlMs + (this.o.staleMs ?? 0)) this.entries.delete(k);
      // Still full of fresh entries (more distinct keys per interval than the bound): start again rather than grow.
      if (this.entries.size >= maxEntries) this.entries.clear();
    }
    const entry: { atMs: number; value: Promise<T>; settled?: T } = { atMs: Date.now(), value: read() };
    const previous = this.entries.get(key);
    if (now) this.entries.set(key, entry);
    entry.value.then(
      (v) => {
        entry.settled = v;
        // A background refresh takes the key's place only if nothing newer (a forget, another read) came meanwhile.
        if (!now && this.entries.get(key) === previous) this.entries.set(key, entry);
      },
      () => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
      },
    );
    return entry.value;
  }
}
