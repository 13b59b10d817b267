import { describe, expect, it } from 'vitest';
import { makeHandler } from '../../../functions/export';
import { athenaDdl, athenaType, createTableStatement } from '../../../shared/export/athena';
import { exportConfigSchema, resolveConfig } from '../../../shared/export/config';
import type { SessionOpener } from '../../../shared/export/exporter';
import { SESSION_OPENERS } from '../../../shared/export/runtime';
import { CATALOG } from '../../../shared/export/sources/catalog';
import type { DatabaseSession } from '../../../shared/export/sources/session';
import { formatTimestamp, hours, seconds, sqlTimestamp, toMicros } from '../../../shared/export/sources/time';
import { createPgDatabase, mysqlAdmin, pgAdmin, uniqueName } from '../../stack/fixtures';
import { createPglogTable, postgresClusterParameters } from '../../support/csvlog-fixtures';
import { createRedshiftFixture, pieces, redshiftClusterParameters } from '../../support/redshift-fixtures';
import {
  createBucket,
  createWatermarkTable,
  mysqlClusterParameters,
  parseKey,
  putParameters,
  readS3Objects,
  testRuntime,
} from './support';

const OPTIONS = {
  destination: 's3://analytics-bucket/db-logs/',
  database: 'log_export',
  since: '2024-01-01',
};

/** Table name → (column → Athena type), read back from the generated DDL text. */
function parseDdl(statements: string[]): Map<string, Map<string, string>> {
  const tables = new Map<string, Map<string, string>>();
  for (const sql of statements) {
    const m = /^CREATE EXTERNAL TABLE IF NOT EXISTS `\w+`\.`(\w+)` \(\n([\s\S]*?)\n\)\n/.exec(sql);
    if (!m) continue;
    const columns = new Map<string, string>();
    for (const line of (m[2] as string).split(',\n')) {
      const c = /^ {2}`(\w+)` (\w+)$/.exec(line);
      if (!c) throw new Error(`unexpected column line ${line}`);
      columns.set(c[1] as string, c[2] as string);
    }
    tables.set(m[1] as string, columns);
  }
  return tables;
}

/** Can the OpenX JSON SerDe read this JSON value as a column of this Athena type? */
function compatible(value: unknown, type: string): boolean {
  if (value === null) return true;
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'boolean':
      return typeof value === 'boolean';
    case 'int':
      return Number.isInteger(value) && Math.abs(value as number) < 2 ** 31;
    // The SerDe parses numeric strings: PostgreSQL's int8 and numeric leave as strings to stay exact.
    case 'bigint':
      return Number.isInteger(value) || (typeof value === 'string' && /^-?\d+$/.test(value));
    case 'double':
      return typeof value === 'number' || (typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value));
    default:
      return false;
  }
}

describe('Athena DDL', () => {
  it('writes one external table per catalog table: JSON SerDe, location, cluster/dt partitions with projection', () => {
    const statements = athenaDdl(OPTIONS);

    expect(statements[0]).toBe('CREATE DATABASE IF NOT EXISTS `log_export`;');
    expect([...parseDdl(statements).keys()]).toEqual(CATALOG.map((t) => t.name));
    const ddl = statements.find((s) => s.includes('`log_export`.`stl_querytext`')) as string;
    expect(ddl).toContain("ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'");
    expect(ddl).toContain("LOCATION 's3://analytics-bucket/db-logs/stl_querytext/'");
    expect(ddl).toContain('PARTITIONED BY (`cluster` string, `dt` string)');
    for (const property of [
      "'projection.enabled' = 'true'",
      "'projection.cluster.type' = 'injected'",
      "'projection.dt.type' = 'date'",
      "'projection.dt.format' = 'yyyy-MM-dd'",
      "'projection.dt.range' = '2024-01-01,NOW'",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Athena's own placeholders, not JavaScript's
      "'storage.location.template' = 's3://analytics-bucket/db-logs/stl_querytext/cluster=${cluster}/dt=${dt}/'",
    ]) {
      expect(ddl).toContain(property);
    }
    expect(ddl.trimEnd().endsWith(');')).toBe(true);
  });

  it("writes the daily compaction's tables over <table>_daily/ with the same columns and projection", () => {
    const statements = athenaDdl({ ...OPTIONS, daily: true });
    const windows = parseDdl(athenaDdl(OPTIONS));
    const daily = parseDdl(statements);

    expect([...daily.keys()]).toEqual(CATALOG.map((t) => `${t.name}_daily`));
    for (const t of CATALOG) expect(daily.get(`${t.name}_daily`)).toEqual(windows.get(t.name));
    const ddl = statements.find((s) => s.includes('`log_export`.`general_log_daily`')) as string;
    expect(ddl).toContain("LOCATION 's3://analytics-bucket/db-logs/general_log_daily/'");
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Athena's own placeholders, not JavaScript's
    expect(ddl).toContain("'s3://analytics-bucket/db-logs/general_log_daily/cluster=${cluster}/dt=${dt}/'");
  });

  it('projects cluster as an enum when cluster names are given, so queries may span all clusters', () => {
    const ddl = createTableStatement('stl_query', [{ name: 'query', type: 'integer' }], {
      ...OPTIONS,
      clusters: ['prod-1', 'prod-2'],
    });

    expect(ddl).toContain("'projection.cluster.type' = 'enum'");
    expect(ddl).toContain("'projection.cluster.values' = 'prod-1,prod-2'");
    expect(ddl).not.toContain('injected');
  });

  it('maps source types to Athena types, timestamps as ISO strings', () => {
    expect(
      [
        'timestamp(3) with time zone',
        'timestamp',
        'time(6)',
        'bigint',
        'bigint unsigned',
        'int unsigned',
        'integer',
        'int',
        'oid',
        'double precision',
        'numeric',
        'boolean',
        'character(320)',
        'mediumtext',
        'name',
      ].map(athenaType),
    ).toEqual([
      'string',
      'string',
      'string',
      'bigint',
      'bigint',
      'bigint',
      'int',
      'int',
      'bigint',
      'double',
      'double',
      'boolean',
      'string',
      'string',
      'string',
    ]);
  });

  it('names every bad option at once', () => {
    expect(() =>
      athenaDdl({ destination: 'file:///tmp/x', database: 'Bad-Name', since: 'yesterday' }),
    ).toThrow(
      /destination: must be s3:\/\/bucket\/prefix; database: must be a lowercase name .*; since: must be a date/,
    );
  });
});

describe('default tables per engine', () => {
  const raw = (engine: string, tables?: string[]) =>
    exportConfigSchema.parse({
      global: { destination: 's3://bucket/prefix' },
      clusters: {
        c: {
          engine,
          host: 'h',
          user: 'u',
          password: 'p',
          ...(tables ? { tables } : {}),
          custom: { events: { query: 'SELECT * FROM t', 'watermark-column': 'at' } },
        },
      },
    });
  const names = (engine: string, tables?: string[]) => [
    ...(resolveConfig(raw(engine, tables)).clusters.get('c')?.tables.keys() ?? []),
  ];

  it('exports the engine standard set when tables is not set, custom exports only with none', () => {
    expect(names('postgres')).toEqual(['postgres_log', 'pg_stat_statements', 'events']);
    expect(names('redshift')).toEqual([
      'stl_query',
      'stl_querytext',
      'stl_wlm_query',
      'stl_alert_event_log',
      'stl_ddltext',
      'stl_utilitytext',
      'stl_explain',
      'sys_query_history',
      'events',
    ]);
    expect(names('mariadb')).toEqual(['general_log', 'slow_log', 'events']);
    expect(names('redshift', ['stl_scan'])).toEqual(['stl_scan', 'events']);
    expect(names('postgres', ['none'])).toEqual(['events']);
  });
});

/** The same session with a clock a day ahead: today's window counts as complete, so today's rows are exported now. */
function dayAhead(open: SessionOpener): SessionOpener {
  return async (target, logger, purpose) => {
    const session = await open(target, logger, purpose);
    const shifted: DatabaseSession = {
      dialect: session.dialect,
      now: async () => formatTimestamp(toMicros(await session.now()) + hours(24)),
      scalar: (sql) => session.scalar(sql),
      relationExists: (schema, table) => session.relationExists(schema, table),
      describe: (sql) => session.describe(sql),
      stream: (sql) => session.stream(sql),
      close: () => session.close(),
    };
    return shifted;
  };
}

/** Fills one row (or a few) into every catalog table's source: MariaDB's logs, the csv log, pg_stat_statements, Redshift fixtures. */
async function sourcesWithRows() {
  const mysql = await mysqlAdmin();
  try {
    await mysql.query('SET SESSION long_query_time = 0');
    await mysql.query(`SELECT '${uniqueName('athena')}'`);
  } finally {
    await mysql.end();
  }
  const pgDatabase = await createPgDatabase();
  const admin = await pgAdmin(pgDatabase);
  let now: number;
  try {
    await admin.query('CREATE EXTENSION pg_stat_statements');
    const { rows } = await admin.query(
      `SELECT pg_current_logfile('csvlog') AS file, current_setting('data_directory') AS data, to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS now`,
    );
    now = toMicros(rows[0].now);
    await createPglogTable(pgDatabase, 'postgres_log', { filename: `${rows[0].data}/${rows[0].file}` });
  } finally {
    await admin.end();
  }
  const redshift = await createRedshiftFixture();
  const at = sqlTimestamp(now - seconds(1));
  const before = sqlTimestamp(now - seconds(2));
  const keys = { userid: 100, xid: 9001, pid: 4001 };
  await redshift.insert('stl_query', [
    {
      ...keys,
      query: 1,
      label: 'default',
      database: 'dev',
      querytxt: 'select 1',
      starttime: before,
      endtime: at,
      aborted: 0,
      insert_pristine: 0,
      concurrency_scaling_status: 0,
    },
  ]);
  await redshift.insert(
    'stl_querytext',
    pieces('select 1').map((p) => ({ ...keys, query: 1, ...p })),
  );
  await redshift.insert('stl_explain', [
    { userid: 100, query: 1, nodeid: 1, parentid: 0, plannode: 'XN Result', info: '' },
  ]);
  const statement = { ...keys, label: 'default', starttime: before, endtime: at };
  await redshift.insert(
    'stl_ddltext',
    pieces('CREATE TABLE t (id int)').map((p) => ({ ...statement, ...p })),
  );
  await redshift.insert(
    'stl_utilitytext',
    pieces('VACUUM t').map((p) => ({ ...statement, ...p })),
  );
  await redshift.insert('stl_wlm_query', [
    {
      userid: 100,
      xid: 9001,
      task: 1,
      query: 1,
      service_class: 6,
      slot_count: 1,
      service_class_start_time: before,
      queue_start_time: before,
      queue_end_time: before,
      total_queue_time: 0,
      exec_start_time: before,
      exec_end_time: at,
      total_exec_time: 1000,
      service_class_end_time: at,
      final_state: 'Completed',
      est_peak_mem: 1024,
      query_priority: 'Normal',
      service_class_name: 'Default queue',
    },
  ]);
  await redshift.insert('stl_alert_event_log', [
    {
      userid: 100,
      query: 1,
      slice: 0,
      segment: 0,
      step: 0,
      pid: 4001,
      xid: 9001,
      event: 'Very selective query filter',
      solution: 'Review the sort keys',
      event_time: at,
    },
  ]);
  await redshift.insert('stl_scan', [
    {
      userid: 100,
      query: 1,
      slice: 0,
      segment: 0,
      step: 0,
      starttime: before,
      endtime: at,
      tasknum: 1,
      rows: 10,
      bytes: 100,
      fetches: 0,
      type: 2,
      tbl: 100200,
      is_rrscan: 'f',
      is_delayed_scan: 'f',
      rows_pre_filter: 10,
      rows_pre_user_filter: 10,
      perm_table_name: 't',
      is_rlf_scan: 'f',
      is_rlf_scan_reason: 0,
      num_em_blocks: 0,
      checksum: 0,
      runtime_filtering: 'f',
    },
  ]);
  await redshift.insert('sys_query_history', [
    {
      user_id: 100,
      query_id: 1,
      query_label: 'default',
      transaction_id: 9001,
      session_id: 4001,
      database_name: 'dev',
      query_type: 'SELECT',
      status: 'success',
      result_cache_hit: false,
      start_time: before,
      end_time: at,
      elapsed_time: 1000,
      queue_time: 0,
      execution_time: 1000,
      error_message: '',
      returned_rows: 1,
      returned_bytes: 8,
      query_text: 'select 1',
      redshift_version: '1.0.77467',
    },
  ]);
  return { pgDatabase, redshiftDatabase: redshift.database };
}

describe('Athena DDL against exported objects', () => {
  it('has every key of every exported object of every catalog table as a column, with a compatible type', async () => {
    const { pgDatabase, redshiftDatabase } = await sourcesWithRows();
    const path = `/${uniqueName('export')}`;
    const [watermarkTable, bucket] = await Promise.all([createWatermarkTable(), createBucket()]);
    await putParameters(path, {
      'global/destination': `s3://${bucket}/logs`,
      'global/window-minutes': '1440',
      'global/initial-lookback-hours': '24',
      'global/lag-seconds': '0',
      'global/fan-out': 'off',
      'global/enabled-clusters': ['my', 'pg', 'rs'],
      ...mysqlClusterParameters('my'),
      ...postgresClusterParameters('pg', pgDatabase),
      ...redshiftClusterParameters('rs', redshiftDatabase),
      'clusters/rs/tables': CATALOG.filter((t) => t.family === 'redshift').map((t) => t.name),
    });
    const runtime = testRuntime({ path, watermarkTable });
    const openers = {
      mysql: dayAhead(SESSION_OPENERS.mysql),
      postgres: dayAhead(SESSION_OPENERS.postgres),
      redshift: dayAhead(SESSION_OPENERS.redshift),
    };

    const summary = await makeHandler({ ...runtime, openers })({
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      detail: {},
    });

    for (const c of summary.clusters)
      for (const t of c.tables) expect(t.error, `${c.cluster} ${t.table}`).toBeUndefined();
    const ddl = parseDdl(athenaDdl({ ...OPTIONS, destination: `s3://${bucket}/logs` }));
    const objects = await readS3Objects(bucket, 'logs/');
    const exported = new Set<string>();
    for (const [key, rows] of objects) {
      const { table } = parseKey(key);
      const columns = ddl.get(table as string);
      expect(columns, table).toBeDefined();
      for (const row of rows) {
        for (const [name, value] of Object.entries(row)) {
          const type = columns?.get(name);
          expect(type, `${table}.${name}`).toBeDefined();
          expect(
            compatible(value, type as string),
            `${table}.${name} = ${JSON.stringify(value)} as ${type}`,
          ).toBe(true);
        }
      }
      if (rows.length > 0) exported.add(table as string);
    }
    expect([...exported].sort()).toEqual(CATALOG.map((t) => t.name).sort());
  }, 90_000);
});
