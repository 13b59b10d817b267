import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/export';
import type { ExportSummary } from '../../shared/export';
import { floorToGrid, formatTimestamp, hours, minutes } from '../../shared/export/sources/time';
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
  setWatermark,
  testRuntime,
} from '../shared/export/support';
import { uniqueName } from '../stack/fixtures';
import { RequestCounter } from '../support/request-counter';

/**
 * What one table's run costs in DynamoDB and S3 requests, counted by a
 * middleware on the clients the handler is given (moto). A window's commit is
 * one conditional write, and the run's last commit also releases the lease; an
 * incremental run writes objects conditionally instead of asking first.
 */

const HOUR_WINDOWS = '60';

/** A MariaDB custom export with one row in each of the `due` hourly windows before the current hour. */
async function setUp(due: number) {
  const now = await mysqlNow();
  const hour = floorToGrid(now, 60);
  const rows = Array.from({ length: due }, (_, i) => ({ id: i + 1, at: hour - hours(due - i) + minutes(7) }));
  const path = `/${uniqueName('requests')}`;
  const [watermarkTable, bucket, events] = await Promise.all([
    createWatermarkTable(),
    createBucket(),
    createMysqlEvents(rows),
  ]);
  await putParameters(path, {
    'global/destination': `s3://${bucket}/logs`,
    'global/window-minutes': HOUR_WINDOWS,
    'global/lag-seconds': '0',
    ...mysqlClusterParameters('c1'),
    'clusters/c1/tables': 'none',
    'clusters/c1/custom/events/query': events.query,
    'clusters/c1/custom/events/watermark-column': 'at',
  });
  await setWatermark(watermarkTable, 'c1', 'events', formatTimestamp(hour - hours(due)));
  const counter = new RequestCounter();
  const runtime = {
    ...testRuntime({ path, watermarkTable }),
    dynamo: () => counter.count(new DynamoDBClient({}), 'DynamoDB'),
    s3: () => counter.count(new S3Client({ forcePathStyle: true }), 'S3'),
  };
  return { path, watermarkTable, bucket, counter, runtime, hour };
}

const table = (summary: ExportSummary) => summary.clusters[0]?.tables[0];

describe('export handler: DynamoDB and S3 requests of one table', () => {
  it('commits each window with one write, the last of which releases the lease, and writes each object with one request', async () => {
    const { watermarkTable, counter, runtime } = await setUp(3);

    const { result, requests } = await counter.during(() => makeHandler(runtime)({ cluster: 'c1' }));

    const exported = table(result);
    expect(exported).toMatchObject({ rows: 3, objectsWritten: 3 });
    // Three windows, or four when the hour turned meanwhile: the lease take, then one write per window.
    expect(requests).toEqual({
      'DynamoDB UpdateItem': 1 + (exported?.windows ?? 0),
      'S3 PutObject': 3,
    });
    expect(await readWatermark(watermarkTable, 'c1', 'events')).toMatchObject({
      leaseOwner: undefined,
      rowsExported: 3,
    });
  });

  it('takes and releases the lease when no window is due: two writes, nothing in S3', async () => {
    const { counter, runtime } = await setUp(1);
    const handler = makeHandler(runtime);
    const first = await handler({ cluster: 'c1' });
    expect(table(first)?.objectsWritten).toBe(1);

    const { result, requests } = await counter.during(() => handler({ cluster: 'c1' }));

    // The hour may have turned since the first run: then its empty window is committed instead of a release.
    expect(table(result)?.objectsWritten).toBe(0);
    expect(requests).toEqual({ 'DynamoDB UpdateItem': 2 });
  });

  it('learns from the conditional write that an object left by a crash exists: no HEAD request, no duplicate', async () => {
    const { bucket, counter, runtime } = await setUp(2);
    let crashes = 1;
    const crashing = makeHandler({
      ...runtime,
      afterObjectWritten: async () => {
        if (crashes-- > 0) throw new Error('crash between the object and its commit');
      },
    });
    const crashed = await crashing({ cluster: 'c1' });
    expect(table(crashed)).toMatchObject({ objectsWritten: 1, windows: 0 });
    const before = await readS3Objects(bucket);

    const { result, requests } = await counter.during(() => makeHandler(runtime)({ cluster: 'c1' }));

    // The first window's object was there (the conditional write answered 412); the second is new.
    expect(table(result)).toMatchObject({ objectsSkipped: 1, objectsWritten: 1, rows: 1 });
    expect(requests['S3 PutObject']).toBe(2);
    expect(requests['S3 HeadObject']).toBeUndefined();
    const after = await readS3Objects(bucket);
    expect(after.size).toBe(2);
    for (const [key, rows] of before) expect(after.get(key)).toEqual(rows);
    expect([...after.values()].flat().map((row) => row.id)).toEqual([1, 2]);
  });

  it('asks S3 before each window in a backfill, where existing objects are the rule', async () => {
    const { counter, runtime, hour } = await setUp(2);
    const handler = makeHandler(runtime);
    await handler({ cluster: 'c1' });
    const range = { from: formatTimestamp(hour - hours(2)), to: formatTimestamp(hour - hours(1) + 1) };

    const { result, requests } = await counter.during(() => handler({ cluster: 'c1', ...range }));

    expect(table(result)).toMatchObject({ windows: 2, objectsSkipped: 2, objectsWritten: 0 });
    expect(requests).toMatchObject({ 'S3 HeadObject': 2 });
    expect(requests['S3 PutObject']).toBeUndefined();
  });
});

describe('export handler: DynamoDB requests of a table read by position', () => {
  it('records the batch, commits each window, and releases the lease with the last commit', async () => {
    const path = `/${uniqueName('requests')}`;
    const watermarkTable = await createWatermarkTable();
    await putParameters(path, {
      'global/destination': `file://${exportDirectory()}`,
      'global/window-minutes': '1',
      'global/lag-seconds': '0',
      'global/initial-lookback-hours': '1',
      ...mysqlClusterParameters('db1'),
      'clusters/db1/tables': ['general_log'],
    });
    const counter = new RequestCounter();
    const handler = makeHandler({
      ...testRuntime({ path, watermarkTable }),
      dynamo: () => counter.count(new DynamoDBClient({}), 'DynamoDB'),
    });

    const { result, requests } = await counter.during(() => handler({ cluster: 'db1' }));

    const exported = table(result);
    expect(exported?.error).toBeUndefined();
    expect(exported?.windows).toBeGreaterThan(0);
    // The lease take, the batch recorded as pending, then one write per window.
    expect(requests).toEqual({ 'DynamoDB UpdateItem': 2 + (exported?.windows ?? 0) });
    expect(await readWatermark(watermarkTable, 'db1', 'general_log')).toMatchObject({
      leaseOwner: undefined,
    });
  });
});
