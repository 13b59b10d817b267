import { describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/export';
import type { ExportRuntime } from '../../shared/export/runtime';
import { SESSION_OPENERS } from '../../shared/export/runtime';
import type { DatabaseSession } from '../../shared/export/sources/session';
import { floorToGrid, formatTimestamp, hours, minutes, toMicros } from '../../shared/export/sources/time';
import {
  compact,
  createBucket,
  createMysqlEvents,
  createWatermarkTable,
  mysqlClusterParameters,
  mysqlNow,
  parseKey,
  putParameters,
  readS3Objects,
  readWatermark,
  testRuntime,
} from '../shared/export/support';
import { uniqueName } from '../stack/fixtures';

/** A deterministic pseudo-random sequence, so a failure can be replayed. */
function random(seed: number) {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

/**
 * Rows over 26 hours that cross midnight: random microsecond times plus a row
 * exactly on every window boundary and one a microsecond before it.
 */
function eventsAcrossMidnight(now: number, count: number, windowMinutes: number) {
  // Start 28 h back, at 20:00 UTC of that day or the day before, so that midnight lies inside.
  const start = floorToGrid(now - hours(28), 1440) + hours(20);
  const end = Math.min(start + hours(26), floorToGrid(now - hours(1), windowMinutes));
  const next = random(42);
  const rows: Array<{ id: number; at: number }> = [];
  for (let i = 0; i < count; i++)
    rows.push({ id: rows.length + 1, at: start + Math.floor(next() * (end - start)) });
  for (let t = start; t < end; t += minutes(windowMinutes)) {
    rows.push({ id: rows.length + 1, at: t });
    rows.push({ id: rows.length + 1, at: t - 1 });
  }
  return { rows, start, end };
}

async function setUp(options: {
  windowMinutes: number;
  lookbackHours: number;
  rows: Array<{ id: number; at: number }>;
  fullScan: boolean;
}) {
  const path = `/${uniqueName('export')}`;
  const [watermarkTable, bucket, events] = await Promise.all([
    createWatermarkTable(),
    createBucket(),
    createMysqlEvents(options.rows),
  ]);
  await putParameters(path, {
    'global/destination': `s3://${bucket}/logs`,
    'global/window-minutes': String(options.windowMinutes),
    'global/initial-lookback-hours': String(options.lookbackHours),
    'global/enabled-clusters': ['c1'],
    'global/fan-out': 'off',
    ...mysqlClusterParameters('c1'),
    'clusters/c1/tables': 'none',
    'clusters/c1/custom/events/query': events.query,
    'clusters/c1/custom/events/watermark-column': 'at',
    'clusters/c1/custom/events/full-scan': String(options.fullScan),
  });
  return { path, watermarkTable, bucket };
}

/** Asserts that every row is in exactly one object, the object of its window and day, in order. */
function assertExact(
  objects: Map<string, Record<string, unknown>[]>,
  expected: Array<{ id: number; at: number }>,
) {
  const seen = new Map<number, string>();
  for (const [key, rows] of objects) {
    const { lo, hi, dt } = parseKey(key);
    expect(rows.length).toBeGreaterThan(0);
    let previous = '';
    for (const row of rows) {
      const at = row.at as string;
      expect(at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
      expect(compact(at) >= lo && compact(at) < hi, `${at} in ${lo}..${hi}`).toBe(true);
      expect(dt).toBe(`${lo.slice(0, 4)}-${lo.slice(4, 6)}-${lo.slice(6, 8)}`);
      expect(at >= previous).toBe(true);
      previous = at;
      expect(seen.has(row.id as number), `row ${row.id} twice`).toBe(false);
      seen.set(row.id as number, at);
    }
  }
  expect(seen.size).toBe(expected.length);
  for (const row of expected) expect(seen.get(row.id)).toBe(formatTimestamp(row.at));
}

/** The real session openers, counting the queries that read the custom export's table. */
function countingOpeners(table: string) {
  const queries = { count: 0 };
  const count = (sql: string) => {
    if (sql.includes(table)) queries.count += 1;
  };
  const openers: ExportRuntime['openers'] = {
    ...SESSION_OPENERS,
    mysql: async (...args) => {
      const session = await SESSION_OPENERS.mysql(...args);
      return Object.assign(Object.create(session) as DatabaseSession, {
        stream: (sql: string) => {
          count(sql);
          return session.stream(sql);
        },
        jsonLines: (sql: string, counter: { rows: number }, redact: readonly string[]) => {
          count(sql);
          return session.jsonLines?.(sql, counter, redact) ?? Promise.resolve(undefined);
        },
      });
    },
  };
  return { openers, queries };
}

// Every test runs twice: one query per window, and (full-scan) one query per hour of windows.
describe.each([{ fullScan: false }, { fullScan: true }])(
  'export handler: custom export on MariaDB to S3 (full-scan $fullScan)',
  ({ fullScan }) => {
    it('exports every row exactly once, in the object of its window and day, and a second run writes nothing', async () => {
      const now = await mysqlNow();
      const { rows, start, end } = eventsAcrossMidnight(now, 20_000, 30);
      const { path, watermarkTable, bucket } = await setUp({
        windowMinutes: 30,
        // The rows start as early as 32 hours ago (20:00 UTC, a day or two back).
        lookbackHours: 33,
        rows,
        fullScan,
      });
      const { openers, queries } = countingOpeners('.events');
      const handler = makeHandler(testRuntime({ path, watermarkTable, openers }));

      const first = await handler({ 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} });

      const table = first.clusters[0]?.tables[0];
      expect(table?.error).toBeUndefined();
      expect(table?.rows).toBe(rows.length);
      // One query per window, or one per hour (two 30-minute windows) when the source is read whole.
      expect(queries.count).toBe(fullScan ? Math.ceil((table?.windows ?? 0) / 2) : table?.windows);
      expect(table?.windows).toBeGreaterThan(50);
      const objects = await readS3Objects(bucket, 'logs/');
      assertExact(objects, rows);
      const days = new Set([...objects.keys()].map((k) => parseKey(k).dt));
      expect(days.size).toBeGreaterThanOrEqual(2);
      // One object per window of the range, and one for the row a microsecond before it.
      expect(objects.size).toBe((end - start) / minutes(30) + 1);
      expect(table?.objectsWritten).toBe(objects.size);
      const mark = await readWatermark(watermarkTable, 'c1', 'events');
      expect(mark?.watermark).toBe(table?.watermark);
      expect(mark?.rowsExported).toBe(rows.length);
      expect(mark?.leaseOwner).toBeUndefined();
      expect(toMicros(mark?.watermark ?? '')).toBeGreaterThan(end);

      const second = await handler({ cluster: 'c1' });

      expect(second.clusters[0]?.tables[0]).toMatchObject({ objectsWritten: 0, rows: 0 });
      expect((await readS3Objects(bucket, 'logs/')).size).toBe(objects.size);
    });

    it('after a crash between the object write and the watermark update, a rerun neither duplicates nor skips', async () => {
      const now = await mysqlNow();
      const start = floorToGrid(now - hours(3), 15);
      const rows = Array.from({ length: 600 }, (_, i) => ({ id: i + 1, at: start + i * 10_000_000 }));
      const { path, watermarkTable, bucket } = await setUp({
        windowMinutes: 15,
        lookbackHours: 3,
        rows,
        fullScan,
      });
      let written = 0;
      const crashing = makeHandler(
        testRuntime({
          path,
          watermarkTable,
          afterObjectWritten: async () => {
            written += 1;
            if (written === 3) throw new Error('injected crash after the third object');
          },
        }),
      );

      const crashed = await crashing({ cluster: 'c1' });

      expect(crashed.clusters[0]?.tables[0]?.error).toMatch(/injected crash/);
      const afterCrash = await readWatermark(watermarkTable, 'c1', 'events');
      const third = [...(await readS3Objects(bucket, 'logs/')).keys()].sort()[2] as string;
      // The third object is durable but its window is not committed.
      expect(compact(afterCrash?.watermark ?? '')).toBe(parseKey(third).lo);
      expect(afterCrash?.leaseOwner).toBeUndefined();

      const rerun = await makeHandler(testRuntime({ path, watermarkTable }))({ cluster: 'c1' });

      expect(rerun.clusters[0]?.tables[0]).toMatchObject({ objectsSkipped: 1 });
      assertExact(await readS3Objects(bucket, 'logs/'), rows);
    });

    it('starts no window below the safety margin, keeps finished windows committed, and the next run resumes', async () => {
      const now = await mysqlNow();
      const start = floorToGrid(now - hours(2), 10);
      // 90 minutes of rows: all of them in windows that closed well before now, whatever the time of day.
      const rows = Array.from({ length: 180 }, (_, i) => ({ id: i + 1, at: start + i * 30_000_000 }));
      const { path, watermarkTable, bucket } = await setUp({
        windowMinutes: 10,
        lookbackHours: 2,
        rows,
        fullScan,
      });
      let remaining = 120_000;
      const handler = makeHandler(
        testRuntime({
          path,
          watermarkTable,
          safetyMarginMs: 60_000,
          afterObjectWritten: async () => {
            remaining -= 30_000;
          },
        }),
      );

      const first = await handler({ cluster: 'c1' }, { getRemainingTimeInMillis: () => remaining });

      const table = first.clusters[0]?.tables[0];
      expect(table?.error).toBeUndefined();
      expect(table?.windows).toBe(3);
      expect(table?.windowsLeft).toBeGreaterThan(0);
      expect((await readWatermark(watermarkTable, 'c1', 'events'))?.watermark).toBe(table?.watermark);

      remaining = 600_000;
      await handler({ cluster: 'c1' }, { getRemainingTimeInMillis: () => remaining });

      assertExact(await readS3Objects(bucket, 'logs/'), rows);
    });
  },
);
