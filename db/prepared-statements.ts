/**
 * Server-side prepared statements for the statements run most often (the API's reads of the delivery log while a
 * delivery sends, the sending stage's per-recipient writes).
 *
 * node-postgres sends a query with parameters as an unnamed statement: Postgres parses and plans it again at every
 * execution. For the log's page of 50 rows that planning is most of the work — it weighs the table's several indexes:
 * measured on the bench's stack, 2.0 ms of Postgres CPU per page as an unnamed statement, 0.23 ms once prepared; a
 * recipient with its history, 0.48 → 0.15 ms.
 *
 * A statement's name is derived from its text, so the same text always has the same name, and two texts never share
 * one (node-postgres refuses a name reused with another text). Each connection prepares a statement at its first use
 * and keeps it until the connection closes. Only texts from a bounded set may be named: a text built with values in it
 * (an IN list of variable length, a multi-row VALUES) would prepare without end on every connection, so those stay
 * unnamed.
 */
import { createHash } from 'node:crypto';
import type { QueryConfig } from 'pg';

const names = new Map<string, string>();

/** The bound on distinct named texts: far above what the code builds (a few filter combinations per statement). */
const MAX_NAMED_TEXTS = 1_000;

/** The name of `text`; undefined past the bound (the statement then runs unnamed: slower, never failing). */
function statementName(text: string): string | undefined {
  let name = names.get(text);
  if (name === undefined) {
    if (names.size >= MAX_NAMED_TEXTS) return undefined;
    name = `ede_${createHash('sha256').update(text).digest('base64url').slice(0, 22)}`;
    names.set(text, name);
  }
  return name;
}

/** `text` with `values` as a named statement: prepared once per connection, then only bound and executed. */
export function prepared(text: string, values: unknown[]): QueryConfig {
  const name = statementName(text);
  return name === undefined ? { text, values } : { name, text, values };
}

/** How many distinct texts have been named in this process (tests check that it stays bounded). */
export function namedStatementCount(): number {
  return names.size;
}
