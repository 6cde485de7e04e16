/** The scopes of API keys: read < send < admin, each implying the ones before it. Pure; used by the store and the API. */

export const API_SCOPES = ['read', 'send', 'admin'] as const;
export type ApiScope = (typeof API_SCOPES)[number];

const RANK: Record<ApiScope, number> = { read: 0, send: 1, admin: 2 };

/** The highest scope among those granted (a key created with ['read', 'send'] acts as send). */
export function highestScope(granted: readonly ApiScope[]): ApiScope {
  return granted.reduce<ApiScope>((best, s) => (RANK[s] > RANK[best] ? s : best), 'read');
}

/** Whether a key with `granted` may call an endpoint that needs `needed`. */
export function scopeAllows(granted: readonly ApiScope[], needed: ApiScope): boolean {
  return granted.some((s) => RANK[s] >= RANK[needed]);
}

/** The scope just below `scope` (null for read): the key a route-walking test uses to expect a 403. */
export function scopeBelow(scope: ApiScope): ApiScope | null {
  return scope === 'admin' ? 'send' : scope === 'send' ? 'read' : null;
}

export function isApiScope(s: string): s is ApiScope {
  return (API_SCOPES as readonly string[]).includes(s);
}
