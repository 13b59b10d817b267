import { readdir } from 'node:fs/promises';
import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/export';
import { floorToGrid, formatTimestamp, hours, minutes, toMicros } from '../../shared/export/sources/time';
import {
  countItems,
  createBucket,
  createMysqlEvents,
  createWatermarkTable,
  exportDirectory,
  mysqlClusterParameters,
  mysqlNow,
  parseKey,
  putParameters,
  readFileObjects,
  readS3Objects,
  readWatermark,
  s3,
  setWatermark,
  testRuntime,
} from '../shared/export/support';
import {
  createMysqlUser,
  createPgDatabase,
  createSecret,
  mysqlAdmin,
  pgAdmin,
  randomPassword,
  secretsManager,
  stack,
  uniqueName,
} from '../stack/fixtures';
import { postgresClusterParameters } from '../support/csvlog-fixtures';

describe('export handler: custom export on PostgreSQL to files', () => {
  it('exports timestamptz rows at microsecond precision, UTF-8 text, in event-time order, each once', async () => {
    const database = await createPgDatabase();
    const admin = await pgAdmin(database);
    const now =
      Number((await admin.query(`SELECT extract(epoch FROM now())::bigint AS s`)).rows[0].s) * 1_000_000;
    const start = floorToGrid(now - hours(2), 10);
    await admin.query(
      'CREATE TABLE audit (id int PRIMARY KEY, happened timestamptz(6) NOT NULL, message text)',
    );
    // Inserted out of order; one row exactly on a boundary, one a microsecond before it.
    await admin.query(
      `INSERT INTO audit SELECT g, to_timestamp(${start / 1e6}) + (g * interval '37 second') + (g * interval '1 microsecond'), 'näive ✓ ' || g
         FROM generate_series(150, 1, -1) g`,
    );
    await admin.query(
      `INSERT INTO audit VALUES (1000, to_timestamp(${(start + minutes(30)) / 1e6}), 'boundary'),
                               (1001, to_timestamp(${(start + minutes(30)) / 1e6}) - interval '1 microsecond', 'before')`,
    );
    await admin.end();
    const { host, port, adminUser, adminPassword } = stack().postgres;
    const path = `/${uniqueName('export')}`;
    const directory = exportDirectory();
    const watermarkTable = await createWatermarkTable();
    await putParameters(path, {
      'global/destination': `file://${directory}/`,
      'global/window-minutes': '10',
      'global/initial-lookback-hours': '3',
      'clusters/pg1/engine': 'postgres',
      'clusters/pg1/host': host,
      'clusters/pg1/port': String(port),
      'clusters/pg1/database': database,
      'clusters/pg1/user': adminUser,
      'clusters/pg1/password': { secure: adminPassword },
      'clusters/pg1/ssl': 'false',
      'clusters/pg1/tables': 'none',
      'clusters/pg1/custom/audit/query': 'SELECT id, happened, message FROM audit;',
      'clusters/pg1/custom/audit/watermark-column': 'happened',
    });

    const result = await makeHandler(testRuntime({ path, watermarkTable }))({ cluster: 'pg1' });

    expect(result.clusters[0]?.tables[0]).toMatchObject({ rows: 152 });
    const objects = await readFileObjects(directory);
    const all = [...objects.entries()].sort(([a], [b]) => a.localeCompare(b)).flatMap(([, rows]) => rows);
    expect(all.map((r) => r.id).sort((a, b) => Number(a) - Number(b))).toEqual([
      ...Array.from({ length: 150 }, (_, i) => i + 1),
      1000,
      1001,
    ]);
    const times = all.map((r) => r.happened as string);
    expect([...times].sort()).toEqual(times);
    expect(all.find((r) => r.id === 1)).toEqual({
      id: 1,
      happened: formatTimestamp(start + 37_000_001),
      message: 'näive ✓ 1',
    });
    const boundaryKey = [...objects].find(([, rows]) => rows.some((r) => r.id === 1000))?.[0] as string;
    const beforeKey = [...objects].find(([, rows]) => rows.some((r) => r.id === 1001))?.[0] as string;
    expect(parseKey(boundaryKey).lo).toBe(parseKey(beforeKey).hi);
  });
});

async function mysqlSetUp(
  rows: Array<{ id: number; at: number }>,
  extra: Record<string, string | string[]> = {},
) {
  const path = `/${uniqueName('export')}`;
  const [watermarkTable, bucket, events] = await Promise.all([
    createWatermarkTable(),
    createBucket(),
    createMysqlEvents(rows),
  ]);
  await putParameters(path, {
    'global/destination': `s3://${bucket}/x`,
    'global/window-minutes': '15',
    'global/initial-lookback-hours': '6',
    ...mysqlClusterParameters('c1'),
    'clusters/c1/tables': 'none',
    'clusters/c1/custom/events/query': events.query,
    'clusters/c1/custom/events/watermark-column': 'at',
    ...extra,
  });
  return { path, watermarkTable, bucket, query: events.query };
}

describe('export handler: empty windows and sparse tables', () => {
  it('writes objects only for non-empty windows of a sparse table and still advances the watermark', async () => {
    const now = await mysqlNow();
    const base = floorToGrid(now - hours(5), 15);
    const rows = [base + 1, base + hours(2) + minutes(5), base + hours(4) + 999_999].map((at, i) => ({
      id: i + 1,
      at,
    }));
    const { path, watermarkTable, bucket } = await mysqlSetUp(rows);

    const result = await makeHandler(testRuntime({ path, watermarkTable }))({ cluster: 'c1' });

    const table = result.clusters[0]?.tables[0];
    expect(table).toMatchObject({ rows: 3, objectsWritten: 3 });
    expect(table?.windows).toBeGreaterThanOrEqual(23);
    expect((await readS3Objects(bucket, 'x/')).size).toBe(3);
    expect((await readWatermark(watermarkTable, 'c1', 'events'))?.watermark).toBe(table?.watermark);
    expect(toMicros(table?.watermark ?? '')).toBeGreaterThanOrEqual(floorToGrid(now - 60_000_000, 15));
  });

  it('advances over a table with no rows without writing any object', async () => {
    const { path, watermarkTable, bucket } = await mysqlSetUp([]);

    const result = await makeHandler(testRuntime({ path, watermarkTable }))({ cluster: 'c1' });

    expect(result.clusters[0]?.tables[0]).toMatchObject({ rows: 0, objectsWritten: 0 });
    expect(result.clusters[0]?.tables[0]?.windows).toBeGreaterThanOrEqual(23);
    expect(result.clusters[0]?.tables[0]?.error).toBeUndefined();
    expect((await readS3Objects(bucket)).size).toBe(0);
    expect((await readWatermark(watermarkTable, 'c1', 'events'))?.watermark).toBeDefined();
  });

  it('exports nothing and keeps a watermark that is ahead of the data and the clock', async () => {
    const now = await mysqlNow();
    const rows = [{ id: 1, at: now - hours(1) }];
    const { path, watermarkTable, bucket } = await mysqlSetUp(rows);
    const ahead = formatTimestamp(floorToGrid(now + hours(24), 15));
    await setWatermark(watermarkTable, 'c1', 'events', ahead);

    const result = await makeHandler(testRuntime({ path, watermarkTable }))({ cluster: 'c1' });

    expect(result.clusters[0]?.tables[0]).toMatchObject({ windows: 0, rows: 0, watermark: ahead });
    expect((await readS3Objects(bucket)).size).toBe(0);
    expect((await readWatermark(watermarkTable, 'c1', 'events'))?.watermark).toBe(ahead);
  });
});

describe('export handler: credentials, isolation, fan-out, encryption', () => {
  it('retries a refused AWSCURRENT with AWSPENDING (rotation in progress) and exports', async () => {
    const now = await mysqlNow();
    const rows = [{ id: 1, at: now - hours(1) }];
    const password = randomPassword();
    const user = await createMysqlUser({ password, grants: ['SELECT ON *.*'] });
    const { host, port } = stack().mariadb;
    const secretId = await createSecret({
      engine: 'mariadb',
      host,
      port,
      username: user,
      password: 'stale-password',
    });
    await secretsManager().send(
      new PutSecretValueCommand({
        SecretId: secretId,
        SecretString: JSON.stringify({ engine: 'mariadb', host, port, username: user, password, ssl: false }),
        VersionStages: ['AWSPENDING'],
      }),
    );
    const { path, watermarkTable, bucket, query } = await mysqlSetUp(rows);
    // c2 reads the same table through the secret being rotated.
    await putParameters(path, {
      'clusters/c2/engine': 'mariadb',
      'clusters/c2/secret-id': secretId,
      'clusters/c2/tables': 'none',
      'clusters/c2/custom/events/query': query,
      'clusters/c2/custom/events/watermark-column': 'at',
    });

    const result = await makeHandler(testRuntime({ path, watermarkTable }))({ cluster: 'c2' });

    expect(result.clusters[0]?.error).toBeUndefined();
    expect(result.clusters[0]?.tables).toMatchObject([{ rows: 1, objectsWritten: 1 }]);
    expect([...(await readS3Objects(bucket, 'x/events/cluster=c2/')).keys()]).toHaveLength(1);
  });

  it('reports a cluster whose login fails and still exports the others (scheduled, in-process)', async () => {
    const now = await mysqlNow();
    const { path, watermarkTable, bucket, query } = await mysqlSetUp([{ id: 1, at: now - hours(1) }], {
      'global/enabled-clusters': ['c1', 'broken'],
      'global/fan-out': 'off',
    });
    const { host, port } = stack().mariadb;
    const wrong = randomPassword();
    await putParameters(path, {
      'clusters/broken/engine': 'mysql',
      'clusters/broken/host': host,
      'clusters/broken/port': String(port),
      'clusters/broken/user': 'nobody',
      'clusters/broken/password': { secure: wrong },
      'clusters/broken/tables': 'none',
      'clusters/broken/custom/events/query': query,
      'clusters/broken/custom/events/watermark-column': 'at',
    });

    const result = await makeHandler(testRuntime({ path, watermarkTable }))({
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
    });

    const [c1, broken] = result.clusters;
    expect(c1).toMatchObject({ cluster: 'c1', tables: [{ rows: 1 }] });
    expect(c1?.error).toBeUndefined();
    expect(broken?.cluster).toBe('broken');
    expect(broken?.error).toMatch(/Login refused for nobody@/);
    expect(JSON.stringify(result)).not.toContain(wrong);
    expect((await readS3Objects(bucket)).size).toBe(1);
  });

  it('fans a scheduled run out to one asynchronous invocation per enabled cluster, exporting nothing itself', async () => {
    const { path, watermarkTable, bucket } = await mysqlSetUp([], {
      'global/enabled-clusters': ['c1', 'c3'],
    });
    await putParameters(path, { ...mysqlClusterParameters('c3') });
    const invocations: Array<[string, string]> = [];
    const handler = makeHandler(
      testRuntime({
        path,
        watermarkTable,
        // A recording fake of the Lambda InvokeCommand (InvocationType Event) adapter.
        invoker: async (functionName, cluster) => {
          invocations.push([functionName, cluster]);
        },
      }),
    );

    const result = await handler(
      { 'detail-type': 'Scheduled Event', source: 'aws.events' },
      { functionName: 'log-export-prod-export', getRemainingTimeInMillis: () => 600_000 },
    );

    expect(result).toEqual({ mode: 'scheduled', clusters: [], fannedOut: ['c1', 'c3'] });
    expect(invocations).toEqual([
      ['log-export-prod-export', 'c1'],
      ['log-export-prod-export', 'c3'],
    ]);
    expect(await countItems(watermarkTable)).toBe(0);
    expect((await s3.send(new ListObjectsV2Command({ Bucket: bucket }))).KeyCount).toBe(0);
  });

  it('encrypts objects with SSE-KMS under the configured key', async () => {
    const now = await mysqlNow();
    const keyId = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const { path, watermarkTable, bucket } = await mysqlSetUp([{ id: 1, at: now - hours(1) }], {
      'global/kms-key-id': keyId,
      'global/initial-lookback-hours': '2',
    });

    await makeHandler(testRuntime({ path, watermarkTable }))({ cluster: 'c1' });

    const [key] = (await readS3Objects(bucket)).keys();
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.ServerSideEncryption).toBe('aws:kms');
    expect(head.SSEKMSKeyId).toBe(keyId);
  });
});

describe('export handler: a window whose rows fail part-way', () => {
  /** Runs one catch-up export of `query` (30 000 rows in one window) into files and returns the result and the directory. */
  async function exportFailing(engine: 'postgres' | 'mariadb', database: string, query: string) {
    const path = `/${uniqueName('export')}`;
    const directory = exportDirectory();
    const watermarkTable = await createWatermarkTable();
    await putParameters(path, {
      'global/destination': `file://${directory}/`,
      'global/window-minutes': '1440',
      'global/initial-lookback-hours': '72',
      // The MariaDB query names its database itself.
      ...(engine === 'postgres' ? postgresClusterParameters('c1', database) : mysqlClusterParameters('c1')),
      'clusters/c1/tables': 'none',
      'clusters/c1/custom/events/query': query,
      'clusters/c1/custom/events/watermark-column': 'at',
    });
    const result = await makeHandler(testRuntime({ path, watermarkTable }))({ cluster: 'c1' });
    return { table: result.clusters[0]?.tables[0], directory, watermarkTable };
  }

  it.each([
    [
      'PostgreSQL (COPY fast path)',
      'postgres' as const,
      async () => {
        const database = await createPgDatabase();
        const admin = await pgAdmin(database);
        // Indexed, so that rows stream in order and the error comes after the first 24 999 of them.
        await admin.query(`CREATE TABLE events AS SELECT g AS id, date_trunc('day', now()) - interval '36 hours'
          + g * interval '1 second' AS at, repeat('x', 80) AS note FROM generate_series(1, 30000) g`);
        await admin.query('CREATE INDEX ON events (at); ANALYZE events');
        const { rows } = await admin.query('SELECT extract(epoch FROM min(at))::bigint AS s FROM events');
        await admin.end();
        return {
          database,
          query: 'SELECT id, at, note, 1 / (id - 25000) AS boom FROM events',
          firstAt: Number(rows[0].s) * 1_000_000,
        };
      },
      /division by zero/,
    ],
    [
      'MariaDB (row-event fast path)',
      'mariadb' as const,
      async () => {
        const now = await mysqlNow();
        const day = floorToGrid(now, 1440) - hours(36);
        const { database } = await createMysqlEvents(
          Array.from({ length: 30_000 }, (_, i) => ({ id: i + 1, at: day + (i + 1) * 1_000_000 })),
        );
        const admin = await mysqlAdmin();
        await admin.query(`CREATE FUNCTION \`${database}\`.boom(i INT) RETURNS INT DETERMINISTIC NO SQL
          BEGIN IF i = 25000 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'boom at row 25000'; END IF; RETURN 0; END`);
        await admin.end();
        return {
          database,
          query: `SELECT id, at, note, \`${database}\`.boom(id) AS boom FROM \`${database}\`.events`,
          firstAt: day + 1_000_000,
        };
      },
      /boom at row 25000/,
    ],
  ])(
    '%s: reports the error, writes no object (not even a temporary file) and keeps the watermark',
    async (_name, engine, prepare, error) => {
      const { database, query, firstAt } = await prepare();

      const { table, directory, watermarkTable } = await exportFailing(engine, database, query);

      expect(table?.error).toMatch(error);
      expect(table?.objectsWritten).toBe(0);
      const entries = await readdir(directory, { recursive: true, withFileTypes: true });
      expect(entries.filter((entry) => entry.isFile()).map((entry) => entry.name)).toEqual([]);
      // The empty windows before the failing one are passed; the failing one is not.
      const mark = await readWatermark(watermarkTable, 'c1', 'events');
      expect(mark?.watermark).toBe(formatTimestamp(floorToGrid(firstAt, 1440)));
      expect(mark?.leaseOwner).toBeUndefined();
    },
  );
});
