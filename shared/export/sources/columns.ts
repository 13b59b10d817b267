/**
 * Column lists of the catalog's tables, with each column's type as the source
 * database names it. They drive the SELECT lists where a source needs them
 * (Redshift's padded CHAR columns are trimmed) and the Athena DDL.
 */

export interface ColumnSpec {
  readonly name: string;
  /** The source type, e.g. `integer`, `character(320)`, `timestamp(6)`, `bigint unsigned`. */
  readonly type: string;
}

/** `{ name: type, ... }` in column order, as a list. */
export function columnList(spec: Readonly<Record<string, string>>): readonly ColumnSpec[] {
  return Object.freeze(Object.entries(spec).map(([name, type]) => Object.freeze({ name, type })));
}
