import type { ColumnSource, ParquetCodec } from './parquet-file';
import type { ParquetColumn } from './parquet-types';

/** What the encoder thread is asked, for one file (by id). Every request gets one reply, in order. */
export type EncoderRequest =
  | { kind: 'open'; file: number; columns: ParquetColumn[]; codec: ParquetCodec }
  | { kind: 'group'; file: number; columns: ColumnSource[]; rows: number }
  | { kind: 'finish'; file: number }
  | { kind: 'close'; file: number };

/** The bytes a request added to its file (buffers transferred), or why it failed (the file is then dropped). */
export interface EncoderReply {
  file: number;
  chunks?: Uint8Array[];
  error?: { name: string; message: string };
}
