/**
 * The project's encoder (shared/export/encode/parquet.ts, on hyparquet-writer)
 * measured like the libraries: its own settings (DELTA_BINARY_PACKED integers
 * and timestamps, no statistics on text) with GZIP (its default) and SNAPPY,
 * row groups of the benchmark's size.
 */
import { encodeParquet } from '../../shared/export/encode/parquet';
import type { Candidate } from './common';

export const projectEncoder: Candidate = {
  library: 'encodeParquet (chosen)',
  compressions: ['GZIP', 'SNAPPY'],
  profiles: [
    { compression: 'GZIP', deltaIntegers: true },
    { compression: 'SNAPPY', deltaIntegers: true },
  ],
  encodings: 'delta (own)',
  async write(columns, rows, sink, options) {
    const settings = { maxRowGroupRows: options.rowGroupRows, codec: options.compression };
    for await (const chunk of encodeParquet(columns, rows, settings)) await sink(chunk);
  },
};
