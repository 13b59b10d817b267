/**
 * Rows to one Parquet file, streamed: rows are converted into column buffers
 * as they arrive, and every ROW_GROUP_MAX_ROWS rows or ROW_GROUP_MAX_BYTES of
 * values (whichever comes first) become one row group, written out and
 * released before the next row is read, so a window of any size streams in
 * flat memory. The footer follows the last group. Written with
 * hyparquet-writer (pure JavaScript; docs/formats.md has the comparison that
 * chose it): GZIP pages (data page v2), DELTA_BINARY_PACKED for integer,
 * date and timestamp columns, dictionaries for text where they pay off,
 * statistics (min, max, nulls) for every column but text.
 */
import zlib from 'node:zlib';
import type { SchemaElement } from 'hyparquet';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { EncodeError } from '../../errors';
import type { Row, RowCounter } from './jsonl';
import type { ParquetColumn, ParquetColumnType } from './parquet-types';
import {
  booleanValue,
  dateDays,
  decimalUnscaled,
  doubleValue,
  int32Value,
  int64Value,
  jsonDocumentValue,
  jsonValue,
  stringValue,
  timestampMicros,
  ValueMismatch,
} from './parquet-values';

/**
 * Most rows in one row group. Large enough that readers (Athena, DuckDB,
 * Spark) read a 5-minute window in one or a few groups, small enough that the
 * row-at-a-time buffers stay far under the exporter's memory.
 */
export const ROW_GROUP_MAX_ROWS = 65_536;
/**
 * Most bytes of values buffered for one row group, counted as UTF-16 code
 * units of text (about its UTF-8 bytes) and 8 per other value: wide rows (a
 * csv log with long messages) close their group sooner. The writer's peak is
 * many times this (value arrays, encoded values, pages, compressed pages):
 * on bench:parquet-libraries' rows a process writing 100,000, 400,000 and
 * 1,600,000 rows peaked at 135, 141 and 142 MB with 4 MiB, at 255 MB with 8.
 */
export const ROW_GROUP_MAX_BYTES = 4 * 1024 * 1024;

/**
 * The default page compression. Measured on bench:parquet-libraries' rows
 * (docs/formats.md): node:zlib's GZIP is both faster than hyparquet-writer's
 * JavaScript SNAPPY and about a third of its size; ZSTD waits for Node.js 22.15.
 */
export const PARQUET_CODEC: ParquetCodec = 'GZIP';

/** The media type of Parquet objects (S3 Content-Type). */
export const PARQUET_CONTENT_TYPE = 'application/vnd.apache.parquet';
const GZIP_LEVEL = 6;

export interface ParquetEncodeOptions {
  /** Rows per row group at most (default ROW_GROUP_MAX_ROWS). */
  maxRowGroupRows?: number;
  /** Buffered value bytes per row group at most (default ROW_GROUP_MAX_BYTES). */
  maxRowGroupBytes?: number;
  /** Counts the rows encoded, as the JSON-lines encoder does. */
  counter?: RowCounter;
  /** Page compression (default PARQUET_CODEC). */
  codec?: ParquetCodec;
  /**
   * A row key that is not a column: `error` (default) refuses the row, since
   * its value would otherwise be lost without a word; `ignore` drops it.
   */
  unknownKeys?: 'error' | 'ignore';
}

/**
 * Page compressions: SNAPPY (hyparquet-writer's own, in JavaScript), GZIP
 * (node:zlib), ZSTD (node:zlib, Node.js 22.15 and later only).
 */
export type ParquetCodec = 'SNAPPY' | 'GZIP' | 'ZSTD';

type ZlibWithZstd = typeof zlib & { zstdCompressSync?: (input: Uint8Array) => Buffer };
const zstdCompressSync = (zlib as ZlibWithZstd).zstdCompressSync;

const COMPRESSORS = {
  GZIP: (input: Uint8Array) => new Uint8Array(zlib.gzipSync(input, { level: GZIP_LEVEL })),
  ...(zstdCompressSync ? { ZSTD: (input: Uint8Array) => new Uint8Array(zstdCompressSync(input)) } : {}),
};

/** What `writer.write` takes for one column: hyparquet's ColumnSource. */
interface ColumnSource {
  name: string;
  data: unknown[];
  encoding?: 'DELTA_BINARY_PACKED';
  statistics: boolean;
}

/** The fewest bytes whose two's complement holds every DECIMAL of this precision. */
function decimalBytes(precision: number): number {
  let bytes = 1;
  while (2n ** BigInt(8 * bytes - 1) <= 10n ** BigInt(precision)) bytes++;
  return bytes;
}

/** The schema element of one (nullable) column. */
function schemaElement(column: ParquetColumn): SchemaElement {
  const base = { name: column.name, repetition_type: 'OPTIONAL' } as const;
  const type = column.type;
  switch (type.kind) {
    case 'timestamp':
      // The logical type for readers of the current format, the converted type for older ones.
      return {
        ...base,
        type: 'INT64',
        converted_type: 'TIMESTAMP_MICROS',
        logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' },
      };
    case 'date':
      return { ...base, type: 'INT32', converted_type: 'DATE', logical_type: { type: 'DATE' } };
    case 'int32':
      return { ...base, type: 'INT32' };
    case 'int64':
      return { ...base, type: 'INT64' };
    case 'double':
      return { ...base, type: 'DOUBLE' };
    case 'boolean':
      return { ...base, type: 'BOOLEAN' };
    case 'decimal': {
      // The narrowest physical type the format allows for the precision.
      const physical =
        type.precision <= 9
          ? { type: 'INT32' as const }
          : type.precision <= 18
            ? { type: 'INT64' as const }
            : { type: 'FIXED_LEN_BYTE_ARRAY' as const, type_length: decimalBytes(type.precision) };
      return {
        ...base,
        ...physical,
        converted_type: 'DECIMAL',
        precision: type.precision,
        scale: type.scale,
        logical_type: { type: 'DECIMAL', precision: type.precision, scale: type.scale },
      };
    }
    case 'string':
    case 'json':
      return { ...base, type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' } };
  }
}

/** Converts one non-null value to what the writer takes for the column. */
type Converter = (value: unknown) => unknown;

function converter(type: ParquetColumnType): Converter {
  switch (type.kind) {
    case 'timestamp':
      return timestampMicros;
    case 'date':
      return dateDays;
    case 'int32':
      return int32Value;
    case 'int64':
      return int64Value;
    case 'double':
      return doubleValue;
    case 'boolean':
      return booleanValue;
    case 'decimal':
      // Always the unscaled bigint: the writer would scale a number (again).
      return (v) => decimalUnscaled(v, type.precision, type.scale);
    case 'string':
      return stringValue;
    case 'json':
      return type.document ? jsonDocumentValue : jsonValue;
  }
}

const isText = (type: ParquetColumnType) => type.kind === 'string' || type.kind === 'json';
const isDelta = (type: ParquetColumnType) =>
  type.kind === 'int32' || type.kind === 'int64' || type.kind === 'timestamp' || type.kind === 'date';

/** Collects what the writer's flushes hand over: the file's bytes, in order. */
class ChunkCollector extends ByteWriter {
  readonly chunks: Uint8Array[] = [];

  flush(): void {
    if (this.index === 0) return;
    this.chunks.push(new Uint8Array(this.buffer.slice(0, this.index)));
    this.index = 0;
  }

  override finish(): void {
    this.flush();
  }

  /** The chunks collected so far, handed over once. */
  take(): Uint8Array[] {
    return this.chunks.splice(0);
  }
}

function validateColumns(columns: readonly ParquetColumn[]): void {
  if (columns.length === 0) throw new RangeError('A Parquet file needs at least one column');
  const seen = new Set<string>();
  for (const { name } of columns) {
    if (name === '' || seen.has(name))
      throw new RangeError(`Column names must be distinct and non-empty: "${name}"`);
    seen.add(name);
  }
}

/**
 * Encodes `rows` as one Parquet file with `columns` (in this order), yielding
 * its bytes a row group at a time: the first chunk holds the header and the
 * first group, the last the footer. A missing key or `null`/`undefined` is a
 * NULL. A value that does not fit its column's type throws an EncodeError
 * naming the column and the row (counted from 1), before anything of that
 * row group is yielded.
 */
export async function* encodeParquet(
  columns: readonly ParquetColumn[],
  rows: AsyncIterable<Row>,
  options: ParquetEncodeOptions = {},
): AsyncGenerator<Uint8Array> {
  validateColumns(columns);
  const maxRows = options.maxRowGroupRows ?? ROW_GROUP_MAX_ROWS;
  const maxBytes = options.maxRowGroupBytes ?? ROW_GROUP_MAX_BYTES;
  const codec = options.codec ?? PARQUET_CODEC;
  if (codec === 'ZSTD' && !zstdCompressSync)
    throw new RangeError(`ZSTD needs node:zlib's zstd (Node.js 22.15 or later), not ${process.version}`);
  const strictKeys = (options.unknownKeys ?? 'error') === 'error';
  const names = columns.map((c) => c.name);
  const known = new Set(names);
  const converters = columns.map((c) => converter(c.type));
  const text = columns.map((c) => isText(c.type));
  const fixedBytes = 8 * columns.filter((c) => !isText(c.type)).length;
  const encodings = columns.map((c) => (isDelta(c.type) ? ('DELTA_BINARY_PACKED' as const) : undefined));

  const out = new ChunkCollector(1 << 20);
  const writer = new ParquetWriter({
    writer: out,
    schema: [{ name: 'schema', num_children: columns.length }, ...columns.map(schemaElement)],
    codec,
    compressors: COMPRESSORS,
    createdBy: 'db-secret-rotation-log-export (hyparquet-writer)',
  });

  let buffers: unknown[][] = columns.map(() => []);
  let groupRows = 0;
  let groupBytes = 0;
  let rowNumber = 0;

  const writeGroup = () => {
    const columnData = columns.map((c, i): ColumnSource => {
      const encoding = encodings[i];
      // Min/max of text cost a fifth of the time (UTF-8 order, value by value) and prune little in logs.
      const source: ColumnSource = { name: c.name, data: buffers[i] as unknown[], statistics: !text[i] };
      if (encoding) source.encoding = encoding;
      return source;
    });
    // Synchronous: the collector's flush never returns a promise.
    writer.write({ columnData: columnData as never, rowGroupSize: groupRows });
    buffers = columns.map(() => []);
    groupRows = 0;
    groupBytes = 0;
  };

  for await (const row of rows) {
    rowNumber++;
    if (strictKeys) refuseUnknownKeys(row, known, rowNumber);
    let bytes = fixedBytes;
    for (let i = 0; i < columns.length; i++) {
      const value = row[names[i] as string];
      const buffer = buffers[i] as unknown[];
      if (value === null || value === undefined) {
        buffer.push(null);
        continue;
      }
      let converted: unknown;
      try {
        converted = (converters[i] as Converter)(value);
      } catch (error) {
        throw valueError(columns[i] as ParquetColumn, rowNumber, error);
      }
      buffer.push(converted);
      if (text[i]) bytes += (converted as string).length;
    }
    groupRows++;
    groupBytes += bytes;
    if (options.counter) options.counter.rows++;
    if (groupRows >= maxRows || groupBytes >= maxBytes) {
      writeGroup();
      yield* out.take();
    }
  }
  if (groupRows > 0) writeGroup();
  writer.finish();
  yield* out.take();
}

/** Refuses a row with a key that is not a column: its value would be lost without a word. */
function refuseUnknownKeys(row: Row, known: ReadonlySet<string>, rowNumber: number): void {
  for (const key in row) {
    if (!known.has(key))
      throw new EncodeError(
        `Row ${rowNumber} has a key "${key}" that is not one of the Parquet columns (${[...known].join(', ')})`,
        key,
        rowNumber,
      );
  }
}

function valueError(column: ParquetColumn, rowNumber: number, error: unknown): Error {
  if (!(error instanceof ValueMismatch)) return error as Error;
  const type =
    column.type.kind === 'decimal'
      ? `decimal(${column.type.precision},${column.type.scale})`
      : column.type.kind;
  return new EncodeError(
    `Column "${column.name}" (${type}), row ${rowNumber}: ${error.message}`,
    column.name,
    rowNumber,
    { cause: error },
  );
}
