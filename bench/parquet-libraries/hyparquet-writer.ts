/**
 * hyparquet-writer: pure JavaScript; ParquetWriter writes row groups one
 * `write` at a time and calls the writer's flush after each. SNAPPY is built
 * in (JavaScript); GZIP and ZSTD take a compressor, here node:zlib's (ZSTD
 * where the Node.js version has it: 22.15 and later, not Node 20).
 */
import zlib from 'node:zlib';
import type { SchemaElement } from 'hyparquet';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { parquetSchemaElement } from '../../shared/export/encode/parquet-file';
import type { ParquetColumnType } from '../../shared/export/encode/parquet-types';
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
import { batches, type Candidate, isIntegerKind } from './common';

function converter(type: ParquetColumnType): (value: unknown) => unknown {
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
      return (v) => decimalUnscaled(v, type.precision, type.scale);
    case 'string':
      return stringValue;
    case 'json':
      return jsonValue;
  }
}

/** A ByteWriter whose flush (after every row group) hands the bytes so far to the sink. */
class SinkWriter extends ByteWriter {
  constructor(private readonly sink: (chunk: Uint8Array) => Promise<void>) {
    super(1 << 20);
  }

  flush(): Promise<void> {
    const chunk = new Uint8Array(this.buffer.slice(0, this.index));
    this.index = 0;
    return this.sink(chunk);
  }

  override finish(): Promise<void> {
    return this.flush();
  }
}

type ZstdZlib = { zstdCompressSync?: (input: Uint8Array) => Buffer };
const zstd = (zlib as ZstdZlib).zstdCompressSync;

export const hyparquetWriter: Candidate = {
  library: 'hyparquet-writer',
  compressions: zstd ? ['SNAPPY', 'GZIP', 'ZSTD'] : ['SNAPPY', 'GZIP'],
  profiles: [
    { compression: 'SNAPPY', deltaIntegers: false },
    { compression: 'SNAPPY', deltaIntegers: true },
    { compression: 'GZIP', deltaIntegers: true },
    ...(zstd ? [{ compression: 'ZSTD' as const, deltaIntegers: true }] : []),
  ],
  async write(columns, rows, sink, options) {
    const writer = new SinkWriter(sink);
    const schema: SchemaElement[] = [
      { name: 'root', num_children: columns.length },
      ...columns.map(parquetSchemaElement),
    ];
    const compressors = {
      GZIP: (input: Uint8Array) => new Uint8Array(zlib.gzipSync(input, { level: 6 })),
      ...(zstd ? { ZSTD: (input: Uint8Array) => new Uint8Array(zstd(input)) } : {}),
    };
    const parquet = new ParquetWriter({ writer, schema, codec: options.compression, compressors });
    const converters = columns.map((c) => converter(c.type));
    for await (const batch of batches(rows, options.rowGroupRows)) {
      const columnData = columns.map((c, i) => {
        const convert = converters[i] as (value: unknown) => unknown;
        const data = batch.map((row) => {
          const value = row[c.name];
          return value === null || value === undefined ? null : convert(value);
        });
        const delta = options.deltaIntegers && isIntegerKind(c.type.kind);
        return { name: c.name, data, ...(delta ? { encoding: 'DELTA_BINARY_PACKED' as const } : {}) };
      });
      await parquet.write({ columnData, rowGroupSize: batch.length });
    }
    await parquet.finish();
  },
};
