/** Stored recipient lists: streaming CSV upload with COPY, and populating a delivery from a list in one statement. */
import { randomUUID } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Pool, PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { parse } from 'csv-parse';
import { checkEmailAddress, duplicateKey } from '../domain/email-address';
import { inTransaction } from './transaction';
import { prepared } from './prepared-statements';

/** A CSV the caller must fix: says which line and what is wrong. */
export class CsvInputError extends Error {
  readonly status = 400;
}

const ADDRESS_COLUMNS = ['email', 'address', 'email_address', 'e-mail'];
export const MAX_CSV_FIELDS = 100;

function csvField(v: string | null): string {
  return v === null ? '' : `"${v.replace(/"/g, '""')}"`;
}

/** One checked COPY line: id, address, domain, duplicate key, syntax problem, fields. */
export function checkedCopyLine(prefix: string, id: number, email: string, fields: Record<string, unknown>): string {
  const check = checkEmailAddress(email);
  const address = check.ok ? check.address : email.trim();
  return (
    [
      prefix,
      String(id),
      csvField(address),
      csvField(check.ok ? check.domain : ''),
      csvField(check.ok ? duplicateKey(check.address, check.domain) : address.toLowerCase()),
      csvField(check.ok ? null : check.problem),
      csvField(JSON.stringify(fields)),
    ].join(',') + '\n'
  );
}

export interface ListSummary {
  id: string;
  name: string;
  memberCount: number;
  fields: string[];
  createdAt: Date;
}

export class RecipientListStore {
  constructor(private readonly pool: Pool) {}

  /**
   * Streams a CSV (header row first; one column named email/address, the others become fields) into a new list.
   * One transaction: a bad line rolls back the whole upload and the error names the line.
   */
  async createFromCsv(name: string, csv: Readable): Promise<ListSummary> {
    const id = randomUUID();
    return inTransaction(this.pool, async (client) => {
      let header: string[] | null = null;
      let addressIndex = -1;
      let memberId = 0;
      await client.query('INSERT INTO recipient_lists (id, name) VALUES ($1, $2)', [id, name]);
      const toCopy = new Transform({
        writableObjectMode: true,
        transform(record: string[], _enc, done) {
          if (!header) {
            header = record.map((h) => h.trim());
            addressIndex = header.findIndex((h) => ADDRESS_COLUMNS.includes(h.toLowerCase()));
            if (addressIndex < 0) return done(new CsvInputError(`the header row has no address column (one of: ${ADDRESS_COLUMNS.join(', ')})`));
            if (header.length > MAX_CSV_FIELDS) return done(new CsvInputError(`at most ${MAX_CSV_FIELDS} columns are allowed`));
            const dupes = header.filter((h, i) => header!.indexOf(h) !== i);
            if (dupes.length) return done(new CsvInputError(`duplicate column names in the header: ${[...new Set(dupes)].join(', ')}`));
            if (header.some((h) => h === '')) return done(new CsvInputError('the header row has an empty column name'));
            return done();
          }
          const fields: Record<string, string> = {};
          for (let i = 0; i < header.length; i++) if (i !== addressIndex && record[i] !== undefined && record[i] !== '') fields[header[i]] = record[i];
          memberId++;
          done(null, checkedCopyLine(id, memberId, record[addressIndex] ?? '', fields));
        },
      });
      const copy = client.query(
        copyFrom(`COPY recipient_list_members (list_id, member_id, address, domain, address_key, syntax_problem, fields) FROM STDIN WITH (FORMAT csv)`),
      );
      try {
        await pipeline(csv, parse({ bom: true, skip_empty_lines: true, relax_column_count: false, trim: true }), toCopy, copy);
      } catch (e) {
        const err = e as Error & { code?: string; lines?: number };
        if (e instanceof CsvInputError) throw e;
        if (err.code?.startsWith('CSV_')) throw new CsvInputError(`CSV error at line ${err.lines ?? '?'}: ${err.message}`);
        throw e;
      }
      if (!header) throw new CsvInputError('the CSV is empty: a header row and at least one member are required');
      if (memberId === 0) throw new CsvInputError('the CSV has a header row but no members');
      const fields = (header as string[]).filter((_, i) => i !== addressIndex);
      await client.query('UPDATE recipient_lists SET member_count = $2, fields = $3 WHERE id = $1', [id, memberId, fields]);
      return { id, name, memberCount: memberId, fields, createdAt: new Date() };
    });
  }

  async get(id: string): Promise<ListSummary | null> {
    const r = await this.pool.query<ListSummary>(
      'SELECT id, name, member_count AS "memberCount", fields, created_at AS "createdAt" FROM recipient_lists WHERE id = $1',
      [id],
    );
    return r.rows[0] ?? null;
  }

  /** The list's first member (its first CSV row), as a delivery would render it: a sample for previews. */
  async firstMember(id: string): Promise<{ email: string; fields: Record<string, unknown> } | null> {
    const r = await this.pool.query<{ email: string; fields: Record<string, unknown> }>(
      'SELECT address AS email, fields FROM recipient_list_members WHERE list_id = $1 ORDER BY member_id LIMIT 1',
      [id],
    );
    return r.rows[0] ?? null;
  }

  async list(limit = 100): Promise<ListSummary[]> {
    const r = await this.pool.query<ListSummary>(prepared('SELECT id, name, member_count AS "memberCount", fields, created_at AS "createdAt" FROM recipient_lists ORDER BY created_at DESC LIMIT $1', [limit]));
    return r.rows;
  }
}

/** Copies a list's members into a delivery's population inside the caller's transaction (set-based: millions in seconds). */
export async function copyListIntoDelivery(client: PoolClient, listId: string, deliveryId: string): Promise<number> {
  const r = await client.query(
    `INSERT INTO delivery_recipients (delivery_id, recipient_id, address, domain, address_key, syntax_problem, fields)
     SELECT $2, member_id, address, domain, address_key, syntax_problem, fields FROM recipient_list_members WHERE list_id = $1`,
    [listId, deliveryId],
  );
  return r.rowCount ?? 0;
}

