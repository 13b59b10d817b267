/**
 * Several Parquet files of one schema as one file, without decoding a value:
 * each file's row groups (their column chunks, contiguous bytes) are copied
 * in order, and one footer lists them all with their offsets moved. Used by
 * the daily compaction, so that a day's object holds exactly the bytes of
 * its windows' values. The footer is read by hyparquet and written by
 * hyparquet-writer's own Thrift encoder. Min/max statistics are left out of
 * the new footer: hyparquet hands them over converted (timestamps as
 * milliseconds, decimals as floating point), and a rounded maximum would let
 * a reader skip a row group that holds a match. Null counts stay.
 */
import type { ColumnChunk, FileMetaData, RowGroup } from 'hyparquet';
import { parquetMetadata } from 'hyparquet';
import { ByteWriter } from 'hyparquet-writer';
import { writeMetadata } from 'hyparquet-writer/src/metadata.js';

const MAGIC = new Uint8Array([0x50, 0x41, 0x52, 0x31]); // PAR1

/** Counts the rows of the files joined. */
export interface ConcatCounter {
  rows: number;
}

/**
 * Joins the files `files` yields (each whole, in order) into one Parquet file,
 * yielded in pieces: the header, each file's row groups, then the footer.
 * Files whose schema differs from the first one's are refused.
 */
export async function* concatParquet(
  files: AsyncIterable<{ name: string; bytes: Uint8Array }>,
  counter: ConcatCounter = { rows: 0 },
): AsyncGenerator<Uint8Array> {
  let first: FileMetaData | undefined;
  let schemaText = '';
  const rowGroups: RowGroup[] = [];
  let offset = MAGIC.length;
  let rows = 0n;
  yield MAGIC;
  for await (const { name, bytes } of files) {
    const metadata = parquetMetadata(bytes);
    const text = JSON.stringify(metadata.schema, (_, v) => (typeof v === 'bigint' ? v.toString() : v));
    if (!first) {
      first = metadata;
      schemaText = text;
    } else if (text !== schemaText) {
      throw new Error(`${name} has another schema than the files before it: the columns changed`);
    }
    for (const group of metadata.row_groups) {
      const [start, end] = extent(group, name);
      const shift = BigInt(offset) - start;
      rowGroups.push(moved(group, shift));
      yield bytes.subarray(Number(start), Number(end));
      offset += Number(end - start);
    }
    rows += BigInt(metadata.num_rows);
    counter.rows = Number(rows);
  }
  if (!first) throw new Error('No Parquet file to join');
  const footer = new ByteWriter();
  writeMetadata(footer, {
    version: first.version,
    created_by: first.created_by,
    schema: first.schema,
    num_rows: rows,
    row_groups: rowGroups,
    key_value_metadata: first.key_value_metadata,
  } as FileMetaData);
  const body = new Uint8Array(footer.getBuffer());
  const tail = new Uint8Array(8);
  new DataView(tail.buffer).setUint32(0, body.length, true);
  tail.set(MAGIC, 4);
  yield body;
  yield tail;
}

/** Where a row group's column chunks start and end in its file: one contiguous range. */
function extent(group: RowGroup, name: string): [bigint, bigint] {
  let start: bigint | undefined;
  let end: bigint | undefined;
  for (const column of group.columns) {
    const meta = column.meta_data;
    if (!meta || column.file_path) throw new Error(`${name}: a column chunk lives in another file`);
    const from = BigInt(meta.dictionary_page_offset ?? meta.data_page_offset);
    const to = from + BigInt(meta.total_compressed_size);
    if (start === undefined || from < start) start = from;
    if (end === undefined || to > end) end = to;
  }
  if (start === undefined || end === undefined) throw new Error(`${name}: a row group without columns`);
  return [start, end];
}

/** The row group at its new place: every offset moved by `shift`; page indexes and min/max dropped. */
function moved(group: RowGroup, shift: bigint): RowGroup {
  const add = (value: bigint | number | undefined) =>
    value === undefined ? undefined : BigInt(value) + shift;
  return {
    ...group,
    file_offset: add(group.file_offset),
    columns: group.columns.map((column): ColumnChunk => {
      const meta = column.meta_data;
      return {
        file_offset: add(column.file_offset) ?? 0n,
        meta_data: meta && {
          ...meta,
          data_page_offset: add(meta.data_page_offset) as bigint,
          dictionary_page_offset: add(meta.dictionary_page_offset),
          index_page_offset: add(meta.index_page_offset),
          // The bloom filters and page indexes sit after the row groups: not copied.
          bloom_filter_offset: undefined,
          bloom_filter_length: undefined,
          statistics: meta.statistics && { null_count: meta.statistics.null_count },
        },
      };
    }),
  };
}
