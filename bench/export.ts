/**
 * Exporter benchmark (npm run bench:export). Starts the local stack, loads the
 * same rows into MariaDB and PostgreSQL, and in one run compares:
 * - throughput: the exporter (one window, gzip JSON lines to the file sink) against
 *   `mariadb --batch -e "<same SELECT>" | gzip -6` and `psql -c "\copy (<same SELECT>) to stdout" | gzip -6`;
 * - peak RSS of one export of a window of N rows and of 4N rows, each in a child process
 *   running the export function's bundle as deployed (bench/export-child.mjs);
 * - the same for Parquet objects (`global/format` parquet), with their size against the gzip JSON lines.
 * Targets: throughput >= 0.8x the CLI pipeline; 4N RSS <= 1.25x N RSS; RSS < 256 MB.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { createWatermarkTable } from '../shared/export/plan/watermark-store';
import { startStack, useStackEnvironment } from '../test/stack';
import { bundleAsDeployed } from '../test/support/bundle';

const run = promisify(execFile);
const N = Number(process.env.BENCH_ROWS ?? 100_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const DAY = '2024-03-01';
const FROM = `${DAY}T00:00:00Z`;
const TO = `${DAY}T23:59:59Z`;
/** A general_log-like row: about 250 bytes of JSON. */
const COLUMNS = 'id, event_time, user_host, thread_id, server_id, command_type, argument';

const stack = await startStack();
try {
  useStackEnvironment(stack);
  const work = mkdtempSync(join(tmpdir(), 'bench-export-'));
  const { mariadb, postgres } = stack;

  // Same rows in both engines: N in table n, 4N in table n4, all on one day.
  const my = await mysql.createConnection({ ...credentials(mariadb), multipleStatements: true });
  await my.query('CREATE DATABASE bench; USE bench');
  const pgc = new pg.Client({ ...credentials(postgres), database: 'postgres' });
  pgc.on('error', () => {});
  await pgc.connect();
  for (const [table, count] of [
    ['n', N],
    ['n4', 4 * N],
  ] as const) {
    await my.query(
      `CREATE TABLE ${table} (id BIGINT PRIMARY KEY, event_time DATETIME(6) NOT NULL, user_host VARCHAR(255), thread_id BIGINT, server_id INT, command_type VARCHAR(64), argument MEDIUMTEXT, INDEX (event_time));
       INSERT INTO ${table} SELECT seq, TIMESTAMP('${DAY}') + INTERVAL (seq * 86000000000 DIV ${count}) MICROSECOND, 'app[app] @ 10.0.0.1 [10.0.0.1]', seq % 5000, 1, 'Query', CONCAT('SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.created_at > NOW() - INTERVAL 1 DAY AND c.id = ', seq) FROM seq_1_to_${count}`,
    );
    await pgc.query(
      `CREATE TABLE ${table} (id bigint PRIMARY KEY, event_time timestamptz(6) NOT NULL, user_host text, thread_id bigint, server_id int, command_type text, argument text);
       INSERT INTO ${table} SELECT g, timestamptz '${DAY} 00:00:00+00' + (g::bigint * 86000000000 / ${count}) * interval '1 microsecond', 'app[app] @ 10.0.0.1 [10.0.0.1]', g % 5000, 1, 'Query', 'SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.created_at > NOW() - INTERVAL 1 DAY AND c.id = ' || g FROM generate_series(1, ${count}) g;
       CREATE INDEX ON ${table} (event_time); ANALYZE ${table}`,
    );
  }
  await my.end();
  await pgc.end();

  // Exporter configuration: window of one day, one custom export per engine and table; once per format.
  const ssm = new SSMClient({});
  const paths = { 'jsonl.gz': '/bench-export', parquet: '/bench-export-parquet' } as const;
  for (const [format, path] of Object.entries(paths)) {
    const put = (name: string, Value: string, Type: 'String' | 'SecureString' = 'String') =>
      ssm.send(new PutParameterCommand({ Name: `${path}/${name}`, Value, Type, Overwrite: true }));
    await put('global/destination', `file://${work}/out-${format}`);
    await put('global/window-minutes', '1440');
    await put('global/format', format);
    for (const [engine, server, database] of [
      ['mariadb', mariadb, 'bench'],
      ['postgres', postgres, 'postgres'],
    ] as const) {
      for (const table of ['n', 'n4']) {
        const c = `${engine}-${table}`;
        await put(`clusters/${c}/engine`, engine);
        await put(`clusters/${c}/host`, server.host);
        await put(`clusters/${c}/port`, String(server.port));
        await put(`clusters/${c}/database`, database);
        await put(`clusters/${c}/user`, server.adminUser);
        await put(`clusters/${c}/password`, server.adminPassword, 'SecureString');
        await put(`clusters/${c}/ssl`, 'false');
        await put(`clusters/${c}/tables`, 'none');
        await put(`clusters/${c}/custom/bench/query`, `SELECT ${COLUMNS} FROM ${table}`);
        await put(`clusters/${c}/custom/bench/watermark-column`, 'event_time');
      }
    }
  }
  const watermarkTable = 'bench-watermarks';
  for (const format of Object.keys(paths))
    await createWatermarkTable(new DynamoDBClient({}), `${watermarkTable}-${format}`);

  // What is measured is the export function's bundle (and its Parquet encoder), built as the deployment builds it.
  const bundle = await bundleAsDeployed(
    { path: 'functions/export.ts' },
    join(work, 'bundle', 'export.cjs'),
    process.env.BENCH_CPU_PROF ? { minify: false } : {},
  );
  const exporter = async (cluster: string, format: keyof typeof paths = 'jsonl.gz') => {
    const path = paths[format];
    // The arguments go by the environment; the passwords stay in SSM, where the function reads them.
    const args = { bundle, path, watermarkTable: `${watermarkTable}-${format}`, cluster, from: FROM, to: TO };
    // BENCH_CPU_PROF=<dir>: each export writes V8 CPU profiles (one per thread) there, named by cluster and format.
    const profile = process.env.BENCH_CPU_PROF
      ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}/${cluster}-${format}`]
      : [];
    const { stdout } = await run(process.execPath, [...profile, 'bench/export-child.mjs'], {
      maxBuffer: 1 << 20,
      env: { ...process.env, BENCH_EXPORT_CHILD: JSON.stringify(args) },
    });
    return JSON.parse(stdout.trim().split('\n').at(-1) as string) as ExportRun;
  };
  const select = (table: string, literal: (t: string) => string) =>
    `SELECT ${COLUMNS} FROM ${table} WHERE event_time >= ${literal(`${DAY} 00:00:00`)} AND event_time < ${literal(`${DAY} 23:59:59`)} ORDER BY event_time`;
  /** Bytes of the exporter's object for a cluster (the only file under its partition). */
  const objectBytes = (cluster: string, format: keyof typeof paths = 'jsonl.gz') =>
    readdirSync(`${work}/out-${format}`, { recursive: true, encoding: 'utf8' })
      .filter((name) => name.includes(`cluster=${cluster}/`) && name.endsWith(`.${format}`))
      .reduce((total, name) => total + statSync(`${work}/out-${format}/${name}`).size, 0);
  const cli = async (command: string, args: string[], env: NodeJS.ProcessEnv) => {
    const started = performance.now();
    await new Promise<void>((resolve, reject) => {
      const child = spawn(
        'bash',
        ['-o', 'pipefail', '-c', `"$0" "$@" | gzip -6 > ${work}/cli.gz`, command, ...args],
        {
          env: { ...process.env, ...env },
          stdio: ['ignore', 'ignore', 'inherit'],
        },
      );
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited ${code}`))));
    });
    return (performance.now() - started) / 1000;
  };

  const results: Array<Record<string, string>> = [];
  const parquetResults: Array<Record<string, string>> = [];
  for (const engine of ['mariadb', 'postgres'] as const) {
    const server = stack[engine];
    const cliRun = () =>
      engine === 'mariadb'
        ? cli(
            'mariadb',
            [
              '--batch',
              `--host=${server.host}`,
              `--port=${server.port}`,
              `--user=${server.adminUser}`,
              'bench',
              '-e',
              `SET time_zone = '+00:00'; ${select('n4', (t) => `'${t}'`)}`,
            ],
            { MYSQL_PWD: server.adminPassword },
          )
        : cli(
            'psql',
            [
              `--host=${server.host}`,
              `--port=${server.port}`,
              `--username=${server.adminUser}`,
              '--dbname=postgres',
              '-c',
              `\\copy (${select('n4', (t) => `'${t}+00'`)}) to stdout`,
            ],
            { PGPASSWORD: server.adminPassword },
          );
    // Alternate the two so that a busy spell of the machine falls on both; compare medians.
    const small = await exporter(`${engine}-n`);
    const smallParquet = await exporter(`${engine}-n`, 'parquet');
    const large: ExportRun[] = [];
    const largeParquet: ExportRun[] = [];
    const cliSeconds: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      large.push(await exporter(`${engine}-n4`));
      largeParquet.push(await exporter(`${engine}-n4`, 'parquet'));
      cliSeconds.push(await cliRun());
    }
    const cliRate = (4 * N) / median(cliSeconds);
    const json = measured(large, small);
    const parquet = measured(largeParquet, smallParquet);
    results.push({
      engine,
      'rows (4N)': String(large[0]?.rows),
      'exporter rows/s': json.rate.toFixed(0),
      'CLI | gzip -6 rows/s': cliRate.toFixed(0),
      'ratio (target >= 0.8)': (json.rate / cliRate).toFixed(2),
      'exporter KiB': (objectBytes(`${engine}-n4`) / 1024).toFixed(0),
      'CLI KiB': (statSync(`${work}/cli.gz`).size / 1024).toFixed(0),
      ...json.memory,
    });
    parquetResults.push({
      engine,
      'rows (4N)': String(largeParquet[0]?.rows),
      'Parquet rows/s': parquet.rate.toFixed(0),
      'CLI | gzip -6 rows/s': cliRate.toFixed(0),
      'ratio (target >= 0.8)': (parquet.rate / cliRate).toFixed(2),
      'Parquet KiB': (objectBytes(`${engine}-n4`, 'parquet') / 1024).toFixed(0),
      'jsonl.gz KiB': (objectBytes(`${engine}-n4`) / 1024).toFixed(0),
      'size vs jsonl.gz': (objectBytes(`${engine}-n4`, 'parquet') / objectBytes(`${engine}-n4`)).toFixed(2),
      ...parquet.memory,
    });
  }
  console.log(
    `\nExporter benchmark, N = ${N} rows (4N = ${4 * N}), one window of gzip JSON lines to files; median of ${ROUNDS} alternating runs each\n`,
  );
  console.table(results);
  console.log(`\nThe same windows as Parquet (global/format parquet), against the same CLI runs\n`);
  console.table(parquetResults);
  rmSync(work, { recursive: true, force: true });
} finally {
  await stack.stop();
}

interface ExportRun {
  rows: number;
  seconds: number;
  peakRssMb: number;
}

/** One format's rows/s over its 4N runs, and its memory columns against the run of N rows. */
function measured(runs: ExportRun[], small: ExportRun) {
  const rate = (4 * N) / median(runs.map((run) => run.seconds));
  const peak = Math.max(...runs.map((run) => run.peakRssMb));
  return {
    rate,
    memory: {
      'peak RSS N MB': small.peakRssMb.toFixed(1),
      'peak RSS 4N MB': peak.toFixed(1),
      '4N/N (target <= 1.25)': (peak / small.peakRssMb).toFixed(2),
      '< 256 MB': peak < 256 ? 'yes' : 'NO',
    },
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

function credentials(server: { host: string; port: number; adminUser: string; adminPassword: string }) {
  return { host: server.host, port: server.port, user: server.adminUser, password: server.adminPassword };
}
