/**
 * Fleet benchmark (npm run bench:fleet -- --clusters 200 [--concurrency 20]
 * [--interval 300] [--steady-runs 1] [--ttl 900]).
 *
 * Starts the local stack (moto, MariaDB, PostgreSQL), configures that many
 * clusters in SSM (engines alternating; each a database or schema of its own
 * with an `events` table exported as a custom export, its login in a Secrets
 * Manager secret), and runs the exporter as Lambda would run it:
 * - the scheduled event goes to the real handler, which fans out one
 *   asynchronous Invoke per cluster through the real Lambda client; the
 *   client's HTTP handler stands in for the Lambda service and queues each
 *   payload;
 * - queued invocations run in-process on simulated containers, at most
 *   `--concurrency` at once (reserved concurrency): a container is created
 *   only when no warm one is idle, and keeps its own runtime (configuration
 *   cache, secret cache, both with a lifetime of `--ttl` seconds) between
 *   invocations, as a warm Lambda does.
 * Run 1 is cold (new containers). Rows are added, and each further run is a
 * steady state on the same, warm containers, `--interval` seconds later by the
 * runtime's clock (the caches' and leases' time; the databases' clock is real,
 * so the bench waits for the next one-minute window to close).
 *
 * Every request of every AWS client is counted by a middleware (below the
 * retries: one per HTTP request) and attributed to the invocation that sent it
 * (AsyncLocalStorage). Database sessions are counted where they are opened and
 * closed, and each server's own view is sampled. At the end, every object is
 * read back: each cluster's rows must be there exactly once, each in its window.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { makeHandler } from '../functions/export';
import { SecretsManagerClients } from '../shared/aws/assume-role';
import { ConfigLoader, createConfigCache } from '../shared/config';
import { exportConfigSchema } from '../shared/export/config';
import { CredentialSource } from '../shared/export/credentials';
import type { ExportSummary, SessionOpener } from '../shared/export/exporter';
import { lambdaInvoker } from '../shared/export/plan/fan-out';
import { createWatermarkTable } from '../shared/export/plan/watermark-store';
import { defaultExportRuntime, type ExportRuntime, SESSION_OPENERS } from '../shared/export/runtime';
import type { EngineFamily } from '../shared/export/sources/catalog';
import { formatTimestamp, sqlTimestamp, toMicros } from '../shared/export/sources/time';
import { startStack, useStackEnvironment } from '../test/stack';

const { values: args } = parseArgs({
  options: {
    clusters: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '20' },
    interval: { type: 'string', default: '300' },
    'steady-runs': { type: 'string', default: '1' },
    // The deployment's exportCacheTtlSeconds (serverless.yml), unless the environment says otherwise.
    ttl: { type: 'string', default: process.env.CONFIG_CACHE_TTL_SECONDS ?? '900' },
  },
});
const CLUSTERS = Number(args.clusters);
const CONCURRENCY = Number(args.concurrency);
const INTERVAL_S = Number(args.interval);
const STEADY_RUNS = Number(args['steady-runs']);
const TTL_S = Number(args.ttl);
const FUNCTION_NAME = 'log-export-bench-export';
const CONFIG_PATH = '/fleet-bench';
const WATERMARK_TABLE = 'fleet-bench-watermarks';
const BUCKET = 'fleet-bench';
const EXPORT_USER = 'fleet_exporter';
const MINUTE_MS = 60_000;
const SCHEDULED = { 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} };

process.env.LOG_LEVEL = 'WARN';

type Engine = 'mariadb' | 'postgres';
interface Cluster {
  name: string;
  engine: Engine;
  /** MariaDB: the database; PostgreSQL: the schema (in database `fleet`). */
  namespace: string;
  /** Every row id inserted, with its event time in microseconds. */
  rows: Map<number, number>;
}

/** One invocation: what it was for, where it ran, what it cost. */
interface Invocation {
  run: number;
  event: string;
  container: number;
  cold: boolean;
  ms: number;
  calls: Map<string, number>;
  summary?: ExportSummary;
  error?: string;
}

/** Per run: every AWS request by "Service Operation", sessions, memory. */
class RunStats {
  readonly calls = new Map<string, number>();
  readonly invocations: Invocation[] = [];
  readonly sessions = { open: { mysql: 0, postgres: 0 }, peak: { mysql: 0, postgres: 0 } };
  readonly serverPeak = { mariadb: 0, postgres: 0 };
  peakRss = 0;
  wallMs = 0;
  containersCreated = 0;
}

const invocationScope = new AsyncLocalStorage<Invocation>();
let current = new RunStats();

/** Counts every HTTP request a client sends (retries included), by service and operation. */
function counted<C extends { middlewareStack: { add: (...args: never[]) => void } }>(
  client: C,
  service: string,
): C {
  (client.middlewareStack as unknown as { add: (m: unknown, o: unknown) => void }).add(
    (next: (a: unknown) => Promise<unknown>, context: { commandName?: string }) => (a: unknown) => {
      const name = `${service} ${String(context.commandName).replace(/Command$/, '')}`;
      current.calls.set(name, (current.calls.get(name) ?? 0) + 1);
      const invocation = invocationScope.getStore();
      if (invocation) invocation.calls.set(name, (invocation.calls.get(name) ?? 0) + 1);
      return next(a);
    },
    { step: 'deserialize', name: 'benchCountRequests' },
  );
  return client;
}

/**
 * Simulated Lambda containers under reserved concurrency: a queued event runs on
 * an idle warm container (the one idle longest), else on a new one while fewer
 * than `limit` exist, else it waits.
 */
class ContainerPool {
  run = 0;
  readonly #queue: unknown[] = [];
  readonly #idle: Array<{ id: number; handler: ReturnType<typeof makeHandler>; used: boolean }> = [];
  #created = 0;
  #createdSinceTake = 0;
  #active = 0;
  #invocations: Invocation[] = [];
  #waiters: Array<() => void> = [];

  constructor(
    private readonly limit: number,
    private readonly runtime: (id: number) => ExportRuntime,
  ) {}

  submit(event: unknown): void {
    this.#queue.push(event);
    queueMicrotask(() => this.#pump());
  }

  drained(): Promise<void> {
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      this.#settle();
    });
  }

  takeInvocations(): Invocation[] {
    const taken = this.#invocations;
    this.#invocations = [];
    return taken;
  }

  takeCreated(): number {
    const created = this.#createdSinceTake;
    this.#createdSinceTake = 0;
    return created;
  }

  #pump(): void {
    while (this.#queue.length > 0 && (this.#idle.length > 0 || this.#created < this.limit)) {
      let container = this.#idle.shift();
      if (!container) {
        this.#created += 1;
        this.#createdSinceTake += 1;
        container = { id: this.#created, handler: makeHandler(this.runtime(this.#created)), used: false };
      }
      void this.#invoke(container, this.#queue.shift());
    }
  }

  async #invoke(
    container: { id: number; handler: ReturnType<typeof makeHandler>; used: boolean },
    event: unknown,
  ) {
    this.#active += 1;
    const invocation: Invocation = {
      run: this.run,
      event: (event as { cluster?: string }).cluster ?? 'scheduled',
      container: container.id,
      cold: !container.used,
      ms: 0,
      calls: new Map(),
    };
    container.used = true;
    const startedAt = performance.now();
    const deadline = Date.now() + 900_000;
    try {
      invocation.summary = await invocationScope.run(invocation, () =>
        container.handler(event, {
          functionName: FUNCTION_NAME,
          getRemainingTimeInMillis: () => deadline - Date.now(),
        }),
      );
    } catch (error) {
      invocation.error = (error as Error).message;
    }
    invocation.ms = performance.now() - startedAt;
    this.#invocations.push(invocation);
    this.#active -= 1;
    this.#idle.push(container);
    this.#pump();
    this.#settle();
  }

  #settle(): void {
    if (this.#active > 0 || this.#queue.length > 0) return;
    for (const resolve of this.#waiters.splice(0)) resolve();
  }
}

const stack = await startStack();
try {
  useStackEnvironment(stack);
  const started = performance.now();
  const setupSsm = new SSMClient({});
  const setupSecrets = new SecretsManagerClient({});
  const setupDynamo = new DynamoDBClient({});
  const setupS3 = new S3Client({ forcePathStyle: true });
  const password = randomBytes(18).toString('base64url');
  const clusters: Cluster[] = Array.from({ length: CLUSTERS }, (_, i) => ({
    name: `fleet-${String(i).padStart(String(CLUSTERS - 1).length, '0')}`,
    engine: i % 2 === 0 ? 'mariadb' : 'postgres',
    namespace: `fleet_${i}`,
    rows: new Map(),
  }));

  // Databases: a login of the exporter's own on each server, and one events table per cluster.
  const my = await mysql.createConnection({
    host: stack.mariadb.host,
    port: stack.mariadb.port,
    user: stack.mariadb.adminUser,
    password: stack.mariadb.adminPassword,
    multipleStatements: true,
  });
  const pgAdmin = async (database: string) => {
    const client = new pg.Client({
      host: stack.postgres.host,
      port: stack.postgres.port,
      user: stack.postgres.adminUser,
      password: stack.postgres.adminPassword,
      database,
    });
    client.on('error', () => {});
    await client.connect();
    return client;
  };
  await my.query(`CREATE USER '${EXPORT_USER}'@'%' IDENTIFIED BY ?`, [password]);
  const pgRoot = await pgAdmin('postgres');
  await pgRoot.query('CREATE DATABASE fleet');
  await pgRoot.query(`CREATE ROLE ${EXPORT_USER} LOGIN PASSWORD ${pg.escapeLiteral(password)}`);
  await pgRoot.end();
  const pgc = await pgAdmin('fleet');
  const mysqlClusters = clusters.filter((c) => c.engine === 'mariadb');
  const pgClusters = clusters.filter((c) => c.engine === 'postgres');
  for (let i = 0; i < mysqlClusters.length; i += 50) {
    await my.query(
      mysqlClusters
        .slice(i, i + 50)
        .map(
          ({ namespace: n }) =>
            `CREATE DATABASE ${n}; CREATE TABLE ${n}.events (id INT PRIMARY KEY, at DATETIME(6) NOT NULL, note VARCHAR(200), INDEX (at)); GRANT SELECT ON ${n}.* TO '${EXPORT_USER}'@'%';`,
        )
        .join(' '),
    );
  }
  for (let i = 0; i < pgClusters.length; i += 50) {
    await pgc.query(
      pgClusters
        .slice(i, i + 50)
        .map(
          ({ namespace: n }) =>
            `CREATE SCHEMA ${n}; CREATE TABLE ${n}.events (id int PRIMARY KEY, at timestamptz(6) NOT NULL, note text); CREATE INDEX ON ${n}.events (at); GRANT USAGE ON SCHEMA ${n} TO ${EXPORT_USER}; GRANT SELECT ON ${n}.events TO ${EXPORT_USER};`,
        )
        .join(' '),
    );
  }

  // AWS: bucket, watermark table, one secret per cluster, the parameters.
  await setupS3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await createWatermarkTable(setupDynamo, WATERMARK_TABLE);
  const put = (name: string, value: string, type: 'String' | 'StringList' = 'String') =>
    setupSsm.send(
      new PutParameterCommand({
        Name: `${CONFIG_PATH}/${name}`,
        Value: value,
        Type: type,
        Overwrite: true,
        // A standard parameter holds 4 KB: a longer list of enabled clusters needs the advanced tier.
        ...(value.length > 4096 ? { Tier: 'Advanced' as const } : {}),
      }),
    );
  await put('global/destination', `s3://${BUCKET}/logs`);
  await put('global/enabled-clusters', clusters.map((c) => c.name).join(','), 'StringList');
  await put('global/window-minutes', '1');
  await put('global/lag-seconds', '0');
  await put('global/initial-lookback-hours', '1');
  await inBatches(clusters, 10, async (c) => {
    const server = c.engine === 'mariadb' ? stack.mariadb : stack.postgres;
    await setupSecrets.send(
      new CreateSecretCommand({
        Name: `fleet-bench/${c.name}`,
        SecretString: JSON.stringify({
          engine: c.engine,
          host: server.host,
          port: server.port,
          username: EXPORT_USER,
          password,
          dbname: c.engine === 'mariadb' ? c.namespace : 'fleet',
          ssl: false,
        }),
      }),
    );
    await put(`clusters/${c.name}/engine`, c.engine);
    await put(`clusters/${c.name}/secret-id`, `fleet-bench/${c.name}`);
    await put(`clusters/${c.name}/tables`, 'none');
    await put(
      `clusters/${c.name}/custom/events/query`,
      `SELECT id, at, note FROM ${c.engine === 'mariadb' ? '' : `${c.namespace}.`}events`,
    );
    await put(`clusters/${c.name}/custom/events/watermark-column`, 'at');
  });

  // The clients of the exporter, each request counted; Lambda's service is the pool below.
  const ssm = counted(new SSMClient({}), 'SSM');
  const secrets = counted(new SecretsManagerClient({}), 'Secrets Manager');
  const dynamo = counted(new DynamoDBClient({}), 'DynamoDB');
  const s3 = counted(new S3Client({ forcePathStyle: true }), 'S3');
  const pool = new ContainerPool(CONCURRENCY, (id) => containerRuntime(id));
  const lambda = counted(
    new LambdaClient({
      requestHandler: {
        handle: async (request: { body?: Uint8Array | string }) => {
          pool.submit(JSON.parse(Buffer.from(request.body ?? '').toString('utf8')));
          return { response: { statusCode: 202, headers: {}, body: new Uint8Array() } };
        },
      } as never,
    }),
    'Lambda',
  );
  /** The runtime's clock: real time plus the simulated time between the runs. */
  let offsetMs = 0;
  const clock = () => Date.now() + offsetMs;
  const openers = countingOpeners();
  function containerRuntime(_id: number): ExportRuntime {
    return {
      ...defaultExportRuntime(),
      loader: new ConfigLoader({
        path: CONFIG_PATH,
        schema: exportConfigSchema,
        ssm,
        now: clock,
        ttlSeconds: TTL_S,
        cache: createConfigCache(),
      }),
      watermarkTable: WATERMARK_TABLE,
      dynamo: () => dynamo,
      s3: () => s3,
      credentials: new CredentialSource(
        new SecretsManagerClients({ own: () => secrets }),
        clock,
        TTL_S * 1000,
      ),
      invoker: lambdaInvoker(async () => lambda),
      openers,
      metrics: undefined,
      now: clock,
    };
  }

  // Each cluster's watermark one window before the next minute, and rows in that window.
  let boundary = Math.ceil(Date.now() / MINUTE_MS) * MINUTE_MS;
  if (boundary - Date.now() < 15_000) boundary += MINUTE_MS;
  const seedFrom = boundary - MINUTE_MS;
  await inBatches(clusters, 10, (c) =>
    setupDynamo.send(
      new PutItemCommand({
        TableName: WATERMARK_TABLE,
        Item: {
          cluster: { S: c.name },
          table: { S: 'events' },
          watermark: { S: formatTimestamp(seedFrom * 1000) },
          version: { N: '1' },
          rowsExported: { N: '0' },
        },
      }),
    ),
  );
  await insertRows(clusters, seedFrom);
  const setupSeconds = (performance.now() - started) / 1000;

  const runs: RunStats[] = [];
  /** When each run started, by the runtime's clock. */
  const runStarts: number[] = [];
  const run = async (index: number) => {
    current = new RunStats();
    const sampler = sampleWhileRunning(current);
    const runStarted = performance.now();
    runStarts.push(clock());
    pool.run = index;
    pool.submit(SCHEDULED);
    await pool.drained();
    current.wallMs = performance.now() - runStarted;
    current.invocations.push(...pool.takeInvocations());
    current.containersCreated = pool.takeCreated();
    await sampler.stop();
    runs.push(current);
  };

  await sleepUntil(boundary + 1_000);
  const run1At = Date.now();
  await run(1);
  for (let index = 2; index <= 1 + STEADY_RUNS; index++) {
    // Activity between the runs: rows stamped with each database's clock; then their window closes.
    await insertRows(clusters);
    await sleepUntil(Math.ceil(Date.now() / MINUTE_MS) * MINUTE_MS + 1_000);
    // By the runtime's clock, each run starts --interval seconds after the one before.
    offsetMs = Math.max(offsetMs, run1At + (index - 1) * INTERVAL_S * 1000 - Date.now());
    await run(index);
  }
  const simulatedInterval = ((runStarts.at(-1) ?? run1At) - run1At) / 1000 / Math.max(1, STEADY_RUNS);

  const verification = await verify();
  await my.end();
  await pgc.end();
  report(runs, verification, setupSeconds, simulatedInterval);

  // ---- helpers that close over the stack ----

  /**
   * Inserts a few rows into every cluster's table: spread over the window from `seedFrom` (before the
   * first run), or stamped with the database's own clock (`seedFrom` undefined: activity between runs).
   */
  async function insertRows(all: Cluster[], seedFrom?: number) {
    for (const [index, c] of all.entries()) {
      const count = seedFrom === undefined ? 1 + (index % 3) : 1 + (index % 4);
      const ids = Array.from({ length: count }, (_, k) => c.rows.size + 1 + k);
      const at = ids.map((_, k) =>
        seedFrom === undefined ? undefined : (seedFrom + Math.floor(((k + 0.5) * MINUTE_MS) / count)) * 1000,
      );
      if (c.engine === 'mariadb') {
        await my.query(
          `INSERT INTO ${c.namespace}.events (id, at, note) VALUES ${ids.map(() => `(?, ${seedFrom === undefined ? 'UTC_TIMESTAMP(6)' : '?'}, ?)`).join(', ')}`,
          ids.flatMap((id, k) =>
            seedFrom === undefined ? [id, `row ${id}`] : [id, sqlTimestamp(at[k] as number), `row ${id}`],
          ),
        );
        const [stamped] = await my.query(
          `SELECT id, DATE_FORMAT(at, '%Y-%m-%dT%H:%i:%s.%fZ') AS at FROM ${c.namespace}.events WHERE id >= ?`,
          [ids[0]],
        );
        for (const r of stamped as Array<{ id: number; at: string }>) c.rows.set(r.id, toMicros(r.at));
      } else {
        const result = await pgc.query(
          `INSERT INTO ${c.namespace}.events (id, at, note)
           SELECT id, ${seedFrom === undefined ? 'clock_timestamp()' : "timestamptz 'epoch' + t * interval '1 microsecond'"}, 'row ' || id
           FROM unnest($1::int[], $2::bigint[]) AS u(id, t)
           RETURNING id, ((extract(epoch FROM at) * 1000000)::numeric)::bigint AS at`,
          [ids, at.map((t) => t ?? null)],
        );
        for (const r of result.rows as Array<{ id: number; at: string }>) c.rows.set(r.id, Number(r.at));
      }
    }
  }

  /** Samples RSS and each server's sessions of the exporter's login while a run lasts. */
  function sampleWhileRunning(stats: RunStats) {
    let stopped = false;
    const loop = (async () => {
      while (!stopped) {
        stats.peakRss = Math.max(stats.peakRss, process.memoryUsage.rss());
        const [[mariaRows], pgRows] = await Promise.all([
          my.query('SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE USER = ?', [EXPORT_USER]),
          pgc.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1', [EXPORT_USER]),
        ]);
        stats.serverPeak.mariadb = Math.max(
          stats.serverPeak.mariadb,
          Number((mariaRows as [{ n: number }])[0].n),
        );
        stats.serverPeak.postgres = Math.max(stats.serverPeak.postgres, Number(pgRows.rows[0].n));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    return {
      stop: async () => {
        stopped = true;
        await loop;
      },
    };
  }

  /** Reads every object back: each cluster's rows exactly once, each in its window; watermarks and leases. */
  async function verify(): Promise<Verification> {
    const seen = new Map<string, Map<number, number>>();
    const misplaced: string[] = [];
    let objects = 0;
    let token: string | undefined;
    do {
      const page = await setupS3.send(
        new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'logs/', ContinuationToken: token }),
      );
      await inBatches(page.Contents ?? [], 16, async (item) => {
        const key = item.Key as string;
        const m = /cluster=([^/]+)\/.*\.(\d{8}T\d{6}Z)\.(\d{8}T\d{6}Z)\.jsonl\.gz$/.exec(key);
        if (!m) throw new Error(`unexpected key ${key}`);
        const [, cluster, lo, hi] = m as unknown as [string, string, string, string];
        const body = await setupS3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
        const bytes = await (
          body.Body as { transformToByteArray(): Promise<Uint8Array> }
        ).transformToByteArray();
        objects += 1;
        const ids = seen.get(cluster) ?? new Map<number, number>();
        seen.set(cluster, ids);
        for (const line of gunzipSync(bytes).toString('utf8').split('\n').filter(Boolean)) {
          const row = JSON.parse(line) as { id: number; at: string };
          ids.set(row.id, (ids.get(row.id) ?? 0) + 1);
          const at = toMicros(row.at);
          if (at < compactMicros(lo) || at >= compactMicros(hi)) misplaced.push(`${cluster}#${row.id}`);
        }
      });
      token = page.NextContinuationToken;
    } while (token);
    let exactlyOnce = 0;
    const problems: string[] = [];
    for (const c of clusters) {
      const ids = seen.get(c.name) ?? new Map();
      const missing = [...c.rows.keys()].filter((id) => !ids.has(id));
      const twice = [...ids].filter(([, n]) => n > 1).map(([id]) => id);
      const extra = [...ids.keys()].filter((id) => !c.rows.has(id));
      if (missing.length + twice.length + extra.length === 0) exactlyOnce += 1;
      else problems.push(`${c.name}: missing ${missing}, twice ${twice}, unknown ${extra}`);
    }
    let leasesLeft = 0;
    let rowsCounted = 0;
    await inBatches(clusters, 16, async (c) => {
      const { Item } = await setupDynamo.send(
        new GetItemCommand({
          TableName: WATERMARK_TABLE,
          Key: { cluster: { S: c.name }, table: { S: 'events' } },
          ConsistentRead: true,
        }),
      );
      if (Item?.leaseOwner) leasesLeft += 1;
      rowsCounted += Number(Item?.rowsExported?.N ?? 0);
    });
    const inserted = clusters.reduce((n, c) => n + c.rows.size, 0);
    return { objects, exactlyOnce, problems, misplaced, leasesLeft, inserted, rowsCounted };
  }

  function countingOpeners(): ExportRuntime['openers'] {
    const wrap =
      (family: EngineFamily & ('mysql' | 'postgres'), open: SessionOpener): SessionOpener =>
      async (...openArgs) => {
        const session = await open(...openArgs);
        const { sessions } = current;
        sessions.open[family] += 1;
        sessions.peak[family] = Math.max(sessions.peak[family], sessions.open[family]);
        const close = session.close.bind(session);
        let closed = false;
        session.close = async () => {
          if (!closed) {
            closed = true;
            current.sessions.open[family] -= 1;
          }
          await close();
        };
        return session;
      };
    return {
      mysql: wrap('mysql', SESSION_OPENERS.mysql),
      postgres: wrap('postgres', SESSION_OPENERS.postgres),
      redshift: SESSION_OPENERS.redshift,
    };
  }
} finally {
  await stack.stop();
}

interface Verification {
  objects: number;
  exactlyOnce: number;
  problems: string[];
  misplaced: string[];
  leasesLeft: number;
  inserted: number;
  rowsCounted: number;
}

function report(
  runs: RunStats[],
  verification: Verification,
  setupSeconds: number,
  simulatedInterval: number,
) {
  const perCluster = (n: number) => (n / CLUSTERS).toFixed(2);
  const clusterInvocations = (r: RunStats) => r.invocations.filter((i) => i.event !== 'scheduled');
  const tables = (r: RunStats) =>
    clusterInvocations(r).flatMap((i) => i.summary?.clusters.flatMap((c) => c.tables) ?? []);
  const sum = (r: RunStats, f: (t: ReturnType<typeof tables>[number]) => number) =>
    tables(r).reduce((n, t) => n + f(t), 0);
  const errors = (r: RunStats) =>
    r.invocations.filter((i) => i.error).length +
    clusterInvocations(r).reduce(
      (n, i) =>
        n + (i.summary?.clusters ?? []).filter((c) => c.error || c.tables.some((t) => t.error)).length,
      0,
    );
  const share = (r: RunStats, service: string) => {
    const all = clusterInvocations(r);
    const reading = all.filter((i) => [...i.calls.keys()].some((k) => k.startsWith(service)));
    return `${((100 * reading.length) / all.length).toFixed(0)}%`;
  };
  const durations = (r: RunStats) =>
    clusterInvocations(r)
      .map((i) => i.ms)
      .sort((a, b) => a - b);
  const pct = (values: number[], p: number) =>
    values[Math.min(values.length - 1, Math.floor(p * values.length))] ?? 0;
  const total = (r: RunStats, prefix = '') =>
    [...r.calls].filter(([k]) => k.startsWith(prefix)).reduce((n, [, v]) => n + v, 0);
  const label = (index: number) => (index === 0 ? 'run 1 (cold)' : `run ${index + 1} (steady)`);
  /** One row: a figure per run. */
  const perRun = (figure: (r: RunStats) => string | number) =>
    Object.fromEntries(runs.map((r, index) => [label(index), figure(r)]));

  const summary: Record<string, Record<string, string | number>> = {
    'wall time, s': perRun((r) => (r.wallMs / 1000).toFixed(1)),
    'invocations (1 scheduled + clusters)': perRun((r) => r.invocations.length),
    'containers started (cold starts)': perRun((r) => r.containersCreated),
    'cluster invocation ms p50 / p95': perRun(
      (r) => `${pct(durations(r), 0.5).toFixed(0)} / ${pct(durations(r), 0.95).toFixed(0)}`,
    ),
    'cluster invocation ms mean': perRun((r) =>
      (durations(r).reduce((a, b) => a + b, 0) / CLUSTERS).toFixed(0),
    ),
    'windows / objects written / rows': perRun(
      (r) => `${sum(r, (t) => t.windows)} / ${sum(r, (t) => t.objectsWritten)} / ${sum(r, (t) => t.rows)}`,
    ),
    'clusters or tables failed': perRun(errors),
    'cluster invocations reading SSM': perRun((r) => share(r, 'SSM')),
    'cluster invocations reading a secret': perRun((r) => share(r, 'Secrets Manager')),
    'peak sessions MariaDB: opened / server': perRun(
      (r) => `${r.sessions.peak.mysql} / ${r.serverPeak.mariadb}`,
    ),
    'peak sessions PostgreSQL: opened / server': perRun(
      (r) => `${r.sessions.peak.postgres} / ${r.serverPeak.postgres}`,
    ),
    'peak RSS of the process, MB': perRun((r) => (r.peakRss / 2 ** 20).toFixed(0)),
  };
  const operations = [...new Set(runs.flatMap((r) => [...r.calls.keys()]))].sort();
  const callRow = (count: (r: RunStats) => number) =>
    Object.fromEntries(
      runs.flatMap((r, index) => [
        [label(index), count(r)],
        [`${label(index)} / cluster`, perCluster(count(r))],
      ]),
    );
  const calls: Record<string, Record<string, string | number>> = {};
  for (const op of operations) calls[op] = callRow((r) => r.calls.get(op) ?? 0);
  for (const service of ['SSM', 'Secrets Manager', 'DynamoDB', 'S3', 'Lambda', '']) {
    calls[service ? `${service}, all` : 'ALL AWS'] = callRow((r) => total(r, service));
  }
  console.log(
    `\nFleet benchmark: ${CLUSTERS} clusters (${Math.ceil(CLUSTERS / 2)} MariaDB, ${Math.floor(CLUSTERS / 2)} PostgreSQL), ` +
      `one custom export each, reserved concurrency ${CONCURRENCY}, runs ${simulatedInterval.toFixed(0)} s apart by the runtime's clock, ` +
      `configuration and secret cache TTL ${TTL_S} s, one-minute windows, setup ${setupSeconds.toFixed(0)} s\n`,
  );
  console.log('Run 1 starts new containers (cold); later runs reuse them (warm)');
  console.table(summary);
  console.log('AWS requests by service and operation (every HTTP request, retries included)');
  console.table(calls);
  const ok =
    verification.exactlyOnce === CLUSTERS &&
    verification.misplaced.length === 0 &&
    verification.leasesLeft === 0 &&
    verification.rowsCounted === verification.inserted;
  console.log(
    `Read back: ${verification.objects} objects; ${verification.exactlyOnce}/${CLUSTERS} clusters have every row exactly once ` +
      `(${verification.inserted} rows inserted, ${verification.rowsCounted} counted in the watermarks), ` +
      `${verification.misplaced.length} rows outside their window, ${verification.leasesLeft} leases left: ${ok ? 'OK' : 'FAILED'}`,
  );
  for (const problem of verification.problems.slice(0, 10)) console.log(`  ${problem}`);
  console.log(
    `Peak RSS of the whole benchmark process: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`,
  );
  if (!ok) process.exitCode = 1;
}

async function inBatches<T>(items: readonly T[], size: number, work: (item: T) => Promise<unknown>) {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(work));
}

function sleepUntil(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms - Date.now())));
}

/** `20240501T120000Z` → microseconds. */
function compactMicros(text: string): number {
  return toMicros(text.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'));
}
