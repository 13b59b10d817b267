import { ConfigError } from '../errors';
import { OUTPUT_FORMATS, type OutputFormat } from './config';
import { type ParquetColumnType, parquetTypeOf } from './encode/parquet-types';
import { CATALOG, CATALOG_COLUMNS } from './sources/catalog';
import type { ColumnSpec } from './sources/columns';

/**
 * Athena DDL for the exported objects: one external table per catalog table
 * over `<prefix>/<table>/`, read with the OpenX JSON SerDe (gzip JSON lines)
 * or as Parquet, partitioned by `cluster` and `dt` through partition
 * projection, so that neither a crawler nor MSCK REPAIR TABLE is ever needed.
 */

/**
 * The Athena type of a source column in the JSON-lines objects. Timestamps
 * stay `string`: they are exported as ISO-8601 text at the source's
 * precision, which Athena's `timestamp` (milliseconds) would cut;
 * `from_iso8601_timestamp(col)` converts them in queries. 64-bit integers and
 * numerics leave PostgreSQL as JSON strings (exact beyond 2^53); the OpenX
 * SerDe parses those into bigint and double.
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

/**
 * The Athena type of a source column in the Parquet objects: the type of the
 * Parquet column the exporter writes for it (`parquetTypeOf`, the same mapping
 * the encoder uses), so that the table and the files agree.
 */
export function athenaParquetType(sourceType: string): string {
  return athenaTypeOfParquet(parquetTypeOf(sourceType));
}

function athenaTypeOfParquet(type: ParquetColumnType): string {
  switch (type.kind) {
    case 'timestamp':
      return 'timestamp';
    case 'date':
      return 'date';
    case 'int32':
      return 'int';
    case 'int64':
      return 'bigint';
    case 'double':
      return 'double';
    case 'boolean':
      return 'boolean';
    case 'decimal':
      return `decimal(${type.precision},${type.scale})`;
    case 'string':
    case 'json':
      return 'string';
  }
}

/** How Athena reads each format's objects (the SerDe, or STORED AS). */
const STORAGE: Readonly<Record<OutputFormat, readonly string[]>> = {
  'jsonl.gz': [
    "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'",
    "STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'",
    "OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'",
  ],
  parquet: ['STORED AS PARQUET'],
};

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
  /** The objects' format, as `global/format` (default `jsonl.gz`). */
  format?: OutputFormat;
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
  if (options.format !== undefined && !OUTPUT_FORMATS.includes(options.format))
    problems.push({ parameter: 'format', problem: `must be ${OUTPUT_FORMATS.join(' or ')}` });
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
  const format = options.format ?? 'jsonl.gz';
  const typeOf = format === 'parquet' ? athenaParquetType : athenaType;
  const columnLines = columns.map((c) => `  \`${c.name}\` ${typeOf(c.type)}`).join(',\n');
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
    ...STORAGE[format],
    `LOCATION ${sqlString(location)}`,
    'TBLPROPERTIES (',
    properties,
    ');',
  ].join('\n');
}

/**
 * The DDL of every catalog table, in catalog order, with the database's own
 * CREATE first; with `daily`, of the daily compaction's tables (`<table>_daily`);
 * for the objects of `format` (JSON lines unless told).
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
