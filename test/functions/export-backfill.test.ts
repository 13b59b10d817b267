import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/export';
import { ConfigError, EventError } from '../../shared/errors';
import { floorToGrid, formatTimestamp, hours, minutes } from '../../shared/export/sources/time';
import {
  compact,
  countItems,
  createBucket,
  createMysqlEvents,
  createWatermarkTable,
  dynamo,
  mysqlClusterParameters,
  mysqlNow,
  parseKey,
  putParameters,
  readS3Objects,
  readWatermark,
  setWatermark,
  testRuntime,
} from '../shared/export/support';
import { mysqlAdmin, uniqueName } from '../stack/fixtures';

async function setUp(extra: Record<string, string | string[]> = {}, count = 360) {
  const now = await mysqlNow();
  const start = floorToGrid(now - hours(3), 15);
  const rows = Array.from({ length: count }, (_, i) => ({ id: i + 1, at: start + i * 20_000_000 }));
  const path = `/${uniqueName('export')}`;
  const [watermarkTable, bucket, events] = await Promise.all([
    createWatermarkTable(),
    createBucket(),
    createMysqlEvents(rows),
  ]);
  await putParameters(path, {
    'global/destination': `s3://${bucket}`,
    'global/window-minutes': '15',
    'global/initial-lookback-hours': '4',
    ...mysqlClusterParameters('c1'),
    'clusters/c1/tables': 'none',
    'clusters/c1/custom/events/query': events.query,
    'clusters/c1/custom/events/watermark-column': 'at',
    ...extra,
  });
  return { path, watermarkTable, bucket, start, rows, database: events.database };
}

describe('export handler: backfills', () => {
  it('exports a range before the watermark; dry run writes nothing; a repeat adds nothing; replace rewrites', async () => {
    const { path, watermarkTable, bucket, start, database } = await setUp();
    // The table's history before this watermark was never exported.
    const watermark = formatTimestamp(start + hours(2));
    await setWatermark(watermarkTable, 'c1', 'events', watermark);
    const handler = makeHandler(testRuntime({ path, watermarkTable }));
    const range = { cluster: 'c1', from: formatTimestamp(start), to: watermark };

    const dry = await handler({ ...range, dryRun: true });

    expect(dry.mode).toBe('dry-run');
    const counted = dry.clusters[0]?.tables[0];
    expect(counted?.windows).toBe(8);
    expect(Object.values(counted?.rowsPerWindow ?? {})).toEqual(Array(8).fill(45));
    expect((await readS3Objects(bucket)).size).toBe(0);
    expect(await readWatermark(watermarkTable, 'c1', 'events')).toMatchObject({ watermark, version: 1 });

    const backfill = await handler(range);

    expect(backfill.clusters[0]?.tables[0]).toMatchObject({ windows: 8, rows: 360, objectsWritten: 8 });
    const objects = await readS3Objects(bucket);
    expect(objects.size).toBe(8);
    expect([...objects.values()].flat().map((r) => r.id)).toEqual(
      Array.from({ length: 360 }, (_, i) => i + 1),
    );
    expect((await readWatermark(watermarkTable, 'c1', 'events'))?.watermark).toBe(watermark);

    const repeat = await handler(range);

    expect(repeat.clusters[0]?.tables[0]).toMatchObject({ objectsWritten: 0, objectsSkipped: 8 });
    expect((await readS3Objects(bucket)).size).toBe(8);

    const admin = await mysqlAdmin();
    await admin.query(`UPDATE \`${database}\`.events SET note = 'corrected' WHERE id = 1`);
    await admin.end();
    const replaced = await handler({ ...range, to: formatTimestamp(start + minutes(15)), replace: true });

    expect(replaced.clusters[0]?.tables[0]).toMatchObject({ objectsWritten: 1, objectsSkipped: 0 });
    const after = await readS3Objects(bucket);
    expect([...after.values()].flat().find((r) => r.id === 1)?.note).toBe('corrected');
    expect([...after.values()].flat()).toHaveLength(360);
    expect((await readWatermark(watermarkTable, 'c1', 'events'))?.watermark).toBe(watermark);
  });

  it('never moves a watermark backwards, even when a backfill ends before it', async () => {
    const { path, watermarkTable, bucket, start } = await setUp();
    const handler = makeHandler(testRuntime({ path, watermarkTable }));
    await handler({ cluster: 'c1' });
    const before = await readWatermark(watermarkTable, 'c1', 'events');

    await handler({
      cluster: 'c1',
      from: formatTimestamp(start),
      to: formatTimestamp(start + hours(1)),
      replace: true,
    });

    expect((await readWatermark(watermarkTable, 'c1', 'events'))?.watermark).toBe(before?.watermark);
    expect([...(await readS3Objects(bucket)).values()].flat()).toHaveLength(360);
  });
});

describe('export handler: bad input', () => {
  let shared: Awaited<ReturnType<typeof setUp>>;
  beforeAll(async () => {
    shared = await setUp();
  });

  it.each([
    [{ cluster: 'nope' }, /Unknown cluster "nope"/],
    [
      { cluster: 'c1', from: '2024-02-30T00:00:00Z', to: '2024-03-01T00:00:00Z' },
      /from: must be an ISO-8601/,
    ],
    [{ cluster: 'c1', from: 'yesterday', to: '2024-03-01T00:00:00Z' }, /from: must be an ISO-8601/],
    [{ cluster: 'c1', from: '2024-03-01T00:00:00Z', to: '2024-03-01T00:00:00Z' }, /from: must be before to/],
    [{ cluster: 'c1', from: '2024-03-01T00:00:00Z' }, /to: from and to go together/],
    [{ cluster: 'c1', tables: ['general_log'] }, /exports no table "general_log"/],
    [{ cluster: 'c1', dryRun: true }, /dryRun and replace need from and to/],
    [{ cluster: 'c1', form: '2024-03-01T00:00:00Z' }, /Unrecognized key/],
    [{}, /cluster/],
  ])('rejects %j with a clear error, writing nothing', async (event, message) => {
    const { path, watermarkTable, bucket } = shared;
    const handler = makeHandler(testRuntime({ path, watermarkTable }));

    await expect(handler(event)).rejects.toThrow(message);

    await expect(handler(event)).rejects.toBeInstanceOf(EventError);
    expect((await readS3Objects(bucket)).size).toBe(0);
    expect(await countItems(watermarkTable)).toBe(0);
  });

  it.each([
    [
      { 'clusters/c1/tables': 'general_log,nope' },
      /clusters\/c1\/tables: unknown mysql catalog table "nope"/,
    ],
    [
      {
        'clusters/c1/custom/Bad-Name/query': 'SELECT 1',
        'clusters/c1/custom/Bad-Name/watermark-column': 'at',
      },
      /clusters\/c1\/custom\/Bad-Name: custom export names/,
    ],
    [
      {
        'clusters/c1/custom/slow_log/query': 'SELECT 1',
        'clusters/c1/custom/slow_log/watermark-column': 'at',
      },
      /custom\/slow_log: custom export names/,
    ],
    [
      { 'clusters/c1/custom/events/watermark-column': 'at; DROP TABLE x' },
      /watermark-column: must be a plain column/,
    ],
    [
      { 'clusters/c1/custom/events/full-scan': 'yes' },
      /clusters\/c1\/custom\/events\/full-scan: must be true or false/,
    ],
    [{ 'global/window-minutes': '7' }, /global\/window-minutes: must divide 1440/],
  ])('rejects configuration %j naming the parameter, writing nothing', async (extra, message) => {
    const { path, watermarkTable, bucket } = await setUp(extra, 10);
    const handler = makeHandler(testRuntime({ path, watermarkTable }));

    const failure = handler({ cluster: 'c1' });

    await expect(failure).rejects.toBeInstanceOf(ConfigError);
    await expect(failure).rejects.toThrow(message);
    expect((await readS3Objects(bucket)).size).toBe(0);
    expect(await countItems(watermarkTable)).toBe(0);
  });

  it('rejects a configuration without destination, naming the parameter', async () => {
    const path = `/${uniqueName('export')}`;
    const watermarkTable = await createWatermarkTable();
    await putParameters(path, { ...mysqlClusterParameters('c1') });
    const handler = makeHandler(testRuntime({ path, watermarkTable }));

    await expect(handler({ cluster: 'c1' })).rejects.toThrow(`${path}/global/destination: missing`);
    expect(await countItems(watermarkTable)).toBe(0);
  });

  it('fails a table cleanly when its watermark moved under it (lost condition), leaving the watermark alone', async () => {
    const { path, watermarkTable, bucket } = await setUp();
    const handler = makeHandler(
      testRuntime({
        path,
        watermarkTable,
        // Another writer bumps the version between this run's object write and its watermark update.
        afterObjectWritten: async () => {
          await dynamo.send(
            new UpdateItemCommand({
              TableName: watermarkTable,
              Key: { cluster: { S: 'c1' }, table: { S: 'events' } },
              UpdateExpression: 'ADD version :one',
              ExpressionAttributeValues: { ':one': { N: '1' } },
            }),
          );
        },
      }),
    );

    const result = await handler({ cluster: 'c1' });

    expect(result.clusters[0]?.tables[0]?.error).toMatch(/Lost the lease/);
    // Empty windows before the data committed; the window of the one object written did not.
    const objects = [...(await readS3Objects(bucket)).keys()];
    expect(objects).toHaveLength(1);
    expect(compact((await readWatermark(watermarkTable, 'c1', 'events'))?.watermark ?? '')).toBe(
      parseKey(objects[0] as string).lo,
    );
  });
});
