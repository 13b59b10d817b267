import { mkdtempSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DynamoDBClient, GetItemCommand, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { SecretsManagerClients } from '../../../shared/aws/assume-role';
import { ConfigLoader } from '../../../shared/config';
import { exportConfigSchema } from '../../../shared/export/config';
import { CredentialSource } from '../../../shared/export/credentials';
import type { ClusterInvoker } from '../../../shared/export/plan/fan-out';
import { createWatermarkTable as createWatermarkTableIn } from '../../../shared/export/plan/watermark-store';
import { type ExportRuntime, SESSION_OPENERS } from '../../../shared/export/runtime';
import { floorToGrid, hours, minutes, sqlTimestamp, toMicros } from '../../../shared/export/sources/time';
import { createLogger } from '../../../shared/log';
import { createMysqlDatabase, mysqlAdmin, stack, uniqueName } from '../../stack/fixtures';

/**
 * Fixtures of the exporter's tests: a watermark table, a bucket and an SSM path
 * of their own per test, and readers for what an export wrote.
 */

export const dynamo = new DynamoDBClient({});
export const s3 = new S3Client({ forcePathStyle: true });
const ssm = new SSMClient({});

export async function createWatermarkTable(): Promise<string> {
  const name = uniqueName('watermarks');
  await createWatermarkTableIn(dynamo, name);
  return name;
}

export async function createBucket(): Promise<string> {
  const name = uniqueName('exports').replace(/_/g, '-');
  await s3.send(new CreateBucketCommand({ Bucket: name }));
  return name;
}

/** Writes parameters under `path` (String unless a type is given; arrays become StringLists). */
export async function putParameters(
  path: string,
  parameters: Record<string, string | string[] | { secure: string }>,
): Promise<void> {
  for (const [name, value] of Object.entries(parameters)) {
    const [Value, Type] = Array.isArray(value)
      ? [value.join(','), 'StringList' as const]
      : typeof value === 'string'
        ? [value, 'String' as const]
        : [value.secure, 'SecureString' as const];
    await ssm.send(new PutParameterCommand({ Name: `${path}/${name}`, Value, Type, Overwrite: true }));
  }
}

export interface TestRuntimeOptions {
  path: string;
  watermarkTable: string;
  invoker?: ClusterInvoker;
  afterObjectWritten?: (key: string) => Promise<void>;
  safetyMarginMs?: number;
  /** Session openers in place of the real ones (to watch the queries a run sends, say). */
  openers?: ExportRuntime['openers'];
  metrics?: ExportRuntime['metrics'];
  /** Where database credentials come from (default: secrets in the function's account, through moto). */
  credentials?: CredentialSource;
}

/** Credentials from secrets in the function's own account (moto); a cluster with a role would assume it in moto. */
export function ownAccountCredentials(): CredentialSource {
  return new CredentialSource(new SecretsManagerClients({ own: () => new SecretsManagerClient({}) }));
}

/** The real runtime (SSM, DynamoDB, S3, Secrets Manager on moto; real databases) with a fresh config read per run. */
export function testRuntime(options: TestRuntimeOptions): ExportRuntime {
  return {
    loader: new ConfigLoader({ path: options.path, schema: exportConfigSchema, ttlSeconds: 0 }),
    watermarkTable: options.watermarkTable,
    dynamo: () => dynamo,
    s3: () => s3,
    credentials: options.credentials ?? ownAccountCredentials(),
    invoker:
      options.invoker ??
      (async () => {
        throw new Error('this test does not fan out');
      }),
    openers: options.openers ?? SESSION_OPENERS,
    logger: createLogger('log-export-test'),
    safetyMarginMs: options.safetyMarginMs ?? 0,
    concurrency: 4,
    localBudgetMs: 10 * 60_000,
    now: Date.now,
    afterObjectWritten: options.afterObjectWritten,
    metrics: options.metrics,
  };
}

/** Every object under a bucket prefix, decompressed into its parsed JSON lines, by key. */
export async function readS3Objects(
  bucket: string,
  prefix = '',
): Promise<Map<string, Record<string, unknown>[]>> {
  const objects = new Map<string, Record<string, unknown>[]>();
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const item of page.Contents ?? []) {
      const key = item.Key as string;
      const body = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const bytes = await (
        body.Body as { transformToByteArray(): Promise<Uint8Array> }
      ).transformToByteArray();
      objects.set(key, parseJsonLines(gunzipSync(bytes).toString('utf8')));
    }
    token = page.NextContinuationToken;
  } while (token);
  return objects;
}

export function parseJsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

export async function readWatermark(table: string, cluster: string, exported: string) {
  const { Item } = await dynamo.send(
    new GetItemCommand({
      TableName: table,
      Key: { cluster: { S: cluster }, table: { S: exported } },
      ConsistentRead: true,
    }),
  );
  return Item
    ? {
        watermark: Item.watermark?.S,
        version: Number(Item.version?.N),
        rowsExported: Number(Item.rowsExported?.N ?? 0),
        leaseOwner: Item.leaseOwner?.S,
      }
    : undefined;
}

export async function setWatermark(table: string, cluster: string, exported: string, watermark: string) {
  await dynamo.send(
    new PutItemCommand({
      TableName: table,
      Item: {
        cluster: { S: cluster },
        table: { S: exported },
        watermark: { S: watermark },
        version: { N: '1' },
        rowsExported: { N: '0' },
      },
    }),
  );
}

export async function countItems(table: string): Promise<number> {
  const { Count } = await dynamo.send(new ScanCommand({ TableName: table, Select: 'COUNT' }));
  return Count ?? 0;
}

/** The window bounds `lo`/`hi` (compact form) and `dt` partition a key names. */
export function parseKey(key: string) {
  const m =
    /(?:^|\/)([a-z0-9_]+)\/cluster=([^/]+)\/dt=(\d{4}-\d{2}-\d{2})\/\1\.\2\.(\d{8}T\d{6}Z)\.(\d{8}T\d{6}Z)\.jsonl\.gz$/.exec(
      key,
    );
  if (!m) throw new Error(`Unexpected key ${key}`);
  return { table: m[1], cluster: m[2], dt: m[3] as string, lo: m[4] as string, hi: m[5] as string };
}

/** `2024-05-01T12:00:00.123456Z` → `20240501T120000Z` (seconds precision), comparable with key bounds. */
export function compact(iso: string): string {
  return iso.replace(/[-:]/g, '').replace(/\.\d+/, '');
}

/** A MySQL table `events(id, at DATETIME(6), note)` with the given rows, in a throwaway database. */
export async function createMysqlEvents(
  rows: Array<{ id: number; at: number; note?: string }>,
): Promise<{ database: string; query: string }> {
  const database = await createMysqlDatabase();
  const admin = await mysqlAdmin();
  try {
    await admin.query(
      `CREATE TABLE \`${database}\`.events (id INT PRIMARY KEY, at DATETIME(6) NOT NULL, note TEXT, INDEX (at))`,
    );
    for (let i = 0; i < rows.length; i += 2000) {
      const batch = rows.slice(i, i + 2000).map((r) => [r.id, sqlTimestamp(r.at), r.note ?? `row ${r.id}`]);
      await admin.query(`INSERT INTO \`${database}\`.events (id, at, note) VALUES ?`, [batch]);
    }
  } finally {
    await admin.end();
  }
  return { database, query: `SELECT id, at, note FROM \`${database}\`.events` };
}

/** The test MariaDB's clock in microseconds. */
export async function mysqlNow(): Promise<number> {
  const admin = await mysqlAdmin();
  try {
    const [rows] = await admin.query({
      sql: 'SELECT CAST(UTC_TIMESTAMP(6) AS CHAR) AS now',
      rowsAsArray: true,
    });
    return toMicros(String((rows as unknown[][])[0]?.[0]));
  } finally {
    await admin.end();
  }
}

/** Cluster parameters that log in to the test MariaDB as its admin user. */
export function mysqlClusterParameters(cluster: string): Record<string, string | { secure: string }> {
  const { host, port, adminUser, adminPassword } = stack().mariadb;
  return {
    [`clusters/${cluster}/engine`]: 'mariadb',
    [`clusters/${cluster}/host`]: host,
    [`clusters/${cluster}/port`]: String(port),
    [`clusters/${cluster}/user`]: adminUser,
    [`clusters/${cluster}/password`]: { secure: adminPassword },
    [`clusters/${cluster}/ssl`]: 'false',
  };
}

/**
 * A custom export of 30 MariaDB rows two minutes apart, starting two hours ago
 * (15-minute windows, three hours of lookback), to a file:// `directory`,
 * configured under a fresh path with `extra` parameters on top.
 */
export async function mysqlEventsExport(
  directory: string,
  extra: Record<string, string | string[]> = {},
): Promise<{ path: string; watermarkTable: string }> {
  const now = await mysqlNow();
  const start = floorToGrid(now - hours(2), 15);
  const rows = Array.from({ length: 30 }, (_, i) => ({ id: i + 1, at: start + i * minutes(2) }));
  const path = `/${uniqueName('export')}`;
  const [watermarkTable, events] = await Promise.all([createWatermarkTable(), createMysqlEvents(rows)]);
  await putParameters(path, {
    'global/destination': `file://${directory}`,
    'global/window-minutes': '15',
    'global/initial-lookback-hours': '3',
    'global/enabled-clusters': ['c1'],
    ...mysqlClusterParameters('c1'),
    'clusters/c1/tables': 'none',
    'clusters/c1/custom/events/query': events.query,
    'clusters/c1/custom/events/watermark-column': 'at',
    ...extra,
  });
  return { path, watermarkTable };
}

/** Every object under a directory of the file sink, decompressed into its parsed JSON lines, by relative path. */
export async function readFileObjects(root: string): Promise<Map<string, Record<string, unknown>[]>> {
  const objects = new Map<string, Record<string, unknown>[]>();
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = join(entry.parentPath, entry.name);
    objects.set(relative(root, full), parseJsonLines(gunzipSync(await readFile(full)).toString('utf8')));
  }
  return objects;
}

/** A fresh directory for the file sink. */
export function exportDirectory(): string {
  return mkdtempSync(join(tmpdir(), 'export-'));
}
