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
 *
 * With `slowReadMs` as well, an answer older than that (up to `maxStaleMs`) is a fallback, not an answer: the caller
 * waits for the new read, but no longer than `slowReadMs`; if the new read is slower, the caller gets the old answer
 * and the new one replaces it when it arrives (stale-if-slow). A key read now and then (a delivery page opened once a
 * minute) so costs the caller at most `slowReadMs` when the read behind it is slow, never the read's whole time.
 */
interface Entry<T> {
  atMs: number;
  value: Promise<T>;
  settled?: T;
  refreshing?: boolean;
  /** While `value` is pending: the key's previous answer, given to callers who waited `slowReadMs` for it. */
  fallback?: T;
}

export class SharedReads<T> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    private readonly ttlMs: number,
    private readonly o: { maxEntries?: number; staleMs?: number; slowReadMs?: number; maxStaleMs?: number } = {},
  ) {}

  get(key: string, read: () => Promise<T>): Promise<T> {
    if (this.ttlMs <= 0) return read();
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && now - hit.atMs < this.ttlMs) return this.boundedWait(hit);
    if (hit && hit.settled !== undefined && now - hit.atMs < this.ttlMs + (this.o.staleMs ?? 0)) {
      if (!hit.refreshing) {
        hit.refreshing = true;
        // The new answer replaces this one when it arrives; if it fails, the stale one stays until it is too old.
        this.start(key, read).value.catch(() => {
          if (this.entries.get(key) === hit) hit.refreshing = false;
        });
      }
      return Promise.resolve(hit.settled);
    }
    const fallback = this.o.slowReadMs !== undefined && hit?.settled !== undefined && now - hit.atMs < this.ttlMs + (this.o.maxStaleMs ?? 0) ? hit.settled : undefined;
    return this.boundedWait(this.start(key, read, true, fallback));
  }

  forget(key: string): void {
    this.entries.delete(key);
  }

  /** The entry's answer; while it is pending and has a fallback, the fallback once `slowReadMs` have passed. */
  private boundedWait(e: Entry<T>): Promise<T> {
    if (e.settled !== undefined || e.fallback === undefined) return e.value;
    const fallback = e.fallback;
    let timer: NodeJS.Timeout | undefined;
    const slow = new Promise<T>((resolve) => {
      timer = setTimeout(() => resolve(fallback), this.o.slowReadMs);
    });
    // A failed read reaches only the callers still waiting for it; one given the fallback already has its answer.
    return Promise.race([e.value.finally(() => clearTimeout(timer)), slow]);
  }

  /** Runs the read; its entry replaces the key's once it succeeds (or at once when `now`: callers share it). */
  private start(key: string, read: () => Promise<T>, now = false, fallback?: T): Entry<T> {
    const maxEntries = this.o.maxEntries ?? 10_000;
    if (this.entries.size >= maxEntries) {
      const t = Date.now();
      const keepFor = this.ttlMs + Math.max(this.o.staleMs ?? 0, this.o.maxStaleMs ?? 0);
      for (const [k, e] of this.entries) if (t - e.atMs >= keepFor) this.entries.delete(k);
      // Still full of fresh entries (more distinct keys per interval than the bound): start again rather than grow.
      if (this.entries.size >= maxEntries) this.entries.clear();
    }
    const entry: Entry<T> = { atMs: Date.now(), value: read(), ...(fallback !== undefined ? { fallback } : {}) };
    const previous = this.entries.get(key);
    if (now) this.entries.set(key, entry);
    entry.value.then(
      (v) => {
        entry.settled = v;
        delete entry.fallback;
        // A background refresh takes the key's place only if nothing newer (a forget, another read) came meanwhile.
        if (!now && this.entries.get(key) === previous) this.entries.set(key, entry);
      },
      () => {
        if (this.entries.get(key) !== entry) return;
        // A failed read with a fallback puts the previous answer back: the next caller tries again, with that fallback.
        if (fallback !== undefined && previous?.settled !== undefined) this.entries.set(key, previous);
        else this.entries.delete(key);
      },
    );
    return entry;
  }
}
