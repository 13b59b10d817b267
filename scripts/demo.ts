/**
 * `npm run demo`: the product's main job on a laptop, with no AWS account.
 *
 * Starts the local stack (moto, PostgreSQL, MariaDB; or the servers named by the
 * TEST_* variables), creates a MariaDB and a PostgreSQL user with their secrets,
 * rotates each secret through the rotation handler exactly as Secrets Manager
 * would, proves the old password is refused, makes some database activity, runs
 * the exporter into a local folder, prints what it wrote and answers two
 * questions from the exported objects with DuckDB. Never prints a password.
 */
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  ListSecretVersionIdsCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { stopDeflateWorkers } from '../shared/export/encode/gzip';
import { createWatermarkTable } from '../shared/export/plan/watermark-store';
import { formatStatus, readStatus } from '../shared/operations/status';
import { driveRotation, PLACEHOLDER_ROTATION_LAMBDA_ARN } from '../shared/rotation/driver';
import { type Stack, startStack, useStackEnvironment } from '../test/stack';

const CONFIG_PATH = '/log-export-demo';
const WATERMARK_TABLE = 'log-export-demo-watermarks';
const OUT_DIR = resolve('.demo/export');
const EVENT_ROWS = Number(process.env.DEMO_ROWS ?? 100_000);

const say = (text = '') => process.stdout.write(`${text}\n`);
const heading = (text: string) => say(`\n== ${text}`);

async function main(): Promise<void> {
  heading('Starting the local stack (moto, PostgreSQL, MariaDB)');
  const stack = await startStack();
  process.once('SIGINT', () => {
    void stack.stop().finally(() => process.exit(130));
  });
  try {
    useStackEnvironment(stack);
    // The demo prints its own report; LOG_LEVEL=INFO shows the functions' structured logs too.
    process.env.LOG_LEVEL ??= 'ERROR';
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
    process.env.WATERMARK_TABLE = WATERMARK_TABLE;
    process.env.CONFIG_PATH = CONFIG_PATH;
    say(`moto ${stack.awsEndpoint}; PostgreSQL ${stack.postgres.port}; MariaDB ${stack.mariadb.port}`);
    await run(stack);
  } finally {
    heading('Stopping the local stack');
    await stack.stop();
  }
}

async function run(stack: Stack): Promise<void> {
  const sm = new SecretsManagerClient({});
  // Imported only now: the handlers build their clients from the environment set above.
  const rotate = await import('../functions/rotate');
  const exporter = await import('../functions/export');

  heading('Creating demo users and their secrets');
  const mariaSecret = await createMariadbUser(stack, sm);
  const pgSecret = await createPostgresUser(stack, sm);

  for (const [label, secretId, canLogin] of [
    ['MariaDB', mariaSecret, (u: string, p: string) => mysqlLogin(stack, u, p)],
    ['PostgreSQL', pgSecret, (u: string, p: string) => postgresLogin(stack, u, p)],
  ] as const) {
    heading(`Rotating the ${label} secret through the rotation handler`);
    const before = await currentCredentials(sm, secretId);
    const result = await driveRotation({
      secretsManager: sm,
      secretId,
      invoke: async (event) => {
        const started = Date.now();
        await rotate.handler(event);
        say(`  ${event.Step.padEnd(13)} ok  ${Date.now() - started} ms`);
      },
    });
    const after = await currentCredentials(sm, secretId);
    say(`  token ${result.token}: ${result.attempts} attempt(s), ${result.durationMs} ms`);
    await printVersions(sm, secretId);
    say(`  new password logs in:      ${(await canLogin(after.username, after.password)) ? 'yes' : 'NO'}`);
    const oldRefused = !(await canLogin(before.username, before.password));
    say(`  old password refused:      ${oldRefused ? 'yes' : 'NO'}`);
    if (!oldRefused) throw new Error(`The old ${label} password still logs in after rotation`);
  }

  heading('Making database activity');
  await mariadbActivity(stack, sm, mariaSecret);
  await postgresEvents(stack);
  // general_log is exported by 1-minute windows once they close: wait for the current one.
  const wait = 61_000 - (Date.now() % 60_000);
  say(`  waiting ${Math.round(wait / 1000)} s for the current minute's window to close`);
  await new Promise((r) => setTimeout(r, wait));

  heading('Exporting to a local folder');
  await configureExporter(mariaSecret, pgSecret);
  rmSync(OUT_DIR, { recursive: true, force: true });
  mkdirSync(OUT_DIR, { recursive: true });
  const started = Date.now();
  const progress = setInterval(() => void printProgress(started), 3000);
  const summary = await exporter
    .handler({ 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} })
    .finally(() => clearInterval(progress));
  const seconds = (Date.now() - started) / 1000;

  heading('Report');
  let failed = false;
  for (const cluster of summary.clusters) {
    for (const t of cluster.tables) {
      say(
        `  ${cluster.cluster}/${t.table}: ${t.rows} rows in ${t.windows} windows, ` +
          `${t.objectsWritten} objects written, ${t.objectsSkipped} skipped${t.error ? `, ERROR ${t.error}` : ''}`,
      );
      failed ||= Boolean(t.error);
    }
    if (cluster.error) {
      say(`  ${cluster.cluster}: ERROR ${cluster.error}`);
      failed = true;
    }
  }
  const totalRows = summary.clusters.flatMap((c) => c.tables).reduce((n, t) => n + t.rows, 0);
  say(`  ${totalRows} rows in ${seconds.toFixed(1)} s (${Math.round(totalRows / seconds)} rows/s)`);
  say('\n  Objects (gzip JSON lines, one per non-empty window):');
  const files = listFiles(OUT_DIR);
  const tables = new Set(files.map((f) => relative(OUT_DIR, f).split('/').slice(0, 2).join('/')));
  for (const table of tables) {
    const own = files.filter((f) => relative(OUT_DIR, f).startsWith(`${table}/`));
    const bytes = own.reduce((n, f) => n + statSync(f).size, 0);
    say(`    ${table}: ${own.length} objects, ${bytes} bytes; first and last:`);
    for (const file of new Set([own[0], own.at(-1)])) if (file) say(`      ${relative(process.cwd(), file)}`);
  }
  say('\n  Watermarks:');
  for (const item of await watermarks()) {
    say(
      `    ${item.cluster?.S}/${item.table?.S}: ${item.watermark?.S} (${item.rowsExported?.N} rows in all)`,
    );
  }

  heading('Status (what `npm run status` prints)');
  const status = await readStatus({
    dynamo: new DynamoDBClient({}),
    secretsManager: sm,
    watermarkTable: WATERMARK_TABLE,
    rotationFunctionArn: PLACEHOLDER_ROTATION_LAMBDA_ARN,
  });
  say(formatStatus(status).replace(/^/gm, '  '));
  if (failed) throw new Error('The export reported errors (see above)');

  heading('What to do with the export: query it (DuckDB, locally, over the exported tree)');
  await queryExport();
}

/**
 * Two questions answered from the exported objects alone, by DuckDB reading
 * the tree with Hive partitioning (cluster=, dt= become columns), as Athena
 * would from S3: who sent the most statements, and what happened per hour.
 */
async function queryExport(): Promise<void> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const duck = await (await DuckDBInstance.create(':memory:')).connect();
  await duck.run("SET TimeZone = 'UTC'");
  const tree = (table: string) =>
    `read_json('${OUT_DIR}/${table}/**/*.jsonl.gz', format = 'newline_delimited', hive_partitioning = true)`;
  const queries: [string, string][] = [
    [
      'Busiest MariaDB users (general_log)',
      `SELECT cluster, regexp_extract(user_host, '\\[([^\\]]*)\\]', 1) AS "user", command_type, count(*) AS statements
         FROM ${tree('general_log')} GROUP BY ALL ORDER BY statements DESC, "user" LIMIT 5`,
    ],
    [
      'PostgreSQL app_events per hour and kind (custom export)',
      `SELECT strftime(date_trunc('hour', CAST(created_at AS TIMESTAMPTZ)), '%Y-%m-%d %H:00') AS hour, kind, count(*) AS events
         FROM ${tree('app_events')} GROUP BY ALL ORDER BY hour, kind`,
    ],
  ];
  for (const [title, sql] of queries) {
    const reader = await duck.runAndReadAll(sql);
    say(`\n  ${title}:`);
    say(formatTable(reader.columnNames(), reader.getRowsJson() as unknown[][]).replace(/^/gm, '    '));
  }
  duck.closeSync();
}

/** Rows as an aligned text table with a header line. */
function formatTable(names: string[], rows: unknown[][]): string {
  const cells = [names, ...rows.map((r) => r.map((v) => String(v ?? '')))];
  const widths = names.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [
    line(cells[0] as string[]),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...cells.slice(1).map(line),
  ].join('\n');
}

async function watermarks() {
  const items = await new DynamoDBClient({}).send(new ScanCommand({ TableName: WATERMARK_TABLE }));
  return items.Items ?? [];
}

/** Rows committed so far (the watermarks count them), and the rate. */
async function printProgress(started: number): Promise<void> {
  const rows = (await watermarks()).reduce((n, item) => n + Number(item.rowsExported?.N ?? 0), 0);
  const seconds = (Date.now() - started) / 1000;
  say(`  ... ${rows} rows committed, ${Math.round(rows / seconds)} rows/s`);
}

interface Credentials {
  username: string;
  password: string;
}

async function currentCredentials(sm: SecretsManagerClient, secretId: string): Promise<Credentials> {
  // The stage is named although AWSCURRENT is the default: moto answers an unnamed read with the old version.
  const value = await sm.send(new GetSecretValueCommand({ SecretId: secretId, VersionStage: 'AWSCURRENT' }));
  return JSON.parse(value.SecretString ?? '{}') as Credentials;
}

async function printVersions(sm: SecretsManagerClient, secretId: string): Promise<void> {
  const versions = await sm.send(new ListSecretVersionIdsCommand({ SecretId: secretId }));
  for (const v of versions.Versions ?? []) {
    if (v.VersionStages?.length) say(`  version ${v.VersionId}: ${v.VersionStages.join(', ')}`);
  }
}

const demoPassword = () => `Demo-${Math.random().toString(36).slice(2)}-${Date.now().toString(36)}`;

async function createMariadbUser(stack: Stack, sm: SecretsManagerClient): Promise<string> {
  const { host, port, adminUser, adminPassword } = stack.mariadb;
  const password = demoPassword();
  const admin = await mysql.createConnection({ host, port, user: adminUser, password: adminPassword });
  await admin.query('CREATE DATABASE IF NOT EXISTS demo');
  await admin.query("CREATE USER 'demo_app'@'%' IDENTIFIED BY ?", [password]);
  await admin.query("GRANT SELECT, INSERT ON demo.* TO 'demo_app'@'%'");
  // The exporter reads the log tables with this same (rotated) secret.
  await admin.query("GRANT SELECT ON mysql.general_log TO 'demo_app'@'%'");
  await admin.query("GRANT SELECT ON mysql.slow_log TO 'demo_app'@'%'");
  await admin.end();
  const secret = { engine: 'mariadb', host, port, username: 'demo_app', password, dbname: 'demo' };
  const created = await sm.send(
    new CreateSecretCommand({ Name: 'demo/mariadb/app', SecretString: JSON.stringify(secret) }),
  );
  say(`  MariaDB user demo_app, secret ${created.Name}`);
  return created.ARN ?? 'demo/mariadb/app';
}

async function createPostgresUser(stack: Stack, sm: SecretsManagerClient): Promise<string> {
  const { host, port, adminUser, adminPassword } = stack.postgres;
  const password = demoPassword();
  const admin = new pg.Client({ host, port, user: adminUser, password: adminPassword, database: 'postgres' });
  await admin.connect();
  await admin.query('CREATE DATABASE demo');
  await admin.query(`CREATE ROLE demo_app LOGIN PASSWORD ${pg.escapeLiteral(password)}`);
  await admin.query('GRANT ALL ON DATABASE demo TO demo_app');
  await admin.end();
  const secret = { engine: 'postgres', host, port, username: 'demo_app', password, dbname: 'demo' };
  const created = await sm.send(
    new CreateSecretCommand({ Name: 'demo/postgres/app', SecretString: JSON.stringify(secret) }),
  );
  say(`  PostgreSQL user demo_app, secret ${created.Name}`);
  return created.ARN ?? 'demo/postgres/app';
}

async function mysqlLogin(stack: Stack, user: string, password: string): Promise<boolean> {
  try {
    const c = await mysql.createConnection({
      host: stack.mariadb.host,
      port: stack.mariadb.port,
      user,
      password,
    });
    await c.end();
    return true;
  } catch {
    return false;
  }
}

async function postgresLogin(stack: Stack, user: string, password: string): Promise<boolean> {
  const c = new pg.Client({
    host: stack.postgres.host,
    port: stack.postgres.port,
    user,
    password,
    database: 'demo',
  });
  try {
    await c.connect();
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}

/** Statements by the application user (as the rotated secret says), including one that sets a password. */
async function mariadbActivity(stack: Stack, sm: SecretsManagerClient, secretId: string): Promise<void> {
  const app = await currentCredentials(sm, secretId);
  const conn = await mysql.createConnection({
    host: stack.mariadb.host,
    port: stack.mariadb.port,
    user: app.username,
    password: app.password,
    database: 'demo',
  });
  for (let i = 0; i < 20; i++) await conn.query('SELECT ? AS n, NOW(6) AS at', [i]);
  await conn.end();
  const { host, port, adminUser, adminPassword } = stack.mariadb;
  const admin = await mysql.createConnection({ host, port, user: adminUser, password: adminPassword });
  // The exporter masks this literal in what it writes.
  await admin.query("CREATE USER IF NOT EXISTS 'reporting'@'%' IDENTIFIED BY 'not-in-the-export'");
  await admin.end();
  say('  MariaDB: 20 queries by demo_app, one CREATE USER with a password (masked in the export)');
}

/** A PostgreSQL application table with rows spread over the last two hours, exported as a custom export. */
async function postgresEvents(stack: Stack): Promise<void> {
  const { host, port, adminUser, adminPassword } = stack.postgres;
  const admin = new pg.Client({ host, port, user: adminUser, password: adminPassword, database: 'demo' });
  await admin.connect();
  await admin.query(`
    CREATE TABLE app_events (id bigserial PRIMARY KEY, created_at timestamptz(6) NOT NULL, kind text, payload jsonb);
    INSERT INTO app_events (created_at, kind, payload)
      SELECT date_trunc('minute', now()) - make_interval(secs => (g * 7200.0 / ${EVENT_ROWS})),
             (ARRAY['login','query','logout'])[1 + g % 3], jsonb_build_object('n', g)
      FROM generate_series(1, ${EVENT_ROWS}) AS g;
    CREATE INDEX ON app_events (created_at);
    GRANT SELECT ON app_events TO demo_app;`);
  await admin.end();
  say(`  PostgreSQL: ${EVENT_ROWS} rows in demo.app_events over the last 2 hours`);
}

async function configureExporter(mariaSecret: string, pgSecret: string): Promise<void> {
  const ssm = new SSMClient({});
  const put = (name: string, value: string, type: 'String' | 'StringList' = 'String') =>
    ssm.send(
      new PutParameterCommand({ Name: `${CONFIG_PATH}/${name}`, Value: value, Type: type, Overwrite: true }),
    );
  await put('global/destination', `file://${OUT_DIR}`);
  await put('global/enabled-clusters', 'demo-mariadb,demo-postgres', 'StringList');
  await put('global/window-minutes', '1');
  await put('global/lag-seconds', '0');
  await put('global/initial-lookback-hours', '3');
  await put('global/fan-out', 'off');
  await put('clusters/demo-mariadb/engine', 'mariadb');
  await put('clusters/demo-mariadb/secret-id', mariaSecret);
  await put('clusters/demo-mariadb/tables', 'general_log', 'StringList');
  await put('clusters/demo-postgres/engine', 'postgres');
  await put('clusters/demo-postgres/secret-id', pgSecret);
  await put('clusters/demo-postgres/tables', 'none', 'StringList');
  await put('clusters/demo-postgres/custom/app_events/query', 'SELECT * FROM app_events');
  await put('clusters/demo-postgres/custom/app_events/watermark-column', 'created_at');
  await createWatermarkTable(new DynamoDBClient({}), WATERMARK_TABLE);

  say(`  SSM parameters under ${CONFIG_PATH}, watermarks in DynamoDB table ${WATERMARK_TABLE}`);
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? listFiles(join(dir, e.name)) : [join(dir, e.name)]))
    .sort();
}

main()
  .then(
    () => say('\nDemo finished.'),
    (error: unknown) => {
      process.stderr.write(`\nDemo failed: ${(error as Error).message}\n`);
      process.exitCode = 1;
    },
  )
  .finally(() => stopDeflateWorkers());
