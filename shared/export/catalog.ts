import { POSTGRES_TABLES } from './catalog-postgres';
import { REDSHIFT_TABLES } from './catalog-redshift';
import type { LocatedRange } from './log-position';
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

/** Bounds on the event time; a missing bound is open (the first and last windows of a batch read by position). */
export interface OpenWindow {
  lo?: number;
  hi?: number;
}

/**
 * An append-only source that incremental runs read by position rather than by
 * event time (`log-position.ts`): MySQL's log tables, whose recorded time is
 * the writer's local time.
 */
export interface AppendOnlySource {
  readonly schema: string;
  /** The tables that may hold the source's rows now: the live table and, when present, its `_backup` twin. */
  tables(session: DatabaseSession): Promise<string[]>;
  /** The SELECT (unordered) of the rows at the given positions whose event time lies within `window`. */
  query(session: DatabaseSession, ranges: readonly LocatedRange[], window: OpenWindow): string;
}

/** Why a table's lag is not what it should be, reported once per run with a metric. */
export interface LagWarning {
  /** The metric counted (EMF, dimensions Cluster and Table). */
  metric: string;
  message: string;
}

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
  /**
   * Seconds a row may appear after its event time (unless `global/lag-seconds` overrides);
   * `warn` reports a fallback (the lag could not be measured).
   */
  lagSeconds(session: DatabaseSession, warn?: (warning: LagWarning) => void): Promise<number>;
  /** Set for append-only sources that incremental runs read by position. */
  readonly appendOnly?: AppendOnlySource;
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
 * The value of the `time_basis` key of every general_log and slow_log row: the
 * time column is what the server recorded, which MariaDB writes in the writing
 * session's time zone (`time_zone`) without an offset; the exporter's UTC
 * session reads it back unchanged.
 */
export const TIME_BASIS = 'writer_session_time_zone';

/**
 * A MySQL log table and, where Amazon RDS rotates it, its `_backup` twin (the
 * rotation moves rows there, so both hold rows of not-yet-exported windows).
 * Incremental runs read it by position (`appendOnly`); backfill dry runs count
 * by recorded time.
 */
export function mysqlLogTable(
  schema: string,
  name: string,
  eventTimeColumn: string,
  extraFilter: string,
): Pick<
  TableDefinition,
  'name' | 'family' | 'standard' | 'eventTimeColumn' | 'fullScan' | 'source' | 'appendOnly'
> {
  const present = async (session: DatabaseSession) => {
    const tables: string[] = [name];
    if (await session.relationExists(schema, `${name}_backup`)) tables.push(`${name}_backup`);
    return tables;
  };
  const from = (session: DatabaseSession, table: string) =>
    `${session.dialect.quote(schema)}.${session.dialect.quote(table)}`;
  const also = extraFilter ? ` AND ${extraFilter}` : '';
  // Every row says what its time column is: the server's record, in the writer's session time zone.
  const basis = `'${TIME_BASIS}' AS time_basis`;
  return {
    name,
    family: 'mysql',
    standard: true,
    eventTimeColumn,
    // CSV (or MyISAM) tables without indexes.
    fullScan: true,
    async source({ session }) {
      const tables = await present(session);
      return (window) =>
        tables
          .map(
            (t) =>
              `SELECT *, ${basis} FROM ${from(session, t)} WHERE ${inWindow(session.dialect, eventTimeColumn, window)}${also}`,
          )
          .join(' UNION ALL ');
    },
    appendOnly: {
      schema,
      tables: present,
      query(session, ranges, window) {
        const column = `g.${session.dialect.quote(eventTimeColumn)}`;
        const bounds = [
          window.lo === undefined ? undefined : `${column} >= ${session.dialect.timestamp(window.lo)}`,
          window.hi === undefined ? undefined : `${column} < ${session.dialect.timestamp(window.hi)}`,
          extraFilter ? `g.${extraFilter}` : undefined,
        ].filter((b) => b !== undefined);
        const timeFilter = bounds.length > 0 ? bounds.join(' AND ') : 'TRUE';
        // A user variable counts the rows as the scan meets them (before any sort): each row's position.
        // It sits in the IF's condition, which is evaluated for every row whatever the other conditions.
        const parts = ranges.map((range, i) => {
          const position = `@log_export_position_${i}`;
          return (
            `SELECT g.*, ${basis} FROM ${from(session, range.table)} AS g, (SELECT ${position} := 0) AS log_export_start ` +
            `WHERE IF((${position} := ${position} + 1) > ${range.from} AND ${position} <= ${range.to}, ${timeFilter}, FALSE)`
          );
        });
        // No range: no rows, but the table's columns.
        return parts.length > 0
          ? parts.join(' UNION ALL ')
          : `SELECT * FROM ${from(session, name)} WHERE FALSE`;
      },
    },
  };
}

export const generalLog: TableDefinition = {
  ...mysqlLogTable('mysql', 'general_log', 'event_time', 'thread_id <> CONNECTION_ID()'),
  orderBy: ['event_time', 'thread_id'],
  sqlTextColumns: ['argument'],
  lagSeconds: async () => ONE_MINUTE,
};

/**
 * The slow_log lag when the longest running statement cannot be measured:
 * without the PROCESS privilege, PROCESSLIST shows only the exporter's own
 * session. Rows are read by position, so a statement that runs longer is not
 * lost either way: its row goes to the window being exported when it arrives.
 */
export const SLOW_LOG_FALLBACK_LAG_SECONDS = 15 * 60;

/** PROCESSLIST commands that are not a client statement running. */
const NOT_A_STATEMENT =
  "COMMAND NOT IN ('Sleep', 'Daemon', 'Binlog Dump', 'Binlog Dump GTID', 'Slave_IO', 'Slave_SQL', 'Slave_worker')";

export const slowLog: TableDefinition = {
  ...mysqlLogTable('mysql', 'slow_log', 'start_time', ''),
  orderBy: ['start_time', 'thread_id'],
  sqlTextColumns: ['sql_text'],
  // A slow_log row is written when its statement ends, stamped with when it started:
  // the window should stay open for as long as the longest statement still running.
  async lagSeconds(session, warn) {
    if (!(await hasProcessPrivilege(session))) {
      warn?.({
        metric: 'SlowLogLagFallback',
        message: `No PROCESS privilege: PROCESSLIST shows no other session, so slow_log uses a lag of ${SLOW_LOG_FALLBACK_LAG_SECONDS} s`,
      });
      return SLOW_LOG_FALLBACK_LAG_SECONDS;
    }
    const running = await session.scalar(
      `SELECT COALESCE(MAX(TIME), 0) FROM information_schema.PROCESSLIST WHERE ${NOT_A_STATEMENT}`,
    );
    return Math.max(ONE_MINUTE, Number(running) + 1);
  },
};

/**
 * Whether the session's user holds PROCESS (directly or through ALL
 * PRIVILEGES: information_schema.USER_PRIVILEGES lists each global privilege).
 * A privilege held only through a role is not seen: the fallback lag is then
 * used, which costs timeliness, never rows.
 */
export async function hasProcessPrivilege(session: DatabaseSession): Promise<boolean> {
  const found = await session.scalar(
    "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE = 'PROCESS' AND GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')",
  );
  return Number(found) > 0;
}

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
