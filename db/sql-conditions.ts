/** The WHERE conditions of a query whose filters are all optional: only the filters given go into the statement. */

/** `text` matched literally by LIKE / ILIKE: its wildcards and the escape character escaped. */
export function likeLiteral(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * Collects conditions, numbering each one's parameter after those already in `params` (which it appends to), so that
 * each filter given can use its own index rather than a plan made for every filter at once.
 */
export class SqlConditions {
  readonly conditions: string[] = [];

  constructor(readonly params: unknown[]) {}

  /** Adds `sql(p, ...)`, given the placeholders of `values` in their order. */
  add(sql: (...placeholders: string[]) => string, ...values: unknown[]): this {
    const placeholders = values.map((v) => `$${this.params.push(v)}`);
    this.conditions.push(sql(...placeholders));
    return this;
  }
}
