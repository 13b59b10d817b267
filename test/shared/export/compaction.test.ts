import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { dailyKey, runCompaction } from '../../../shared/export/compaction';
import type { ClusterConfig, ExportConfig } from '../../../shared/export/config';
import type { WatermarkStore } from '../../../shared/export/plan/watermark-store';
import { FileSink } from '../../../shared/export/sinks/file';
import type { TableDefinition } from '../../../shared/export/sources/table-definition';
import { objectKey } from '../../../shared/export/table-export';
import { createLogger } from '../../../shared/log';

/**
 * Compaction over a file:// tree with a watermark past the day: which keys
 * under the day's prefix become rows of the daily object.
 */

const DAY = '2026-01-10';

function config(): ExportConfig {
  const cluster = {
    name: 'c1',
    tables: new Map([['events', {} as TableDefinition]]),
  } as unknown as ClusterConfig;
  return {
    destination: 'file:///unused',
    enabledClusters: ['c1'],
    windowMinutes: 5,
    initialLookbackHours: 1,
    fanOut: 'off',
    format: 'jsonl.gz',
    clusters: new Map([['c1', cluster]]),
  };
}

const store = {
  read: async () => ({ watermark: '2026-01-11T01:00:00.000000Z' }),
} as unknown as WatermarkStore;

async function put(root: string, key: string, lines: string[]) {
  await mkdir(dirname(join(root, key)), { recursive: true });
  await writeFile(join(root, key), gzipSync(lines.map((l) => `${l}\n`).join('')));
}

async function compact(root: string) {
  return runCompaction(
    { kind: 'compact', cluster: 'c1', table: 'events', date: DAY },
    {
      config: config(),
      store,
      sink: new FileSink(root),
      logger: createLogger('compaction-test'),
      now: () => Date.parse('2026-01-12T00:00:00Z'),
      concurrency: 1,
    },
  );
}

async function dailyLines(root: string): Promise<string[] | undefined> {
  try {
    const bytes = await readFile(join(root, dailyKey('c1', 'events', DAY, 'jsonl.gz')));
    return gunzipSync(bytes).toString('utf8').split('\n').filter(Boolean);
  } catch {
    return undefined;
  }
}

const dir = `events/cluster=c1/dt=${DAY}/`;

/** The key an export writes for the window [lo, hi) of the day (`HH:MM`). */
const windowKey = (lo: string, hi: string, day = DAY) =>
  objectKey('c1', 'events', { lo: `${day}T${lo}:00.000000Z`, hi: `${day}T${hi}:00.000000Z` } as never);

describe('compaction: the day’s keys', () => {
  it('compacts the window objects of the day in time order', async () => {
    const root = await mkdtemp(join(tmpdir(), 'compact-'));
    await put(root, windowKey('00:00', '00:05'), ['{"id":1}']);
    await put(root, windowKey('00:05', '00:10'), ['{"id":2}']);
    const summary = await compact(root);
    expect(summary.clusters[0]?.tables[0]).toMatchObject({ windows: 2, rows: 2, objectsWritten: 1 });
    expect(await dailyLines(root)).toEqual(['{"id":1}', '{"id":2}']);
  });

  it('refuses a day with a key under its prefix that is not a window object (a copy would be rows twice)', async () => {
    const root = await mkdtemp(join(tmpdir(), 'compact-'));
    const first = windowKey('00:00', '00:05');
    await put(root, first, ['{"id":1}']);
    await put(root, windowKey('00:05', '00:10'), ['{"id":2}']);
    // An operator's copy beside the original, as a file browser or `aws s3 cp` would name it.
    await put(root, first.replace('.jsonl.gz', '.copy.jsonl.gz'), ['{"id":1}']);
    const summary = await compact(root);
    expect(summary.clusters[0]?.tables[0]?.skipped).toMatch(/^refused: .*not a window object/);
    expect(await dailyLines(root)).toBeUndefined();
  });

  it('refuses a day whose window objects overlap (the window length changed and a backfill wrote the day again)', async () => {
    const root = await mkdtemp(join(tmpdir(), 'compact-'));
    await put(root, windowKey('00:00', '00:05'), ['{"id":1}']);
    await put(root, windowKey('00:05', '00:10'), ['{"id":2}']);
    await put(root, windowKey('00:00', '00:10'), ['{"id":1}', '{"id":2}']);
    const summary = await compact(root);
    expect(summary.clusters[0]?.tables[0]?.skipped).toMatch(/^refused: .*overlap/);
    expect(await dailyLines(root)).toBeUndefined();
  });

  it('refuses a day holding a window object of another day', async () => {
    const root = await mkdtemp(join(tmpdir(), 'compact-'));
    await put(root, windowKey('00:00', '00:05'), ['{"id":1}']);
    const foreign = windowKey('00:05', '00:10', '2026-01-11');
    await put(root, `${dir}${foreign.slice(foreign.lastIndexOf('/') + 1)}`, ['{"id":9}']);
    const summary = await compact(root);
    expect(summary.clusters[0]?.tables[0]?.skipped).toMatch(/^refused: .*not of 2026-01-10/);
    expect(await dailyLines(root)).toBeUndefined();
  });
});
