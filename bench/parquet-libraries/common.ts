/**
 * What the three candidate Parquet writers are measured on: one function per
 * library that writes rows of typed columns to a sink, a row group at a time,
 * with the same value conversions (shared/export/encode/parquet-values.ts).
 */
import type { ParquetColumn } from '../../shared/export/encode/parquet-types';

export type Row = Record<string, unknown>;
export type Compression = 'SNAPPY' | 'GZIP' | 'ZSTD';

export interface WriteOptions {
  compression: Compression;
  /**
   * DELTA_BINARY_PACKED (no dictionary) for integer, date and timestamp
   * columns instead of the library's default (dictionary, else PLAIN): event
   * times and ids that grow row by row shrink to a few bits each.
   */
  deltaIntegers: boolean;
  /** Rows per row group; each group is encoded and handed to the sink before the next is read. */
  rowGroupRows: number;
}

/** Streams a Parquet file of `rows` to `sink`, awaiting it (backpressure). */
export type WriteParquet = (
  columns: readonly ParquetColumn[],
  rows: AsyncIterable<Row>,
  sink: (chunk: Uint8Array) => Promise<void>,
  options: WriteOptions,
) => Promise<void>;

export interface Candidate {
  /** The npm package measured. */
  readonly library: string;
  /** Every compression the library can write (checked as a requirement). */
  readonly compressions: readonly Compression[];
  /** The settings measured for throughput, size and memory. */
  readonly profiles: readonly Pick<WriteOptions, 'compression' | 'deltaIntegers'>[];
  /** Shown instead of default / delta when the writer decides its encodings itself. */
  readonly encodings?: string;
  readonly write: WriteParquet;
}

/** Consecutive rows in arrays of at most `size`. */
export async function* batches(rows: AsyncIterable<Row>, size: number): AsyncIterable<Row[]> {
  let batch: Row[] = [];
  for await (const row of rows) {
    batch.push(row);
    if (batch.length === size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/** Integer-valued columns, which `deltaIntegers` encodes with DELTA_BINARY_PACKED. */
export const isIntegerKind = (kind: string) =>
  kind === 'int32' || kind === 'int64' || kind === 'timestamp' || kind === 'date';

/** Big-endian two's complement in `bytes` bytes, as DECIMAL's FIXED_LEN_BYTE_ARRAY holds it. */
export function bigEndianBytes(value: bigint, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let v = BigInt.asUintN(bytes * 8, value);
  for (let i = bytes - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

export { decimalBytes } from '../../shared/export/encode/parquet-types';
