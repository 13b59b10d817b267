import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeJsonLines } from '../../../../shared/export/encode/jsonl';
import { encodeParquet } from '../../../../shared/export/encode/parquet';
import {
  type ParquetColumn,
  type ParquetColumnType,
  parquetTypeOf,
} from '../../../../shared/export/encode/parquet-types';
import { CATALOG_COLUMNS } from '../../../../shared/export/sources/catalog';
import { MysqlSession } from '../../../../shared/export/sources/mysql/session';
import { PostgresSession } from '../../../../shared/export/sources/postgres/session';
import type { DatabaseSession } from '../../../../shared/export/sources/session';
import { createLogger } from '../../../../shared/log';
import { createMysqlDatabase, createPgDatabase, mysqlAdmin, pgAdmin, stack } from '../../../stack/fixtures';
import { duckdbQuery, isoFromDuckDb, sqlString } from '../../../support/duckdb';

/**
 * Where Parquet types come from: the catalogs' source type names, and the
 * columns PostgreSQL and MariaDB describe for a query (asked of the real
 * servers). Then the whole way: rows streamed by the exporter's own sessions,
 * encoded with the described types, read back by DuckDB, equal to what the
 * JSON-lines format writes for the same rows.
 */

const kind = (type: ParquetColumnType) =>
  type.kind === 'decimal'
    ? `decimal(${type.precision},${type.scale})`
    : type.kind === 'json' && type.document
      ? 'json document'
      : type.kind;

describe('parquetTypeOf (source type names)', () => {
  it.each([
    ['integer', 'int32'],
    ['int(11)', 'int32'],
    ['tinyint', 'int32'],
    ['smallint unsigned', 'int32'],
    ['mediumint(8) unsigned', 'int32'],
    ['int unsigned', 'int64'],
    ['int(10) unsigned zerofill', 'int64'],
    ['bigint', 'int64'],
    ['int8', 'int64'],
    ['bigint unsigned', 'decimal(20,0)'],
    ['bigint(20) unsigned', 'decimal(20,0)'],
    ['oid', 'int64'],
    ['double precision', 'double'],
    ['real', 'double'],
    ['float(7,4)', 'double'],
    ['numeric(10,2)', 'decimal(10,2)'],
    ['decimal(65,30)', 'string'],
    ['numeric(5)', 'decimal(5,0)'],
    ['numeric', 'string'],
    ['boolean', 'boolean'],
    ['bool', 'boolean'],
    ['timestamp', 'timestamp'],
    ['timestamp(6)', 'timestamp'],
    ['timestamp without time zone', 'timestamp'],
    ['timestamp with time zone', 'timestamp'],
    ['timestamp(3) with time zone', 'timestamp'],
    ['timestamptz', 'timestamp'],
    ['datetime(6)', 'timestamp'],
    ['date', 'date'],
    ['time(6)', 'string'],
    ['interval', 'string'],
    ['text', 'string'],
    ['mediumtext', 'string'],
    ['varchar', 'string'],
    ['varchar(64000)', 'string'],
    ['character(320)', 'string'],
    ['character varying(20)', 'string'],
    ['name', 'string'],
    ['uuid', 'string'],
    ["enum('a','b')", 'string'],
    ['json', 'json document'],
    ['jsonb', 'json document'],
    ['text[]', 'json'],
    ['geometry', 'json'],
  ])('maps %s to %s', (source, expected) => {
    expect(kind(parquetTypeOf(source))).toBe(expected);
  });

  it('gives every catalog column a typed column (no catalog type falls through to json)', () => {
    const untyped = Object.entries(CATALOG_COLUMNS).flatMap(([table, columns]) =>
      columns.filter((c) => parquetTypeOf(c.type).kind === 'json').map((c) => `${table}.${c.name} ${c.type}`),
    );
    expect(untyped).toEqual([]);
    // The catalogs' event times are all instants.
    expect(
      parquetTypeOf(CATALOG_COLUMNS.general_log?.find((c) => c.name === 'event_time')?.type ?? '').kind,
    ).toBe('timestamp');
  });
});

/** One table with a column of every type the drivers describe, the same values on both engines where they can be. */
const PG_TABLE = `CREATE TABLE samples (
  id int4 PRIMARY KEY, small int2, big int8, ratio float4, measure float8, price numeric(12,3), loose numeric,
  flag bool, at_tz timestamptz(6), at_plain timestamp(3), day date, label text, code varchar(8), fixed char(3),
  doc jsonb, tags text[], owner oid, taken interval, moment time, ident uuid)`;
const PG_ROWS = `INSERT INTO samples VALUES
  (1, -32768, 9223372036854775807, 0.5, 1e300, 123456789.125, 3.14159265358979323846, true,
   '2024-05-01 12:00:00.123456+00', '1969-12-31 23:59:59.999', '2024-02-29', 'é 漢字 🎉', 'abc', 'xy',
   '{"a": [1, 2]}', ARRAY['x', 'y'], 4294967295, '1 day 02:00', '23:59:59.999999', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
  (2, NULL, -9223372036854775808, NULL, -0.1, -0.001, NULL, false, '1900-01-01 00:00:00.000001+00', NULL, NULL,
   '', NULL, NULL, 'null', '{}', NULL, NULL, NULL, NULL),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`;
const PG_EXPECTED: Record<string, string> = {
  id: 'int32',
  small: 'int32',
  big: 'int64',
  ratio: 'double',
  measure: 'double',
  price: 'decimal(12,3)',
  loose: 'string',
  flag: 'boolean',
  at_tz: 'timestamp',
  at_plain: 'timestamp',
  day: 'date',
  label: 'string',
  code: 'string',
  fixed: 'string',
  doc: 'json document',
  tags: 'json',
  owner: 'int64',
  taken: 'string',
  moment: 'string',
  ident: 'string',
};

const MY_TABLE = `CREATE TABLE samples (
  id INT PRIMARY KEY, tiny TINYINT, flag TINYINT(1), small SMALLINT UNSIGNED, medium MEDIUMINT, counter INT UNSIGNED,
  big BIGINT, huge BIGINT UNSIGNED, ratio FLOAT, measure DOUBLE, price DECIMAL(12,3), upper DECIMAL(10,0) UNSIGNED,
  wide DECIMAL(40,10), at_dt DATETIME(6), at_ts TIMESTAMP(3) NULL, day DATE, yr YEAR, label VARCHAR(64),
  body MEDIUMTEXT, bin VARBINARY(16), fixed CHAR(3), choice ENUM('a','b'), doc JSON, moment TIME(6), bits BIT(8))
  CHARACTER SET utf8mb4`;
const MY_ROWS = `INSERT INTO samples VALUES
  (1, -128, 1, 65535, -8388608, 4294967295, 9223372036854775807, 18446744073709551615, 0.5, 1e300,
   123456789.125, 4294967296, 123456789012345678901234567890.1234567890, '2024-05-01 12:00:00.123456',
   '2024-05-01 12:00:00.5', '2024-02-29', 2024, 'é 漢字 🎉', 'body', 'bytes', 'xy', 'b', '{"a": [1, 2]}',
   '838:59:59.000000', b'10100101'),
  (2, 0, 0, 0, 0, 0, -9223372036854775808, 0, NULL, -0.1, -0.001, 0, -0.0000000001, '1969-12-31 23:59:59.999999',
   NULL, '1000-01-01', NULL, '', '', '', '', 'a', 'null', '-00:00:01.000000', b'0'),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL)`;
const MY_EXPECTED: Record<string, string> = {
  id: 'int32',
  tiny: 'int32',
  flag: 'int32',
  small: 'int32',
  medium: 'int32',
  counter: 'int64',
  big: 'int64',
  huge: 'decimal(20,0)',
  ratio: 'double',
  measure: 'double',
  price: 'decimal(12,3)',
  upper: 'decimal(10,0)',
  wide: 'string',
  at_dt: 'timestamp',
  at_ts: 'timestamp',
  day: 'date',
  yr: 'int32',
  label: 'string',
  body: 'string',
  bin: 'string',
  fixed: 'string',
  choice: 'string',
  // MariaDB's JSON travels as LONGTEXT; its extended metadata says json, and mysql2 parses it.
  doc: 'json document',
  moment: 'string',
  bits: 'json',
};

const work = mkdtempSync(join(tmpdir(), 'parquet-types-'));
const logger = createLogger('parquet-types-test');
let pgDatabase: string;
let myDatabase: string;

beforeAll(async () => {
  pgDatabase = await createPgDatabase();
  const pgc = await pgAdmin(pgDatabase);
  try {
    await pgc.query(PG_TABLE);
    await pgc.query(PG_ROWS);
  } finally {
    await pgc.end();
  }
  myDatabase = await createMysqlDatabase();
  const my = await mysqlAdmin();
  try {
    await my.query(`USE \`${myDatabase}\`; ${MY_TABLE}; ${MY_ROWS}`);
  } finally {
    await my.end();
  }
});

/** What JSON lines carry for a value, in the form DuckDB's JSON values of the Parquet column take. */
function asRead(value: unknown, type: ParquetColumnType): unknown {
  if (value === null || value === undefined) return null;
  switch (type.kind) {
    case 'timestamp': {
      const m = /^(.*T\d{2}:\d{2}:\d{2})(?:\.(\d+))?Z$/.exec(String(value));
      return m ? `${m[1]}.${(m[2] ?? '').padEnd(6, '0')}Z` : value;
    }
    case 'int64':
    case 'decimal':
      return String(value);
    case 'json':
      return typeof value === 'string' && !type.document ? value : JSON.stringify(value);
    case 'boolean':
      return value === true || value === 1;
    default:
      return value;
  }
}

async function roundTrip(session: DatabaseSession, columns: ParquetColumn[], sql: string) {
  const chunks: Uint8Array[] = [];
  for await (const chunk of encodeParquet(columns, session.stream(sql))) chunks.push(chunk);
  const file = join(work, `${columns.length}-${chunks.length}-${Date.now()}.parquet`);
  writeFileSync(file, Buffer.concat(chunks));
  const read = await duckdbQuery(`SELECT * FROM read_parquet(${sqlString(file)}) ORDER BY id`);
  let text = '';
  for await (const chunk of encodeJsonLines(session.stream(sql), [], { rows: 0 })) text += chunk;
  const lines = text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const expected = lines.map((line) =>
    Object.fromEntries(columns.map((c) => [c.name, asRead(line[c.name], c.type)])),
  );
  const got = read.rows.map((row) =>
    Object.fromEntries(
      columns.map((c) => {
        const value = row[c.name];
        return [
          c.name,
          c.type.kind === 'timestamp' && typeof value === 'string' ? isoFromDuckDb(value) : value,
        ];
      }),
    ),
  );
  return { got, expected };
}

describe('rows of the exporter sessions, encoded with the described types', () => {
  let pgSession: PostgresSession;
  let mySession: MysqlSession;

  beforeAll(async () => {
    const { postgres, mariadb } = stack();
    pgSession = await PostgresSession.open(
      {
        host: postgres.host,
        port: postgres.port,
        user: postgres.adminUser,
        password: postgres.adminPassword,
        database: pgDatabase,
        tls: 'prefer',
      },
      logger,
      'parquet-types test',
    );
    mySession = await MysqlSession.open(
      {
        host: mariadb.host,
        port: mariadb.port,
        user: mariadb.adminUser,
        password: mariadb.adminPassword,
        database: myDatabase,
        tls: 'prefer',
      },
      logger,
      'parquet-types test',
    );
  });

  afterAll(async () => {
    await pgSession?.close();
    await mySession?.close();
  });

  /** The session's described columns (source type names) as Parquet columns: how the exporter builds them. */
  const described = async (session: DatabaseSession, sql: string): Promise<ParquetColumn[]> =>
    (await session.describe(sql)).map((c) => ({ name: c.name, type: parquetTypeOf(c.type) }));
  const kinds = (columns: ParquetColumn[]) => Object.fromEntries(columns.map((c) => [c.name, kind(c.type)]));

  it('maps the type names that the PostgreSQL session describes', async () => {
    expect(kinds(await described(pgSession, 'SELECT * FROM samples'))).toEqual(PG_EXPECTED);
  });

  it('maps the type names that the MariaDB session describes, JSON included (LONGTEXT flagged json)', async () => {
    // MariaDB's JSON is flagged only in the extended metadata (mysql2's extendedFormat), whose values
    // mysql2 hands over parsed: the session names such a column json.
    expect(kinds(await described(mySession, 'SELECT * FROM samples'))).toEqual(MY_EXPECTED);
  });

  it('reads back from PostgreSQL rows what JSON lines carry, typed by the described names', async () => {
    const sql = 'SELECT * FROM samples ORDER BY id';
    const { got, expected } = await roundTrip(pgSession, await described(pgSession, sql), sql);
    expect(got).toEqual(expected);
    expect(got[0]?.big).toBe('9223372036854775807');
    expect(got[0]?.at_tz).toBe('2024-05-01T12:00:00.123456Z');
  });

  it('reads back from MariaDB rows what JSON lines carry, typed by the described names', async () => {
    const sql = 'SELECT * FROM samples ORDER BY id';
    const { got, expected } = await roundTrip(mySession, await described(mySession, sql), sql);
    expect(got).toEqual(expected);
    expect(got[0]?.huge).toBe('18446744073709551615');
    expect(got[1]?.at_dt).toBe('1969-12-31T23:59:59.999999Z');
    expect(got[0]?.doc).toBe('{"a":[1,2]}');
  });
});
