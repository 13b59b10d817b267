import { describe, expect, it } from 'vitest';
import { makeHandler } from '../../../functions/export';
import {
  athenaDdl,
  athenaParquetType,
  athenaType,
  createTableStatement,
} from '../../../shared/export/athena';
import { exportConfigSchema, resolveConfig } from '../../../shared/export/config';
import { CATALOG } from '../../../shared/export/sources/catalog';
import { uniqueName } from '../../stack/fixtures';
import { parseDdl } from '../../support/athena-ddl';
import { catalogExportParameters, dayAheadOpeners, sourcesWithRows } from './catalog-sources';
import {
  createBucket,
  createWatermarkTable,
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

describe('Athena DDL for Parquet objects', () => {
  const PARQUET = { ...OPTIONS, format: 'parquet' as const };
  /** A statement without its column list and storage lines: location, partitions and projection. */
  const frame = (sql: string) =>
    sql
      .replace(/\(\n[\s\S]*?\n\)\n/, '(...)\n')
      .split('\n')
      .filter((line) => !/^(ROW FORMAT|STORED AS|OUTPUTFORMAT)/.test(line))
      .join('\n');

  it('stores every catalog table as Parquet, over the same locations, columns and projection as the JSON-lines tables', () => {
    const parquet = athenaDdl(PARQUET);
    const json = athenaDdl(OPTIONS);

    expect(parquet[0]).toBe('CREATE DATABASE IF NOT EXISTS `log_export`;');
    expect(parquet.map(frame)).toEqual(json.map(frame));
    const parquetColumns = parseDdl(parquet);
    const jsonColumns = parseDdl(json);
    expect([...parquetColumns.keys()]).toEqual(CATALOG.map((t) => t.name));
    for (const t of CATALOG)
      expect([...(parquetColumns.get(t.name)?.keys() ?? [])], t.name).toEqual([
        ...(jsonColumns.get(t.name)?.keys() ?? []),
      ]);
    for (const sql of parquet.slice(1)) {
      expect(sql).toContain('\nPARTITIONED BY (`cluster` string, `dt` string)\nSTORED AS PARQUET\nLOCATION ');
      expect(sql).not.toContain('SERDE');
      expect(sql).not.toContain('INPUTFORMAT');
    }
  });

  it('types the columns as the Parquet objects hold them: instants, integers by width, decimals, doubles, booleans, text', () => {
    const sourceTypes = [
      'timestamp(6)',
      'timestamp',
      'timestamp with time zone',
      'datetime(3)',
      'date',
      'time(6)',
      'interval',
      'smallint',
      'integer',
      'int(11)',
      'tinyint(1)',
      'int unsigned',
      'bigint',
      'oid',
      'bigint unsigned',
      'numeric(12,3)',
      'decimal(38,9)',
      'numeric',
      'numeric(50,2)',
      'double precision',
      'real',
      'boolean',
      'character(320)',
      'mediumtext',
      'jsonb',
      'text[]',
    ];

    expect(sourceTypes.map(athenaParquetType)).toEqual([
      'timestamp',
      'timestamp',
      'timestamp',
      'timestamp',
      'date',
      'string',
      'string',
      'int',
      'int',
      'int',
      'int',
      'bigint',
      'bigint',
      'bigint',
      'decimal(20,0)',
      'decimal(12,3)',
      'decimal(38,9)',
      'string',
      'string',
      'double',
      'double',
      'boolean',
      'string',
      'string',
      'string',
      'string',
    ]);
  });

  it("gives the catalog's columns their real types (a selection, as the servers' documentation types them)", () => {
    const tables = parseDdl(athenaDdl(PARQUET));
    const typeOf = (table: string, column: string) => tables.get(table)?.get(column);

    expect(
      [
        ['general_log', 'event_time'],
        ['general_log', 'thread_id'],
        ['general_log', 'server_id'],
        ['general_log', 'argument'],
        ['slow_log', 'start_time'],
        ['slow_log', 'query_time'],
        ['slow_log', 'rows_examined'],
        ['postgres_log', 'log_time'],
        ['postgres_log', 'process_id'],
        ['postgres_log', 'session_line_num'],
        ['pg_stat_statements', 'captured_at'],
        ['pg_stat_statements', 'calls'],
        ['pg_stat_statements', 'total_exec_time'],
        ['pg_stat_statements', 'toplevel'],
        ['pg_stat_statements', 'wal_bytes'],
        ['stl_query', 'query'],
        ['stl_query', 'xid'],
        ['stl_query', 'starttime'],
        ['stl_query', 'querytxt'],
        ['stl_ddltext', 'text_truncated'],
        ['sys_query_history', 'result_cache_hit'],
        ['sys_query_history', 'elapsed_time'],
      ].map(([table, column]) => `${table}.${column} ${typeOf(table as string, column as string)}`),
    ).toEqual([
      'general_log.event_time timestamp',
      'general_log.thread_id decimal(20,0)',
      'general_log.server_id bigint',
      'general_log.argument string',
      'slow_log.start_time timestamp',
      'slow_log.query_time string',
      'slow_log.rows_examined decimal(20,0)',
      'postgres_log.log_time timestamp',
      'postgres_log.process_id int',
      'postgres_log.session_line_num bigint',
      'pg_stat_statements.captured_at timestamp',
      'pg_stat_statements.calls bigint',
      'pg_stat_statements.total_exec_time double',
      'pg_stat_statements.toplevel boolean',
      'pg_stat_statements.wal_bytes string',
      'stl_query.query int',
      'stl_query.xid bigint',
      'stl_query.starttime timestamp',
      'stl_query.querytxt string',
      'stl_ddltext.text_truncated boolean',
      'sys_query_history.result_cache_hit boolean',
      'sys_query_history.elapsed_time bigint',
    ]);
  });

  it("combines with daily: the compaction's <table>_daily tables as Parquet, with the window tables' columns", () => {
    const statements = athenaDdl({ ...PARQUET, daily: true });
    const windows = parseDdl(athenaDdl(PARQUET));
    const daily = parseDdl(statements);

    expect([...daily.keys()]).toEqual(CATALOG.map((t) => `${t.name}_daily`));
    for (const t of CATALOG) expect(daily.get(`${t.name}_daily`)).toEqual(windows.get(t.name));
    const ddl = statements.find((s) => s.includes('`log_export`.`stl_query_daily`')) as string;
    expect(ddl).toContain('STORED AS PARQUET');
    expect(ddl).toContain("LOCATION 's3://analytics-bucket/db-logs/stl_query_daily/'");
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Athena's own placeholders, not JavaScript's
    expect(ddl).toContain("'s3://analytics-bucket/db-logs/stl_query_daily/cluster=${cluster}/dt=${dt}/'");
  });

  it('names a format that is neither jsonl.gz nor parquet', () => {
    expect(() => athenaDdl({ ...OPTIONS, format: 'orc' as 'parquet' })).toThrow(
      /format: must be jsonl\.gz or parquet/,
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

describe('Athena DDL against exported objects', () => {
  it('has every key of every exported object of every catalog table as a column, with a compatible type', async () => {
    const sources = await sourcesWithRows();
    const path = `/${uniqueName('export')}`;
    const [watermarkTable, bucket] = await Promise.all([createWatermarkTable(), createBucket()]);
    await putParameters(path, catalogExportParameters(`s3://${bucket}/logs`, sources));
    const runtime = testRuntime({ path, watermarkTable, openers: dayAheadOpeners() });

    const summary = await makeHandler(runtime)({
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
