/**
 * What the exporter needs of a Parquet library, each checked for real: the
 * library writes a small file, DuckDB reads it back, and parquet_schema() /
 * parquet_metadata() say what was written. A requirement holds only when the
 * values come back exactly and the file declares the type asked for.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ParquetColumn,
  type ParquetColumnType,
  parquetDecimal,
  parquetTypeOf,
} from '../../shared/export/encode/parquet-types';
import {
  type DuckDbResult,
  duckdbQuery,
  isoFromDuckDb,
  parquetMetadata,
  parquetSchema,
  sqlString,
} from '../../test/support/duckdb';
import type { Candidate, Compression, Row } from './common';

interface Requirement {
  name: string;
  columns: readonly ParquetColumn[];
  rows: readonly Row[];
  compression?: Compression;
  rowGroupRows?: number;
  /** A problem found in what DuckDB read, or undefined when the requirement holds. */
  check(read: ReadBack): string | undefined;
  /** A figure worth showing beside `yes`. */
  note?(read: ReadBack): string;
}

interface ReadBack {
  data: DuckDbResult;
  schema: DuckDbResult;
  metadata: DuckDbResult;
  /** Bytes the writer had handed to its sink when the last row was read from the source. */
  bytesBeforeLastRow: number;
  bytes: number;
}

const col = (name: string, type: ParquetColumnType | string): ParquetColumn => ({
  name,
  type: typeof type === 'string' ? parquetTypeOf(type) : type,
});

/** Each column's values read back equal `expected` (DuckDB's JSON forms; timestamps as ISO). */
function sameValues(read: ReadBack, expected: Record<string, unknown[]>): string | undefined {
  for (const [name, values] of Object.entries(expected)) {
    const got = read.data.rows.map((r) => {
      const v = r[name];
      return typeof v === 'string' ? isoFromDuckDb(v) : v;
    });
    if (JSON.stringify(got) !== JSON.stringify(values))
      return `${name}: read ${JSON.stringify(got).slice(0, 120)}`;
  }
  return undefined;
}

function duckType(read: ReadBack, name: string, type: string): string | undefined {
  const found = read.data.columns.find((c) => c.name === name)?.type;
  return found === type ? undefined : `${name} reads as ${found}, not ${type}`;
}

const schemaOf = (read: ReadBack, name: string) => read.schema.rows.find((r) => r.name === name) ?? {};

/** `length` hex digits that depend on `seed` and do not compress. */
function noise(seed: number, length: number): string {
  let text = '';
  for (let i = 0; text.length < length; i++)
    text += createHash('sha256').update(`${seed}/${i}`).digest('hex');
  return text.slice(0, length);
}

/** Row groups in the file, and how many had reached the sink when the last row was read. */
function groupsOut(read: ReadBack): { total: number; out: number } {
  const ends = new Map<string, number>();
  for (const chunk of read.metadata.rows) {
    const start = Number(chunk.dictionary_page_offset ?? chunk.data_page_offset);
    const end = start + Number(chunk.total_compressed_size);
    const group = String(chunk.row_group_id);
    ends.set(group, Math.max(ends.get(group) ?? 0, end));
  }
  return { total: ends.size, out: [...ends.values()].filter((end) => end <= read.bytesBeforeLastRow).length };
}

const TIMESTAMPS = [
  '2026-11-30T00:00:00.123456Z',
  '2024-02-29T23:59:59.999999Z',
  '2000-01-01T00:00:00.000001Z',
];
const BEFORE_1970 = [
  '1969-12-31T23:59:59.999999Z',
  '1900-01-01T00:00:00.000001Z',
  '1000-06-15T12:00:00.500000Z',
];
const LONG_TEXT = `${'x'.repeat(100_000)}é`;
const TEXTS = ['héllo wörld ✓ 😀', '', 'Ω≈ç√∫', LONG_TEXT];

export const REQUIREMENTS: readonly Requirement[] = [
  {
    name: 'TIMESTAMP(MICROS, isAdjustedToUTC=true)',
    columns: [col('t', 'timestamptz')],
    rows: TIMESTAMPS.map((t) => ({ t })),
    check: (read) => {
      const logical = String(schemaOf(read, 't').logical_type);
      if (!/isAdjustedToUTC=1/.test(logical) || !/MICROS=MicroSeconds/.test(logical))
        return `logical type ${logical} (converted ${schemaOf(read, 't').converted_type})`;
      return duckType(read, 't', 'TIMESTAMP WITH TIME ZONE') ?? sameValues(read, { t: TIMESTAMPS });
    },
  },
  {
    name: 'timestamps before 1970',
    columns: [col('t', 'timestamptz')],
    rows: BEFORE_1970.map((t) => ({ t })),
    check: (read) => sameValues(read, { t: BEFORE_1970 }),
  },
  {
    name: 'INT32, INT64 (extremes)',
    columns: [col('i', 'integer'), col('l', 'bigint')],
    rows: [
      { i: 2147483647, l: '9223372036854775807' },
      { i: -2147483648, l: '-9223372036854775808' },
      { i: 0, l: 42 },
    ],
    check: (read) =>
      duckType(read, 'i', 'INTEGER') ??
      duckType(read, 'l', 'BIGINT') ??
      sameValues(read, {
        i: [2147483647, -2147483648, 0],
        l: ['9223372036854775807', '-9223372036854775808', '42'],
      }),
  },
  {
    name: 'DOUBLE',
    columns: [col('d', 'double precision')],
    rows: [{ d: 1.5 }, { d: -2.5e-300 }, { d: 1.7976931348623157e308 }, { d: 0.1 }],
    check: (read) =>
      duckType(read, 'd', 'DOUBLE') ?? sameValues(read, { d: [1.5, -2.5e-300, 1.7976931348623157e308, 0.1] }),
  },
  {
    name: 'BOOLEAN',
    columns: [col('b', 'boolean')],
    rows: [{ b: true }, { b: false }],
    check: (read) => duckType(read, 'b', 'BOOLEAN') ?? sameValues(read, { b: [true, false] }),
  },
  {
    name: 'DECIMAL (10,2), (20,0) = bigint unsigned, (38,9)',
    columns: [col('m', 'numeric(10,2)'), col('u', 'bigint unsigned'), col('w', parquetDecimal(38, 9))],
    rows: [
      { m: '12345678.90', u: '18446744073709551615', w: '-12345678901234567890123456789.123456789' },
      { m: '-0.01', u: '0', w: '0.000000001' },
      { m: '0.29', u: '9007199254740993', w: '99999999999999999999999999999.999999999' },
    ],
    check: (read) =>
      duckType(read, 'm', 'DECIMAL(10,2)') ??
      duckType(read, 'u', 'DECIMAL(20,0)') ??
      duckType(read, 'w', 'DECIMAL(38,9)') ??
      sameValues(read, {
        m: ['12345678.90', '-0.01', '0.29'],
        u: ['18446744073709551615', '0', '9007199254740993'],
        w: [
          '-12345678901234567890123456789.123456789',
          '0.000000001',
          '99999999999999999999999999999.999999999',
        ],
      }),
  },
  {
    name: 'UTF8 strings (unicode, empty, 100 kB)',
    columns: [col('s', 'text')],
    rows: TEXTS.map((s) => ({ s })),
    check: (read) => {
      const element = schemaOf(read, 's');
      if (element.converted_type !== 'UTF8' && !/StringType/.test(String(element.logical_type)))
        return 'not annotated as UTF8 / STRING';
      return duckType(read, 's', 'VARCHAR') ?? sameValues(read, { s: TEXTS });
    },
  },
  {
    name: 'nulls in every type',
    columns: [
      col('t', 'timestamptz'),
      col('i', 'integer'),
      col('l', 'bigint'),
      col('d', 'double precision'),
      col('b', 'boolean'),
      col('m', 'numeric(10,2)'),
      col('s', 'text'),
    ],
    rows: [
      { t: null, i: null, l: null, d: null, b: null, m: null, s: null },
      { t: TIMESTAMPS[0], i: 1, l: 2, d: 3.5, b: true, m: '4.50', s: 'five' },
      {},
    ],
    check: (read) =>
      sameValues(read, {
        t: [null, TIMESTAMPS[0], null],
        i: [null, 1, null],
        l: [null, '2', null],
        d: [null, 3.5, null],
        b: [null, true, null],
        m: [null, '4.50', null],
        s: [null, 'five', null],
      }),
  },
  ...(['ZSTD', 'SNAPPY', 'GZIP'] as const).map(
    (compression): Requirement => ({
      name: `${compression} compression`,
      columns: [col('s', 'text')],
      rows: [{ s: 'compress me '.repeat(100) }],
      compression,
      check: (read) => {
        const used = [...new Set(read.metadata.rows.map((r) => r.compression))];
        return used.length === 1 && used[0] === compression ? undefined : `compression ${used.join(', ')}`;
      },
    }),
  ),
  {
    name: 'row groups streamed out while rows are read',
    // Text that does not compress, so that each group's bytes are plain to see.
    rows: Array.from({ length: 30 }, (_, i) => ({ t: TIMESTAMPS[0], s: noise(i, 2000) })),
    columns: [col('t', 'timestamptz'), col('s', 'text')],
    rowGroupRows: 3,
    check: (read) => {
      const groups = groupsOut(read);
      if (groups.total !== 10) return `${groups.total} row groups for 30 rows in groups of 3`;
      return groups.out > 0 ? undefined : 'nothing out before the last row was read';
    },
    // When the last row is read, nine groups are complete: how many of them are out says how far the writer lags.
    note: (read) => `${groupsOut(read).out} of 9 complete groups out when the last row is read`,
  },
];

const work = mkdtempSync(join(tmpdir(), 'parquet-requirements-'));

/** `yes`, or `no: <what DuckDB found or the library said>`, for one library and requirement. */
export async function checkRequirement(candidate: Candidate, requirement: Requirement): Promise<string> {
  const compression = requirement.compression ?? candidate.compressions[0] ?? 'SNAPPY';
  if (!candidate.compressions.includes(compression)) return 'no: not offered';
  const file = join(
    work,
    `${candidate.library.replace(/\W/g, '_')}-${requirement.name.replace(/\W/g, '_')}.parquet`,
  );
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  let bytesBeforeLastRow = -1;
  const rows = requirement.rows;
  async function* source() {
    for (let i = 0; i < rows.length; i++) {
      if (i === rows.length - 1) bytesBeforeLastRow = bytes;
      yield rows[i] as Row;
    }
  }
  try {
    await candidate.write(
      requirement.columns,
      source(),
      async (chunk) => {
        chunks.push(chunk.slice());
        bytes += chunk.length;
        // As a file or an upload would, the sink gives the event loop a turn.
        await new Promise((resolve) => setImmediate(resolve));
      },
      { compression, deltaIntegers: false, rowGroupRows: requirement.rowGroupRows ?? 1000 },
    );
    writeFileSync(file, Buffer.concat(chunks));
    const read: ReadBack = {
      data: await duckdbQuery(`SELECT * FROM read_parquet(${sqlString(file)})`),
      schema: await parquetSchema(file),
      metadata: await parquetMetadata(file),
      bytesBeforeLastRow,
      bytes: readFileSync(file).length,
    };
    const problem = requirement.check(read);
    if (problem) return `no: ${problem}`;
    return requirement.note ? `yes: ${requirement.note(read)}` : 'yes';
  } catch (error) {
    return `no: ${(error as Error).message.split('\n')[0]?.slice(0, 100)}`;
  }
}
