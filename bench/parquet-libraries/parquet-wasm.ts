/**
 * parquet-wasm: the Rust parquet crate compiled to WebAssembly. It writes Arrow
 * record batches, so each row group is built as an apache-arrow batch, passed
 * over as Arrow IPC, and written by transformParquetStream (one batch in, its
 * row group out).
 */
import {
  Bool,
  type DataType,
  DateDay,
  Decimal,
  Field,
  Float64,
  Int32,
  Int64,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  TimestampMicrosecond,
  tableToIPC,
  Utf8,
} from 'apache-arrow';
import * as wasm from 'parquet-wasm';
import type { ParquetColumn, ParquetColumnType } from '../../shared/export/encode/parquet-types';
import {
  booleanValue,
  dateDays,
  decimalUnscaled,
  doubleValue,
  int32Value,
  int64Value,
  jsonValue,
  stringValue,
  timestampMicros,
} from '../../shared/export/encode/parquet-values';
import { batches, type Candidate, isIntegerKind, type Row } from './common';

function arrowType(type: ParquetColumnType): DataType {
  switch (type.kind) {
    case 'timestamp':
      return new TimestampMicrosecond('UTC');
    case 'date':
      return new DateDay();
    case 'int32':
      return new Int32();
    case 'int64':
      return new Int64();
    case 'double':
      return new Float64();
    case 'boolean':
      return new Bool();
    case 'decimal':
      return new Decimal(type.scale, type.precision, 128);
    case 'string':
    case 'json':
      return new Utf8();
  }
}

const encoder = new TextEncoder();

/** One column of a batch as Arrow data: values, validity bitmap, offsets for text. */
function columnData(column: ParquetColumn, type: DataType, rows: readonly Row[]) {
  const length = rows.length;
  const nullBitmap = new Uint8Array((length + 7) >> 3);
  let nullCount = 0;
  const present = (i: number) => {
    const value = rows[i]?.[column.name];
    if (value === null || value === undefined) {
      nullCount++;
      return undefined;
    }
    nullBitmap[i >> 3] = (nullBitmap[i >> 3] as number) | (1 << (i & 7));
    return value;
  };
  const t = column.type;
  switch (t.kind) {
    case 'timestamp':
    case 'int64': {
      const data = new BigInt64Array(length);
      const convert = t.kind === 'timestamp' ? timestampMicros : int64Value;
      for (let i = 0; i < length; i++) {
        const v = present(i);
        if (v !== undefined) data[i] = convert(v);
      }
      return makeData({ type, length, nullCount, nullBitmap, data } as never);
    }
    case 'date':
    case 'int32': {
      const data = new Int32Array(length);
      const convert = t.kind === 'date' ? dateDays : int32Value;
      for (let i = 0; i < length; i++) {
        const v = present(i);
        if (v !== undefined) data[i] = convert(v);
      }
      return makeData({ type, length, nullCount, nullBitmap, data } as never);
    }
    case 'double': {
      const data = new Float64Array(length);
      for (let i = 0; i < length; i++) {
        const v = present(i);
        if (v !== undefined) data[i] = doubleValue(v);
      }
      return makeData({ type, length, nullCount, nullBitmap, data } as never);
    }
    case 'boolean': {
      const data = new Uint8Array((length + 7) >> 3);
      for (let i = 0; i < length; i++) {
        const v = present(i);
        if (v !== undefined && booleanValue(v)) data[i >> 3] = (data[i >> 3] as number) | (1 << (i & 7));
      }
      return makeData({ type, length, nullCount, nullBitmap, data } as never);
    }
    case 'decimal': {
      // 128-bit little-endian two's complement, four 32-bit words per value.
      const data = new Uint32Array(4 * length);
      for (let i = 0; i < length; i++) {
        const v = present(i);
        if (v === undefined) continue;
        let u = BigInt.asUintN(128, decimalUnscaled(v, t.precision, t.scale));
        for (let w = 0; w < 4; w++) {
          data[4 * i + w] = Number(u & 0xffffffffn);
          u >>= 32n;
        }
      }
      return makeData({ type, length, nullCount, nullBitmap, data } as never);
    }
    case 'string':
    case 'json': {
      const convert = t.kind === 'string' ? stringValue : jsonValue;
      const parts: Uint8Array[] = [];
      const valueOffsets = new Int32Array(length + 1);
      let bytes = 0;
      for (let i = 0; i < length; i++) {
        const v = present(i);
        if (v !== undefined) {
          const encoded = encoder.encode(convert(v));
          parts.push(encoded);
          bytes += encoded.length;
        }
        valueOffsets[i + 1] = bytes;
      }
      const data = new Uint8Array(bytes);
      let at = 0;
      for (const part of parts) {
        data.set(part, at);
        at += part.length;
      }
      return makeData({ type, length, nullCount, nullBitmap, valueOffsets, data } as never);
    }
  }
}

export const parquetWasm: Candidate = {
  library: 'parquet-wasm',
  compressions: ['ZSTD', 'SNAPPY', 'GZIP'],
  profiles: [
    { compression: 'ZSTD', deltaIntegers: false },
    { compression: 'SNAPPY', deltaIntegers: false },
    { compression: 'ZSTD', deltaIntegers: true },
    { compression: 'GZIP', deltaIntegers: true },
  ],
  async write(columns, rows, sink, options) {
    const types = columns.map((c) => arrowType(c.type));
    const fields = columns.map((c, i) => new Field(c.name, types[i] as DataType, true));
    const schema = new Schema(fields);
    const groups = batches(rows, options.rowGroupRows)[Symbol.asyncIterator]();
    // Pulled one batch at a time by the writer: no read-ahead beyond one row group.
    const input = new ReadableStream({
      async pull(controller) {
        const next = await groups.next();
        if (next.done) {
          controller.close();
          return;
        }
        const children = columns.map((c, i) => columnData(c, types[i] as DataType, next.value));
        const struct = makeData({ type: new Struct(fields), length: next.value.length, children });
        const ipc = tableToIPC(new Table([new RecordBatch(schema, struct)]), 'stream');
        for (const batch of wasm.Table.fromIPCStream(ipc).recordBatches()) controller.enqueue(batch);
      },
    });
    let builder = new wasm.WriterPropertiesBuilder()
      .setCompression(wasm.Compression[options.compression])
      .setMaxRowGroupSize(options.rowGroupRows);
    for (const c of columns) {
      if (options.deltaIntegers && isIntegerKind(c.type.kind))
        builder = builder
          .setColumnDictionaryEnabled(c.name, false)
          .setColumnEncoding(c.name, wasm.Encoding.DELTA_BINARY_PACKED);
    }
    const properties = builder.build();
    const output: ReadableStream<Uint8Array> = await wasm.transformParquetStream(input, properties);
    for await (const chunk of output as unknown as AsyncIterable<Uint8Array>) await sink(chunk);
  },
};
