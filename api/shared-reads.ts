/**
 * Reads shared by every caller asking for the same thing within a short interval: the first call runs the read, the
 * calls that arrive while it runs or within `ttlMs` after it started get the same promise. Many open dashboard pages
 * polling one delivery then cost one read per interval, not one per page. A failed read is not shared with later
 * callers, and a change made through this process forgets its key at once (`forget`), so the writer's next read sees
 * its own change; other API processes see it within `ttlMs`.
 */
export class SharedReads<T> {
  private readonly entries = new Map<string, { atMs: number; value: Promise<T> }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  get(key: string, read: () => Promise<T>): Promise<T> {
    if (this.ttlMs <= 0) return read();
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && now - hit.atMs < this.ttlMs) return hit.value;
    if (this.entries.size >= this.maxEntries) {
      for (const [k, e] of this.entries) if (now - e.atMs >= this.ttlMs) this.entries.delete(k);
      // Still full of fresh entries (more distinct keys per interval than the bound): start again rather than grow.
      if (this.entries.size >= this.maxEntries) this.entries.clear();
    }
    const entry = { atMs: now, value: read() };
    this.entries.set(key, entry);
    entry.value.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    return entry.value;
  }

  forget(key: string): void {
    this.entries.delete(key);
  }
}
