import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/export';
import type { ExportSummary } from '../../shared/export';
import type { SessionOpener } from '../../shared/export/exporter';
import { type ExportRuntime, SESSION_OPENERS } from '../../shared/export/runtime';
import { CATALOG } from '../../shared/export/sources/catalog';
import {
  catalogExportParameters,
  dayAhead,
  dayAheadOpeners,
  sourcesWithRows,
} from '../shared/export/catalog-sources';
import {
  createBucket,
  createWatermarkTable,
  exportDirectory,
  mysqlClusterParameters,
  parseJsonLines,
  putParameters,
  s3,
  testRuntime,
} from '../shared/export/support';
import { createPgDatabase, mysqlAdmin, pgAdmin, uniqueName } from '../stack/fixtures';
import { projectRoot } from '../stack/prerequisites';
import { ddlStatements, parseDdl } from '../support/athena-ddl';
import { runScript } from '../support/cli';
import { postgresClusterParameters } from '../support/csvlog-fixtures';
import { type DuckDbResult, duckdbQuery, isoFromDuckDb, sqlString } from '../support/duckdb';
import { SessionRecording } from '../support/session-recording';

/**
 * What the exporter writes in both formats, read back by DuckDB (an engine no
 * one here wrote) through the real handler, against the test stack's MariaDB
 * and PostgreSQL (and Redshift fixtures on PostgreSQL) and moto: row counts,
 * values and column types, the Hive partitions, the Athena DDL over the
 * Parquet objects, and masking.
 */

const SCHEDULED = { 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} };

/** Every file under `root`, by path relative to it, sorted. */
async function treeFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(root, join(e.parentPath, e.name)))
    .sort();
}

const withoutExtension = (key: string) => key.replace(/\.(parquet|jsonl\.gz)$/, '');

/** Every table's summary, failing on any table error. */
function tablesOf(summary: ExportSummary) {
  const tables = summary.clusters.flatMap((c) => c.tables.map((t) => ({ cluster: c.cluster, ...t })));
  for (const t of tables) expect(t.error, `${t.cluster} ${t.table}`).toBeUndefined();
  return tables;
}

/** `2024-05-01T12:00:00.5Z`, `2024-05-01 12:00:00+00` → `2024-05-01T12:00:00.500000Z`; anything else unchanged. */
function isoMicros(text: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?(?:Z|\+00(?::?00)?)$/.exec(text);
  return m ? `${m[1]}T${m[2]}.${(m[3] ?? '').padEnd(6, '0')}Z` : text;
}

/** A decimal's text without the zeros that do not change its value: `0012.300` → `12.3`, `-0.0` → `0`. */
function canonicalDecimal(text: string): string {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(text);
  if (!m) return text;
  const whole = (m[2] ?? '').replace(/^0+(?=\d)/, '') || '0';
  const fraction = (m[3] ?? '').replace(/0+$/, '');
  const digits = fraction ? `${whole}.${fraction}` : whole;
  return m[1] === '-' && /[1-9]/.test(digits) ? `-${digits}` : digits;
}

/**
 * One value in a form both readers agree on, by the DuckDB type of its
 * Parquet column: DuckDB's timestamps, decimals and 64-bit integers (text)
 * and the JSON lines' ISO text, numbers and strings come out alike when the
 * values are the same. A JSON value in a text column is compared as its JSON.
 */
function comparable(duckType: string, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (duckType === 'TIMESTAMP WITH TIME ZONE') return isoMicros(isoFromDuckDb(String(value)));
  if (duckType.startsWith('DECIMAL')) return canonicalDecimal(String(value));
  if (['BIGINT', 'HUGEINT', 'INTEGER', 'SMALLINT', 'UBIGINT'].includes(duckType)) return String(value);
  if (duckType === 'DOUBLE' || duckType === 'FLOAT') return Number(value);
  if (duckType === 'VARCHAR' && typeof value !== 'string') return JSON.stringify(value);
  return value;
}

/** The rows of a DuckDB result, each value made comparable by its column's type. */
function comparableRows(result: DuckDbResult, rows: Record<string, unknown>[] = result.rows) {
  return rows.map((row) =>
    Object.fromEntries(result.columns.map((c) => [c.name, comparable(c.type, row[c.name])])),
  );
}

/** `{ column: type }` of a DuckDB query's result. */
async function duckTypes(from: string): Promise<Record<string, string>> {
  const { columns } = await duckdbQuery(`SELECT * FROM ${from} LIMIT 0`);
  return Object.fromEntries(columns.map((c) => [c.name, c.type]));
}

const parquetTree = (dir: string) =>
  `read_parquet(${sqlString(`${dir}/**/*.parquet`)}, hive_partitioning = true)`;
const jsonTree = (dir: string) =>
  `read_json(${sqlString(`${dir}/**/*.jsonl.gz`)}, format = 'newline_delimited', hive_partitioning = true)`;

/** Rows per (cluster, dt) as DuckDB counts them. */
async function countsByPartition(from: string) {
  const { rows } = await duckdbQuery(
    `SELECT cluster, dt::VARCHAR AS dt, count(*) AS n FROM ${from} GROUP BY ALL ORDER BY ALL`,
  );
  return rows.map((r) => ({ cluster: r.cluster, dt: r.dt, n: Number(r.n) }));
}

const mapOpeners = (openers: ExportRuntime['openers'], wrap: (open: SessionOpener) => SessionOpener) => ({
  mysql: wrap(openers.mysql),
  postgres: wrap(openers.postgres),
  redshift: wrap(openers.redshift),
});

/** Which cluster of catalogExportParameters exports each family's tables. */
const CLUSTER_OF_FAMILY = { mysql: 'my', postgres: 'pg', redshift: 'rs' } as const;

describe('every catalog table in both formats, read back by DuckDB', () => {
  const secret = `Pw-${uniqueName('formats')}`;
  const user = uniqueName('fmt').slice(0, 30);
  let parquetDir: string;
  let jsonDir: string;

  beforeAll(async () => {
    // Statements with a password in their text: in MariaDB's general_log and slow_log, and PostgreSQL's csv log.
    const mysql = await mysqlAdmin();
    try {
      await mysql.query('SET SESSION long_query_time = 0');
      await mysql.query(`CREATE USER '${user}'@'localhost' IDENTIFIED BY '${secret}'`);
      await mysql.query(`DROP USER '${user}'@'localhost'`);
    } finally {
      await mysql.end();
    }
    const sources = await sourcesWithRows();
    const pg = await pgAdmin(sources.pgDatabase);
    try {
      await pg.query(`CREATE ROLE ${user} LOGIN PASSWORD '${secret}'`);
      await pg.query(`DROP ROLE ${user}`);
    } finally {
      await pg.end();
    }
    parquetDir = exportDirectory();
    jsonDir = exportDirectory();
    const recording = new SessionRecording();
    const run = async (
      destination: string,
      format: Record<string, string>,
      openers: ExportRuntime['openers'],
    ) => {
      const path = `/${uniqueName('formats')}`;
      await putParameters(path, { ...catalogExportParameters(destination, sources), ...format });
      const runtime = testRuntime({ path, watermarkTable: await createWatermarkTable(), openers });
      return makeHandler(runtime)(SCHEDULED);
    };

    // Parquet from the servers; then JSON lines from exactly the answers the servers gave it. A live log (the
    // general_log grows with every statement, this run's too) and a pg_stat_statements snapshot cannot be read
    // twice alike: two reads would differ in rows and values, whatever the formats did.
    const parquet = await run(
      `file://${parquetDir}`,
      { 'global/format': 'parquet' },
      mapOpeners(dayAheadOpeners(), (open) => recording.record(open)),
    );
    const replay = recording.replay();
    const json = await run(`file://${jsonDir}`, {}, { mysql: replay, postgres: replay, redshift: replay });

    for (const summary of [parquet, json]) {
      const written = tablesOf(summary).filter((t) => t.objectsWritten > 0);
      expect(written.map((t) => t.table).sort()).toEqual(CATALOG.map((t) => t.name).sort());
    }
  }, 180_000);

  it('writes one object per table and window in each format, at the same keys but for the extension', async () => {
    const parquetFiles = await treeFiles(parquetDir);
    const jsonFiles = await treeFiles(jsonDir);

    expect(parquetFiles.every((f) => f.endsWith('.parquet'))).toBe(true);
    expect(jsonFiles.every((f) => f.endsWith('.jsonl.gz'))).toBe(true);
    expect(parquetFiles.map(withoutExtension)).toEqual(jsonFiles.map(withoutExtension));
    expect(new Set(parquetFiles.map((f) => f.split('/')[0]))).toEqual(new Set(CATALOG.map((t) => t.name)));
  });

  it("counts the same rows in both trees for every table, and reads the JSON lines' cluster and dt partitions", async () => {
    for (const table of CATALOG) {
      const parquet = await countsByPartition(parquetTree(join(parquetDir, table.name)));
      const json = await countsByPartition(jsonTree(join(jsonDir, table.name)));
      // The JSON lines as Node reads them, partitions from the keys.
      const node = new Map<string, number>();
      for (const file of await treeFiles(join(jsonDir, table.name))) {
        const [, cluster, dt] = /^cluster=([^/]+)\/dt=([^/]+)\//.exec(file) ?? [];
        const lines = parseJsonLines(gunzipSync(await readFile(join(jsonDir, table.name, file))).toString());
        node.set(`${cluster} ${dt}`, (node.get(`${cluster} ${dt}`) ?? 0) + lines.length);
      }

      expect(parquet, table.name).toEqual(json);
      expect(
        json.map((p) => [`${p.cluster} ${p.dt}`, p.n]),
        table.name,
      ).toEqual([...node]);
      expect(json.length, table.name).toBeGreaterThan(0);
      for (const p of json) {
        expect(p.cluster, table.name).toBe(CLUSTER_OF_FAMILY[table.family as keyof typeof CLUSTER_OF_FAMILY]);
        expect(p.n, table.name).toBeGreaterThan(0);
      }
    }
  });

  it('holds in Parquet exactly the values of the JSON lines, object by object, row by row, in every column', async () => {
    let compared = 0;
    for (const file of await treeFiles(parquetDir)) {
      const parquet = await duckdbQuery(
        `SELECT * FROM read_parquet(${sqlString(join(parquetDir, file))}, hive_partitioning = false)`,
      );
      const lines = parseJsonLines(
        gunzipSync(await readFile(join(jsonDir, `${withoutExtension(file)}.jsonl.gz`))).toString(),
      );
      const keys = new Set(lines.flatMap((line) => Object.keys(line)));

      expect(parquet.columns.map((c) => c.name).sort(), file).toEqual([...keys].sort());
      expect(comparableRows(parquet), file).toEqual(comparableRows(parquet, lines));
      compared += lines.length;
    }
    expect(compared).toBeGreaterThan(CATALOG.length);
  });

  it('types the Parquet columns as the sources type them', async () => {
    const types = new Map<string, Record<string, string>>();
    for (const table of CATALOG)
      types.set(table.name, await duckTypes(parquetTree(join(parquetDir, table.name))));
    const typeOf = (table: string, column: string) => `${table}.${column} ${types.get(table)?.[column]}`;

    // MariaDB's log tables: timestamp(6), bigint(21) unsigned, int(10) unsigned, time(6), mediumtext; slow_log's
    // row counts are int(11) in MySQL and bigint(20) unsigned in MariaDB 10.11.19, exported as the wider.
    expect(types.get('general_log')).toEqual({
      event_time: 'TIMESTAMP WITH TIME ZONE',
      user_host: 'VARCHAR',
      thread_id: 'DECIMAL(20,0)',
      server_id: 'BIGINT',
      command_type: 'VARCHAR',
      argument: 'VARCHAR',
      time_basis: 'VARCHAR',
      cluster: 'VARCHAR',
      dt: 'DATE',
    });
    expect(
      [
        'start_time',
        'query_time',
        'lock_time',
        'rows_sent',
        'rows_examined',
        'thread_id',
        'rows_affected',
      ].map((c) => typeOf('slow_log', c)),
    ).toEqual([
      'slow_log.start_time TIMESTAMP WITH TIME ZONE',
      'slow_log.query_time VARCHAR',
      'slow_log.lock_time VARCHAR',
      'slow_log.rows_sent DECIMAL(20,0)',
      'slow_log.rows_examined DECIMAL(20,0)',
      'slow_log.thread_id DECIMAL(20,0)',
      'slow_log.rows_affected DECIMAL(20,0)',
    ]);
    // PostgreSQL's csv log (timestamp(3) with time zone, integer, bigint) and pg_stat_statements (oid, bigint,
    // double precision, boolean; wal_bytes is a bare numeric, exact only as text).
    expect(
      [
        ['postgres_log', 'log_time'],
        ['postgres_log', 'process_id'],
        ['postgres_log', 'session_line_num'],
        ['postgres_log', 'session_start_time'],
        ['postgres_log', 'message'],
        ['pg_stat_statements', 'captured_at'],
        ['pg_stat_statements', 'userid'],
        ['pg_stat_statements', 'queryid'],
        ['pg_stat_statements', 'calls'],
        ['pg_stat_statements', 'total_exec_time'],
        ['pg_stat_statements', 'toplevel'],
        ['pg_stat_statements', 'wal_bytes'],
      ].map(([t, c]) => typeOf(t as string, c as string)),
    ).toEqual([
      'postgres_log.log_time TIMESTAMP WITH TIME ZONE',
      'postgres_log.process_id INTEGER',
      'postgres_log.session_line_num BIGINT',
      'postgres_log.session_start_time TIMESTAMP WITH TIME ZONE',
      'postgres_log.message VARCHAR',
      'pg_stat_statements.captured_at TIMESTAMP WITH TIME ZONE',
      'pg_stat_statements.userid BIGINT',
      'pg_stat_statements.queryid BIGINT',
      'pg_stat_statements.calls BIGINT',
      'pg_stat_statements.total_exec_time DOUBLE',
      'pg_stat_statements.toplevel BOOLEAN',
      'pg_stat_statements.wal_bytes VARCHAR',
    ]);
    // Redshift (integer, bigint, character(n), timestamp without time zone in UTC, boolean).
    expect(types.get('stl_query')).toEqual({
      userid: 'INTEGER',
      query: 'INTEGER',
      label: 'VARCHAR',
      xid: 'BIGINT',
      pid: 'INTEGER',
      database: 'VARCHAR',
      querytxt: 'VARCHAR',
      starttime: 'TIMESTAMP WITH TIME ZONE',
      endtime: 'TIMESTAMP WITH TIME ZONE',
      aborted: 'INTEGER',
      insert_pristine: 'INTEGER',
      concurrency_scaling_status: 'INTEGER',
      cluster: 'VARCHAR',
      dt: 'DATE',
    });
    expect(
      [
        ['stl_querytext', 'endtime'],
        ['stl_querytext', 'text'],
        ['stl_ddltext', 'xid'],
        ['stl_ddltext', 'text_truncated'],
        ['stl_wlm_query', 'exec_end_time'],
        ['stl_wlm_query', 'total_exec_time'],
        ['stl_scan', 'rows'],
        ['stl_scan', 'bytes'],
        ['sys_query_history', 'query_id'],
        ['sys_query_history', 'result_cache_hit'],
        ['sys_query_history', 'elapsed_time'],
      ].map(([t, c]) => typeOf(t as string, c as string)),
    ).toEqual([
      'stl_querytext.endtime TIMESTAMP WITH TIME ZONE',
      'stl_querytext.text VARCHAR',
      'stl_ddltext.xid BIGINT',
      'stl_ddltext.text_truncated BOOLEAN',
      'stl_wlm_query.exec_end_time TIMESTAMP WITH TIME ZONE',
      'stl_wlm_query.total_exec_time BIGINT',
      'stl_scan.rows BIGINT',
      'stl_scan.bytes BIGINT',
      'sys_query_history.query_id BIGINT',
      'sys_query_history.result_cache_hit BOOLEAN',
      'sys_query_history.elapsed_time BIGINT',
    ]);
  });

  it('npm run athena-ddl -- --format parquet declares, for every table, the columns and types DuckDB reads from its objects', async () => {
    const { code, stdout } = await runScript('scripts/athena-ddl.ts', [
      '--destination',
      's3://bucket/prefix',
      '--format',
      'parquet',
    ]);
    expect(code).toBe(0);
    const ddl = parseDdl(ddlStatements(stdout));
    /** The DuckDB type a Parquet column of each Athena type reads as. */
    const duckType = (athena: string) =>
      /^decimal\(\d+,\d+\)$/.test(athena)
        ? athena.toUpperCase()
        : {
            timestamp: 'TIMESTAMP WITH TIME ZONE',
            date: 'DATE',
            int: 'INTEGER',
            bigint: 'BIGINT',
            double: 'DOUBLE',
            boolean: 'BOOLEAN',
            string: 'VARCHAR',
          }[athena];

    for (const table of CATALOG) {
      const {
        cluster: _cluster,
        dt: _dt,
        ...read
      } = await duckTypes(parquetTree(join(parquetDir, table.name)));
      const declared = Object.fromEntries(
        [...(ddl.get(table.name) ?? new Map<string, string>())].map(([c, t]) => [c, duckType(t)]),
      );
      expect(declared, table.name).toEqual(read);
    }
  });

  it("runs the Parquet example queries of docs/athena.md in DuckDB over the objects: as written, and for this export's clusters and day", async () => {
    const page = await readFile(join(projectRoot, 'docs/athena.md'), 'utf8');
    const section = page.slice(
      page.indexOf('\n## Parquet\n'),
      page.indexOf('\n## PostgreSQL and Redshift tables'),
    );
    const statements = (/```sql\n([\s\S]*?)```/.exec(section)?.[1] ?? '')
      .split(/;\s*\n/)
      .map((statement) => statement.trim())
      .filter(Boolean);
    const day = /\/dt=(\d{4}-\d{2}-\d{2})\//.exec((await treeFiles(parquetDir))[0] ?? '')?.[1] as string;
    const here = (sql: string) =>
      sql
        .replaceAll("'app-1'", "'my'")
        .replaceAll("'dw-1'", "'rs'")
        .replaceAll("'pg-1'", "'pg'")
        .replaceAll('2024-05-01', day);
    await duckdbQuery('CREATE SCHEMA IF NOT EXISTS log_export');
    for (const table of CATALOG)
      await duckdbQuery(
        `CREATE OR REPLACE VIEW log_export.${table.name} AS SELECT * FROM ${parquetTree(join(parquetDir, table.name))}`,
      );

    expect(statements.map((s) => /FROM log_export\.(\w+)/.exec(s)?.[1])).toEqual([
      'general_log',
      'stl_query',
      'postgres_log',
      'slow_log',
    ]);
    for (const statement of statements) {
      const written = await duckdbQuery(statement);
      expect(written.rows, statement).toEqual([]);
    }
    const rows = [];
    for (const statement of statements) rows.push((await duckdbQuery(here(statement))).rows.length);
    expect(rows[0], 'busiest users').toBeGreaterThan(0);
    expect(rows[1], 'slowest Redshift statements').toBe(1);
    expect(rows[3], 'rows examined').toBeGreaterThan(0);
  });

  it('masks the password of IDENTIFIED BY and PASSWORD in the Parquet objects: in no value DuckDB reads, in no byte of a file', async () => {
    // The servers did log it: an export that did not mask would carry it.
    const mysql = await mysqlAdmin();
    try {
      const [rows] = await mysql.query('SELECT COUNT(*) AS n FROM mysql.general_log WHERE argument LIKE ?', [
        `%IDENTIFIED BY '${secret}'%`,
      ]);
      expect(Number((rows as { n: number }[])[0]?.n)).toBeGreaterThan(0);
    } finally {
      await mysql.end();
    }
    const statement = (table: string, column: string) =>
      duckdbQuery(
        `SELECT ${column} AS text FROM ${parquetTree(join(parquetDir, table))} WHERE ${column} LIKE ${sqlString(`%${user}%`)}`,
      );

    const generalLog = await statement('general_log', 'argument');
    const slowLog = await statement('slow_log', 'sql_text');
    const postgresLog = await statement('postgres_log', 'message');

    for (const [table, result] of [
      ['general_log', generalLog],
      ['slow_log', slowLog],
      ['postgres_log', postgresLog],
    ] as const) {
      const texts = result.rows.map((r) => String(r.text));
      expect(
        texts.some((t) => /^CREATE (USER|ROLE)/.test(t.replace(/^statement: /, ''))),
        table,
      ).toBe(true);
      for (const text of texts) expect(text, table).not.toContain(secret);
    }
    for (const table of CATALOG) {
      const { rows } = await duckdbQuery(`SELECT * FROM ${parquetTree(join(parquetDir, table.name))}`);
      expect(JSON.stringify(rows).includes(secret), table.name).toBe(false);
    }
    // Pages are compressed, so this guards what is not: the footer's statistics and metadata.
    for (const file of await treeFiles(parquetDir)) {
      expect((await readFile(join(parquetDir, file))).includes(secret), file).toBe(false);
    }
  });
});

describe('a catalog table that server versions describe differently', () => {
  it("types slow_log's objects by the catalog's columns: a server describing its row counts as int (MySQL) writes what MariaDB 10.11 does", async () => {
    const mysql = await mysqlAdmin();
    try {
      await mysql.query('SET SESSION long_query_time = 0');
      await mysql.query(`SELECT '${uniqueName('slow')}'`);
    } finally {
      await mysql.end();
    }
    const ROW_COUNTS = ['rows_sent', 'rows_examined', 'rows_affected'];
    /** MariaDB, describing slow_log's row counts as MySQL and MariaDB's documentation type them. */
    const describedAsInt: SessionOpener = async (...args) => {
      const session = await dayAhead(SESSION_OPENERS.mysql)(...args);
      return {
        ...session,
        describe: async (sql) =>
          (await session.describe(sql)).map((c) => (ROW_COUNTS.includes(c.name) ? { ...c, type: 'int' } : c)),
      };
    };
    const exportSlowLog = async (open: SessionOpener) => {
      const dir = exportDirectory();
      const path = `/${uniqueName('formats')}`;
      await putParameters(path, {
        'global/destination': `file://${dir}`,
        'global/format': 'parquet',
        'global/window-minutes': '1440',
        'global/initial-lookback-hours': '24',
        'global/lag-seconds': '0',
        'global/fan-out': 'off',
        'global/enabled-clusters': ['my'],
        ...mysqlClusterParameters('my'),
        'clusters/my/tables': ['slow_log'],
      });
      const openers = { ...SESSION_OPENERS, mysql: open };
      const runtime = testRuntime({ path, watermarkTable: await createWatermarkTable(), openers });
      const written = tablesOf(await makeHandler(runtime)(SCHEDULED));
      expect(written.map((t) => t.objectsWritten)).toEqual([1]);
      return duckTypes(parquetTree(join(dir, 'slow_log')));
    };

    const mariadb = await exportSlowLog(dayAhead(SESSION_OPENERS.mysql));
    const mysqlLike = await exportSlowLog(describedAsInt);

    expect(mysqlLike).toEqual(mariadb);
    expect(ROW_COUNTS.map((c) => `${c} ${mysqlLike[c]}`)).toEqual([
      'rows_sent DECIMAL(20,0)',
      'rows_examined DECIMAL(20,0)',
      'rows_affected DECIMAL(20,0)',
    ]);
  });
});

/**
 * Custom exports with a column of every common type, rows straddling
 * midnight (2024-02-29, a leap day, into 2024-03-01) at microsecond
 * boundaries: the window edges, 23:59:59.999999 and 00:00:00.000000, ties,
 * rows just outside the backfilled range, and a row of NULLs. Each format is
 * compared with the source, queried directly.
 */
const FROM = '2024-02-29T23:50:00Z';
const TO = '2024-03-01T00:10:00Z';
const AT = [
  '2024-02-29 23:49:59.999999', // before the range
  '2024-02-29 23:50:00.000000', // first instant of the first window
  '2024-02-29 23:54:59.999999', // last of the first window
  '2024-02-29 23:55:00.000000',
  '2024-02-29 23:59:59.999999', // last of the day
  '2024-02-29 23:59:59.999999', // the same instant again
  '2024-03-01 00:00:00.000000', // first of the next day
  '2024-03-01 00:00:00.000001',
  '2024-03-01 00:04:59.999999',
  '2024-03-01 00:05:00.000000',
  '2024-03-01 00:09:59.999999', // last of the range
  '2024-03-01 00:10:00.000000', // the range's end, outside it
  '2024-02-29 23:57:30.500000', // the row of NULLs
];
const NULL_ROW = AT.length;

/** The `i`th sample of a list, cycling; NULL for the row of NULLs. */
const sample = <T>(id: number, values: readonly T[]): T | null =>
  id === NULL_ROW ? null : (values[(id - 1) % values.length] as T);

const TEXTS = [
  `it's "quoted", a back\\slash`,
  'Zürich — 東京 🎉',
  '',
  'tab\there\nnew line',
  "'; DROP TABLE x; --",
  `${'long '.repeat(2000)}é`,
];
const JSON_DOCS = [
  '{"a": 1, "b": [true, null, "x"], "é": "ü"}',
  '[]',
  '{"nested": {"n": -1.5, "s": "it\'s"}}',
  '[1, 2.5, "three"]',
  '"123"',
];
const BIG = ['-9223372036854775808', '9223372036854775807', '9007199254740993', '0'];
const PRICES = ['-12345678.9999', '0.0001', '12.3000', '0.0000'];
const WIDE = ['12345678901234567890.1234567890', '-0.0000000001', '1.5'];
const RATIOS = [0.1, -1.5e-300, 1.7976931348623157e308, Math.PI];

interface TypedSource {
  engine: string;
  cluster: string;
  /** The custom export's cluster parameters. */
  parameters: Record<string, string | string[] | { secure: string }>;
  /** DuckDB's types of the Parquet columns, as the source's DDL has them. */
  types: Record<string, string>;
  jsonColumns: string[];
  /** Every row of the source table, each value as the database's own text (timestamps ISO in UTC). */
  read(): Promise<Record<string, string | null>[]>;
}

const ISO_MYSQL = "'%Y-%m-%dT%H:%i:%s.%fZ'";
const ISO_PG = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;

async function mariadbTyped(): Promise<TypedSource> {
  const database = uniqueName('typed');
  const admin = await mysqlAdmin();
  try {
    await admin.query("SET time_zone = '+00:00'");
    await admin.query(`CREATE DATABASE \`${database}\``);
    await admin.query(
      `CREATE TABLE \`${database}\`.typed (id INT PRIMARY KEY, at DATETIME(6) NOT NULL, tiny TINYINT,
        small SMALLINT, whole INT, big BIGINT, ubig BIGINT UNSIGNED, price DECIMAL(12,4), wide DECIMAL(30,10),
        ratio DOUBLE, flag BOOLEAN, stamp TIMESTAMP(6) NULL, plain DATETIME, day DATE, label VARCHAR(100),
        body MEDIUMTEXT, doc JSON, INDEX (at)) CHARACTER SET utf8mb4`,
    );
    for (const [i, at] of AT.entries()) {
      const id = i + 1;
      await admin.query(`INSERT INTO \`${database}\`.typed VALUES (${Array(17).fill('?').join(', ')})`, [
        id,
        at,
        sample(id, [-128, 127, 0]),
        sample(id, [-32768, 32767, 0, 1]),
        sample(id, [-2147483648, 2147483647, 0, 42]),
        sample(id, BIG),
        sample(id, ['18446744073709551615', '0', '9007199254740993']),
        sample(id, PRICES),
        sample(id, WIDE),
        sample(id, RATIOS),
        sample(id, [0, 1]),
        sample(id, [
          '1970-01-01 00:00:01.000001',
          '2038-01-19 03:14:07.999999',
          '2024-02-29 23:59:59.999999',
        ]),
        sample(id, ['1000-01-01 00:00:00', '9999-12-31 23:59:59', '2024-02-29 12:00:00']),
        sample(id, ['1000-01-01', '2024-02-29', '9999-12-31']),
        sample(
          id,
          TEXTS.map((t) => t.slice(0, 100)),
        ),
        sample(id, TEXTS),
        sample(id, JSON_DOCS),
      ]);
    }
  } finally {
    await admin.end();
  }
  return {
    engine: 'MariaDB',
    cluster: 'my',
    parameters: {
      ...mysqlClusterParameters('my'),
      'clusters/my/tables': ['none'],
      'clusters/my/custom/typed/query': `SELECT * FROM \`${database}\`.typed`,
      'clusters/my/custom/typed/watermark-column': 'at',
    },
    types: {
      id: 'INTEGER',
      at: 'TIMESTAMP WITH TIME ZONE',
      tiny: 'INTEGER',
      small: 'INTEGER',
      whole: 'INTEGER',
      big: 'BIGINT',
      ubig: 'DECIMAL(20,0)',
      price: 'DECIMAL(12,4)',
      wide: 'DECIMAL(30,10)',
      ratio: 'DOUBLE',
      // BOOLEAN is TINYINT(1) in MariaDB: -128 to 127, not true and false.
      flag: 'INTEGER',
      stamp: 'TIMESTAMP WITH TIME ZONE',
      plain: 'TIMESTAMP WITH TIME ZONE',
      day: 'DATE',
      label: 'VARCHAR',
      body: 'VARCHAR',
      doc: 'VARCHAR',
    },
    jsonColumns: ['doc'],
    async read() {
      const reader = await mysqlAdmin();
      try {
        await reader.query("SET time_zone = '+00:00'");
        const text = (c: string) => `CAST(${c} AS CHAR) AS ${c}`;
        const iso = (c: string) => `DATE_FORMAT(${c}, ${ISO_MYSQL}) AS ${c}`;
        const [rows] = await reader.query(
          `SELECT ${[
            text('id'),
            iso('at'),
            ...['tiny', 'small', 'whole', 'big', 'ubig', 'price', 'wide', 'ratio', 'flag'].map(text),
            iso('stamp'),
            iso('plain'),
            `DATE_FORMAT(day, '%Y-%m-%d') AS day`,
            'label',
            'body',
            text('doc'),
          ].join(', ')} FROM \`${database}\`.typed ORDER BY typed.id`,
        );
        return rows as Record<string, string | null>[];
      } finally {
        await reader.end();
      }
    },
  };
}

async function postgresTyped(): Promise<TypedSource> {
  const database = await createPgDatabase();
  const admin = await pgAdmin(database);
  try {
    await admin.query(
      `CREATE TABLE typed (id integer PRIMARY KEY, at timestamptz(6) NOT NULL, small int2, whole int4, big int8,
        price numeric(12,4), wide numeric(30,10), loose numeric, ratio float8, flag boolean, plain timestamp(6),
        stamp timestamptz, day date, label varchar(100), body text, doc json, docb jsonb);
       CREATE INDEX ON typed (at)`,
    );
    for (const [i, at] of AT.entries()) {
      const id = i + 1;
      await admin.query(
        `INSERT INTO typed VALUES (${Array.from({ length: 17 }, (_, n) => `$${n + 1}`).join(', ')})`,
        [
          id,
          `${at}+00`,
          sample(id, [-32768, 32767, 0, 1]),
          sample(id, [-2147483648, 2147483647, 0, 42]),
          sample(id, BIG),
          sample(id, PRICES),
          sample(id, WIDE),
          sample(id, ['123456789012345678901234567890.123456789012', '0.00000000000000000001', 'NaN']),
          sample(id, RATIOS),
          sample(id, [false, true]),
          sample(id, [
            '1900-01-01 00:00:00.000001',
            '2024-02-29 23:59:59.999999',
            '1969-12-31 23:59:59.999999',
          ]),
          sample(id, ['0001-01-01 00:00:00+00', '2024-03-01 00:00:00+00', '9999-12-31 23:59:59.999999+00']),
          sample(id, ['1000-01-01', '2024-02-29', '9999-12-31']),
          sample(
            id,
            TEXTS.map((t) => t.slice(0, 100)),
          ),
          sample(id, TEXTS),
          sample(id, JSON_DOCS),
          sample(id, JSON_DOCS),
        ],
      );
    }
  } finally {
    await admin.end();
  }
  return {
    engine: 'PostgreSQL',
    cluster: 'pg',
    parameters: {
      ...postgresClusterParameters('pg', database),
      'clusters/pg/tables': ['none'],
      'clusters/pg/custom/typed/query': 'SELECT * FROM typed',
      'clusters/pg/custom/typed/watermark-column': 'at',
    },
    types: {
      id: 'INTEGER',
      at: 'TIMESTAMP WITH TIME ZONE',
      small: 'INTEGER',
      whole: 'INTEGER',
      big: 'BIGINT',
      price: 'DECIMAL(12,4)',
      wide: 'DECIMAL(30,10)',
      // numeric without a precision has any scale: exact only as text.
      loose: 'VARCHAR',
      ratio: 'DOUBLE',
      flag: 'BOOLEAN',
      plain: 'TIMESTAMP WITH TIME ZONE',
      stamp: 'TIMESTAMP WITH TIME ZONE',
      day: 'DATE',
      label: 'VARCHAR',
      body: 'VARCHAR',
      doc: 'VARCHAR',
      docb: 'VARCHAR',
    },
    jsonColumns: ['doc', 'docb'],
    async read() {
      const reader = await pgAdmin(database);
      try {
        const { rows } = await reader.query(
          `SELECT id::text, to_char(at AT TIME ZONE 'UTC', ${ISO_PG}) AS at, small::text, whole::text, big::text,
            price::text, wide::text, loose::text, ratio::text, flag::text, to_char(plain, ${ISO_PG}) AS plain,
            to_char(stamp AT TIME ZONE 'UTC', ${ISO_PG}) AS stamp, to_char(day, 'YYYY-MM-DD') AS day, label, body,
            doc::text, docb::text
           FROM typed ORDER BY typed.id`,
        );
        return rows;
      } finally {
        await reader.end();
      }
    },
  };
}

/** The window of the 5-minute grid an ISO instant falls in, as key bounds (`20240229T235500Z`). */
function windowOf(iso: string): { lo: string; hi: string } {
  const minute = Date.parse(`${iso.slice(0, 16)}:00Z`);
  const lo = minute - (minute % (5 * 60_000));
  const compactIso = (ms: number) => new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
  return { lo: compactIso(lo), hi: compactIso(lo + 5 * 60_000) };
}

/** A JSON column's value as a JSON value: the source's and Parquet's text parsed, the JSON lines' as they are. */
function jsonOf(value: unknown, parse: boolean): unknown {
  if (value === null || value === undefined || !parse) return value ?? null;
  try {
    return JSON.parse(String(value));
  } catch {
    return { 'not JSON': value };
  }
}

describe.each([
  ['MariaDB', mariadbTyped],
  ['PostgreSQL', postgresTyped],
])('a custom export on %s across midnight, typed, in both formats', (_engine, createSource) => {
  let source: TypedSource;
  let sourceRows: Record<string, string | null>[];
  /** The source rows inside the backfilled range, by id. */
  let expected: Map<number, Record<string, string | null>>;
  const dirs = { parquet: '', json: '' };
  let bucket: string;

  beforeAll(async () => {
    source = await createSource();
    sourceRows = await source.read();
    expected = new Map(
      sourceRows
        .filter(
          (r) =>
            (r.at as string) >= FROM.replace('Z', '.000000Z') &&
            (r.at as string) < TO.replace('Z', '.000000Z'),
        )
        .map((r) => [Number(r.id), r]),
    );
    bucket = await createBucket();
    dirs.parquet = exportDirectory();
    dirs.json = exportDirectory();
    for (const format of ['parquet', 'json', 's3'] as const) {
      const destination = format === 's3' ? `s3://${bucket}/logs` : `file://${dirs[format]}`;
      const path = `/${uniqueName('formats')}`;
      await putParameters(path, {
        'global/destination': destination,
        'global/window-minutes': '5',
        'global/fan-out': 'off',
        'global/enabled-clusters': [source.cluster],
        ...(format === 'json' ? {} : { 'global/format': 'parquet' }),
        ...source.parameters,
      });
      const runtime = testRuntime({ path, watermarkTable: await createWatermarkTable() });
      const summary = await makeHandler(runtime)({
        cluster: source.cluster,
        tables: ['typed'],
        from: FROM,
        to: TO,
      });
      const [typed] = tablesOf(summary);
      expect(typed?.windows).toBe(4);
      expect(typed?.objectsWritten).toBe(4);
      expect(typed?.rows).toBe(expected.size);
    }
  }, 120_000);

  it('has rows inside and outside the range, at both sides of midnight, and a row of NULLs', () => {
    expect(sourceRows).toHaveLength(AT.length);
    expect(expected.size).toBe(AT.length - 2);
    expect([...expected.values()].map((r) => (r.at as string).slice(0, 10))).toContain('2024-03-01');
    const nulls = expected.get(NULL_ROW) as Record<string, string | null>;
    expect(
      Object.entries(nulls)
        .filter(([, v]) => v !== null)
        .map(([c]) => c),
    ).toEqual(['id', 'at']);
  });

  it('types the Parquet columns as the source declares them', async () => {
    expect(await duckTypes(parquetTree(dirs.parquet))).toEqual({
      ...source.types,
      cluster: 'VARCHAR',
      dt: 'DATE',
    });
  });

  it('writes every row of the range once, in the object of its window and the dt partition of its day, in both formats', async () => {
    const located = {
      parquet: (
        await duckdbQuery(
          `SELECT id, dt::VARCHAR AS dt, filename FROM read_parquet(${sqlString(`${dirs.parquet}/**/*.parquet`)}, hive_partitioning = true, filename = true)`,
        )
      ).rows,
      json: (
        await duckdbQuery(
          `SELECT id, dt::VARCHAR AS dt, filename FROM read_json(${sqlString(`${dirs.json}/**/*.jsonl.gz`)}, format = 'newline_delimited', hive_partitioning = true, filename = true, columns = {id: 'INTEGER'})`,
        )
      ).rows,
    };
    const perWindow = new Map<string, number>();
    for (const row of expected.values()) {
      const { lo, hi } = windowOf(row.at as string);
      perWindow.set(`${lo}.${hi}`, (perWindow.get(`${lo}.${hi}`) ?? 0) + 1);
    }

    for (const [format, rows] of Object.entries(located)) {
      expect(
        rows.map((r) => Number(r.id)).sort((a, b) => a - b),
        format,
      ).toEqual([...expected.keys()].sort((a, b) => a - b));
      for (const row of rows) {
        const at = expected.get(Number(row.id))?.at as string;
        const { lo, hi } = windowOf(at);
        expect(row.dt, `${format} id ${row.id} at ${at}`).toBe(at.slice(0, 10));
        expect(String(row.filename), `${format} id ${row.id} at ${at}`).toMatch(
          new RegExp(
            `/typed/cluster=${source.cluster}/dt=${at.slice(0, 10)}/typed\\.${source.cluster}\\.${lo}\\.${hi}\\.`,
          ),
        );
      }
      const counts = new Map<string, number>();
      for (const row of rows) {
        const window = /\.(\d{8}T\d{6}Z\.\d{8}T\d{6}Z)\.(parquet|jsonl\.gz)$/.exec(
          String(row.filename),
        )?.[1] as string;
        counts.set(window, (counts.get(window) ?? 0) + 1);
      }
      expect(new Map([...counts].sort()), format).toEqual(new Map([...perWindow].sort()));
    }
    expect([...perWindow.keys()].sort()).toEqual([
      '20240229T235000Z.20240229T235500Z',
      '20240229T235500Z.20240301T000000Z',
      '20240301T000000Z.20240301T000500Z',
      '20240301T000500Z.20240301T001000Z',
    ]);
  });

  it('holds the values of the source in every column, NULLs included, in both formats', async () => {
    const types = source.types;
    const fromSource = [...expected.values()].map((row) =>
      Object.fromEntries(
        Object.entries(types).map(([c, type]) => {
          const text = row[c] ?? null;
          if (source.jsonColumns.includes(c)) return [c, jsonOf(text, true)];
          if (text !== null && type === 'BOOLEAN') return [c, text === 'true'];
          return [c, comparable(type, text)];
        }),
      ),
    );
    const exported = (rows: Record<string, unknown>[], parseJson: boolean) =>
      rows
        .map((row) =>
          Object.fromEntries(
            Object.entries(types).map(([c, type]) => [
              c,
              source.jsonColumns.includes(c) ? jsonOf(row[c], parseJson) : comparable(type, row[c]),
            ]),
          ),
        )
        .sort((a, b) => Number(a.id) - Number(b.id));
    const parquet = await duckdbQuery(`SELECT * EXCLUDE (cluster, dt) FROM ${parquetTree(dirs.parquet)}`);
    const lines: Record<string, unknown>[] = [];
    for (const file of await treeFiles(dirs.json))
      lines.push(...parseJsonLines(gunzipSync(await readFile(join(dirs.json, file))).toString()));

    expect(exported(parquet.rows, true)).toEqual(fromSource);
    expect(exported(lines, false)).toEqual(fromSource);
  });

  it('puts the same Parquet objects on S3 (moto): keys ending in .parquet, Content-Type application/vnd.apache.parquet, the bytes the file sink wrote', async () => {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'logs/' }));
    const keys = (listed.Contents ?? []).map((o) => o.Key as string).sort();

    expect(keys.map((k) => k.slice('logs/'.length))).toEqual(await treeFiles(dirs.parquet));
    expect(keys).toHaveLength(4);
    for (const key of keys) {
      expect(key).toMatch(
        new RegExp(
          `^logs/typed/cluster=${source.cluster}/dt=\\d{4}-\\d{2}-\\d{2}/typed\\.${source.cluster}\\.\\d{8}T\\d{6}Z\\.\\d{8}T\\d{6}Z\\.parquet$`,
        ),
      );
      const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      expect(object.ContentType, key).toBe('application/vnd.apache.parquet');
      const bytes = Buffer.from(
        await (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
      );
      expect(bytes.equals(await readFile(join(dirs.parquet, key.slice('logs/'.length)))), key).toBe(true);
    }
  });
});
