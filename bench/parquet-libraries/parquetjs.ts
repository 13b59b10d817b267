/**
 * @dsnp/parquetjs: pure JavaScript (the maintained fork of parquetjs); rows are
 * appended one at a time and written as a row group every `rowGroupSize` rows.
 * 1.9.3, the newest on the registry, was published without its code (no
 * dist/), so 1.8.9 is measured.
 */
import { Writable } from 'node:stream';
import parquetjs from '@dsnp/parquetjs';
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
import { bigEndianBytes, type Candidate, decimalBytes, type Row } from './common';

type FieldDefinition = ConstructorParameters<typeof parquetjs.ParquetSchema>[0][string];

function field(type: ParquetColumnType, compression: 'SNAPPY' | 'GZIP'): FieldDefinition {
  const base = { optional: true, compression } as const;
  switch (type.kind) {
    case 'timestamp':
      return { ...base, type: 'TIMESTAMP_MICROS' };
    case 'date':
      return { ...base, type: 'DATE' };
    case 'int32':
      return { ...base, type: 'INT32' };
    case 'int64':
      return { ...base, type: 'INT64' };
    case 'double':
      return { ...base, type: 'DOUBLE' };
    case 'boolean':
      return { ...base, type: 'BOOLEAN' };
    case 'decimal':
      return { ...base, type: 'DECIMAL', precision: type.precision, scale: type.scale };
    case 'string':
    case 'json':
      return { ...base, type: 'UTF8' };
  }
}

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
      // Up to 18 digits INT64, from a number the library scales itself (its API), else BYTE_ARRAY (big-endian bytes).
      return type.precision <= 18
        ? (v) => Number(v)
        : (v) =>
            Buffer.from(
              bigEndianBytes(decimalUnscaled(v, type.precision, type.scale), decimalBytes(type.precision)),
            );
    case 'string':
      return stringValue;
    case 'json':
      return jsonValue;
  }
}

export const parquetjsCandidate: Candidate = {
  library: '@dsnp/parquetjs',
  compressions: ['SNAPPY', 'GZIP'],
  profiles: [
    { compression: 'SNAPPY', deltaIntegers: false },
    { compression: 'GZIP', deltaIntegers: false },
  ],
  // PLAIN (and RLE levels) only: no delta encodings to ask for.
  encodings: 'default',
  async write(columns, rows, sink, options) {
    const compression = options.compression;
    if (compression === 'ZSTD') throw new Error('@dsnp/parquetjs has no ZSTD');
    const schema = new parquetjs.ParquetSchema(
      Object.fromEntries(columns.map((c) => [c.name, field(c.type, compression)])),
    );
    const output = new Writable({
      write(chunk: Buffer, _encoding, done) {
        sink(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)).then(() => done(), done);
      },
    });
    const writer = await parquetjs.ParquetWriter.openStream(schema, output as never, {
      rowGroupSize: options.rowGroupRows,
    });
    const converters = columns.map((c) => converter(c.type));
    for await (const row of rows) {
      const record: Row = {};
      for (let i = 0; i < columns.length; i++) {
        const name = (columns[i] as { name: string }).name;
        const value = row[name];
        if (value !== null && value !== undefined)
          record[name] = (converters[i] as (v: unknown) => unknown)(value);
      }
      await writer.appendRow(record);
    }
    await writer.close();
  },
};
