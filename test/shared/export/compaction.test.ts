import { mkdir, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { type CompactionDeps, runCompaction } from '../../../shared/export/compaction';
import type { ClusterConfig, ExportConfig } from '../../../shared/export/config';
import type { CompactRequest } from '../../../shared/export/event';
import { WatermarkStore } from '../../../shared/export/plan/watermark-store';
import { FileSink } from '../../../shared/export/sinks/file';
import type { Sink } from '../../../shared/export/sinks/sink';
import type { TableDefinition } from '../../../shared/export/sources/table-definition';
import { dailyKey, objectKey } from '../../../shared/export/table-export';
import { createLogger } from '../../../shared/log';
import { withLogs } from '../../support/capture';
import { gate } from '../../support/gate';
import { createWatermarkTable, dynamo, readWatermark, setWatermark } from './support';

/**
 * Compaction over a file:// tree, with watermarks (and leases) in DynamoDB on
 * moto: which keys under the day's prefix become rows of the daily object, and
 * how a compaction takes, keeps and gives up the (cluster, table) lease.
 */

const DAY = '2026-01-10';
const PAST_THE_DAY = '2026-01-11T01:00:00.000000Z';

function config(): ExportConfig {
  const cluster = {
    name: 'c1',
    tables: new Map([
      ['events', {} as TableDefinition],
      ['audit', {} as TableDefinition],
    ]),
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

/** A fresh watermark table, both tables' watermarks past the day. */
async function storePastTheDay() {
  const watermarks = await createWatermarkTable();
  await setWatermark(watermarks, 'c1', 'events', PAST_THE_DAY);
  await setWatermark(watermarks, 'c1', 'audit', PAST_THE_DAY);
  return { watermarks, store: new WatermarkStore(dynamo, watermarks) };
}

async function put(root: string, key: string, lines: string[]) {
  await mkdir(dirname(join(root, key)), { recursive: true });
  await writeFile(join(root, key), gzipSync(lines.map((l) => `${l}\n`).join('')));
}

async function compact(
  root: string,
  options: Partial<CompactionDeps> & { store?: WatermarkStore; request?: Partial<CompactRequest> } = {},
) {
  const { request, ...deps } = options;
  return runCompaction(
    { kind: 'compact', cluster: 'c1', table: 'events', date: DAY, ...request },
    {
      config: config(),
      store: deps.store ?? (await storePastTheDay()).store,
      sink: new FileSink(root),
      logger: createLogger('compaction-test'),
      now: Date.now,
      remainingMs: () => 60_000,
      concurrency: 1,
      leaseWaitMs: 0,
      ...deps,
    },
  );
}

async function dailyLines(root: string, table = 'events'): Promise<string[] | undefined> {
  try {
    const bytes = await readFile(join(root, dailyKey('c1', table, DAY, 'jsonl.gz')));
    return gunzipSync(bytes).toString('utf8').split('\n').filter(Boolean);
  } catch {
    return undefined;
  }
}

const dir = `events/cluster=c1/dt=${DAY}/`;

/** The key an export writes for the window [lo, hi) of the day (`HH:MM`). */
const windowKey = (lo: string, hi: string, day = DAY, table = 'events') =>
  objectKey('c1', table, { lo: `${day}T${lo}:00.000000Z`, hi: `${day}T${hi}:00.000000Z` } as never);

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

/** `sink`, with the reads of `key` held until `open()`; `reached` resolves when the first of them starts. */
function holdingReadsOf(inner: Sink, key: string) {
  const held = gate();
  const sink: Sink = {
    describe: (k) => inner.describe(k),
    exists: (k) => inner.exists(k),
    write: (k, body, options) => inner.write(k, body, options),
    list: (directory) => inner.list(directory),
    read: async (k) => {
      if (k === key) await held.pass();
      return inner.read(k);
    },
  };
  return { sink, reached: held.reached, open: held.open };
}

const leaseOwner = async (watermarks: string, table = 'events') =>
  (await readWatermark(watermarks, 'c1', table))?.leaseOwner;

describe('compaction: the table’s lease', () => {
  it('refuses a table whose lease another run holds, reports and logs why, and still compacts the other tables', async () => {
    const root = await mkdtemp(join(tmpdir(), 'compact-'));
    const { watermarks, store } = await storePastTheDay();
    await put(root, windowKey('00:00', '00:05'), ['{"id":1}']);
    await put(root, windowKey('00:00', '00:05', DAY, 'audit'), ['{"a":1}']);
    const holder = await store.acquire('c1', 'events', 'export-run', Date.now() + 60_000);

    const { result, logs } = await withLogs(() =>
      compact(root, { store, leaseWaitMs: 300, request: { table: undefined } }),
    );

    const [events, audit] = result.clusters[0]?.tables ?? [];
    expect(events?.skipped).toMatch(
      /^refused: another run holds the lease on c1\/events \(an export, a backfill or a compaction of the table\)/,
    );
    expect(events).toMatchObject({ windows: 0, rows: 0, objectsWritten: 0, objectsSkipped: 0 });
    expect(events?.error).toBeUndefined();
    expect(await dailyLines(root)).toBeUndefined();
    expect(audit).toMatchObject({ windows: 1, rows: 1, objectsWritten: 1 });
    expect(await dailyLines(root, 'audit')).toEqual(['{"a":1}']);
    expect(logs).toContainEqual(
      expect.objectContaining({
        level: 'WARN',
        message: 'Compaction refused',
        table: 'events',
        reason: expect.stringMatching(/^another run holds the lease on c1\/events/),
      }),
    );
    // The holder keeps its lease; the compaction gave up the one it took.
    expect(await leaseOwner(watermarks)).toBe('export-run');
    expect(await leaseOwner(watermarks, 'audit')).toBeUndefined();

    await store.release(holder);
    const after = await compact(root, { store });

    expect(after.clusters[0]?.tables[0]).toMatchObject({ objectsWritten: 1, rows: 1 });
    expect(await dailyLines(root)).toEqual(['{"id":1}']);
  });

  it('waits for a lease that its holder gives up within the wait, then compacts', async () => {
    const root = await mkdtemp(join(tmpdir(), 'compact-'));
    const { store } = await storePastTheDay();
    await put(root, windowKey('00:00', '00:05'), ['{"id":1}']);
    const holder = await store.acquire('c1', 'events', 'export-run', Date.now() + 60_000);
    const released = new Promise((resolve) => setTimeout(resolve, 1000)).then(() => store.release(holder));

    const started = Date.now();
    const summary = await compact(root, { store, leaseWaitMs: 10_000 });

    await released;
    expect(summary.clusters[0]?.tables[0]).toMatchObject({ objectsWritten: 1, rows: 1 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
  });

  it.each([
    ['succeeds', async (_root: string) => {}, { objectsWritten: 1 }],
    [
      'is refused (the watermark is short of the day’s end)',
      async (_root: string, watermarks: string) =>
        setWatermark(watermarks, 'c1', 'events', '2026-01-10T23:55:00.000000Z'),
      { skipped: expect.stringMatching(/^refused: the watermark/) },
    ],
    [
      'is refused (a stray key)',
      (root: string) => put(root, windowKey('00:00', '00:05').replace('.jsonl.gz', '.copy.jsonl.gz'), ['{}']),
      { skipped: expect.stringMatching(/not a window object/) },
    ],
    [
      'fails half-way (a window cut short)',
      async (root: string) => {
        const key = join(root, windowKey('00:05', '00:10'));
        await writeFile(key, (await readFile(key)).subarray(0, -12));
      },
      { error: expect.any(String), objectsWritten: 0 },
    ],
  ])(
    'gives the lease up after a compaction that %s: the next run takes it',
    async (_case, prepare, outcome) => {
      const root = await mkdtemp(join(tmpdir(), 'compact-'));
      const { watermarks, store } = await storePastTheDay();
      await put(root, windowKey('00:00', '00:05'), ['{"id":1}']);
      await put(root, windowKey('00:05', '00:10'), ['{"id":2}']);
      await prepare(root, watermarks);
      const before = (await readWatermark(watermarks, 'c1', 'events'))?.version as number;

      const summary = await compact(root, { store });

      expect(summary.clusters[0]?.tables[0]).toMatchObject(outcome);
      const item = await readWatermark(watermarks, 'c1', 'events');
      expect(item?.leaseOwner).toBeUndefined();
      // It did take the lease (acquire, renew, release each bump the version), and gave it up.
      expect(item?.version).toBeGreaterThanOrEqual(before + 2);
      const next = await store.acquire('c1', 'events', 'next-run', Date.now() + 60_000);
      expect(next.owner).toBe('next-run');
    },
  );

  it('reports a lease lost while the day was read (another run took the table over) and publishes nothing', async () => {
    const root = await mkdtemp(join(tmpdir(), 'compact-'));
    const { watermarks, store } = await storePastTheDay();
    await put(root, windowKey('00:00', '00:05'), ['{"id":1}']);
    await put(root, windowKey('00:05', '00:10'), ['{"id":2}']);
    const held = holdingReadsOf(new FileSink(root), windowKey('00:05', '00:10'));

    // The invocation has half a second left: so has its lease.
    const running = withLogs(() => compact(root, { store, sink: held.sink, remainingMs: () => 500 }));
    await held.reached;
    await new Promise((resolve) => setTimeout(resolve, 800));
    await store.acquire('c1', 'events', 'taker', Date.now() + 60_000);
    held.open();
    const { result, logs } = await running;

    const summary = result.clusters[0]?.tables[0];
    expect(summary?.error).toMatch(
      /^Lost the lease on c1\/events while compacting 2026-01-10: another run took the table over; no daily object was written/,
    );
    expect(summary?.objectsWritten).toBe(0);
    expect(await dailyLines(root)).toBeUndefined();
    expect(logs).toContainEqual(
      expect.objectContaining({ level: 'ERROR', message: 'Compaction lost its lease', table: 'events' }),
    );
    // The taker's lease is left alone.
    expect(await leaseOwner(watermarks)).toBe('taker');
  });

  it('renews its lease between window objects once a renewal is due', async () => {
    const root = await mkdtemp(join(tmpdir(), 'compact-'));
    const { watermarks, store } = await storePastTheDay();
    for (const [lo, hi, id] of [
      ['00:00', '00:05', 1],
      ['00:05', '00:10', 2],
      ['00:10', '00:15', 3],
    ] as const) {
      await put(root, windowKey(lo, hi), [`{"id":${id}}`]);
    }
    const held = holdingReadsOf(new FileSink(root), windowKey('00:05', '00:10'));
    // The compaction's clock jumps two minutes while the second window is read.
    let skew = 0;
    const running = compact(root, { store, sink: held.sink, now: () => Date.now() + skew });
    await held.reached;
    skew = 120_000;
    held.open();
    const summary = await running;

    expect(summary.clusters[0]?.tables[0]).toMatchObject({ objectsWritten: 1, rows: 3 });
    // From 1 (set): acquire, a renewal before the third window, the renewal after the last, release.
    expect((await readWatermark(watermarks, 'c1', 'events'))?.version).toBe(5);
  });

  it('is taken before the watermark is read: a watermark moved while the lease was held elsewhere counts', async () => {
    const root = await mkdtemp(join(tmpdir(), 'compact-'));
    const { watermarks, store } = await storePastTheDay();
    await put(root, windowKey('00:00', '00:05'), ['{"id":1}']);
    await setWatermark(watermarks, 'c1', 'events', '2026-01-10T12:00:00.000000Z');
    const holder = await store.acquire('c1', 'events', 'export-run', Date.now() + 60_000);
    // The holder commits the rest of the day and gives the lease up a second into the compaction's wait.
    const committed = new Promise((resolve) => setTimeout(resolve, 1000)).then(() =>
      store.advanceAndRelease(holder, PAST_THE_DAY, 0),
    );

    const summary = await compact(root, { store, leaseWaitMs: 10_000 });

    await committed;
    expect(summary.clusters[0]?.tables[0]).toMatchObject({ objectsWritten: 1, watermark: PAST_THE_DAY });
  });
});

describe('compaction: replace', () => {
  it('rewrites an existing daily object from the day’s window objects only when the event says replace', async () => {
    const root = await mkdtemp(join(tmpdir(), 'compact-'));
    const { store } = await storePastTheDay();
    await put(root, windowKey('00:00', '00:05'), ['{"id":1}']);
    await put(root, windowKey('00:05', '00:10'), ['{"id":2}']);
    expect((await compact(root, { store })).clusters[0]?.tables[0]).toMatchObject({ objectsWritten: 1 });
    const dailyFile = join(root, dailyKey('c1', 'events', DAY, 'jsonl.gz'));
    const written = (await stat(dailyFile)).mtimeMs;
    // A backfill with replace rewrote the second window.
    await put(root, windowKey('00:05', '00:10'), ['{"id":2,"note":"corrected"}', '{"id":3}']);

    const skipped = await compact(root, { store });

    expect(skipped.clusters[0]?.tables[0]).toMatchObject({ objectsWritten: 0, objectsSkipped: 1, rows: 0 });
    expect(await dailyLines(root)).toEqual(['{"id":1}', '{"id":2}']);
    expect((await stat(dailyFile)).mtimeMs).toBe(written);

    const replaced = await compact(root, { store, request: { replace: true } });

    expect(replaced.clusters[0]?.tables[0]).toMatchObject({
      windows: 2,
      rows: 3,
      objectsWritten: 1,
      objectsSkipped: 0,
    });
    expect(await dailyLines(root)).toEqual(['{"id":1}', '{"id":2,"note":"corrected"}', '{"id":3}']);
  });
});
