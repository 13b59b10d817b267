import type { LocatedRange } from './mysql/log-position';
import type { DatabaseSession, SqlDialect } from './session';

/**
 * What a table definition is: the contract between the catalog's tables (per engine,
 * and custom exports) and the pipeline that plans, reads and writes their windows.
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

/** The lag of a table whose rows appear as soon as they happen, in seconds. */
export const ONE_MINUTE = 60;

/** `column >= lo AND column < hi` in the session's dialect. */
export function inWindow(dialect: SqlDialect, column: string, window: MicroWindow): string {
  const c = dialect.quote(column);
  return `${c} >= ${dialect.timestamp(window.lo)} AND ${c} < ${dialect.timestamp(window.hi)}`;
}
