import { ConfigError } from '../../errors';
import type { ColumnSpec } from './columns';
import { generalLog, MYSQL_COLUMNS, slowLog } from './mysql/catalog';
import { POSTGRES_COLUMNS, POSTGRES_TABLES } from './postgres/catalog';
import { REDSHIFT_TABLES } from './redshift/catalog';
import { type EngineFamily, inWindow, ONE_MINUTE, type TableDefinition } from './table-definition';

export {
  generalLog,
  hasProcessPrivilege,
  mysqlLogTable,
  SLOW_LOG_FALLBACK_LAG_SECONDS,
  slowLog,
  TIME_BASIS,
} from './mysql/catalog';
export * from './table-definition';

/**
 * The catalog: every exportable table is a definition in this list, and custom
 * exports become definitions too. The pipeline only reads definitions, so a new
 * engine's tables (PostgreSQL csv log, Redshift STL/SYS) are new entries here,
 * not new branches in the exporter.
 */

/** Every catalog table. */
export const CATALOG: readonly TableDefinition[] = [
  generalLog,
  slowLog,
  ...POSTGRES_TABLES,
  ...REDSHIFT_TABLES,
];

/**
 * The columns of every catalog table's exported rows, by table name, with
 * their source types: the Athena DDL's columns, and the types of the Parquet
 * objects' columns (whatever type a particular server version describes).
 */
export const CATALOG_COLUMNS: Readonly<Record<string, readonly ColumnSpec[]>> = {
  ...MYSQL_COLUMNS,
  ...POSTGRES_COLUMNS,
  ...Object.fromEntries(REDSHIFT_TABLES.map((t) => [t.name, t.columns])),
};

export function catalogTable(family: EngineFamily, name: string): TableDefinition | undefined {
  return CATALOG.find((t) => t.family === family && t.name === name);
}

export function standardTables(family: EngineFamily): TableDefinition[] {
  return CATALOG.filter((t) => t.family === family && t.standard);
}

export const CUSTOM_EXPORT_NAME = /^[a-z][a-z0-9_]*$/;
export const COLUMN_NAME = /^[A-Za-z_][A-Za-z0-9_$]*$/;

/**
 * A custom export: the configured SELECT as a subquery, restricted to the
 * window on its watermark column; `fullScan` when that column has no index.
 * Its columns are described once per run: a query with two columns of one
 * name (PostgreSQL allows them in a subquery, `SELECT 1, 2` among them) is
 * refused, since a row object, and so a JSON line, would keep only the last.
 */
export function customExport(
  name: string,
  query: string,
  watermarkColumn: string,
  fullScan = false,
): TableDefinition {
  const inner = query.trim().replace(/;+\s*$/, '');
  return {
    name,
    standard: false,
    eventTimeColumn: watermarkColumn,
    orderBy: [watermarkColumn],
    fullScan,
    sqlTextColumns: [],
    lagSeconds: async () => ONE_MINUTE,
    async source({ session }) {
      const names = (await session.describe(`SELECT * FROM (${inner}) AS custom_export`)).map((c) => c.name);
      const repeated = names.find((column, index) => names.indexOf(column) !== index);
      if (repeated !== undefined) {
        throw new ConfigError(
          `Custom export ${name}: its query returns more than one column named "${repeated}"; give each column a name of its own (AS)`,
        );
      }
      return (window) =>
        `SELECT * FROM (${inner}) AS custom_export WHERE ${inWindow(session.dialect, watermarkColumn, window)}`;
    },
  };
}
