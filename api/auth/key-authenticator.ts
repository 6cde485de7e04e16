/**
 * Finds the API key behind a request's secret (or a session's key id), with a short in-process cache: most requests
 * cost no query. What the cache may hide is bounded by its lifetime (API_KEY_CACHE_SECONDS, default 5 s): a key
 * revoked through another API process stops working within it; through this process, at once (`forget`).
 * last_used_at is written at most once a minute per key and process, off the request's path.
 */
import type { ApiKeyRecord, ApiKeyStore } from '../../db/api-key-store';
import { hashApiKey, looksLikeApiKey } from '../../db/api-key-store';

/** Why a request is not authenticated (the 401 names it). */
export type AuthFailure = 'missing_key' | 'malformed_key' | 'unknown_key' | 'revoked_key' | 'invalid_session' | 'expired_session';

export type KeyLookup = { ok: true; key: ApiKeyRecord } | { ok: false; failure: AuthFailure };

interface CacheEntry {
  key: ApiKeyRecord | null;
  until: number;
}

/** Bounds the cache: a flood of random keys must not grow memory (each still costs one indexed query). */
const MAX_CACHED = 10_000;
const TOUCH_EVERY_MS = 60_000;

export interface KeyAuthenticatorOptions {
  store: Pick<ApiKeyStore, 'findBySecret' | 'get' | 'touch'>;
  /** How long a lookup is trusted (ms). */
  cacheMs: number;
  now?: () => number;
  log?: (msg: string, fields: Record<string, unknown>) => void;
}

export class KeyAuthenticator {
  /** By SHA-256 of the secret (hex) and by key id ("id:<uuid>", sessions). */
  private readonly cache = new Map<string, CacheEntry>();
  private readonly touchedAt = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly o: KeyAuthenticatorOptions) {
    this.now = o.now ?? Date.now;
  }

  /** The key whose secret this is. */
  async bySecret(secret: string): Promise<KeyLookup> {
    if (!looksLikeApiKey(secret)) return { ok: false, failure: 'malformed_key' };
    const cacheKey = hashApiKey(secret).toString('hex');
    const key = await this.cached(cacheKey, () => this.o.store.findBySecret(secret));
    return this.verdict(key, 'unknown_key');
  }

  /** The key a session was opened with (sessions hold the key's id, never its secret). */
  async byId(id: string): Promise<KeyLookup> {
    const key = await this.cached(`id:${id}`, () => this.o.store.get(id));
    return this.verdict(key, 'invalid_session');
  }

  /** Drops what this process knows of a key (after revoking it here). */
  forget(id: string): void {
    for (const [k, v] of this.cache) if (k === `id:${id}` || v.key?.id === id) this.cache.delete(k);
  }

  private verdict(key: ApiKeyRecord | null, unknown: AuthFailure): KeyLookup {
    if (!key) return { ok: false, failure: unknown };
    if (key.revokedAt) return { ok: false, failure: 'revoked_key' };
    this.touch(key.id);
    return { ok: true, key };
  }

  private async cached(cacheKey: string, load: () => Promise<ApiKeyRecord | null>): Promise<ApiKeyRecord | null> {
    const now = this.now();
    const hit = this.cache.get(cacheKey);
    if (hit && hit.until > now) return hit.key;
    const key = await load();
    if (this.o.cacheMs > 0) {
      this.cache.delete(cacheKey);
      if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(cacheKey, { key, until: now + this.o.cacheMs });
    }
    return key;
  }

  /** At most once a minute per key: a failed write is logged and retried at the next use after the minute. */
  private touch(id: string): void {
    const now = this.now();
    if (now - (this.touchedAt.get(id) ?? 0) < TOUCH_EVERY_MS) return;
    this.touchedAt.set(id, now);
    if (this.touchedAt.size > MAX_CACHED) this.touchedAt.delete(this.touchedAt.keys().next().value!);
    this.o.store.touch(id).catch((e: Error) => this.o.log?.('api key: last_used_at not recorded', { keyId: id, error: e.message }));
  }
}
