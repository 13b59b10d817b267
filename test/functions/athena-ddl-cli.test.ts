import { describe, expect, it } from 'vitest';
import { runScript } from '../support/cli';

const athenaDdlCli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  runScript('scripts/athena-ddl.ts', args, env);

/** The tables docs/athena.md names: MySQL family, PostgreSQL and Redshift. */
const DOCUMENTED_TABLES = [
  'general_log',
  'slow_log',
  'postgres_log',
  'pg_stat_statements',
  'stl_query',
  'stl_querytext',
  'stl_explain',
  'stl_wlm_query',
  'stl_alert_event_log',
  'stl_ddltext',
  'stl_utilitytext',
  'stl_scan',
  'sys_query_history',
];

/** The statements of the output, each with the table it creates (undefined for CREATE DATABASE). */
function statements(stdout: string): Array<{ table: string | undefined; sql: string }> {
  return stdout
    .trim()
    .split(/;\n\n/)
    .map((sql) => ({ table: /CREATE EXTERNAL TABLE IF NOT EXISTS `[^`]+`\.`([^`]+)`/.exec(sql)?.[1], sql }));
}

describe('npm run athena-ddl', () => {
  it('prints CREATE DATABASE and one table per catalog table, partitions projected from the destination', async () => {
    const { code, stdout } = await athenaDdlCli(['--destination', 's3://bucket/prefix']);

    expect(code).toBe(0);
    const [database, ...tables] = statements(stdout);
    expect(database?.sql).toBe('CREATE DATABASE IF NOT EXISTS `log_export`');
    expect(tables.map((t) => t.table).sort()).toEqual([...DOCUMENTED_TABLES].sort());
    for (const { table, sql } of tables) {
      expect(sql).toContain(`LOCATION 's3://bucket/prefix/${table}/'`);
      expect(sql).toContain('PARTITIONED BY (`cluster` string, `dt` string)');
      expect(sql).toContain("ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'");
      expect(sql).toContain("'projection.cluster.type' = 'injected'");
      expect(sql).toContain("'projection.dt.range' = '2024-01-01,NOW'");
      expect(sql).toContain(
        `'storage.location.template' = 's3://bucket/prefix/${table}/cluster=\${cluster}/dt=\${dt}/'`,
      );
    }
  });

  it('takes the destination from EXPORT_DESTINATION, and --database, --since and --clusters', async () => {
    const { code, stdout } = await athenaDdlCli(
      ['--database', 'logs', '--since', '2025-06-01', '--clusters', 'c1, c2'],
      { EXPORT_DESTINATION: 's3://exports/logs' },
    );

    expect(code).toBe(0);
    const [database, ...tables] = statements(stdout);
    expect(database?.sql).toBe('CREATE DATABASE IF NOT EXISTS `logs`');
    expect(tables).toHaveLength(DOCUMENTED_TABLES.length);
    for (const { table, sql } of tables) {
      expect(sql).toContain(`CREATE EXTERNAL TABLE IF NOT EXISTS \`logs\`.\`${table}\``);
      expect(sql).toContain(`LOCATION 's3://exports/logs/${table}/'`);
      expect(sql).toContain("'projection.cluster.type' = 'enum'");
      expect(sql).toContain("'projection.cluster.values' = 'c1,c2'");
      expect(sql).toContain("'projection.dt.range' = '2025-06-01,NOW'");
    }
  });

  it("with --daily, creates the tables over the daily compaction's objects, one <table>_daily each", async () => {
    const { code, stdout } = await athenaDdlCli(['--destination', 's3://bucket/prefix', '--daily']);

    expect(code).toBe(0);
    const [, ...tables] = statements(stdout);
    expect(tables.map((t) => t.table).sort()).toEqual(DOCUMENTED_TABLES.map((t) => `${t}_daily`).sort());
    for (const { table, sql } of tables) {
      expect(sql).toContain(`LOCATION 's3://bucket/prefix/${table}/'`);
      expect(sql).toContain(
        `'storage.location.template' = 's3://bucket/prefix/${table}/cluster=\${cluster}/dt=\${dt}/'`,
      );
    }
  });

  it('with --format parquet, stores the same tables as Parquet with typed columns, at the same locations', async () => {
    const { code, stdout } = await athenaDdlCli([
      '--destination',
      's3://bucket/prefix',
      '--format',
      'parquet',
    ]);

    expect(code).toBe(0);
    const [database, ...tables] = statements(stdout);
    expect(database?.sql).toBe('CREATE DATABASE IF NOT EXISTS `log_export`');
    expect(tables.map((t) => t.table).sort()).toEqual([...DOCUMENTED_TABLES].sort());
    for (const { table, sql } of tables) {
      expect(sql).toContain('STORED AS PARQUET');
      expect(sql).not.toContain('JsonSerDe');
      expect(sql).toContain(`LOCATION 's3://bucket/prefix/${table}/'`);
      expect(sql).toContain('PARTITIONED BY (`cluster` string, `dt` string)');
      expect(sql).toContain("'projection.cluster.type' = 'injected'");
      expect(sql).toContain(
        `'storage.location.template' = 's3://bucket/prefix/${table}/cluster=\${cluster}/dt=\${dt}/'`,
      );
    }
    const generalLog = tables.find((t) => t.table === 'general_log')?.sql;
    expect(generalLog).toContain('`event_time` timestamp,');
    expect(generalLog).toContain('`thread_id` decimal(20,0),');
  });

  it('with --daily --format parquet, creates the daily tables as Parquet', async () => {
    const { code, stdout } = await athenaDdlCli([
      '--destination',
      's3://bucket/prefix',
      '--daily',
      '--format',
      'parquet',
    ]);

    expect(code).toBe(0);
    const [, ...tables] = statements(stdout);
    expect(tables.map((t) => t.table).sort()).toEqual(DOCUMENTED_TABLES.map((t) => `${t}_daily`).sort());
    for (const { table, sql } of tables) {
      expect(sql).toContain('STORED AS PARQUET');
      expect(sql).toContain(`LOCATION 's3://bucket/prefix/${table}/'`);
    }
  });

  it('exits 2 with the usage without a destination, and with the reason for a destination that is not S3', async () => {
    const missing = await athenaDdlCli([], { EXPORT_DESTINATION: '' });
    const local = await athenaDdlCli(['--destination', 'file:///tmp/exports']);

    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('usage: npm run athena-ddl -- --destination s3://bucket/prefix');
    expect(missing.stdout).toBe('');
    expect(local.code).toBe(2);
    expect(local.stderr).toContain('destination: must be s3://bucket/prefix');
  });

  it('exits 2 naming a format that is neither jsonl.gz nor parquet', async () => {
    const { code, stdout, stderr } = await athenaDdlCli([
      '--destination',
      's3://bucket/prefix',
      '--format',
      'orc',
    ]);

    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain('format: must be jsonl.gz or parquet');
  });
});
