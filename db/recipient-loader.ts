/** Bulk-loads a delivery's target population into delivery_recipients with COPY, checking each address on the way. */
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { checkEmailAddress, duplicateKey } from '../domain/email-address';

export interface RecipientInput {
  email: string;
  fields?: Record<string, unknown>;
}

function csvField(v: string | null): string {
  if (v === null) return '';
  return `"${v.replace(/"/g, '""')}"`;
}

/** One COPY line per recipient; ids are 1..n in input order, which is also the sending order. */
function* copyLines(deliveryId: string, recipients: Iterable<RecipientInput>, firstId: number): Generator<string> {
  let id = firstId;
  let chunk = '';
  for (const r of recipients) {
    const check = checkEmailAddress(r.email);
    const address = check.ok ? check.address : r.email.trim();
    const domain = check.ok ? check.domain : '';
    const key = check.ok ? duplicateKey(check.address, check.domain) : address.toLowerCase();
    chunk +=
      [deliveryId, String(id++), csvField(address), csvField(domain), csvField(key), csvField(check.ok ? null : check.problem), csvField(JSON.stringify(r.fields ?? {}))].join(',') +
      '\n';
    if (chunk.length > 64 * 1024) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}

/** Loads recipients inside the caller's transaction; returns how many rows were written. */
export async function copyRecipients(client: PoolClient, deliveryId: string, recipients: Iterable<RecipientInput>, firstId = 1): Promise<number> {
  const stream = client.query(
    copyFrom(
      `COPY delivery_recipients (delivery_id, recipient_id, address, domain, address_key, syntax_problem, fields) FROM STDIN WITH (FORMAT csv)`,
    ),
  );
  await pipeline(Readable.from(copyLines(deliveryId, recipients, firstId)), stream);
  return Number(stream.rowCount);
}
