/**
 * Parquet column types, and where they come from: the catalog's column
 * definitions (source type names as PostgreSQL, MySQL/MariaDB and Redshift
 * spell them) or the columns a driver describes for a custom export's query.
 * Never from sampling rows: a window whose first rows are NULL must get the
 * same schema as one whose rows are not.
 */

/**
 * The type of one Parquet column, and what its values may be (anything else
 * is refused with the column named, see parquet.ts):
 * - `timestamp`: INT64 TIMESTAMP(MICROS, isAdjustedToUTC = true); ISO-8601
 *   text (`2024-05-01T12:00:00.123456Z`, an offset, or none for UTC), or
 *   PostgreSQL's `infinity` / `-infinity`, stored as the largest / smallest
 *   INT64 as PostgreSQL and DuckDB do.
 * - `date`: INT32 DATE; `YYYY-MM-DD`.
 * - `int32`, `int64`: INT32 / INT64; integer numbers, bigints, or decimal
 *   integer text (pg's int8), within range.
 * - `double`: DOUBLE; numbers, or numeric text (`NaN`, `Infinity` included).
 * - `boolean`: BOOLEAN; booleans, 0 / 1 (MySQL), `t` / `f` / `true` / `false`.
 * - `decimal`: DECIMAL(precision, scale) (precision at most 38, the largest
 *   Athena, Spark and DuckDB read); decimal text, numbers or bigints whose
 *   digits fit without rounding.
 * - `string`: UTF-8 BYTE_ARRAY (STRING); strings only.
 * - `json`: UTF-8 BYTE_ARRAY (STRING) holding what the JSON-lines format
 *   would: a string as it is, any other value as its JSON text (a driver's
 *   parsed JSON document, a PostgreSQL array, a Buffer). With `document`
 *   (the source declares JSON, whose values the drivers hand over parsed),
 *   every value as its JSON text, strings too: the JSON string `"123"` stays
 *   `"123"`, not the number `123`.
 */
export type ParquetColumnType =
  | { readonly kind: 'timestamp' }
  | { readonly kind: 'date' }
  | { readonly kind: 'int32' }
  | { readonly kind: 'int64' }
  | { readonly kind: 'double' }
  | { readonly kind: 'boolean' }
  | { readonly kind: 'decimal'; readonly precision: number; readonly scale: number }
  | { readonly kind: 'string' }
  | { readonly kind: 'json'; readonly document?: boolean };

/** One column of a Parquet object, in file order. */
export interface ParquetColumn {
  readonly name: string;
  readonly type: ParquetColumnType;
}

/** The largest DECIMAL precision mapped to DECIMAL; wider numerics stay exact as strings. */
export const MAX_DECIMAL_PRECISION = 38;

export const PARQUET_TIMESTAMP: ParquetColumnType = Object.freeze({ kind: 'timestamp' });
export const PARQUET_DATE: ParquetColumnType = Object.freeze({ kind: 'date' });
export const PARQUET_INT32: ParquetColumnType = Object.freeze({ kind: 'int32' });
export const PARQUET_INT64: ParquetColumnType = Object.freeze({ kind: 'int64' });
export const PARQUET_DOUBLE: ParquetColumnType = Object.freeze({ kind: 'double' });
export const PARQUET_BOOLEAN: ParquetColumnType = Object.freeze({ kind: 'boolean' });
export const PARQUET_STRING: ParquetColumnType = Object.freeze({ kind: 'string' });
export const PARQUET_JSON: ParquetColumnType = Object.freeze({ kind: 'json' });
/** A column the source declares JSON (json, jsonb, MySQL's JSON, MariaDB's JSON-flagged LONGTEXT). */
export const PARQUET_JSON_DOCUMENT: ParquetColumnType = Object.freeze({ kind: 'json', document: true });

/**
 * DECIMAL(precision, scale) when readers can hold it, else an exact string.
 * `bigint unsigned` is DECIMAL(20, 0): 2^64 - 1 has 20 digits and fits no INT64.
 */
export function parquetDecimal(precision: number, scale: number): ParquetColumnType {
  if (!Number.isInteger(precision) || !Number.isInteger(scale) || scale < 0 || scale > precision)
    throw new RangeError(`Not a decimal type: precision ${precision}, scale ${scale}`);
  if (precision < 1 || precision > MAX_DECIMAL_PRECISION) return PARQUET_STRING;
  return Object.freeze({ kind: 'decimal', precision, scale });
}

/** An unsigned 64-bit integer (MySQL's `bigint unsigned`, PostgreSQL's xid8). */
export const PARQUET_UINT64 = parquetDecimal(20, 0);

const INTEGER =
  /^(tinyint|smallint|mediumint|int|integer|bigint|int2|int4|int8|smallserial|serial|serial2|serial4|bigserial|serial8|year)(?:\s*\(\d+\))?(\s+unsigned)?(?:\s+zerofill)?$/;
const FLOATING =
  /^(?:double precision|double|float4|float8|real|float)(?:\s*\(\d+(?:\s*,\s*\d+)?\))?(?:\s+unsigned)?(?:\s+zerofill)?$/;
const DECIMAL =
  /^(?:numeric|decimal|dec|fixed)(?:\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?(?:\s+unsigned)?(?:\s+zerofill)?$/;
const TIMESTAMP = /^(?:timestamptz|timestamp|datetime)(?:\s*\(\d\))?(?:\s+with(?:out)?\s+time\s+zone)?$/;
const STRING =
  /^(?:text|tinytext|mediumtext|longtext|name|citext|char|character|bpchar|varchar|character varying|nchar|nvarchar|national char|national character|national varchar|uuid|inet|cidr|macaddr|macaddr8|money|xml|time|timetz|interval|enum|set|bytea|blob|tinyblob|mediumblob|longblob|binary|varbinary|tsvector|regclass|regproc|regtype|pg_lsn)\b/;

/**
 * The Parquet type of a column from its source type name, as the catalogs
 * spell them (`integer`, `bigint unsigned`, `character(320)`, `timestamp(6)`,
 * `timestamp(3) with time zone`, `numeric(10,2)`, `int(11)`, ...).
 *
 * - Every timestamp is an instant: the exporter reads in a UTC session and
 *   writes `...Z` text, so `timestamp without time zone` (Redshift's STL
 *   tables, MySQL's `datetime`) is stored UTC-adjusted like `timestamptz`.
 * - `time`, `timetz` and `interval` stay text: MySQL's `time(6)` (slow_log's
 *   `query_time`) is a duration that may pass 24 hours, which TIME cannot hold.
 * - Unsigned integers widen (`int unsigned` to INT64, `bigint unsigned` to
 *   DECIMAL(20,0)); `numeric` without a precision (any scale) and numerics
 *   wider than 38 digits stay exact as strings.
 * - Arrays, `json`, `jsonb` and names not known here are `json`: strings as
 *   they are, other values as JSON, as the JSON-lines format writes them.
 */
export function parquetTypeOf(sourceType: string): ParquetColumnType {
  const t = sourceType.trim().toLowerCase().replace(/\s+/g, ' ');
  if (t === 'json' || t === 'jsonb') return PARQUET_JSON_DOCUMENT;
  if (t.endsWith('[]') || t.startsWith('_')) return PARQUET_JSON;
  if (TIMESTAMP.test(t)) return PARQUET_TIMESTAMP;
  if (t === 'date') return PARQUET_DATE;
  if (t === 'boolean' || t === 'bool') return PARQUET_BOOLEAN;
  const integer = INTEGER.exec(t);
  if (integer) return integerType(integer[1] as string, integer[2] !== undefined);
  if (FLOATING.test(t)) return PARQUET_DOUBLE;
  const decimal = DECIMAL.exec(t);
  if (decimal) {
    // PostgreSQL's bare `numeric` has any scale: only text holds every value exactly.
    if (decimal[1] === undefined) return PARQUET_STRING;
    return parquetDecimal(Number(decimal[1]), Number(decimal[2] ?? 0));
  }
  if (t === 'oid' || t === 'xid' || t === 'cid' || t === 'regoid') return PARQUET_INT64;
  if (t === 'xid8') return PARQUET_UINT64;
  if (STRING.test(t)) return PARQUET_STRING;
  return PARQUET_JSON;
}

function integerType(name: string, unsigned: boolean): ParquetColumnType {
  switch (name) {
    case 'bigint':
    case 'int8':
    case 'bigserial':
    case 'serial8':
      return unsigned ? PARQUET_UINT64 : PARQUET_INT64;
    case 'int':
    case 'integer':
    case 'int4':
    case 'serial':
    case 'serial4':
      return unsigned ? PARQUET_INT64 : PARQUET_INT32;
    default:
      // tinyint, smallint, mediumint and year fit INT32 signed or not.
      return PARQUET_INT32;
  }
}

/** The fewest bytes whose two's complement holds every DECIMAL of this precision (FIXED_LEN_BYTE_ARRAY past 18 digits). */
export function decimalBytes(precision: number): number {
  let bytes = 1;
  while (2n ** BigInt(8 * bytes - 1) <= 10n ** BigInt(precision)) bytes++;
  return bytes;
}
