/** Resolves where mail for a domain goes: the override map, then MX records by preference, then the domain itself (implicit MX). */
import { Resolver } from 'node:dns/promises';

export interface MxTarget {
  host: string;
  port: number;
  priority: number;
}

/** A DNS answer that decides the message's fate rather than a transient failure. */
export class MxResolutionError extends Error {
  constructor(
    message: string,
    /** RFC 3463 code that describes it: 5.1.2 (no such domain), 5.1.10 (null MX), 4.4.3 (DNS failure). */
    readonly enhancedCode: '5.1.2' | '5.1.10' | '4.4.3',
  ) {
    super(message);
    this.name = 'MxResolutionError';
  }
}

export interface MxResolverOptions {
  overrides?: Record<string, string>;
  dnsServers?: string[];
  defaultPort?: number;
  /** How long a lookup is reused. */
  cacheTtlMs?: number;
}

function parseHostPort(value: string, defaultPort: number): { host: string; port: number } {
  const i = value.lastIndexOf(':');
  return i > 0 ? { host: value.slice(0, i), port: Number(value.slice(i + 1)) } : { host: value, port: defaultPort };
}

export class MxResolver {
  private readonly resolver = new Resolver({ timeout: 5000, tries: 2 });
  private readonly cache = new Map<string, { at: number; targets: MxTarget[] }>();
  private readonly port: number;
  private readonly ttl: number;

  constructor(private readonly opts: MxResolverOptions = {}) {
    if (opts.dnsServers?.length) this.resolver.setServers(opts.dnsServers);
    this.port = opts.defaultPort ?? 25;
    this.ttl = opts.cacheTtlMs ?? 5 * 60_000;
  }

  async resolve(domain: string): Promise<MxTarget[]> {
    const override = this.opts.overrides?.[domain] ?? this.opts.overrides?.['*'];
    if (override) return override.split(',').map((hp, i) => ({ ...parseHostPort(hp.trim(), this.port), priority: i * 10 }));
    const cached = this.cache.get(domain);
    if (cached && Date.now() - cached.at < this.ttl) return cached.targets;
    const targets = await this.lookup(domain);
    this.cache.set(domain, { at: Date.now(), targets });
    return targets;
  }

  private async lookup(domain: string): Promise<MxTarget[]> {
    try {
      const records = await this.resolver.resolveMx(domain);
      // RFC 7505: a single MX of "." says the domain accepts no mail.
      if (records.length === 1 && (records[0].exchange === '' || records[0].exchange === '.')) {
        throw new MxResolutionError(`${domain} publishes a null MX: it accepts no mail`, '5.1.10');
      }
      if (records.length > 0) {
        return records
          .sort((a, b) => a.priority - b.priority)
          .map((r) => ({ host: r.exchange, port: this.port, priority: r.priority }));
      }
    } catch (e) {
      if (e instanceof MxResolutionError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTFOUND') throw new MxResolutionError(`${domain} does not exist (NXDOMAIN)`, '5.1.2');
      if (code !== 'ENODATA') throw new MxResolutionError(`DNS lookup of ${domain} failed: ${code ?? (e as Error).message}`, '4.4.3');
    }
    // No MX records: RFC 5321 5.1 says to use the domain's address records as an implicit MX.
    return [{ host: domain, port: this.port, priority: 0 }];
  }
}
