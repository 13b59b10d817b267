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

/** The parts of a PostgreSQL RowDescription field that decide its type (pg's `FieldDef`). */
export interface PostgresField {
  readonly dataTypeID: number;
  /** The type modifier (`numeric(p,s)`: `((p << 16) | s) + 4`); -1 or absent: none. */
  readonly dataTypeModifier?: number;
}

/** PostgreSQL (and Redshift) type OIDs, as pg_type has them. */
const POSTGRES_TYPES = new Map<number, ParquetColumnType>([
  [16, PARQUET_BOOLEAN], // bool
  [20, PARQUET_INT64], // int8
  [21, PARQUET_INT32], // int2
  [23, PARQUET_INT32], // int4
  [26, PARQUET_INT64], // oid (unsigned 32-bit)
  [28, PARQUET_INT64], // xid
  [29, PARQUET_INT64], // cid
  [5069, PARQUET_UINT64], // xid8
  [700, PARQUET_DOUBLE], // float4
  [701, PARQUET_DOUBLE], // float8
  [1082, PARQUET_DATE], // date
  [1114, PARQUET_TIMESTAMP], // timestamp
  [1184, PARQUET_TIMESTAMP], // timestamptz
  [114, PARQUET_JSON_DOCUMENT], // json
  [3802, PARQUET_JSON_DOCUMENT], // jsonb
  [17, PARQUET_STRING], // bytea (its hex text)
  [18, PARQUET_STRING], // "char"
  [19, PARQUET_STRING], // name
  [25, PARQUET_STRING], // text
  [142, PARQUET_STRING], // xml
  [650, PARQUET_STRING], // cidr
  [790, PARQUET_STRING], // money
  [829, PARQUET_STRING], // macaddr
  [869, PARQUET_STRING], // inet
  [1042, PARQUET_STRING], // bpchar
  [1043, PARQUET_STRING], // varchar
  [1083, PARQUET_STRING], // time
  [1186, PARQUET_STRING], // interval
  [1266, PARQUET_STRING], // timetz
  [1560, PARQUET_STRING], // bit
  [1562, PARQUET_STRING], // varbit
  [2950, PARQUET_STRING], // uuid
  [3220, PARQUET_STRING], // pg_lsn
]);
const POSTGRES_NUMERIC = 1700;

/**
 * The Parquet type of a column that PostgreSQL (or Redshift) describes for a
 * query: its type OID and modifier (pg's `fields`, or a statement's
 * RowDescription). `numeric(p,s)` needs the modifier; without it (or for a
 * bare `numeric`) the column is an exact string. Arrays, composite and
 * unknown types are `json`.
 */
export function parquetTypeOfPostgresField(field: PostgresField): ParquetColumnType {
  if (field.dataTypeID === POSTGRES_NUMERIC) {
    const modifier = field.dataTypeModifier ?? -1;
    if (modifier < 4) return PARQUET_STRING;
    const packed = modifier - 4;
    return parquetDecimal((packed >> 16) & 0xffff, packed & 0xffff);
  }
  return POSTGRES_TYPES.get(field.dataTypeID) ?? PARQUET_JSON;
}

/** The parts of a mysql2 column definition (`FieldPacket`) that decide its type. */
export interface MysqlField {
  /** The protocol's column type code (mysql2's `columnType`, `Types` in mysql2). */
  readonly columnType: number;
  /** Column flags; UNSIGNED is 32. */
  readonly flags: number;
  /** Digits after the point, for DECIMAL. */
  readonly decimals?: number;
  /** Display length: a DECIMAL's precision plus its point and sign. */
  readonly columnLength?: number;
  /**
   * MariaDB's extended metadata (mysql2's `extendedFormat`): `json` for its JSON
   * columns, which travel as LONGTEXT but which mysql2 then parses.
   */
  readonly extendedFormat?: string;
}

const MYSQL_UNSIGNED_FLAG = 32;

/**
 * The Parquet type of a column that MySQL or MariaDB describes for a query
 * (mysql2's field packets, read from the `fields` event). TIMESTAMP and
 * DATETIME are instants (the session runs in UTC); TIME stays text; BIT and
 * GEOMETRY, which mysql2 hands over as a Buffer or an object, are `json`.
 */
export function parquetTypeOfMysqlField(field: MysqlField): ParquetColumnType {
  const unsigned = (field.flags & MYSQL_UNSIGNED_FLAG) !== 0;
  if (field.extendedFormat === 'json') return PARQUET_JSON_DOCUMENT;
  switch (field.columnType) {
    case 1: // TINY
    case 2: // SHORT
    case 9: // INT24
    case 13: // YEAR
      return PARQUET_INT32;
    case 3: // LONG
      return unsigned ? PARQUET_INT64 : PARQUET_INT32;
    case 8: // LONGLONG
      return unsigned ? PARQUET_UINT64 : PARQUET_INT64;
    case 4: // FLOAT
    case 5: // DOUBLE
      return PARQUET_DOUBLE;
    case 0: // DECIMAL
    case 246: {
      // NEWDECIMAL: the display length counts the digits, a point when there is a scale, and a sign unless unsigned.
      const scale = field.decimals ?? 0;
      const precision = (field.columnLength ?? 0) - (scale > 0 ? 1 : 0) - (unsigned ? 0 : 1);
      return precision >= scale && precision > 0 ? parquetDecimal(precision, scale) : PARQUET_STRING;
    }
    case 7: // TIMESTAMP
    case 12: // DATETIME
    case 17: // TIMESTAMP2
    case 18: // DATETIME2
      return PARQUET_TIMESTAMP;
    case 10: // DATE
    case 14: // NEWDATE
      return PARQUET_DATE;
    case 245: // JSON
      return PARQUET_JSON_DOCUMENT;
    case 16: // BIT
    case 255: // GEOMETRY
      return PARQUET_JSON;
    case 6: // NULL
    case 11: // TIME
    case 19: // TIME2
    case 15: // VARCHAR
    case 247: // ENUM
    case 248: // SET
    case 249: // TINY_BLOB
    case 250: // MEDIUM_BLOB
    case 251: // LONG_BLOB
    case 252: // BLOB
    case 253: // VAR_STRING
    case 254: // STRING
      return PARQUET_STRING;
    default:
      return PARQUET_JSON;
  }
}
