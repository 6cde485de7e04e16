/** Bulk-loads a delivery's inline target population into delivery_recipients with COPY, checking each address on the way. */
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { checkedCopyLine } from './recipient-lists';

export interface RecipientInput {
  email: string;
  fields?: Record<string, unknown>;
}

/** COPY lines in chunks; ids are 1..n in input order, which is also the sending order. */
function* copyLines(deliveryId: string, recipients: Iterable<RecipientInput>, firstId: number): Generator<string> {
  let id = firstId;
  let chunk = '';
  for (const r of recipients) {
    chunk += checkedCopyLine(deliveryId, id++, r.email, r.fields ?? {});
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
