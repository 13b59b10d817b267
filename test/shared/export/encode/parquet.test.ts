import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { EncodeError } from '../../../../shared/errors';
import { encodeParquet, type ParquetEncodeOptions } from '../../../../shared/export/encode/parquet';
import {
  type ParquetColumn,
  type ParquetColumnType,
  parquetDecimal,
  parquetTypeOf,
} from '../../../../shared/export/encode/parquet-types';
import {
  duckdbQuery,
  isoFromDuckDb,
  parquetMetadata,
  parquetSchema,
  sqlString,
} from '../../../support/duckdb';

/**
 * The Parquet encoder, read back by DuckDB (an engine no one here wrote):
 * every type comes back exactly with the type it was declared as, nulls
 * included; large input becomes several row groups, each yielded before the
 * next rows are read; a value that does not fit its column is refused with
 * the column and the row named.
 */

type Row = Record<string, unknown>;

const work = mkdtempSync(join(tmpdir(), 'parquet-encoder-'));
let files = 0;

/** Encodes the rows to a file, and counts the chunks yielded before the source ran dry. */
async function encodeToFile(
  columns: readonly ParquetColumn[],
  rows: Iterable<Row>,
  options?: ParquetEncodeOptions,
): Promise<{ file: string; chunksBeforeEnd: number; chunks: number }> {
  const chunks: Uint8Array[] = [];
  let sourceDone = false;
  let chunksBeforeEnd = 0;
  async function* source() {
    yield* rows;
    sourceDone = true;
  }
  for await (const chunk of encodeParquet(columns, source(), options)) {
    chunks.push(chunk);
    if (!sourceDone) chunksBeforeEnd++;
  }
  const file = join(work, `f${files++}.parquet`);
  writeFileSync(file, Buffer.concat(chunks));
  return { file, chunksBeforeEnd, chunks: chunks.length };
}

const readAll = async (file: string) => duckdbQuery(`SELECT * FROM read_parquet(${sqlString(file)})`);
const col = (name: string, type: ParquetColumnType | string): ParquetColumn => ({
  name,
  type: typeof type === 'string' ? parquetTypeOf(type) : type,
});

/**
 * One column per type; `values` are what a session may hand over, `read` what
 * DuckDB must give back (its JSON forms: exact text for BIGINT and DECIMAL,
 * timestamps turned to ISO text by isoFromDuckDb).
 */
const LONG_TEXT = `${'0123456789abcdef'.repeat(65_536)}é`;
const CASES: { column: ParquetColumn; duckType: string; values: unknown[]; read: unknown[] }[] = [
  {
    column: col('ts', 'timestamp(6)'),
    duckType: 'TIMESTAMP WITH TIME ZONE',
    values: [
      '2026-11-30T00:00:00.123456Z',
      '1969-12-31T23:59:59.999999Z',
      '1900-01-01T00:00:00.000001Z',
      '2024-02-29T23:59:59.999999Z',
      '1970-01-01T00:00:00.000000Z',
      '2024-05-01 12:00:00.5',
      '2024-05-01T02:00:00+02:00',
      '2024-05-01T12:30:00.123456000Z',
      '9999-12-31T23:59:59.999999Z',
      '0001-01-01T00:00:00.000000Z',
      'infinity',
      '-infinity',
      '2024-05-01T12:00:00.5Z',
      '2024-05-01T12:00:00Z',
      '2024-05-01T12:00:00.01234Z',
    ],
    read: [
      '2026-11-30T00:00:00.123456Z',
      '1969-12-31T23:59:59.999999Z',
      '1900-01-01T00:00:00.000001Z',
      '2024-02-29T23:59:59.999999Z',
      '1970-01-01T00:00:00.000000Z',
      '2024-05-01T12:00:00.500000Z',
      '2024-05-01T00:00:00.000000Z',
      '2024-05-01T12:30:00.123456Z',
      '9999-12-31T23:59:59.999999Z',
      '0001-01-01T00:00:00.000000Z',
      'infinity',
      '-infinity',
      '2024-05-01T12:00:00.500000Z',
      '2024-05-01T12:00:00.000000Z',
      '2024-05-01T12:00:00.012340Z',
    ],
  },
  {
    column: col('day', 'date'),
    duckType: 'DATE',
    values: ['2024-02-29', '1969-07-20', '0001-01-01', '9999-12-31'],
    read: ['2024-02-29', '1969-07-20', '0001-01-01', '9999-12-31'],
  },
  {
    column: col('i32', 'integer'),
    duckType: 'INTEGER',
    values: [-2147483648, 2147483647, 0, '42', 7n],
    read: [-2147483648, 2147483647, 0, 42, 7],
  },
  {
    column: col('i64', 'bigint'),
    duckType: 'BIGINT',
    values: ['9223372036854775807', '-9223372036854775808', 9007199254740991, -1, 0n],
    read: ['9223372036854775807', '-9223372036854775808', '9007199254740991', '-1', '0'],
  },
  {
    column: col('u64', 'bigint unsigned'),
    duckType: 'DECIMAL(20,0)',
    values: ['18446744073709551615', '0', 5, '9007199254740993'],
    read: ['18446744073709551615', '0', '5', '9007199254740993'],
  },
  {
    column: col('f64', 'double precision'),
    duckType: 'DOUBLE',
    values: [1.5, -2.5e-300, 1.7976931348623157e308, '3.25', 0.1, -0],
    read: [1.5, -2.5e-300, 1.7976931348623157e308, 3.25, 0.1, -0],
  },
  {
    column: col('flag', 'boolean'),
    duckType: 'BOOLEAN',
    values: [true, false, 1, 0, 't', 'f'],
    read: [true, false, true, false, true, false],
  },
  {
    column: col('money', 'numeric(10,2)'),
    duckType: 'DECIMAL(10,2)',
    values: ['12345678.90', '-0.01', '0.29', 1.5, '-99999999.99', '7'],
    read: ['12345678.90', '-0.01', '0.29', '1.50', '-99999999.99', '7.00'],
  },
  {
    column: col('small_dec', 'decimal(9,3)'),
    duckType: 'DECIMAL(9,3)',
    values: ['-999999.999', '0.001', '1.100'],
    read: ['-999999.999', '0.001', '1.100'],
  },
  {
    column: col('mid_dec', 'numeric(18,4)'),
    duckType: 'DECIMAL(18,4)',
    values: ['99999999999999.9999', '-1', '2.5e3'],
    read: ['99999999999999.9999', '-1.0000', '2500.0000'],
  },
  {
    column: col('wide_dec', parquetDecimal(38, 9)),
    duckType: 'DECIMAL(38,9)',
    values: ['-12345678901234567890123456789.123456789', '1e-9', '99999999999999999999999999999.999999999'],
    read: [
      '-12345678901234567890123456789.123456789',
      '0.000000001',
      '99999999999999999999999999999.999999999',
    ],
  },
  {
    column: col('txt', 'text'),
    duckType: 'VARCHAR',
    values: [
      'héllo wörld ✓ 😀',
      '',
      'Ω≈ç√∫ 漢字 🎉',
      'quote " backslash \\ newline \n tab \t',
      'nul \u0000 byte',
      LONG_TEXT,
    ],
    read: [
      'héllo wörld ✓ 😀',
      '',
      'Ω≈ç√∫ 漢字 🎉',
      'quote " backslash \\ newline \n tab \t',
      'nul \u0000 byte',
      LONG_TEXT,
    ],
  },
  {
    // Drivers hand JSON over parsed: a string is a JSON string, and stays one.
    column: col('doc', 'jsonb'),
    duckType: 'VARCHAR',
    values: [{ a: [1, 2], b: 'é' }, '[1,2]', 'plain text', 12, true, [null, 'x']],
    read: ['{"a":[1,2],"b":"é"}', '"[1,2]"', '"plain text"', '12', 'true', '[null,"x"]'],
  },
  {
    // A type the mapping does not know (a range, a composite): text as it is, other values as JSON.
    column: col('span', 'int4range'),
    duckType: 'VARCHAR',
    values: ['[1,5)', { a: 1 }, 12],
    read: ['[1,5)', '{"a":1}', '12'],
  },
];

/** Rows holding every case's values side by side (a column with fewer values is NULL below them). */
function caseRows(): Row[] {
  const length = Math.max(...CASES.map((c) => c.values.length));
  return Array.from({ length }, (_, i) =>
    Object.fromEntries(CASES.filter((c) => i < c.values.length).map((c) => [c.column.name, c.values[i]])),
  );
}

describe('encodeParquet', () => {
  it('writes every type so that DuckDB reads back exactly the values, with the declared types', async () => {
    // prepare: the cases' rows, then a row of explicit nulls, a row of undefined and an empty row
    const columns = CASES.map((c) => c.column);
    const rows = [
      ...caseRows(),
      Object.fromEntries(columns.map((c) => [c.name, null])),
      Object.fromEntries(columns.map((c) => [c.name, undefined])),
      {},
    ];

    // act
    const { file } = await encodeToFile(columns, rows);
    const read = await readAll(file);

    // assess
    expect(read.columns).toEqual(CASES.map((c) => ({ name: c.column.name, type: c.duckType })));
    for (const c of CASES) {
      const got = read.rows.map((r) => {
        const value = r[c.column.name];
        return typeof value === 'string' && c.duckType.startsWith('TIMESTAMP') ? isoFromDuckDb(value) : value;
      });
      const nulls = Array.from({ length: rows.length - c.values.length }, () => null);
      expect(got, c.column.name).toEqual([...c.read, ...nulls]);
    }
  });

  it('declares TIMESTAMP(MICROS, UTC) with its converted type, DECIMAL, STRING and GZIP in the file', async () => {
    const { file } = await encodeToFile(
      [col('ts', 'timestamptz'), col('m', 'numeric(10,2)'), col('s', 'text')],
      [{ ts: '2024-01-01T00:00:00.000001Z', m: '1.00', s: 'x' }],
    );

    const schema = Object.fromEntries((await parquetSchema(file)).rows.map((r) => [r.name, r]));
    const metadata = await parquetMetadata(file);

    expect(schema.ts).toMatchObject({ type: 'INT64', converted_type: 'TIMESTAMP_MICROS' });
    expect(String(schema.ts?.logical_type)).toMatch(/isAdjustedToUTC=1.*MICROS=MicroSeconds\(\)/);
    expect(schema.m).toMatchObject({ converted_type: 'DECIMAL', precision: '10', scale: '2' });
    expect(schema.s).toMatchObject({
      type: 'BYTE_ARRAY',
      converted_type: 'UTF8',
      logical_type: 'StringType()',
    });
    expect(new Set(metadata.rows.map((r) => r.compression))).toEqual(new Set(['GZIP']));
  });

  it('splits large input into row groups by rows, each yielded before the source is exhausted', async () => {
    const rows = Array.from({ length: 45_000 }, (_, i) => ({
      id: i,
      logged_at: `2024-03-01T00:00:${String(i % 60).padStart(2, '0')}.${String(i).padStart(6, '0')}Z`,
      text: `statement ${i}`,
    }));

    const { file, chunksBeforeEnd, chunks } = await encodeToFile(
      [col('id', 'bigint'), col('logged_at', 'timestamptz'), col('text', 'text')],
      rows,
      { maxRowGroupRows: 10_000 },
    );

    const groups = await duckdbQuery(
      `SELECT row_group_id, any_value(row_group_num_rows) AS n FROM parquet_metadata(${sqlString(file)}) GROUP BY ALL ORDER BY row_group_id`,
    );
    expect(groups.rows.map((r) => r.n)).toEqual(['10000', '10000', '10000', '10000', '5000']);
    // Two full groups were out while rows were still being read (two more on the encoder thread
    // meanwhile); the last three groups and the footer after.
    expect(chunksBeforeEnd).toBe(2);
    expect(chunks).toBe(6);
    const check = await duckdbQuery(
      `SELECT count(*) AS n, sum(id) AS s, count(DISTINCT logged_at) AS t FROM read_parquet(${sqlString(file)})`,
    );
    expect(check.rows[0]).toEqual({ n: '45000', s: String((44_999 * 45_000) / 2), t: '45000' });
  });

  it('keeps apart the values of a dictionary column that repeat in runs, equal in length and ASCII or not', async () => {
    // Few distinct values (a dictionary, not PLAIN), neighbours of one length that differ in one byte.
    const methods = ['GET', 'PUT', 'PUT', 'GET', 'DEL', null, 'DEL', 'é1', 'é2', 'é2', 'ü1', '', ''];
    const rows = Array.from({ length: 2_600 }, (_, i) => ({ id: i, method: methods[i % methods.length] }));

    const { file } = await encodeToFile([col('id', 'integer'), col('method', 'text')], rows);

    const read = await duckdbQuery(`SELECT id, method FROM read_parquet(${sqlString(file)}) ORDER BY id`);
    expect(read.rows.map((r) => r.method)).toEqual(rows.map((r) => r.method));
    const encodings = await duckdbQuery(
      `SELECT encodings FROM parquet_metadata(${sqlString(file)}) WHERE path_in_schema = 'method'`,
    );
    expect(String(encodings.rows[0]?.encodings)).toContain('RLE_DICTIONARY');
  });

  it('closes a row group early when its buffered text reaches the byte bound', async () => {
    const wide = 'w'.repeat(100_000);
    const rows = Array.from({ length: 50 }, (_, i) => ({ id: i, text: `${i}${wide}` }));

    const { file } = await encodeToFile([col('id', 'integer'), col('text', 'text')], rows, {
      maxRowGroupBytes: 1_000_000,
    });

    const groups = await duckdbQuery(
      `SELECT DISTINCT row_group_id, row_group_num_rows AS n FROM parquet_metadata(${sqlString(file)}) ORDER BY row_group_id`,
    );
    expect(groups.rows.map((r) => r.n)).toEqual(['10', '10', '10', '10', '10']);
  });

  it('writes statistics that DuckDB can prune row groups with, and finds every row by every column', async () => {
    // Rows whose values grow with the row, across groups of 100: a filter on any column skips groups by min/max.
    const rows = Array.from({ length: 1000 }, (_, i) => ({
      ts: `20${String(10 + Math.floor(i / 100)).padStart(2, '0')}-01-01T00:00:00.${String(i).padStart(6, '0')}Z`,
      i32: i - 500,
      i64: String(BigInt(i) * 10n ** 15n - 5n * 10n ** 17n),
      small: `${i}.5`,
      money: `${i * 1000}.25`,
      wide: `-${i}000000000000000000.000000001`,
      day: `19${String(50 + Math.floor(i / 20)).padStart(2, '0')}-01-01`,
    }));
    const columns = [
      col('ts', 'timestamptz'),
      col('i32', 'integer'),
      col('i64', 'bigint'),
      col('small', 'decimal(6,1)'),
      col('money', 'numeric(12,2)'),
      col('wide', parquetDecimal(30, 9)),
      col('day', 'date'),
    ];
    const { file } = await encodeToFile(columns, rows, { maxRowGroupRows: 100 });

    for (const index of [0, 99, 100, 555, 999]) {
      const row = rows[index] as Record<string, string | number>;
      const literals = {
        ts: `TIMESTAMPTZ ${sqlString(row.ts as string)}`,
        i32: String(row.i32),
        i64: String(row.i64),
        small: String(row.small),
        money: String(row.money),
        wide: `${row.wide}::DECIMAL(30,9)`,
        day: `DATE ${sqlString(row.day as string)}`,
      };
      for (const [name, literal] of Object.entries(literals)) {
        const found = await duckdbQuery(
          `SELECT count(*) AS n FROM read_parquet(${sqlString(file)}) WHERE ${name} = ${literal}`,
        );
        const expected = rows.filter((r) => r[name as keyof typeof r] === row[name]).length;
        expect(found.rows[0]?.n, `${name} of row ${index}`).toBe(String(expected));
      }
    }
  });

  it('writes SNAPPY pages on request, and ZSTD where node:zlib has it (refused by name where it has not)', async () => {
    const columns = [col('s', 'text')];
    const rows = [{ s: 'compress me '.repeat(50) }];
    const codecOf = async (file: string) => [
      ...new Set((await parquetMetadata(file)).rows.map((r) => r.compression)),
    ];

    expect(await codecOf((await encodeToFile(columns, rows, { codec: 'SNAPPY' })).file)).toEqual(['SNAPPY']);
    if ('zstdCompressSync' in zlib) {
      const { file } = await encodeToFile(columns, rows, { codec: 'ZSTD' });
      expect(await codecOf(file)).toEqual(['ZSTD']);
      expect((await readAll(file)).rows).toEqual(rows);
    } else {
      await expect(encodeToFile(columns, rows, { codec: 'ZSTD' })).rejects.toThrow(
        /ZSTD needs node:zlib's zstd/,
      );
    }
  });

  it('writes a readable file with no row group for no rows', async () => {
    const { file } = await encodeToFile([col('ts', 'timestamptz'), col('s', 'text')], []);

    const read = await readAll(file);

    expect(read.rows).toEqual([]);
    expect(read.columns.map((c) => c.type)).toEqual(['TIMESTAMP WITH TIME ZONE', 'VARCHAR']);
  });

  it('counts the rows it encodes', async () => {
    const counter = { rows: 0 };
    await encodeToFile([col('i', 'integer')], [{ i: 1 }, { i: null }, {}], { counter });
    expect(counter.rows).toBe(3);
  });

  it.each([
    ['timestamp(6)', '0000-00-00 00:00:00', '"0000-00-00 00:00:00" is not a valid date and time'],
    ['timestamp(6)', '2024-05-01T00:00:00.1234567Z', 'is finer than microseconds (would be cut)'],
    ['timestamp(6)', new Date(0), 'a Date object is not ISO-8601 timestamp text'],
    ['timestamp(6)', 'yesterday', 'a string of 9 characters is not an ISO-8601 timestamp'],
    ['date', '2024-02-30', '"2024-02-30" is not a valid YYYY-MM-DD date'],
    ['integer', 2147483648, '2147483648 is out of the INT32 range'],
    ['integer', 1.5, '1.5 is not an integer'],
    ['bigint', 2 ** 53 + 2, 'is beyond 2^53 (as a number it has already lost digits)'],
    ['bigint', '9223372036854775808', 'is out of the INT64 range'],
    ['double precision', 'abc', 'a string of 3 characters is not a number'],
    ['boolean', 2, '2 is not a boolean'],
    ['numeric(10,2)', '1.234', '"1.234" has more than 2 digits after the point (would be rounded)'],
    ['numeric(10,2)', '123456789.00', 'has more than 8 digits before the point'],
    ['bigint unsigned', '18446744073709551616x', 'is not a decimal number'],
    ['text', 42, '42 is not a string'],
    ['text', 'lone \ud800 surrogate', 'has a lone UTF-16 surrogate (UTF-8 cannot hold it)'],
  ])(
    'refuses a %s value that does not fit (%s) with the column and the row named',
    async (type, bad, reason) => {
      const columns = [col('id', 'integer'), col('value', type)];
      const rows = [
        { id: 1, value: null },
        { id: 2, value: bad },
      ];

      const encoding = encodeToFile(columns, rows);

      await expect(encoding).rejects.toThrow(EncodeError);
      const declared = parquetTypeOf(type);
      const label =
        declared.kind === 'decimal' ? `decimal(${declared.precision},${declared.scale})` : declared.kind;
      await expect(encoding).rejects.toThrow(`Column "value" (${label}), row 2: `);
      await expect(encoding).rejects.toThrow(reason);
    },
  );

  it('refuses a row with a key that is not a column, unless told to ignore such keys', async () => {
    const columns = [col('a', 'integer')];

    await expect(encodeToFile(columns, [{ a: 1 }, { a: 2, b: 3 }])).rejects.toThrow(
      'Row 2 has a key "b" that is not one of the Parquet columns (a)',
    );
    const { file } = await encodeToFile(columns, [{ a: 1, b: 3 }], { unknownKeys: 'ignore' });
    expect((await readAll(file)).rows).toEqual([{ a: 1 }]);
  });

  it('refuses a column list that is empty or names a column twice', async () => {
    await expect(encodeToFile([], [])).rejects.toThrow('at least one column');
    await expect(encodeToFile([col('a', 'text'), col('a', 'integer')], [])).rejects.toThrow('distinct');
  });
});
