import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ByteCounter } from '../../../../shared/export/encode/byte-counter';
import { peek } from '../../../../shared/export/encode/jsonl';
import { encodeParquetBatches, encodeParquetGroups } from '../../../../shared/export/encode/parquet';
import { encoderFilesOpen } from '../../../../shared/export/encode/parquet-thread';
import { type ParquetColumn, parquetTypeOf } from '../../../../shared/export/encode/parquet-types';
import { writeStreamed } from '../../../../shared/export/sinks';
import type { Sink } from '../../../../shared/export/sinks/sink';

/**
 * A window whose object cannot be written (S3 fails mid-upload) stops reading
 * its Parquet bytes early. The encoder thread lives as long as the process (a
 * warm Lambda container), so the file it opened there must be given up, or
 * every failed window leaves a writer (its buffers, its row groups' metadata)
 * on the thread for good.
 */

const columns: ParquetColumn[] = [
  { name: 'id', type: parquetTypeOf('bigint') },
  { name: 'sql_text', type: parquetTypeOf('text') },
];

/** A sink whose upload fails once the first bytes arrive, as S3 does on a lost connection. */
const failingSink: Sink = {
  describe: (key) => key,
  exists: async () => false,
  write: async (_key, body: Readable) => {
    for await (const _chunk of body) throw new Error('S3 upload failed');
    return 'written';
  },
  list: async () => [],
  read: async () => {
    throw new Error('not used');
  },
};

describe('a Parquet window whose sink fails', () => {
  it('gives up its file on the encoder thread and releases its rows', async () => {
    let sourceReleased = false;
    async function* batches() {
      try {
        for (let b = 0; b < 20; b++)
          yield Array.from({ length: 1000 }, (_, i) => ({ id: b * 1000 + i, sql_text: `SELECT ${b}.${i}` }));
      } finally {
        sourceReleased = true;
      }
    }

    // As table-export.ts writeWindow does: the first chunk peeked, then streamed into the sink.
    expect(encoderFilesOpen()).toBe(0);
    const lines = await peek(encodeParquetBatches(columns, batches(), { maxRowGroupRows: 1000 }));
    await expect(
      writeStreamed(failingSink, 'k.parquet', lines as AsyncIterable<Uint8Array>, new ByteCounter(), {
        replace: false,
      }),
    ).rejects.toThrow('S3 upload failed');

    expect({ filesOpen: encoderFilesOpen(), sourceReleased }).toEqual({ filesOpen: 0, sourceReleased: true });
  });
});

describe('a Parquet encoder that cannot open its file', () => {
  // Two columns of one name: refused when the file is opened, after the window's query has started.
  const duplicate: ParquetColumn[] = [
    { name: 'id', type: parquetTypeOf('bigint') },
    { name: 'id', type: parquetTypeOf('bigint') },
  ];

  /** A source that tells whether it was stopped, as a query in progress (a COPY, a cursor) must be. */
  function tracked<T>(items: T[]) {
    const state = { stopped: false };
    async function* source() {
      try {
        yield* items;
      } finally {
        state.stopped = true;
      }
    }
    return { state, source };
  }

  /** As table-export.ts does: the source peeked (its query started), then passed on through a generator. */
  async function* masked<T>(items: AsyncIterable<T>): AsyncGenerator<T> {
    for await (const item of items) yield item;
  }

  it('stops the rows it was given (encodeParquetBatches), and opens nothing on the thread', async () => {
    const { state, source } = tracked([[{ id: 1 }], [{ id: 2 }]]);
    const first = await peek(source());

    await expect(
      peek(encodeParquetBatches(duplicate, masked(first as AsyncIterable<{ id: number }[]>))),
    ).rejects.toThrow(/distinct/);

    expect({ stopped: state.stopped, filesOpen: encoderFilesOpen() }).toEqual({
      stopped: true,
      filesOpen: 0,
    });
  });

  it('stops the row groups it was given (encodeParquetGroups), and opens nothing on the thread', async () => {
    const group = { rows: 1, columns: [[1], [1]] };
    const { state, source } = tracked([group, group]);
    const first = await peek(source());

    await expect(
      peek(encodeParquetGroups(duplicate, masked(first as AsyncIterable<typeof group>))),
    ).rejects.toThrow(/distinct/);

    expect({ stopped: state.stopped, filesOpen: encoderFilesOpen() }).toEqual({
      stopped: true,
      filesOpen: 0,
    });
  });
});
