/** SharedReads (api/shared-reads.ts): one read per key and interval, stale-while-revalidate, forget, failures not kept. */
import { describe, expect, it } from 'vitest';
import { SharedReads } from '../api/shared-reads';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A read that counts its calls and answers the call number after `ms`. */
function counter(ms = 0) {
  let calls = 0;
  const read = async () => {
    const n = ++calls;
    await sleep(ms);
    return n;
  };
  return { read, calls: () => calls };
}

describe('shared reads', () => {
  it('gives concurrent and later callers within the interval the one read, and reads again after it', async () => {
    const reads = new SharedReads<number>(150);
    const c = counter(30);
    expect(await Promise.all([reads.get('k', c.read), reads.get('k', c.read), reads.get('k', c.read)])).toEqual([1, 1, 1]);
    expect(await reads.get('k', c.read)).toBe(1);
    expect(await reads.get('other', c.read)).toBe(2);
    await sleep(170);
    expect(await reads.get('k', c.read)).toBe(3);
    expect(c.calls()).toBe(3);
  });

  it('without staleMs, a caller past the interval waits for the new read', async () => {
    const reads = new SharedReads<number>(50);
    const c = counter(80);
    await reads.get('k', c.read);
    await sleep(60);
    expect(await reads.get('k', c.read)).toBe(2); // the new read's answer: the caller waited for it
  });

  it('with staleMs, a caller past the interval gets the last answer at once while one new read runs behind it', async () => {
    const reads = new SharedReads<number>(50, { staleMs: 2_000 });
    const c = counter(120);
    expect(await reads.get('k', c.read)).toBe(1);
    await sleep(60);
    // The old answer (the refresh answers 2): neither caller waited for it, and both share one refresh.
    expect(await Promise.all([reads.get('k', c.read), reads.get('k', c.read)])).toEqual([1, 1]);
    expect(c.calls()).toBe(2);
    await sleep(150);
    expect(await reads.get('k', c.read)).toBe(2);
  });

  it('waits for a new read once the last answer is older than the interval and staleMs together', async () => {
    const reads = new SharedReads<number>(30, { staleMs: 30 });
    const c = counter(40);
    await reads.get('k', c.read);
    await sleep(110);
    expect(await reads.get('k', c.read)).toBe(2);
  });

  it('forgets a key at once, and drops a refresh that started before the forget', async () => {
    const reads = new SharedReads<number>(40, { staleMs: 5_000 });
    const c = counter(80);
    await reads.get('k', c.read); // 1
    await sleep(50);
    expect(await reads.get('k', c.read)).toBe(1); // stale, refresh 2 starts
    reads.forget('k');
    expect(await reads.get('k', c.read)).toBe(3); // waits for a read started after the forget
    await sleep(100); // refresh 2 has ended meanwhile: it must not replace 3
    expect(await reads.get('k', c.read)).toBe(3);
  });

  it('does not keep a failed read: the next caller reads again, and a failed refresh keeps the stale answer', async () => {
    const reads = new SharedReads<number>(30, { staleMs: 5_000 });
    let fail = true;
    let calls = 0;
    const read = async () => {
      calls++;
      if (fail) throw new Error('down');
      return calls;
    };
    await expect(reads.get('k', read)).rejects.toThrow('down');
    fail = false;
    expect(await reads.get('k', read)).toBe(2);
    fail = true;
    await sleep(40);
    expect(await reads.get('k', read)).toBe(2); // stale while the refresh fails
    await sleep(10);
    expect(await reads.get('k', read)).toBe(2); // the failed refresh did not remove it, and another is tried
    expect(calls).toBe(4);
  });

  describe('stale-if-slow (slowReadMs, maxStaleMs)', () => {
    it('past staleMs, callers wait for the new read at most slowReadMs, then get the old answer; the new one replaces it', async () => {
      const reads = new SharedReads<number>(30, { staleMs: 20, slowReadMs: 60, maxStaleMs: 10_000 });
      let ms = 0;
      const c = counter();
      const read = () => sleep(ms).then(c.read);
      expect(await reads.get('k', read)).toBe(1);
      await sleep(80); // past the interval and staleMs
      ms = 300;
      const t0 = Date.now();
      // Both callers (the second arrives while the slow read runs) get the old answer after slowReadMs, not 300 ms.
      const first = reads.get('k', read);
      await sleep(20);
      const both = await Promise.all([first, reads.get('k', read)]);
      expect(both).toEqual([1, 1]);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(55);
      expect(Date.now() - t0).toBeLessThan(250);
      expect(c.calls()).toBe(1); // one read runs, shared
      await sleep(320);
      expect(await reads.get('k', read)).toBe(2); // the slow read's answer, once it arrived
    });

    it('a new read faster than slowReadMs is the answer', async () => {
      const reads = new SharedReads<number>(30, { slowReadMs: 200, maxStaleMs: 10_000 });
      const c = counter(20);
      expect(await reads.get('k', c.read)).toBe(1);
      await sleep(50);
      expect(await reads.get('k', c.read)).toBe(2);
    });

    it('an answer older than maxStaleMs is no fallback: the caller waits for the new read', async () => {
      const reads = new SharedReads<number>(20, { slowReadMs: 10, maxStaleMs: 40 });
      const c = counter(100);
      expect(await reads.get('k', c.read)).toBe(1);
      await sleep(80);
      expect(await reads.get('k', c.read)).toBe(2);
    });

    it('a key read for the first time, or forgotten after a change, waits for its read whatever it takes', async () => {
      const reads = new SharedReads<number>(20, { slowReadMs: 10, maxStaleMs: 10_000 });
      const c = counter(80);
      expect(await reads.get('k', c.read)).toBe(1);
      await sleep(30);
      reads.forget('k');
      expect(await reads.get('k', c.read)).toBe(2);
    });

    it('a failed slow read reaches the callers still waiting for it and leaves the old answer as the fallback', async () => {
      const reads = new SharedReads<number>(20, { slowReadMs: 30, maxStaleMs: 10_000 });
      let calls = 0;
      let fail = false;
      const read = async (ms: number) => {
        const n = ++calls;
        await sleep(ms);
        if (fail) throw new Error('down');
        return n;
      };
      expect(await reads.get('k', () => read(0))).toBe(1);
      await sleep(30);
      fail = true;
      expect(await reads.get('k', () => read(60))).toBe(1); // given the fallback after 30 ms; the read fails at 60
      await sleep(60);
      await expect(reads.get('k', () => read(0))).rejects.toThrow('down'); // fast failure: the caller sees it
      fail = false;
      expect(await reads.get('k', () => read(0))).toBe(4);
      expect(calls).toBe(4);
    });
  });

  it('reads every time when the interval is 0', async () => {
    const reads = new SharedReads<number>(0);
    const c = counter();
    await reads.get('k', c.read);
    await reads.get('k', c.read);
    expect(c.calls()).toBe(2);
  });
});
