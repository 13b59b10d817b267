import { POSTGRES_TABLES } from './catalog-postgres';
import { REDSHIFT_TABLES } from './catalog-redshift';
import type { DatabaseSession, SqlDialect } from './session';

/**
 * The catalog: every exportable table is a definition in this list, and custom
 * exports become definitions too. The pipeline only reads definitions, so a new
 * engine's tables (PostgreSQL csv log, Redshift STL/SYS) are new entries here,
 * not new branches in the exporter.
 */

export type Engine = 'mysql' | 'mariadb' | 'postgres' | 'redshift';
export type EngineFamily = 'mysql' | 'postgres' | 'redshift';

export const ENGINE_FAMILY: Readonly<Record<Engine, EngineFamily>> = {
  mysql: 'mysql',
  mariadb: 'mysql',
  postgres: 'postgres',
  redshift: 'redshift',
};

/** A window in microseconds since the epoch, half-open `[lo, hi)`. */
export interface MicroWindow {
  lo: number;
  hi: number;
}

/** What a definition may consult when it builds its SQL. */
export interface SourceContext {
  session: DatabaseSession;
  /** The cluster's own parameters (e.g. `csvlog-table`, `log-source`), for engine-specific options. */
  options: Readonly<Record<string, unknown>>;
  /** The latest end a complete window may have in this run (database clock minus lag), in microseconds. */
  dueUntil: number;
}

/** What a source answers instead of a query when there is nothing to read (an extension not installed). */
export interface SkippedSource {
  skipped: string;
}

/** Builds the SELECT of one window's rows (unordered; the pipeline adds ORDER BY). */
export type WindowQuery = (window: MicroWindow) => string;

export interface TableDefinition {
  /** The name in `tables`, in object keys and as the watermark's sort key. */
  readonly name: string;
  /** The engine family it belongs to; undefined for custom exports, which work on every engine. */
  readonly family?: EngineFamily;
  /** In the family's default set when a cluster does not list `tables`. */
  readonly standard: boolean;
  /** The column whose value places a row in a window. */
  readonly eventTimeColumn: string;
  /** Row order inside an object: event time first, then tie-breakers. */
  readonly orderBy: readonly string[];
  /**
   * Every window query reads the whole source (no index on the event time: a
   * CSV log table, a file_fdw log): due windows are then read an hour at a
   * time, one ordered query split into the windows' objects, not one query each.
   */
  readonly fullScan?: boolean;
  /** Columns holding SQL text, in which credentials are masked. */
  readonly sqlTextColumns: readonly string[];
  /** Seconds a row may appear after its event time (unless `global/lag-seconds` overrides). */
  lagSeconds(session: DatabaseSession): Promise<number>;
  /** Prepares the window query for one run (checks which source tables exist, and the like). */
  source(context: SourceContext): Promise<WindowQuery | SkippedSource>;
}

const ONE_MINUTE = 60;

/** `column >= lo AND column < hi` in the session's dialect. */
export function inWindow(dialect: SqlDialect, column: string, window: MicroWindow): string {
  const c = dialect.quote(column);
  return `${c} >= ${dialect.timestamp(window.lo)} AND ${c} < ${dialect.timestamp(window.hi)}`;
}

/**
 * A MySQL log table and, where Amazon RDS rotates it, its `_backup` twin (the
 * rotation moves rows there, so both hold rows of not-yet-exported windows).
 */
function mysqlLogTable(
  name: 'general_log' | 'slow_log',
  eventTimeColumn: string,
  extraFilter: string,
): Omit<TableDefinition, 'lagSeconds' | 'sqlTextColumns' | 'orderBy'> {
  return {
    name,
    family: 'mysql',
    standard: true,
    eventTimeColumn,
    // CSV (or MyISAM) tables without indexes.
    fullScan: true,
    async source({ session }) {
      const tables: string[] = [name];
      if (await session.relationExists('mysql', `${name}_backup`)) tables.push(`${name}_backup`);
      return (window) =>
        tables
          .map(
            (t) =>
              `SELECT * FROM mysql.${t} WHERE ${inWindow(session.dialect, eventTimeColumn, window)}${extraFilter}`,
          )
          .join(' UNION ALL ');
    },
  };
}

export const generalLog: TableDefinition = {
  ...mysqlLogTable('general_log', 'event_time', ' AND thread_id <> CONNECTION_ID()'),
  orderBy: ['event_time', 'thread_id'],
  sqlTextColumns: ['argument'],
  lagSeconds: async () => ONE_MINUTE,
};

export const slowLog: TableDefinition = {
  ...mysqlLogTable('slow_log', 'start_time', ''),
  orderBy: ['start_time', 'thread_id'],
  sqlTextColumns: ['sql_text'],
  // A slow_log row is written when its statement ends, stamped with when it started:
  // the window must stay open for as long as the longest statement still running.
  async lagSeconds(session) {
    const running = await session.scalar(
      "SELECT COALESCE(MAX(TIME), 0) FROM information_schema.PROCESSLIST WHERE COMMAND NOT IN ('Sleep', 'Daemon', 'Binlog Dump', 'Binlog Dump GTID', 'Slave_IO', 'Slave_SQL', 'Slave_worker')",
    );
    return Math.max(ONE_MINUTE, Number(running) + 1);
  },
};

/** Every catalog table. */
export const CATALOG: readonly TableDefinition[] = [
  generalLog,
  slowLog,
  ...POSTGRES_TABLES,
  ...REDSHIFT_TABLES,
];

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
      return (window) =>
        `SELECT * FROM (${inner}) AS custom_export WHERE ${inWindow(session.dialect, watermarkColumn, window)}`;
    },
  };
}
