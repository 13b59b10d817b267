import { randomUUID } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FileSink } from '../../../../shared/export/sinks';
import { exportDirectory } from '../support';

/** Temporary files that a run killed mid-write (or between link and unlink) leaves behind. */

const options = { replace: false, signal: new AbortController().signal };
const DAY = 't/cluster=c/dt=2024-05-01';
const OTHER_DAY = 't/cluster=c/dt=2024-05-02';

async function files(root: string, directory: string): Promise<string[]> {
  return (await readdir(join(root, directory))).sort();
}

describe('file sink: stale temporary files', () => {
  it('removes the ones of its own layout in a directory it writes to, and nothing else', async () => {
    const root = exportDirectory();
    await mkdir(join(root, DAY), { recursive: true });
    await mkdir(join(root, OTHER_DAY), { recursive: true });
    const stale = `t.c.20240501T000000Z.20240501T000500Z.jsonl.gz.${randomUUID()}.tmp`;
    const elsewhere = `t.c.20240502T000000Z.20240502T000500Z.jsonl.gz.${randomUUID()}.tmp`;
    await writeFile(join(root, DAY, stale), 'half a window');
    await writeFile(join(root, DAY, 'notes.tmp'), 'not ours');
    await writeFile(join(root, DAY, 'x.jsonl.gz.not-a-uuid.tmp'), 'not ours');
    await writeFile(join(root, OTHER_DAY, elsewhere), 'half a window');
    const sink = new FileSink(root);

    const outcome = await sink.write(
      `${DAY}/t.c.20240501T000500Z.20240501T001000Z.jsonl.gz`,
      Readable.from(['rows']),
      options,
    );

    expect(outcome).toBe('written');
    expect(await files(root, DAY)).toEqual([
      'notes.tmp',
      't.c.20240501T000500Z.20240501T001000Z.jsonl.gz',
      'x.jsonl.gz.not-a-uuid.tmp',
    ]);
    // Another day's directory is cleared when a run first looks into it.
    expect(await files(root, OTHER_DAY)).toEqual([elsewhere]);
    expect(await sink.exists(`${OTHER_DAY}/t.c.20240502T000000Z.20240502T000500Z.jsonl.gz`)).toBe(false);
    expect(await files(root, OTHER_DAY)).toEqual([]);
  });

  it('removes the one left next to an object that was linked just before the crash', async () => {
    const root = exportDirectory();
    const key = `${DAY}/t.c.20240501T000000Z.20240501T000500Z.jsonl.gz`;
    await mkdir(join(root, DAY), { recursive: true });
    await writeFile(join(root, key), 'complete');
    await writeFile(join(root, `${key}.${randomUUID()}.tmp`), 'complete');

    expect(await new FileSink(root).exists(key)).toBe(true);

    expect(await files(root, DAY)).toEqual(['t.c.20240501T000000Z.20240501T000500Z.jsonl.gz']);
  });
});
