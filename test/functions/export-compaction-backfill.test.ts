import { readFile, stat } from 'node:fs/promises';
import { Metrics } from '@aws-lambda-powertools/metrics';
import {
  DeleteObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/export';
import type { ExportSummary } from '../../shared/export/exporter';
import { WatermarkStore } from '../../shared/export/plan/watermark-store';
import { dayOf, formatTimestamp, hours, minutes, toMicros } from '../../shared/export/sources/time';
import { objectKey } from '../../shared/export/table-export';
import { emfMetrics } from '../deploy/emitted-metrics';
import {
  createBucket,
  createMysqlEvents,
  createWatermarkTable,
  dynamo,
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
import { mysqlAdmin, uniqueName } from '../stack/fixtures';
import { withLogs } from '../support/capture';
import { duckdbQuery, sqlString } from '../support/duckdb';
import { gate } from '../support/gate';

/**
 * Compaction beside exports and backfills, against MariaDB and moto: the
 * (cluster, table) lease keeps them apart; `replace` rewrites a daily object
 * after a backfill changed the day's windows; a backfill that writes windows of
 * a compacted day says so, with the event that compacts it again.
 */

const DAY = hours(24);

interface Setup {
  path: string;
  watermarkTable: string;
  /** The S3 bucket (JSON lines) or the file:// directory (Parquet). */
  bucket: string;
  directory: string;
  database: string;
  /** The compacted day (the day before yesterday) and the day before it, `YYYY-MM-DD`. */
  day: string;
  dayBefore: string;
  dayStart: number;
}

/**
 * Rows every half hour over the two days before yesterday, exported by a backfill in one-hour windows and
 * committed (the watermark past them).
 */
async function setUp(format: 'jsonl.gz' | 'parquet' = 'jsonl.gz'): Promise<Setup> {
  const now = await mysqlNow();
  const dayStart = toMicros(`${dayOf(now - 2 * DAY)}T00:00:00Z`);
  const rows = Array.from({ length: 96 }, (_, i) => ({
    id: i + 1,
    at: dayStart - DAY + i * minutes(30) + 7_000_123,
  }));
  const path = `/${uniqueName('compact')}`;
  const directory = exportDirectory();
  const [watermarkTable, bucket, events] = await Promise.all([
    createWatermarkTable(),
    createBucket(),
    createMysqlEvents(rows),
  ]);
  await putParameters(path, {
    'global/destination': format === 'parquet' ? `file://${directory}` : `s3://${bucket}/logs`,
    'global/window-minutes': '60',
    'global/format': format,
    'global/enabled-clusters': ['c1'],
    ...mysqlClusterParameters('c1'),
    'clusters/c1/tables': 'none',
    'clusters/c1/custom/events/query': events.query,
    'clusters/c1/custom/events/watermark-column': 'at',
  });
  const setup = {
    path,
    watermarkTable,
    bucket,
    directory,
    database: events.database,
    day: dayOf(dayStart),
    dayBefore: dayOf(dayStart - DAY),
    dayStart,
  };
  const handler = makeHandler(testRuntime({ path, watermarkTable }));
  const exported = await handler({
    cluster: 'c1',
    from: formatTimestamp(dayStart - DAY),
    to: formatTimestamp(dayStart + DAY),
  });
  expect(exported.clusters[0]?.tables[0]).toMatchObject({ objectsWritten: 48, rows: 96 });
  await setWatermark(watermarkTable, 'c1', 'events', formatTimestamp(dayStart + DAY));
  return setup;
}

const tableOf = (summary: ExportSummary) => summary.clusters[0]?.tables[0];

/** The S3 key of the window of the day starting at `hour` (0-23). */
const windowKey = (setup: Setup, hour: number, dayStart = setup.dayStart) =>
  `logs/${objectKey('c1', 'events', {
    lo: formatTimestamp(dayStart + hours(hour)),
    hi: formatTimestamp(dayStart + hours(hour + 1)),
  })}`;

const dailyS3Key = (setup: Setup, day = setup.day) =>
  `logs/events_daily/cluster=c1/dt=${day}/events.c1.${day.replaceAll('-', '')}.jsonl.gz`;

/** The rows of the day's window objects, in key (time) order. */
async function windowRows(setup: Setup) {
  const windows = await readS3Objects(setup.bucket, `logs/events/cluster=c1/dt=${setup.day}/`);
  return [...windows.keys()].sort().flatMap((key) => windows.get(key) ?? []);
}

async function dailyRows(setup: Setup) {
  return (await readS3Objects(setup.bucket, 'logs/events_daily/')).get(dailyS3Key(setup));
}

const etagOf = async (setup: Setup) =>
  (await s3.send(new HeadObjectCommand({ Bucket: setup.bucket, Key: dailyS3Key(setup) }))).ETag;

/**
 * An S3 client that holds GetObject of `key` until `open()` (`reached` resolves when it arrives), and records
 * the keys of every HeadObject.
 */
function watchedS3(key?: string) {
  const held = gate();
  const heads: string[] = [];
  const client = new S3Client({ forcePathStyle: true });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { Key?: string };
      if (context.commandName === 'HeadObjectCommand') heads.push(input.Key ?? '');
      if (context.commandName === 'GetObjectCommand' && input.Key === key) await held.pass();
      return next(args);
    },
    { step: 'initialize', name: 'watchS3' },
  );
  return { client, reached: held.reached, open: held.open, heads };
}

describe('export handler: compaction under the (cluster, table) lease', () => {
  it('keeps a backfill and an export of the table out while it reads the day, and gives the lease up after', async () => {
    const setup = await setUp();
    const { path, watermarkTable, day } = setup;
    const handler = makeHandler(testRuntime({ path, watermarkTable }));
    // The compaction stops at the read of the day's eleventh window until the other runs have been tried.
    const watched = watchedS3(windowKey(setup, 10));
    const compacting = makeHandler({ ...testRuntime({ path, watermarkTable }), s3: () => watched.client })({
      compact: { cluster: 'c1', table: 'events', date: day },
    });
    await watched.reached;
    expect((await readWatermark(watermarkTable, 'c1', 'events'))?.leaseOwner).toMatch(/^local:compact:/);

    const backfill = await handler({
      cluster: 'c1',
      from: `${day}T00:00:00Z`,
      to: `${day}T02:00:00Z`,
      replace: true,
    });
    const { result: catchUp, logs: catchUpLogs } = await withLogs(() => handler({ cluster: 'c1' }));

    // The backfill, run by hand, fails and says why; the scheduled export leaves the table to the compaction
    // (the two meet every day at 01:30): skipped, not an error line for the export-table-failures alarm.
    expect(tableOf(backfill)?.error).toMatch(/^Another run holds the lease on c1\/events/);
    expect(tableOf(catchUp)?.error).toBeUndefined();
    expect(tableOf(catchUp)?.skipped).toBe(
      'Another run holds the lease on c1/events (an export, a backfill or a compaction of the table); the next run catches up',
    );
    expect(catchUpLogs.filter((l) => l.level === 'ERROR')).toEqual([]);
    expect(catchUpLogs.find((l) => l.message === 'Table skipped')).toMatchObject({
      level: 'WARN',
      table: 'events',
    });
    for (const refused of [backfill, catchUp]) {
      expect(tableOf(refused)).toMatchObject({ windows: 0, rows: 0, objectsWritten: 0, objectsSkipped: 0 });
    }
    watched.open();
    const compacted = await compacting;

    expect(tableOf(compacted)).toMatchObject({ windows: 24, rows: 48, objectsWritten: 1 });
    expect(await dailyRows(setup)).toEqual(await windowRows(setup));
    expect((await readWatermark(watermarkTable, 'c1', 'events'))?.leaseOwner).toBeUndefined();
    // Now the backfill takes the lease: the objects exist, nothing is written.
    const after = await handler({ cluster: 'c1', from: `${day}T00:00:00Z`, to: `${day}T02:00:00Z` });
    expect(tableOf(after)).toMatchObject({ objectsWritten: 0, objectsSkipped: 2 });
    expect(tableOf(after)?.error).toBeUndefined();
    expect(tableOf(after)?.staleDailyDays).toBeUndefined();
  });
});

describe('export handler: a table whose lease another run keeps', () => {
  it('is skipped without an error line, but its lag still counts in LaggingTables', async () => {
    // A backfill invoked again and again (or a lease written by hand) holds the table; its watermark is a day behind.
    const setup = await setUp();
    const { path, watermarkTable } = setup;
    const held = new WatermarkStore(dynamo, watermarkTable);
    await held.acquire('c1', 'events', 'backfill-run', Date.now() + 10 * 60_000);
    const metrics = new Metrics({ namespace: 'lease-lag-test', serviceName: 'log-export' });

    const { result, logs } = await withLogs(() =>
      makeHandler({ ...testRuntime({ path, watermarkTable }), metrics })({ cluster: 'c1' }),
    );
    const emitted = emfMetrics(logs.map((l) => JSON.stringify(l)).join('\n'));
    const run = logs.find((l) => 'LaggingTables' in l);

    expect(tableOf(result)?.skipped).toMatch(/^Another run holds the lease on c1\/events/);
    expect(tableOf(result)?.watermark).toBe(formatTimestamp(setup.dayStart + DAY));
    expect(logs.filter((l) => l.level === 'ERROR')).toEqual([]);
    // Not exported (the heartbeat does not count it), but lagging: the lag alarm sees a lease that is never given up.
    expect(run).toMatchObject({ TablesExported: 0, LaggingTables: 1, ExportTableErrors: 0 });
    expect(emitted.find((m) => m.name === 'ExportLagSeconds')?.dimensions).toMatchObject({
      Cluster: 'c1',
      Table: 'events',
    });
    expect(emitted.some((m) => m.name === 'RowsExported')).toBe(false);
  });
});

describe('export handler: a backfill into a compacted day, then compaction with replace', () => {
  it('names the stale day with the event to run; without replace the daily object stays; with it, it holds exactly the new rows', async () => {
    const setup = await setUp();
    const { path, watermarkTable, day, database } = setup;
    const handler = makeHandler(testRuntime({ path, watermarkTable }));
    expect(tableOf(await handler({ compact: { cluster: 'c1', table: 'events', date: day } }))).toMatchObject({
      objectsWritten: 1,
      rows: 48,
    });
    const before = await dailyRows(setup);
    const etag = await etagOf(setup);
    // A row of the day's fourth hour is corrected, and one is added to it.
    const admin = await mysqlAdmin();
    try {
      await admin.query(`UPDATE \`${database}\`.events SET note = 'corrected' WHERE id = 55`);
      await admin.query(`INSERT INTO \`${database}\`.events (id, at, note) VALUES (1000, ?, 'late')`, [
        `${day} 03:45:00.000001`,
      ]);
    } finally {
      await admin.end();
    }

    const { result: backfill, logs } = await withLogs(() =>
      handler({ cluster: 'c1', from: `${day}T03:00:00Z`, to: `${day}T04:00:00Z`, replace: true }),
    );

    expect(tableOf(backfill)).toMatchObject({ objectsWritten: 1, rows: 3, staleDailyDays: [day] });
    const compactEvent = JSON.stringify({
      compact: { cluster: 'c1', table: 'events', date: day, replace: true },
    });
    const warning = logs.find((l) => l.compactEvent !== undefined);
    expect(warning).toMatchObject({
      level: 'WARN',
      table: 'events',
      date: day,
      compactEvent,
      dailyKey: `s3://${setup.bucket}/${dailyS3Key(setup)}`,
    });
    expect(warning?.message).toContain(`Backfill wrote windows of ${day}, a day already compacted`);
    expect(warning?.message).toContain(compactEvent);

    const skipped = await handler({ compact: { cluster: 'c1', table: 'events', date: day } });

    expect(tableOf(skipped)).toMatchObject({ objectsWritten: 0, objectsSkipped: 1, rows: 0 });
    expect(await etagOf(setup)).toBe(etag);
    expect(await dailyRows(setup)).toEqual(before);

    const replaced = await handler(JSON.parse(compactEvent));

    expect(tableOf(replaced)).toMatchObject({ windows: 24, rows: 49, objectsWritten: 1, objectsSkipped: 0 });
    const after = await dailyRows(setup);
    expect(after).toEqual(await windowRows(setup));
    expect(after?.find((r) => r.id === 55)?.note).toBe('corrected');
    expect(after?.map((r) => r.id)).toEqual([
      ...Array.from({ length: 8 }, (_, i) => 49 + i),
      1000,
      ...Array.from({ length: 40 }, (_, i) => 57 + i),
    ]);
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: setup.bucket }));
    expect(uploads.Uploads ?? []).toEqual([]);
  });

  it('checks only the days it wrote windows on, once each, and reports only those with a daily object', async () => {
    const setup = await setUp();
    const { path, watermarkTable, day, dayBefore, dayStart } = setup;
    const watched = watchedS3();
    const handler = makeHandler({ ...testRuntime({ path, watermarkTable }), s3: () => watched.client });
    expect(tableOf(await handler({ compact: { cluster: 'c1', table: 'events', date: day } }))).toMatchObject({
      objectsWritten: 1,
    });
    // The compaction's own look for its object.
    watched.heads.length = 0;
    const range = { cluster: 'c1', from: `${dayBefore}T00:00:00Z`, to: formatTimestamp(dayStart + DAY) };
    const dailyHeads = () => watched.heads.filter((key) => key.includes('events_daily/'));

    // Every window exists: nothing written, nothing checked.
    const { result: none, logs: quiet } = await withLogs(() => handler(range));
    expect(tableOf(none)).toMatchObject({ objectsWritten: 0, objectsSkipped: 48 });
    expect(tableOf(none)?.staleDailyDays).toBeUndefined();
    expect(dailyHeads()).toEqual([]);

    // A dry run writes nothing: nothing checked either.
    const dry = await handler({ ...range, dryRun: true });
    expect(tableOf(dry)?.rows).toBe(96);
    expect(tableOf(dry)?.staleDailyDays).toBeUndefined();
    expect(dailyHeads()).toEqual([]);

    // Two windows of the compacted day and one of the day before go missing; the backfill writes them again.
    for (const key of [windowKey(setup, 5), windowKey(setup, 17), windowKey(setup, 9, dayStart - DAY)]) {
      await s3.send(new DeleteObjectCommand({ Bucket: setup.bucket, Key: key }));
    }
    const { result: filled, logs } = await withLogs(() => handler(range));

    expect(tableOf(filled)).toMatchObject({ objectsWritten: 3, objectsSkipped: 45, staleDailyDays: [day] });
    // One check per day written; the day before has no daily object and is not reported.
    expect(dailyHeads().sort()).toEqual([dailyS3Key(setup, dayBefore), dailyS3Key(setup, day)].sort());
    const warnings = logs.filter((l) => l.compactEvent !== undefined);
    expect(warnings.map((w) => w.date)).toEqual([day]);
    expect(quiet.filter((l) => l.compactEvent !== undefined)).toEqual([]);
  });
});

describe('export handler: compaction with replace of Parquet windows', () => {
  it('rewrites the daily file after a backfill with replace: DuckDB reads exactly the new windows’ rows', async () => {
    const setup = await setUp('parquet');
    const { path, watermarkTable, day, directory, database } = setup;
    const handler = makeHandler(testRuntime({ path, watermarkTable }));
    expect(tableOf(await handler({ compact: { cluster: 'c1', table: 'events', date: day } }))).toMatchObject({
      objectsWritten: 1,
      rows: 48,
    });
    const dailyFile = `${directory}/events_daily/cluster=c1/dt=${day}/events.c1.${day.replaceAll('-', '')}.parquet`;
    const windowsGlob = `${directory}/events/cluster=c1/dt=${day}/*.parquet`;
    const readDaily = () => duckdbQuery(`SELECT id, note FROM read_parquet(${sqlString(dailyFile)})`);
    const readWindows = () =>
      duckdbQuery(
        `SELECT id, note FROM read_parquet(${sqlString(windowsGlob)}, filename = true) ORDER BY filename, id`,
      );
    const original = await readFile(dailyFile);
    const admin = await mysqlAdmin();
    try {
      await admin.query(`UPDATE \`${database}\`.events SET note = 'corrected' WHERE id IN (49, 96)`);
    } finally {
      await admin.end();
    }
    const backfill = await handler({
      cluster: 'c1',
      from: `${day}T00:00:00Z`,
      to: formatTimestamp(setup.dayStart + DAY),
      replace: true,
    });
    expect(tableOf(backfill)).toMatchObject({ objectsWritten: 24, staleDailyDays: [day] });

    const skipped = await handler({ compact: { cluster: 'c1', table: 'events', date: day } });

    expect(tableOf(skipped)).toMatchObject({ objectsWritten: 0, objectsSkipped: 1 });
    expect((await readFile(dailyFile)).equals(original)).toBe(true);
    expect((await readDaily()).rows.filter((r) => r.note === 'corrected')).toEqual([]);

    const replaced = await handler({ compact: { cluster: 'c1', table: 'events', date: day, replace: true } });

    expect(tableOf(replaced)).toMatchObject({ windows: 24, rows: 48, objectsWritten: 1 });
    const daily = await readDaily();
    expect(daily.rows).toEqual((await readWindows()).rows);
    expect(daily.rows.map((r) => Number(r.id))).toEqual(Array.from({ length: 48 }, (_, i) => 49 + i));
    expect(daily.rows.filter((r) => r.note === 'corrected').map((r) => Number(r.id))).toEqual([49, 96]);
    expect((await stat(dailyFile)).size).toBeGreaterThan(0);
  });
});
