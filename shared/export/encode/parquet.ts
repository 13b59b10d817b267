/**
 * Rows to one Parquet file, streamed: rows are converted into column buffers
 * as they arrive, and every ROW_GROUP_MAX_ROWS rows or ROW_GROUP_MAX_BYTES of
 * values (whichever comes first) become one row group, handed to the encoder
 * thread (parquet-thread.ts) and released while the next group is read, so a
 * window of any size streams in flat memory. The footer follows the last
 * group. Written with hyparquet-writer (pure JavaScript; docs/formats.md has
 * the comparison that chose it): GZIP pages (data page v2),
 * DELTA_BINARY_PACKED for integer, date and timestamp columns, dictionaries
 * for text where they pay off, statistics (min, max, nulls) for every column
 * but text. Text goes to the thread as UTF-8 bytes. A source that reads by
 * column (PostgreSQL's binary COPY, sources/postgres/binary-copy.ts) hands
 * over its row groups already converted: `encodeParquetGroups`.
 */
import zlib from 'node:zlib';
import { EncodeError } from '../../errors';
import { inBatches, type Row, type RowCounter } from './jsonl';
import type { ColumnSource, ParquetCodec, Utf8Column } from './parquet-file';
import { openThreadFile, type ThreadFile } from './parquet-thread';
import type { ParquetColumn, ParquetColumnType } from './parquet-types';
import {
  booleanValue,
  dateDays,
  decimalUnscaled,
  doubleValue,
  int32Value,
  int64Compact,
  jsonDocumentValue,
  jsonValue,
  stringValue,
  timestampMicrosValue,
  valueError,
} from './parquet-values';

export type { ParquetCodec, Utf8Column } from './parquet-file';

/**
 * One row group as a source that reads by column hands it over: each
 * column's values (file order) already converted as `encodeParquet` would
 * (null: NULL), or, for a text column, its UTF-8 bytes.
 */
export interface ColumnGroup {
  rows: number;
  columns: (unknown[] | Utf8Column)[];
}

/** When a source that reads by column closes a row group: the encoder's bounds. */
export interface GroupLimits {
  maxRows: number;
  /** Counted as `encodeParquet` counts them: 8 per non-text value, text by its length. */
  maxBytes: number;
}

/**
 * Most rows in one row group. Large enough that readers (Athena, DuckDB,
 * Spark) read a 5-minute window in one or a few groups, small enough that the
 * row-at-a-time buffers stay far under the exporter's memory.
 */
export const ROW_GROUP_MAX_ROWS = 65_536;
/**
 * Most bytes of values buffered for one row group, counted as UTF-16 code
 * units of text (about its UTF-8 bytes) and 8 per other value: wide rows (a
 * csv log with long messages) close their group sooner. The encoder's peak is
 * many times this (value arrays on both threads, encoded values, pages,
 * compressed pages), and every group repeats its columns' dictionaries. In
 * bench:export (N = 100,000) one export of N and 4N rows peaked at 181/179
 * and 170/197 MB RSS with 1 MiB, 187/191 and 195/224 with 2 MiB, 222/269 and
 * 217/253 with 4 MiB; on bench:parquet-libraries' rows (a column of 1,000
 * distinct doubles) the file was 1,804, 1,537 and 1,365 KiB.
 */
export const ROW_GROUP_MAX_BYTES = 2 * 1024 * 1024;

/**
 * The default page compression. Measured on bench:parquet-libraries' rows
 * (docs/formats.md): node:zlib's GZIP is both faster than hyparquet-writer's
 * JavaScript SNAPPY and about a third of its size; ZSTD waits for Node.js 22.15.
 */
export const PARQUET_CODEC: ParquetCodec = 'GZIP';

/**
 * Row groups handed to the encoder thread and not yet back: the thread has
 * work queued while a slow stretch of rows fills the next group, and rows keep
 * coming while it encodes a large group.
 */
const IN_FLIGHT = 2;

/** The media type of Parquet objects (S3 Content-Type). */
export const PARQUET_CONTENT_TYPE = 'application/vnd.apache.parquet';

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

/** Converts one non-null value to what the writer takes for the column. */
type Converter = (value: unknown) => unknown;

function converter(type: ParquetColumnType): Converter {
  switch (type.kind) {
    case 'timestamp':
      return timestampMicrosValue;
    case 'date':
      return dateDays;
    case 'int32':
      return int32Value;
    case 'int64':
      return int64Compact;
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
export function encodeParquet(
  columns: readonly ParquetColumn[],
  rows: AsyncIterable<Row>,
  options: ParquetEncodeOptions = {},
): AsyncGenerator<Uint8Array> {
  return encodeParquetBatches(columns, inBatches(rows), options);
}

/** `encodeParquet` for rows in arrays (a session's `batches`): one await per array, not per row. */
export async function* encodeParquetBatches(
  columns: readonly ParquetColumn[],
  batches: AsyncIterable<readonly Row[]>,
  options: ParquetEncodeOptions = {},
): AsyncGenerator<Uint8Array> {
  const maxRows = options.maxRowGroupRows ?? ROW_GROUP_MAX_ROWS;
  const maxBytes = options.maxRowGroupBytes ?? ROW_GROUP_MAX_BYTES;
  const strictKeys = (options.unknownKeys ?? 'error') === 'error';
  const names = columns.map((c) => c.name);
  const known = new Set(names);
  const converters = columns.map((c) => converter(c.type));
  const text = columns.map((c) => isText(c.type));
  const fixedBytes = 8 * columns.filter((c) => !isText(c.type)).length;
  const encodings = columns.map((c) => (isDelta(c.type) ? ('DELTA_BINARY_PACKED' as const) : undefined));

  /** Opened once rows have come (see openFile). */
  let file: ThreadFile | undefined;
  let buffers: unknown[][] = columns.map(() => []);
  let groupRows = 0;
  let groupBytes = 0;
  let rowNumber = 0;
  /** Groups sent to the thread, oldest first: it encodes them while the next ones fill. */
  const inFlight: Promise<Uint8Array[]>[] = [];

  /** Hands the group to the thread; returns the bytes of the oldest group once IN_FLIGHT are out. */
  const sendGroup = async () => {
    const { columnData, transfer } = columnSources(columns, buffers, text, encodings);
    const sent = (file as ThreadFile).writeGroup(columnData, groupRows, transfer);
    // Awaited below or after the group before it failed (then it fails too, unobserved).
    sent.catch(() => {});
    buffers = columns.map(() => []);
    groupRows = 0;
    groupBytes = 0;
    inFlight.push(sent);
    return inFlight.length > IN_FLIGHT ? await (inFlight.shift() as Promise<Uint8Array[]>) : [];
  };

  try {
    for await (const batch of batches) {
      file ??= openFile(columns, options);
      for (const row of batch) {
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
        if (groupRows >= maxRows || groupBytes >= maxBytes) yield* await sendGroup();
      }
    }
    file ??= openFile(columns, options);
    if (groupRows > 0) yield* await sendGroup();
    for (const sent of inFlight.splice(0)) yield* await sent;
    yield* await file.finish();
  } finally {
    file?.close();
  }
}

/**
 * Validates the columns and the codec and opens the file on the encoder
 * thread. The encoders call it once their source has given something: a
 * failure here (a duplicate column, no encoder program) then stops the source
 * as any other failure does, and a query that the source holds (a COPY in
 * progress, a cursor) is given up rather than left waiting on the connection.
 */
function openFile(columns: readonly ParquetColumn[], options: ParquetEncodeOptions): ThreadFile {
  validateColumns(columns);
  const codec = options.codec ?? PARQUET_CODEC;
  if (codec === 'ZSTD' && !('zstdCompressSync' in zlib))
    throw new RangeError(`ZSTD needs node:zlib's zstd (Node.js 22.15 or later), not ${process.version}`);
  return openThreadFile(columns, codec);
}

/**
 * `encodeParquet` for a source that reads by column (a session's
 * `parquetGroups`): its row groups, already converted, go to the encoder
 * thread as they are. The same file as `encodeParquetBatches` makes of the same rows.
 */
export async function* encodeParquetGroups(
  columns: readonly ParquetColumn[],
  source: AsyncIterable<ColumnGroup>,
  options: ParquetEncodeOptions = {},
): AsyncGenerator<Uint8Array> {
  const text = columns.map((c) => isText(c.type));
  const encodings = columns.map((c) => (isDelta(c.type) ? ('DELTA_BINARY_PACKED' as const) : undefined));
  /** Opened once groups have come (see openFile). */
  let file: ThreadFile | undefined;
  const inFlight: Promise<Uint8Array[]>[] = [];
  try {
    for await (const group of source) {
      file ??= openFile(columns, options);
      if (group.columns.length !== columns.length)
        throw new RangeError(
          `A row group of ${group.columns.length} columns for a file of ${columns.length}`,
        );
      if (group.rows === 0) continue;
      if (options.counter) options.counter.rows += group.rows;
      const { columnData, transfer } = columnSources(columns, group.columns, text, encodings);
      const sent = file.writeGroup(columnData, group.rows, transfer);
      sent.catch(() => {});
      inFlight.push(sent);
      if (inFlight.length > IN_FLIGHT) yield* await (inFlight.shift() as Promise<Uint8Array[]>);
    }
    file ??= openFile(columns, options);
    for (const sent of inFlight.splice(0)) yield* await sent;
    yield* await file.finish();
  } finally {
    file?.close();
  }
}

/** The default row-group bounds, for a source that closes its own groups (a session's `parquetGroups`). */
export const DEFAULT_GROUP_LIMITS: GroupLimits = Object.freeze({
  maxRows: ROW_GROUP_MAX_ROWS,
  maxBytes: ROW_GROUP_MAX_BYTES,
});

/**
 * A row group's columns as the encoder thread takes them, and the arrays
 * moved rather than copied to it: text as UTF-8 bytes (an array of strings
 * would be copied to the thread value by value).
 */
function columnSources(
  columns: readonly ParquetColumn[],
  values: readonly (unknown[] | Utf8Column)[],
  text: readonly boolean[],
  encodings: readonly ('DELTA_BINARY_PACKED' | undefined)[],
): { columnData: ColumnSource[]; transfer: ArrayBuffer[] } {
  const transfer: ArrayBuffer[] = [];
  const columnData = columns.map((c, i): ColumnSource => {
    const data = values[i] as unknown[] | Utf8Column;
    // Min/max of text cost a fifth of the time (UTF-8 order, value by value) and prune little in logs.
    const source: ColumnSource = { name: c.name, data: [], statistics: !text[i] };
    const encoding = encodings[i];
    if (encoding) source.encoding = encoding;
    if (!Array.isArray(data)) {
      if (!text[i]) throw new RangeError(`Column "${c.name}" is not text, but its values came as UTF-8`);
      source.utf8 = data;
      transfer.push(data.bytes.buffer as ArrayBuffer, data.lengths.buffer as ArrayBuffer);
    } else if (text[i]) {
      source.utf8 = utf8Of(data as (string | null)[]);
      transfer.push(source.utf8.bytes.buffer as ArrayBuffer, source.utf8.lengths.buffer as ArrayBuffer);
    } else source.data = data;
    return source;
  });
  return { columnData, transfer };
}

/**
 * A text column's strings (already refused if not well-formed) as UTF-8 bytes:
 * one write per value into one buffer of its own, about three times cheaper
 * than joining them into one string to send.
 */
function utf8Of(values: readonly (string | null)[]): Utf8Column {
  const lengths = new Int32Array(values.length);
  let units = 0;
  for (const value of values) units += value?.length ?? 0;
  // Room for ASCII and some more; a value that may not fit (3 bytes per unit at most) grows it.
  let bytes = Buffer.allocUnsafeSlow(units + UTF8_SLACK);
  let used = 0;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (value === null || value === undefined) {
      lengths[i] = -1;
      continue;
    }
    if (bytes.length - used < 3 * value.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(2 * bytes.length, used + 3 * value.length + UTF8_SLACK));
      bytes.copy(grown, 0, 0, used);
      bytes = grown;
    }
    const written = bytes.write(value, used);
    lengths[i] = written;
    used += written;
  }
  // Buffers of their own (allocUnsafeSlow never takes Node's pool): they are moved to the thread.
  return { bytes: bytes.subarray(0, used), lengths };
}

/** Bytes a text column's buffer has past its values' length in UTF-16 units. */
const UTF8_SLACK = 64 * 1024;

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
