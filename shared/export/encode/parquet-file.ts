/**
 * One Parquet file being written with hyparquet-writer, a row group at a
 * time: the part of the Parquet encoder that runs on the encoder thread (see
 * parquet-thread.ts), or inline. It takes column values already converted to
 * what the writer expects (parquet-values.ts) and returns the file's bytes as
 * they are written: the header with the first group, then each group, then
 * the footer.
 */
import { isAscii } from 'node:buffer';
import zlib from 'node:zlib';
import type { SchemaElement } from 'hyparquet';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { decimalBytes, type ParquetColumn } from './parquet-types';
import { int64Wide } from './parquet-values';

/**
 * Page compressions: SNAPPY (hyparquet-writer's own, in JavaScript), GZIP
 * (node:zlib), ZSTD (node:zlib, Node.js 22.15 and later only).
 */
export type ParquetCodec = 'SNAPPY' | 'GZIP' | 'ZSTD';

/**
 * GZIP's level. Pages hold values already dictionary- and delta-encoded, where
 * deflate's longer searches find little more: on bench:export's rows level 1
 * writes 0.6% more bytes than level 6, and the whole export took about 10% less
 * CPU (1.77 against 1.94 s for 200,000 rows; docs/formats.md).
 */
const GZIP_LEVEL = 1;

type ZlibWithZstd = typeof zlib & { zstdCompressSync?: (input: Uint8Array) => Buffer };
const zstdCompressSync = (zlib as ZlibWithZstd).zstdCompressSync;

const COMPRESSORS = {
  GZIP: (input: Uint8Array) => new Uint8Array(zlib.gzipSync(input, { level: GZIP_LEVEL })),
  ...(zstdCompressSync ? { ZSTD: (input: Uint8Array) => new Uint8Array(zstdCompressSync(input)) } : {}),
};

/** One column of a row group, as `writer.write` takes it (hyparquet's ColumnSource). */
export interface ColumnSource {
  name: string;
  data: unknown[];
  encoding?: 'DELTA_BINARY_PACKED' | 'PLAIN';
  statistics: boolean;
  /** A text column's values instead of `data`: their UTF-8 bytes (an array of strings crosses value by value). */
  utf8?: Utf8Column;
}

/**
 * Text values as UTF-8 bytes, one after the other, and each value's length in
 * bytes (-1: NULL). Both arrays are moved to the encoder thread: each must
 * have an ArrayBuffer of its own (not a Buffer from Node's pool).
 */
export interface Utf8Column {
  bytes: Uint8Array;
  lengths: Int32Array;
}

/** Values sampled, spread over the column, to tell text that is mostly distinct. */
const SAMPLE = 200;
/**
 * Whether most of a text column's values differ (90% of a sample spread over
 * the column): such a column is written PLAIN, as the writer would decide
 * after hashing every value for nothing.
 */
function mostlyDistinct({ bytes, lengths }: Utf8Column): boolean {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = lengths.length;
  const starts = new Int32Array(count);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    starts[i] = offset;
    offset += Math.max(0, lengths[i] as number);
  }
  const size = Math.min(count, SAMPLE);
  const seen = new Set<string>();
  let sampled = 0;
  for (let k = 0; k < size; k++) {
    const i = size === 1 ? 0 : Math.floor((k * (count - 1)) / (size - 1));
    const length = lengths[i] as number;
    if (length < 0) continue;
    sampled++;
    // latin1: one character per byte, so equal bytes give equal keys.
    seen.add(buffer.toString('latin1', starts[i] as number, (starts[i] as number) + length));
  }
  return sampled > 0 && seen.size > 0.9 * sampled;
}

/**
 * The values of a column of UTF-8 bytes: the bytes themselves (subarrays) when
 * written PLAIN; else strings for the writer's dictionary, a value equal to
 * the one before it given the same string (made once, hashed once: log
 * columns repeat a few values in runs).
 */
function utf8Values(column: Utf8Column): {
  plain: boolean;
  values: (string | Uint8Array | null)[];
} {
  const { bytes, lengths } = column;
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const plain = mostlyDistinct(column);
  const encoding = plain || !isAscii(bytes) ? 'utf8' : 'latin1';
  const values = new Array<string | Uint8Array | null>(lengths.length);
  let offset = 0;
  let lastStart = 0;
  let lastLength = -1;
  let last = '';
  for (let i = 0; i < lengths.length; i++) {
    const length = lengths[i] as number;
    if (length < 0) values[i] = null;
    else if (plain) values[i] = bytes.subarray(offset, offset + length);
    else {
      if (length !== lastLength || !sameBytes(bytes, lastStart, offset, length)) {
        last = buffer.toString(encoding, offset, offset + length);
        lastStart = offset;
        lastLength = length;
      }
      values[i] = last;
    }
    offset += Math.max(0, length);
  }
  return { plain, values };
}

function sameBytes(bytes: Uint8Array, a: number, b: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (bytes[a + i] !== bytes[b + i]) return false;
  return true;
}

/** The schema element of one (nullable) column. */
export function parquetSchemaElement(column: ParquetColumn): SchemaElement {
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

/** A Parquet file under way: each call returns the bytes it added. */
export interface ParquetFileWriter {
  writeGroup(columns: ColumnSource[], rows: number): Uint8Array[];
  finish(): Uint8Array[];
}

export function openParquetFile(columns: readonly ParquetColumn[], codec: ParquetCodec): ParquetFileWriter {
  // A ZSTD this Node.js lacks is refused by encodeParquet before any file is opened.
  const out = new ChunkCollector(1 << 20);
  const writer = new ParquetWriter({
    writer: out,
    schema: [{ name: 'schema', num_children: columns.length }, ...columns.map(parquetSchemaElement)],
    codec,
    compressors: COMPRESSORS,
    createdBy: 'db-secret-rotation-log-export (hyparquet-writer)',
  });
  // The encoder sends INT64 values as numbers where they fit one (cheaper to make and to send).
  const wide = columns.map((c) => c.type.kind === 'timestamp' || c.type.kind === 'int64');
  return {
    writeGroup(columnData, rows) {
      columnData.forEach((column, i) => {
        if (column.utf8) {
          const { plain, values } = utf8Values(column.utf8);
          if (plain) column.encoding = 'PLAIN';
          column.data = values;
          column.utf8 = undefined;
        }
        if (wide[i]) int64Wide(column.data);
      });
      // Synchronous: the collector's flush never returns a promise.
      writer.write({ columnData: columnData as never, rowGroupSize: rows });
      return out.take();
    },
    finish() {
      writer.finish();
      return out.take();
    },
  };
}
