/**
 * The narrow interface behind which engine specifics live. The pipeline, the
 * planner and the catalog's builders see only this: a clock, a way to ask a
 * question, and a stream of rows whose timestamps are already ISO-8601 strings.
 */

/** How one SQL dialect spells identifiers and timestamp literals. */
export interface SqlDialect {
  /** Quotes one identifier (a column name). */
  quote(identifier: string): string;
  /** A timestamp literal for microseconds since the epoch, compared in UTC. */
  timestamp(micros: number): string;
}

import type { Row } from '../encode/jsonl';
import type { ColumnGroup, GroupLimits } from '../encode/parquet';
import type { ParquetColumn } from '../encode/parquet-types';
import type { ColumnSpec } from './columns';

export type { Row };

export interface DatabaseSession {
  readonly dialect: SqlDialect;
  /** The database clock in UTC, `YYYY-MM-DDTHH:MM:SS.ffffffZ`. */
  now(): Promise<string>;
  /** The first column of the first row, or undefined when there is no row. */
  scalar(sql: string): Promise<unknown>;
  /** Does `schema.table` exist? */
  relationExists(schema: string, table: string): Promise<boolean>;
  /**
   * The result columns of `sql`, in order, with their types as the source
   * names them (`bigint unsigned`, `timestamp(6) with time zone`,
   * `numeric(10,2)`): what typed output formats are built from, never from
   * sampled rows. Reads no rows.
   */
  describe(sql: string): Promise<ColumnSpec[]>;
  /** Streams rows without holding the result in memory; breaking out of the loop stops the query. */
  stream(sql: string): AsyncIterable<Row>;
  /**
   * Optional: the rows of `stream(sql)`, the same values in the same order, in
   * arrays as they arrive: one promise per array rather than per row (what a
   * Parquet export spends most of its time on otherwise). No array is empty.
   */
  batches?(sql: string): AsyncIterable<Row[]>;
  /**
   * Optional, for Parquet: the rows of `sql` read by column into row groups
   * of at most `limits`, each value already what the Parquet encoder would
   * make of the value `stream(sql)` gives for it, for a file of `columns`
   * (the query's described columns, typed), the SQL text of `redactColumns`
   * masked as `stream`'s rows would be before they are grouped; undefined
   * when the session cannot promise that for this query (the caller then
   * uses `batches`).
   */
  parquetGroups?(
    sql: string,
    columns: readonly ParquetColumn[],
    limits: GroupLimits,
    redactColumns?: readonly string[],
  ): Promise<AsyncIterable<ColumnGroup> | undefined>;
  /**
   * Optional fast path: the rows of `sql` as JSON lines, byte for byte what
   * JSON-encoding `stream(sql)` line by line gives (with the same columns
   * masked), written without building row objects and counting rows into
   * `counter`; undefined when the session cannot promise the same bytes for
   * this query (the caller then uses `stream`).
   */
  jsonLines?(
    sql: string,
    counter: { rows: number },
    redactColumns: readonly string[],
  ): Promise<AsyncIterable<Uint8Array> | undefined>;
  close(): Promise<void>;
}
