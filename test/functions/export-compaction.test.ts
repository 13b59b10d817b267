import {
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/export';
import { EventError } from '../../shared/errors';
import {
  dayOf,
  formatTimestamp,
  hours,
  minutes,
  sqlTimestamp,
  toMicros,
} from '../../shared/export/sources/time';
import {
  createBucket,
  createMysqlEvents,
  createWatermarkTable,
  exportDirectory,
  mysqlClusterParameters,
  mysqlNow,
  putParameters,
  readS3Objects,
  readWatermark,
  s3,
  setWatermark,
  testRuntime,
} from '../shared/export/support';
import { createMysqlDatabase, mysqlAdmin, uniqueName } from '../stack/fixtures';
import { withLogs } from '../support/capture';
import { duckdbQuery, isoFromDuckDb, sqlString } from '../support/duckdb';

/**
 * Daily compaction against MariaDB and moto: a day of 5-minute windows becomes
 * one object with exactly their rows, in time order; twice changes nothing; a
 * failure half-way leaves nothing visible; a day not fully committed is refused.
 */

const DAY = hours(24);

interface Setup {
  path: string;
  watermarkTable: string;
  bucket: string;
  day: string;
  /** Ids of the rows inside the day, in time order. */
  inside: number[];
  dayStart: number;
}

/**
 * Writes the day's window objects (and those of the hour on either side) by a
 * backfill, then moves the watermark past them as the incremental runs would
 * have: the day is committed.
 */
async function exportDay(handler: ReturnType<typeof makeHandler>, setup: Setup, cluster: string) {
  const from = formatTimestamp(setup.dayStart - hours(1));
  const to = formatTimestamp(setup.dayStart + DAY + hours(1));
  const summary = await handler({ cluster, from, to });
  expect(summary.clusters[0]?.tables[0]?.error).toBeUndefined();
  await setWatermark(setup.watermarkTable, cluster, 'events', to);
}

/** Rows over the day before yesterday (and just outside it), exported by one incremental run. */
async function setUp(cluster: string): Promise<Setup> {
  const now = await mysqlNow();
  const dayStart = toMicros(`${dayOf(now - 2 * DAY)}T00:00:00Z`);
  const day = dayOf(dayStart);
  const times = [
    dayStart - 1, // the last microsecond of the day before
    dayStart, // the first microsecond of the day
    ...Array.from({ length: 700 }, (_, i) => dayStart + Math.floor((i * DAY) / 700) + 123_457),
    dayStart + DAY - 1, // its last microsecond
    dayStart + DAY, // the next day's first
  ];
  const rows = times.map((at, i) => ({ id: i + 1, at, note: `row ${i + 1} "quoted" \\ back` }));
  const path = `/${uniqueName('compact')}`;
  const [watermarkTable, bucket, events] = await Promise.all([
    createWatermarkTable(),
    createBucket(),
    createMysqlEvents(rows),
  ]);
  await putParameters(path, {
    'global/destination': `s3://${bucket}/logs`,
    'global/window-minutes': '5',
    'global/enabled-clusters': [cluster],
    ...mysqlClusterParameters(cluster),
    [`clusters/${cluster}/tables`]: 'none',
    [`clusters/${cluster}/custom/events/query`]: events.query,
    [`clusters/${cluster}/custom/events/watermark-column`]: 'at',
  });
  const inside = rows.filter((r) => r.at >= dayStart && r.at < dayStart + DAY).map((r) => r.id);
  return { path, watermarkTable, bucket, day, inside, dayStart };
}

async function dailyObjects(bucket: string) {
  return readS3Objects(bucket, 'logs/events_daily/');
}

describe('export handler: daily compaction', () => {
  let setup: Setup;
  let handler: ReturnType<typeof makeHandler>;

  beforeAll(async () => {
    setup = await setUp('c1');
    handler = makeHandler(testRuntime({ path: setup.path, watermarkTable: setup.watermarkTable }));
  }, 180_000);

  it('refuses a day whose windows are not all committed, and writes nothing', async () => {
    const { day, bucket } = setup;
    const before = await handler({ compact: { cluster: 'c1', table: 'events', date: day } });

    expect(before.mode).toBe('compact');
    expect(before.clusters[0]?.tables[0]?.skipped).toMatch(
      /^refused: the watermark \(none\) has not passed the end of/,
    );
    expect((await dailyObjects(bucket)).size).toBe(0);
  });

  it('writes one object with exactly the rows of the day’s window objects, in time order; twice changes nothing', async () => {
    const { day, bucket, watermarkTable, inside } = setup;
    await exportDay(handler, setup, 'c1');
    const watermark = (await readWatermark(watermarkTable, 'c1', 'events'))?.watermark as string;
    expect(toMicros(watermark)).toBeGreaterThan(toMicros(`${day}T00:00:00Z`) + DAY);

    // One window short of the day's end: refused.
    const dayEnd = formatTimestamp(toMicros(`${day}T00:00:00Z`) + DAY);
    await setWatermark(watermarkTable, 'c1', 'events', formatTimestamp(toMicros(dayEnd) - minutes(5)));
    const early = await handler({ compact: { cluster: 'c1', table: 'events', date: day } });
    expect(early.clusters[0]?.tables[0]?.skipped).toMatch(/^refused: /);
    expect((await dailyObjects(bucket)).size).toBe(0);
    await setWatermark(watermarkTable, 'c1', 'events', watermark);

    const windows = await readS3Objects(bucket, `logs/events/cluster=c1/dt=${day}/`);
    // Hundreds of windows, every one of the day's 288 holding rows.
    expect(windows.size).toBe(288);
    const union = [...windows.keys()].sort().flatMap((key) => windows.get(key) ?? []);

    const first = await handler({ compact: { cluster: 'c1', table: 'events', date: day } });

    const summary = first.clusters[0]?.tables[0];
    expect(summary).toMatchObject({
      windows: 288,
      rows: inside.length,
      objectsWritten: 1,
      objectsSkipped: 0,
    });
    const daily = await dailyObjects(bucket);
    const key = `logs/events_daily/cluster=c1/dt=${day}/events.c1.${day.replaceAll('-', '')}.jsonl.gz`;
    expect([...daily.keys()]).toEqual([key]);
    const rows = daily.get(key) ?? [];
    expect(rows).toEqual(union);
    expect(rows.map((r) => r.id)).toEqual(inside);
    const times = rows.map((r) => toMicros(String(r.at)));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(times[0]).toBe(toMicros(`${day}T00:00:00Z`));
    expect(times.at(-1)).toBe(toMicros(dayEnd) - 1);
    const etag = (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ETag;

    const second = await handler({ compact: { cluster: 'c1', table: 'events', date: day } });

    expect(second.clusters[0]?.tables[0]).toMatchObject({ objectsWritten: 0, objectsSkipped: 1, rows: 0 });
    expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ETag).toBe(etag);
    expect((await dailyObjects(bucket)).size).toBe(1);
  }, 180_000);

  it('compacts yesterday of every enabled cluster on the scheduled form', async () => {
    const { result: summary, logs } = await withLogs(() => handler({ compact: {} }));
    expect(summary.mode).toBe('compact');
    const yesterday = dayOf(Date.now() * 1000 - DAY);
    expect(summary.date).toBe(yesterday);
    expect(summary.clusters.map((c) => c.cluster)).toEqual(['c1']);
    // Yesterday is not committed (the watermark stops an hour into it): refused, nothing written. The schedule
    // never comes back to that day, so the refusal is an error, logged as one (the alarm), with the event to run.
    const compactEvent = JSON.stringify({ compact: { cluster: 'c1', table: 'events', date: yesterday } });
    expect(summary.clusters[0]?.tables[0]?.skipped).toBeUndefined();
    expect(summary.clusters[0]?.tables[0]?.error).toMatch(
      new RegExp(
        `^Compaction of ${yesterday} refused: the watermark .* has not passed the end of ${yesterday}`,
      ),
    );
    expect(
      summary.clusters[0]?.tables[0]?.error?.endsWith(`; once that is resolved, run ${compactEvent}`),
    ).toBe(true);
    expect(logs).toContainEqual(
      expect.objectContaining({
        level: 'ERROR',
        message: 'Compaction refused',
        table: 'events',
        compactEvent,
      }),
    );
    expect([...(await dailyObjects(setup.bucket)).keys()].every((k) => k.includes(`dt=${setup.day}/`))).toBe(
      true,
    );
  });
});

describe('export handler: compaction that fails half-way', () => {
  it('leaves no daily object and no upload behind, and the next try writes the whole day', async () => {
    const setup = await setUp('c2');
    const handler = makeHandler(testRuntime({ path: setup.path, watermarkTable: setup.watermarkTable }));
    await exportDay(handler, setup, 'c2');
    const prefix = `logs/events/cluster=c2/dt=${setup.day}/`;
    const keys = [...(await readS3Objects(setup.bucket, prefix)).keys()].sort();
    // A window object in the middle of the day turns unreadable (its gzip cut short).
    const victim = keys[200] as string;
    const original = await (
      await s3.send(new GetObjectCommand({ Bucket: setup.bucket, Key: victim }))
    ).Body?.transformToByteArray();
    if (!original) throw new Error('no body');
    await s3.send(
      new PutObjectCommand({
        Bucket: setup.bucket,
        Key: victim,
        Body: original.subarray(0, original.length - 12),
      }),
    );

    const failed = await handler({ compact: { cluster: 'c2', table: 'events', date: setup.day } });

    expect(failed.clusters[0]?.tables[0]?.error).toBeDefined();
    expect((await dailyObjects(setup.bucket)).size).toBe(0);
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: setup.bucket }));
    expect(uploads.Uploads ?? []).toEqual([]);

    await s3.send(new PutObjectCommand({ Bucket: setup.bucket, Key: victim, Body: original }));
    const retried = await handler({ compact: { cluster: 'c2', table: 'events', date: setup.day } });

    expect(retried.clusters[0]?.tables[0]).toMatchObject({ objectsWritten: 1, rows: setup.inside.length });
    const daily = [...(await dailyObjects(setup.bucket)).values()];
    expect(daily.flat().map((r) => r.id)).toEqual(setup.inside);
  }, 180_000);
});

describe('compact events', () => {
  it('names what is wrong with a malformed one before anything runs', async () => {
    const handler = makeHandler(testRuntime({ path: '/nowhere', watermarkTable: 'none' }));
    await expect(handler({ compact: { table: 'events' } })).rejects.toThrow(
      /table: a table needs its cluster/,
    );
    await expect(handler({ compact: { cluster: 'c1', date: '2026-13-01' } })).rejects.toThrow(
      /date: is not a calendar day/,
    );
    await expect(handler({ compact: { cluster: 'c1', date: '2026-02-30' } })).rejects.toThrow(EventError);
    await expect(handler({ compact: { cluster: 'c1', date: 'yesterday' } })).rejects.toThrow(
      /date: must be a day/,
    );
    await expect(handler({ compact: { cluster: 'c1', extra: 1 } })).rejects.toThrow(/Invalid compact event/);
    await expect(handler({ compact: { cluster: '../x' } })).rejects.toThrow(/not a valid cluster name/);
    await expect(
      handler({ compact: { cluster: 'c1', table: 'events', date: '2026-11-28', replace: 'yes' } }),
    ).rejects.toThrow(
      /^Invalid compact event: compact\.replace: Invalid input: expected boolean, received string$/,
    );
    // The scheduled form compacts yesterday of every cluster: it never replaces.
    await expect(handler({ compact: { replace: true } })).rejects.toThrow(
      /compact\.replace: replace needs a cluster and a date/,
    );
  });
});

describe('export handler: daily compaction of Parquet windows', () => {
  it('joins the windows’ row groups into one file DuckDB reads as exactly their rows, values and types', async () => {
    const now = await mysqlNow();
    const dayStart = toMicros(`${dayOf(now - 2 * DAY)}T00:00:00Z`);
    const day = dayOf(dayStart);
    const database = await createMysqlDatabase();
    const admin = await mysqlAdmin();
    const count = 400;
    try {
      await admin.query(
        `CREATE TABLE \`${database}\`.typed (id INT PRIMARY KEY, at TIMESTAMP(6) NOT NULL, big BIGINT UNSIGNED,
          amount DECIMAL(30,10), ratio DOUBLE, note VARCHAR(100), INDEX (at))`,
      );
      const rows = Array.from({ length: count }, (_, i) => [
        i + 1,
        sqlTimestamp(i === count - 1 ? dayStart + DAY - 1 : dayStart + Math.floor((i * DAY) / count) + 7),
        i % 7 === 0 ? null : (18446744073709551615n - BigInt(i)).toString(),
        i % 5 === 0 ? null : `${12345678901234567890n + BigInt(i)}.0000000001`,
        i % 3 === 0 ? null : i / 3,
        i % 11 === 0 ? null : `note ${i} 'quoted'`,
      ]);
      await admin.query(`INSERT INTO \`${database}\`.typed VALUES ?`, [rows]);
    } finally {
      await admin.end();
    }
    const directory = exportDirectory();
    const path = `/${uniqueName('compact')}`;
    const watermarkTable = await createWatermarkTable();
    await putParameters(path, {
      'global/destination': `file://${directory}`,
      'global/window-minutes': '5',
      'global/format': 'parquet',
      ...mysqlClusterParameters('p1'),
      'clusters/p1/tables': 'none',
      'clusters/p1/custom/typed/query': `SELECT id, at, big, amount, ratio, note FROM \`${database}\`.typed`,
      'clusters/p1/custom/typed/watermark-column': 'at',
    });
    const handler = makeHandler(testRuntime({ path, watermarkTable }));
    const to = formatTimestamp(dayStart + DAY);
    const exported = await handler({ cluster: 'p1', from: formatTimestamp(dayStart), to });
    expect(exported.clusters[0]?.tables[0]).toMatchObject({ rows: count, objectsWritten: 288 });
    await setWatermark(watermarkTable, 'p1', 'typed', to);

    const compacted = await handler({ compact: { cluster: 'p1', table: 'typed', date: day } });

    expect(compacted.clusters[0]?.tables[0]).toMatchObject({ windows: 288, rows: count, objectsWritten: 1 });
    const dailyFile = `${directory}/typed_daily/cluster=p1/dt=${day}/typed.p1.${day.replaceAll('-', '')}.parquet`;
    const windowsGlob = `${directory}/typed/cluster=p1/dt=${day}/*.parquet`;
    const daily = await duckdbQuery(`SELECT * FROM read_parquet(${sqlString(dailyFile)})`);
    const windows = await duckdbQuery(
      `SELECT * EXCLUDE (filename) FROM read_parquet(${sqlString(windowsGlob)}, filename = true) ORDER BY filename`,
    );
    expect(daily.columns).toEqual(windows.columns);
    expect(daily.columns.map((c) => `${c.name} ${c.type}`)).toEqual([
      'id INTEGER',
      'at TIMESTAMP WITH TIME ZONE',
      'big DECIMAL(20,0)',
      'amount DECIMAL(30,10)',
      'ratio DOUBLE',
      'note VARCHAR',
      // The partition columns, from the key (DuckDB's Hive partitioning).
      'cluster VARCHAR',
      'dt DATE',
    ]);
    // The file's own order is the windows' order, which is time order.
    expect(daily.rows).toEqual(windows.rows);
    expect(daily.rows.map((r) => r.id)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    expect(daily.rows[1]).toMatchObject({
      big: '18446744073709551614',
      amount: '12345678901234567891.0000000001',
    });
    expect(isoFromDuckDb(String(daily.rows.at(-1)?.at))).toBe(formatTimestamp(dayStart + DAY - 1));
    // A filter on the time column finds its rows (no statistic claims a range it does not hold).
    const late = await duckdbQuery(
      `SELECT count(*) AS n FROM read_parquet(${sqlString(dailyFile)}) WHERE "at" >= CAST('${day} 23:59:59.999999+00' AS TIMESTAMPTZ)`,
    );
    expect(Number(late.rows[0]?.n)).toBe(1);
  }, 180_000);
});
