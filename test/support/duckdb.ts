/**
 * DuckDB as the independent reader of what the exporter writes: a real
 * engine that no one here wrote reads the exported tree (Hive partitioning:
 * `cluster=` and `dt=` become columns) and answers with its own values and
 * types. Values come back as DuckDB's JSON forms, which are exact: BIGINT,
 * HUGEINT and DECIMAL as strings, timestamps as `2024-05-01 12:00:00.123456+00`
 * (the session's time zone is UTC), DATE as `YYYY-MM-DD`.
 */
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';

export type DuckDbValue = string | number | boolean | null | DuckDbValue[] | { [key: string]: DuckDbValue };

export interface DuckDbResult {
  /** Column names and DuckDB type names (`TIMESTAMP WITH TIME ZONE`, `DECIMAL(20,0)`, `VARCHAR`, ...). */
  columns: { name: string; type: string }[];
  rows: Record<string, DuckDbValue>[];
}

let connection: Promise<DuckDBConnection> | undefined;

async function connect(): Promise<DuckDBConnection> {
  const instance = await DuckDBInstance.create(':memory:');
  const c = await instance.connect();
  await c.run("SET TimeZone = 'UTC'");
  return c;
}

/** Runs one statement in a process-wide in-memory DuckDB. */
export async function duckdbQuery(sql: string): Promise<DuckDbResult> {
  connection ??= connect();
  const reader = await (await connection).runAndReadAll(sql);
  const names = reader.columnNames();
  const types = reader.columnTypes();
  return {
    columns: names.map((name, i) => ({ name, type: String(types[i]) })),
    rows: reader.getRowObjectsJson() as Record<string, DuckDbValue>[],
  };
}

/** A SQL string literal. */
export const sqlString = (text: string) => `'${text.replaceAll("'", "''")}'`;

const orderClause = (orderBy?: string) => (orderBy ? ` ORDER BY ${orderBy}` : '');

/** Every `.parquet` object under `dir`, with `cluster` and `dt` (and any other `k=v` folder) as columns. */
export function readParquetTree(dir: string, orderBy?: string): Promise<DuckDbResult> {
  return duckdbQuery(
    `SELECT * FROM read_parquet(${sqlString(`${dir}/**/*.parquet`)}, hive_partitioning = true)${orderClause(orderBy)}`,
  );
}

/** Every `.jsonl.gz` object under `dir` (gzip JSON lines), with the Hive partition columns. */
export function readJsonLinesTree(dir: string, orderBy?: string): Promise<DuckDbResult> {
  return duckdbQuery(
    `SELECT * FROM read_json(${sqlString(`${dir}/**/*.jsonl.gz`)}, format = 'newline_delimited', hive_partitioning = true)${orderClause(orderBy)}`,
  );
}

/** `parquet_schema()` of one file: one row per schema element (type, logical_type, precision, ...). */
export function parquetSchema(file: string): Promise<DuckDbResult> {
  return duckdbQuery(`SELECT * FROM parquet_schema(${sqlString(file)})`);
}

/** `parquet_metadata()` of one file: one row per column chunk of every row group. */
export function parquetMetadata(file: string): Promise<DuckDbResult> {
  return duckdbQuery(`SELECT * FROM parquet_metadata(${sqlString(file)}) ORDER BY row_group_id, column_id`);
}

/**
 * DuckDB's text of a TIMESTAMP WITH TIME ZONE in UTC (`1969-12-31 23:59:59.99+00`,
 * fraction digits as needed) as ISO-8601 with six fraction digits, by text alone.
 */
export function isoFromDuckDb(text: string): string {
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?\+00$/.exec(text);
  if (!m) return text;
  return `${m[1]}T${m[2]}.${(m[3] ?? '').padEnd(6, '0')}Z`;
}
