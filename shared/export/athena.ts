import { ConfigError } from '../errors';
import { CATALOG } from './sources/catalog';
import { type ColumnSpec, columnList } from './sources/columns';
import { POSTGRES_COLUMNS } from './sources/postgres/catalog';
import { REDSHIFT_TABLES } from './sources/redshift/catalog';

/**
 * Athena DDL for the exported objects: one external table per catalog table
 * over `<prefix>/<table>/`, read with the OpenX JSON SerDe, partitioned by
 * `cluster` and `dt` through partition projection, so that neither a crawler
 * nor MSCK REPAIR TABLE is ever needed.
 */

/**
 * MariaDB's log tables (MySQL's lack `rows_affected`; a missing key reads as NULL), and the
 * exporter's `time_basis` key (what the time column means, see catalog.ts).
 */
const MYSQL_COLUMNS: Readonly<Record<string, readonly ColumnSpec[]>> = {
  general_log: columnList({
    event_time: 'timestamp(6)',
    user_host: 'mediumtext',
    thread_id: 'bigint unsigned',
    server_id: 'int unsigned',
    command_type: 'varchar(64)',
    argument: 'mediumtext',
    time_basis: 'varchar(32)',
  }),
  slow_log: columnList({
    start_time: 'timestamp(6)',
    user_host: 'mediumtext',
    query_time: 'time(6)',
    lock_time: 'time(6)',
    rows_sent: 'int',
    rows_examined: 'int',
    db: 'varchar(512)',
    last_insert_id: 'int',
    insert_id: 'int',
    server_id: 'int unsigned',
    sql_text: 'mediumtext',
    thread_id: 'bigint unsigned',
    rows_affected: 'int',
    time_basis: 'varchar(32)',
  }),
};

/** The columns of every catalog table's exported rows, by table name. */
export const CATALOG_COLUMNS: Readonly<Record<string, readonly ColumnSpec[]>> = {
  ...MYSQL_COLUMNS,
  ...POSTGRES_COLUMNS,
  ...Object.fromEntries(REDSHIFT_TABLES.map((t) => [t.name, t.columns])),
};

/**
 * The Athena type of a source column. Timestamps stay `string`: they are
 * exported as ISO-8601 text at the source's precision, which Athena's
 * `timestamp` (milliseconds) would cut; `from_iso8601_timestamp(col)` converts
 * them in queries. 64-bit integers and numerics leave PostgreSQL as JSON
 * strings (exact beyond 2^53); the OpenX SerDe parses those into bigint and double.
 */
export function athenaType(sourceType: string): string {
  const t = sourceType.toLowerCase();
  if (/^(timestamp|time|date|interval)\b/.test(t)) return 'string';
  if (/^bool/.test(t)) return 'boolean';
  if (/^(bigint|int8|oid)\b/.test(t) || (/int\b|int\(/.test(t) && /\bunsigned\b/.test(t))) return 'bigint';
  if (/^(integer|int|int4|smallint|int2|tinyint|mediumint)\b/.test(t)) return 'int';
  if (/^(double|real|float|numeric|decimal)\b/.test(t)) return 'double';
  return 'string';
}

export interface AthenaDdlOptions {
  /** The export destination, `s3://bucket/prefix` (as `global/destination`). */
  destination: string;
  /** The Glue database the tables go to. */
  database: string;
  /** First day of the `dt` projection, `yyyy-MM-dd`. */
  since: string;
  /**
   * Cluster names for an `enum` projection of `cluster`, so that queries may
   * span every cluster without naming them. Without it, `cluster` is `injected`:
   * each query must name its cluster(s) with `=` or `IN`.
   */
  clusters?: readonly string[];
  /** The tables over the daily compaction's objects (`<table>_daily`) rather than the window objects. */
  daily?: boolean;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;
const sqlString = (text: string) => `'${text.replaceAll("'", "''")}'`;

function validate(options: AthenaDdlOptions): string {
  const problems = [];
  const location = options.destination.replace(/\/+$/, '');
  if (!/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/.test(location))
    problems.push({ parameter: 'destination', problem: 'must be s3://bucket/prefix' });
  if (!IDENTIFIER.test(options.database))
    problems.push({ parameter: 'database', problem: 'must be a lowercase name ([a-z_][a-z0-9_]*)' });
  if (!/^\d{4}-\d{2}-\d{2}$/.test(options.since))
    problems.push({ parameter: 'since', problem: 'must be a date, yyyy-MM-dd' });
  for (const cluster of options.clusters ?? []) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(cluster))
      problems.push({ parameter: 'clusters', problem: `invalid cluster name "${cluster}"` });
  }
  if (problems.length > 0) throw new ConfigError('Cannot write the Athena DDL', problems);
  return location;
}

/** CREATE EXTERNAL TABLE for one exported table. */
export function createTableStatement(
  table: string,
  columns: readonly ColumnSpec[],
  options: AthenaDdlOptions,
): string {
  const location = `${validate(options)}/${table}/`;
  const columnLines = columns.map((c) => `  \`${c.name}\` ${athenaType(c.type)}`).join(',\n');
  const clusterProjection = options.clusters?.length
    ? [
        ['projection.cluster.type', 'enum'],
        ['projection.cluster.values', options.clusters.join(',')],
      ]
    : [['projection.cluster.type', 'injected']];
  const properties = [
    ['projection.enabled', 'true'],
    ...clusterProjection,
    ['projection.dt.type', 'date'],
    ['projection.dt.format', 'yyyy-MM-dd'],
    ['projection.dt.range', `${options.since},NOW`],
    ['projection.dt.interval', '1'],
    ['projection.dt.interval.unit', 'DAYS'],
    ['storage.location.template', `${location}cluster=\${cluster}/dt=\${dt}/`],
  ]
    .map(([k, v]) => `  ${sqlString(k as string)} = ${sqlString(v as string)}`)
    .join(',\n');
  return [
    `CREATE EXTERNAL TABLE IF NOT EXISTS \`${options.database}\`.\`${table}\` (`,
    columnLines,
    ')',
    'PARTITIONED BY (`cluster` string, `dt` string)',
    "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'",
    "STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'",
    "OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'",
    `LOCATION ${sqlString(location)}`,
    'TBLPROPERTIES (',
    properties,
    ');',
  ].join('\n');
}

/**
 * The DDL of every catalog table, in catalog order, with the database's own
 * CREATE first; with `daily`, of the daily compaction's tables (`<table>_daily`).
 */
export function athenaDdl(options: AthenaDdlOptions): string[] {
  validate(options);
  const tables = CATALOG.map((t) => {
    const columns = CATALOG_COLUMNS[t.name];
    if (!columns) throw new Error(`No column list for catalog table ${t.name}`);
    return createTableStatement(options.daily ? `${t.name}_daily` : t.name, columns, options);
  });
  return [`CREATE DATABASE IF NOT EXISTS \`${options.database}\`;`, ...tables];
}
