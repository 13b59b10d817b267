import { describe, expect, it } from 'vitest';
import { makeHandler } from '../../../functions/export';
import { athenaDdl, athenaType, createTableStatement } from '../../../shared/export/athena';
import { exportConfigSchema, resolveConfig } from '../../../shared/export/config';
import { CATALOG } from '../../../shared/export/sources/catalog';
import { uniqueName } from '../../stack/fixtures';
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
