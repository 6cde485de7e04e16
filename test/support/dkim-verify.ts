/** Verifies DKIM signatures of captured messages with mailauth, resolving the project's published TXT records instead of DNS. */
import { dkimVerify } from 'mailauth/lib/dkim/verify';

export type TxtRecords = Record<string, string>;

export async function verifyDkim(raw: Buffer, txt: TxtRecords) {
  const resolver = async (name: string, type: string) => {
    if (type !== 'TXT' || !(name in txt)) {
      const err = new Error(`no ${type} record for ${name}`) as Error & { code: string };
      err.code = 'ENOTFOUND';
      throw err;
    }
    return [[txt[name]]];
  };
  const result = await dkimVerify(raw, { resolver: resolver as never });
  return result.results.map((r) => ({ domain: r.signingDomain, selector: r.selector, algorithm: (r as unknown as { algo?: string }).algo ?? r.algorithm, result: r.status.result, comment: (r.status as { comment?: string }).comment ?? '', aligned: r.status.aligned }));
}
