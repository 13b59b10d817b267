import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeParquet } from '../../../../shared/export/encode/parquet';
import { openThreadFile, stopEncoderThread } from '../../../../shared/export/encode/parquet-thread';
import { type ParquetColumn, parquetTypeOf } from '../../../../shared/export/encode/parquet-types';
import { duckdbQuery, sqlString } from '../../../support/duckdb';

/**
 * The encoder thread serves every file of the process, a request at a time:
 * files written at once stay apart, a failure fails its own file only, and a
 * thread that stops fails what it had under way and is started again.
 */

const work = mkdtempSync(join(tmpdir(), 'parquet-thread-'));
let files = 0;
const columns: ParquetColumn[] = [
  { name: 'id', type: parquetTypeOf('bigint') },
  { name: 'logged_at', type: parquetTypeOf('timestamp(6) with time zone') },
  { name: 'text', type: parquetTypeOf('text') },
];

async function* rowsOf(tag: string, count: number, pause?: () => Promise<void>) {
  for (let i = 0; i < count; i++) {
    if (pause && i % 500 === 0) await pause();
    yield { id: i, logged_at: `2024-03-01T00:00:00.${String(i).padStart(6, '0')}Z`, text: `${tag} ${i}` };
  }
}

async function toFile(chunks: AsyncIterable<Uint8Array>): Promise<string> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  const file = join(work, `t${files++}.parquet`);
  writeFileSync(file, Buffer.concat(parts));
  return file;
}

const summary = async (file: string) =>
  (
    await duckdbQuery(
      `SELECT count(*) AS n, sum(id) AS s, min(text) AS lowest, count(DISTINCT logged_at) AS t FROM read_parquet(${sqlString(file)})`,
    )
  ).rows[0];

describe('the Parquet encoder thread', () => {
  it('keeps files written at the same time apart, their row groups interleaved on the thread', async () => {
    const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
    const options = { maxRowGroupRows: 1000 };

    const [a, b] = await Promise.all([
      toFile(encodeParquet(columns, rowsOf('a', 7000, tick), options)),
      toFile(encodeParquet(columns, rowsOf('b', 5500, tick), options)),
    ]);

    expect(await summary(a)).toEqual({ n: '7000', s: String((6999 * 7000) / 2), lowest: 'a 0', t: '7000' });
    expect(await summary(b)).toEqual({ n: '5500', s: String((5499 * 5500) / 2), lowest: 'b 0', t: '5500' });
  });

  it('fails the file whose request failed, with the writer message, and no other', async () => {
    const broken = openThreadFile(columns, 'GZIP');
    const other = toFile(encodeParquet(columns, rowsOf('c', 3000), { maxRowGroupRows: 1000 }));
    // Columns of different lengths: hyparquet-writer refuses them on the thread.
    const data = [
      { name: 'id', data: [1n, 2n], statistics: true },
      { name: 'logged_at', data: [1n], statistics: true },
    ];

    await expect(
      broken.writeGroup([...data, { name: 'text', data: ['x'], statistics: false }], 2),
    ).rejects.toThrow('Parquet encoder: parquet columns must have the same length');
    await expect(broken.finish()).rejects.toThrow('No Parquet file');
    expect(await summary(await other)).toMatchObject({ n: '3000', lowest: 'c 0' });
  });

  it('fails the files under way when the thread stops, and starts a new one for the next file', async () => {
    async function* stopping() {
      yield* rowsOf('d', 1500);
      await stopEncoderThread();
      yield* rowsOf('d', 1500);
    }

    await expect(toFile(encodeParquet(columns, stopping(), { maxRowGroupRows: 1000 }))).rejects.toThrow(
      'The Parquet encoder thread stopped',
    );
    expect(await summary(await toFile(encodeParquet(columns, rowsOf('e', 2500))))).toMatchObject({
      n: '2500',
    });
  });

  it.each([
    ['ASCII', (i: number) => `SELECT ${i}`],
    ['other text', (i: number) => `SÉLECT 🎉 ${i}`],
  ])('writes mostly distinct text PLAIN and repeated text with a dictionary (%s)', async (_, distinct) => {
    const rows = Array.from({ length: 3000 }, (_, i) => ({
      id: i,
      logged_at: '2024-03-01T00:00:00Z',
      text: distinct(i),
      kind: i % 3 === 0 ? null : ['Query', 'Connect', 'Quit'][i % 3],
    }));
    async function* source() {
      yield* rows;
    }
    const columns4 = [...columns, { name: 'kind', type: parquetTypeOf('varchar(16)') }];

    const file = await toFile(encodeParquet(columns4, source()));

    const encodings = await duckdbQuery(
      `SELECT path_in_schema AS name, any_value(encodings) AS encodings FROM parquet_metadata(${sqlString(file)}) GROUP BY ALL`,
    );
    const byName = Object.fromEntries(encodings.rows.map((r) => [r.name, r.encodings]));
    expect(byName.text).toBe('PLAIN');
    expect(String(byName.kind)).toContain('RLE_DICTIONARY');
    const read = await duckdbQuery(`SELECT id, text, kind FROM read_parquet(${sqlString(file)}) ORDER BY id`);
    expect(read.rows).toEqual(rows.map((r) => ({ id: String(r.id), text: r.text, kind: r.kind })));
  });

  it('takes a row group holding one value of 48 MB', async () => {
    const huge = 'x'.repeat(48 * 1024 * 1024);
    async function* rows() {
      yield { id: 1, logged_at: '2024-03-01T00:00:00Z', text: huge };
      yield* rowsOf('f', 10);
    }

    const file = await toFile(encodeParquet(columns, rows()));

    const read = await duckdbQuery(
      `SELECT count(*) AS n, max(length(text)) AS longest FROM read_parquet(${sqlString(file)})`,
    );
    expect(read.rows[0]).toEqual({ n: '11', longest: String(huge.length) });
  }, 60_000);
});
