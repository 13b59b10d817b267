import { ConfigError, ExportError } from '../../../errors';
import { type ColumnSpec, columnList } from '../columns';
import type { DatabaseSession } from '../session';
import type {
  MicroWindow,
  SkippedSource,
  SourceContext,
  TableDefinition,
  WindowQuery,
} from '../table-definition';
import { minutes } from '../time';

/**
 * PostgreSQL's csv log (through file_fdw, or Amazon RDS's log_fdw) and
 * pg_stat_statements snapshots.
 */

const ONE_MINUTE = 60;

/** The csvlog columns in file order, as the documented `pglog` foreign table declares them. */
const CSVLOG_BASE = columnList({
  log_time: 'timestamp(3) with time zone',
  user_name: 'text',
  database_name: 'text',
  process_id: 'integer',
  connection_from: 'text',
  session_id: 'text',
  session_line_num: 'bigint',
  command_tag: 'text',
  session_start_time: 'timestamp with time zone',
  virtual_transaction_id: 'text',
  transaction_id: 'bigint',
  error_severity: 'text',
  sql_state_code: 'text',
  message: 'text',
  detail: 'text',
  hint: 'text',
  internal_query: 'text',
  internal_query_pos: 'integer',
  context: 'text',
  query: 'text',
  query_pos: 'integer',
  location: 'text',
  application_name: 'text',
});
const CSVLOG_13 = columnList({ backend_type: 'text' });
const CSVLOG_14 = columnList({ leader_pid: 'integer', query_id: 'bigint' });

/** The csv log's columns on a server of this `server_version_num` (backend_type came in 13, leader_pid and query_id in 14). */
export function csvlogColumns(serverVersionNum = 150000): readonly ColumnSpec[] {
  return [
    ...CSVLOG_BASE,
    ...(serverVersionNum >= 130000 ? CSVLOG_13 : []),
    ...(serverVersionNum >= 140000 ? CSVLOG_14 : []),
  ];
}

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;
const quoteLiteral = (text: string) => `'${text.replaceAll("'", "''")}'`;

/** `name` or `schema.name`, each part a plain identifier. */
const RELATION_NAME = /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/;

function qualifiedName(name: string): string {
  return name.split('.').map(quoteIdent).join('.');
}

async function relationExists(session: DatabaseSession, qualified: string): Promise<boolean> {
  return (await session.scalar(`SELECT to_regclass(${quoteLiteral(qualified)}) IS NOT NULL`)) === true;
}

/** The session_id the csv log gives this very session (`%lx.%x` of its start time and pid). */
const OWN_SESSION_ID =
  "SELECT to_hex(trunc(EXTRACT(EPOCH FROM backend_start))::bigint) || '.' || to_hex(pid) FROM pg_catalog.pg_stat_activity WHERE pid = pg_catalog.pg_backend_pid()";

/**
 * The rows of one window from one or more log relations, each log line once:
 * where files overlap (several log_fdw files, a file read twice) the natural key
 * (session_id, session_line_num) keeps one copy. Rows that arrive after their
 * window was exported cannot duplicate either: a window's object is write-once
 * and the next window starts where this one ended.
 */
export function csvlogWindowQuery(
  relations: readonly string[],
  window: MicroWindow,
  session: DatabaseSession,
  ownSessionId: string,
): string {
  const { quote, timestamp } = session.dialect;
  const inWindow = `${quote('log_time')} >= ${timestamp(window.lo)} AND ${quote('log_time')} < ${timestamp(window.hi)}`;
  // The exporter's own statements in this run are left out, as the MySQL general_log does.
  const notOwn = `${quote('session_id')} IS DISTINCT FROM ${quoteLiteral(ownSessionId)}`;
  const union = relations
    .map((r) => `SELECT * FROM ${r} WHERE ${inWindow} AND ${notOwn}`)
    .join(' UNION ALL ');
  return `SELECT * FROM (SELECT DISTINCT ON (${quote('session_id')}, ${quote('session_line_num')}) * FROM (${union}) AS log_lines ORDER BY ${quote('session_id')}, ${quote('session_line_num')}) AS postgres_log`;
}

/**
 * Self-managed PostgreSQL: the file_fdw foreign table named by `csvlog-table`
 * (default `postgres_log`). When it is missing and `log-source` is set to
 * `file_fdw` explicitly, the exporter creates it, provided its role may run
 * server programs (superuser or pg_execute_server_program): one foreign table
 * over every csv file of the log directory, so rotation loses nothing.
 */
async function fileFdwRelation(session: DatabaseSession, options: SourceContext['options']): Promise<string> {
  const name = String(options['csvlog-table'] ?? 'postgres_log');
  if (!RELATION_NAME.test(name)) {
    throw new ConfigError('Invalid csv log table name', [
      { parameter: 'csvlog-table', problem: 'must be a table name, optionally schema-qualified' },
    ]);
  }
  const relation = qualifiedName(name);
  if (await relationExists(session, relation)) return relation;
  if (options['log-source'] !== 'file_fdw') {
    throw new ExportError(
      `The csv log foreign table ${name} does not exist: create it over the csv log with file_fdw (see docs/athena.md), or set log-source to file_fdw to let the exporter create it`,
    );
  }
  await createCsvlogTable(session, relation, name);
  return relation;
}

/** The foreign server of the csv log tables the exporter creates. */
export const FILE_FDW_SERVER = 'log_export_csvlog';

async function createCsvlogTable(session: DatabaseSession, relation: string, name: string) {
  const permitted = await session.scalar(
    "SELECT rolsuper OR pg_catalog.pg_has_role(current_user, 'pg_execute_server_program', 'MEMBER') FROM pg_catalog.pg_roles WHERE rolname = current_user",
  );
  if (permitted !== true) {
    throw new ExportError(
      `The csv log foreign table ${name} does not exist, and the exporter's role may not create it (it needs superuser or pg_execute_server_program)`,
    );
  }
  const destinations = String(await session.scalar("SELECT current_setting('log_destination')"));
  const collector = await session.scalar("SELECT current_setting('logging_collector')");
  if (!/\bcsvlog\b/.test(destinations) || collector !== 'on') {
    throw new ExportError(
      `The csv log is off (log_destination = '${destinations}', logging_collector = ${String(collector)}): add csvlog to log_destination and turn logging_collector on`,
    );
  }
  const directory = String(await session.scalar("SELECT current_setting('log_directory')"));
  const version = Number(await session.scalar("SELECT current_setting('server_version_num')"));
  // Programs run in the data directory, where a relative log_directory starts.
  const program = `find ${shellQuote(directory)} -maxdepth 1 -name '*.csv' -exec cat {} +`;
  const columns = csvlogColumns(version)
    .map((c) => `${quoteIdent(c.name)} ${c.type}`)
    .join(', ');
  await session.scalar('CREATE EXTENSION IF NOT EXISTS file_fdw');
  await session.scalar(`CREATE SERVER IF NOT EXISTS ${FILE_FDW_SERVER} FOREIGN DATA WRAPPER file_fdw`);
  await session.scalar(
    `CREATE FOREIGN TABLE IF NOT EXISTS ${relation} (${columns}) SERVER ${FILE_FDW_SERVER} OPTIONS (program ${quoteLiteral(program)}, format 'csv')`,
  );
}

const shellQuote = (text: string) => `'${text.replaceAll("'", "'\\''")}'`;

/** The foreign server of the log_fdw tables the exporter creates. */
export const LOG_FDW_SERVER = 'log_export_rds_logs';
/** Prefix of the log_fdw foreign tables the exporter creates, one per csv log file. */
export const LOG_FDW_TABLE_PREFIX = 'log_export_csv_';

/** Rows may land in the file after the one their log_time points at (rotation is not instantaneous). */
const FILE_OVERLAP = minutes(5);

interface LogFile {
  name: string;
  table: string;
  /** When the file was started, from its name (`postgresql.log.2024-05-01-12.csv`), if the name tells. */
  start?: number;
}

/** The start time in a log file name: `YYYY-MM-DD-HH[MM]` (RDS) or `YYYY-MM-DD_HHMMSS`, UTC. */
export function logFileStart(name: string): number | undefined {
  const m = /(\d{4})-(\d{2})-(\d{2})[-_](\d{2})(\d{2})?(\d{2})?/.exec(name);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map((v) => Number(v ?? 0)) as number[];
  const millis = Date.UTC(y as number, (mo as number) - 1, d, h, mi, s);
  return Number.isNaN(millis) ? undefined : millis * 1000;
}

/** The log_fdw table name for a log file: the prefix and the file name's letters and digits. */
export function logFdwTableName(file: string): string {
  return `${LOG_FDW_TABLE_PREFIX}${file.replace(/\.csv$/, '').replace(/[^A-Za-z0-9]+/g, '_')}`
    .toLowerCase()
    .slice(0, 63);
}

/**
 * The files whose lines may fall in the window: a file runs from its start to
 * the next file's start, widened by a margin for lines written around a
 * rotation. Files whose name tells no time are always read. When no file
 * overlaps, the window reads the oldest file (and finds nothing there).
 */
export function filesForWindow(files: readonly LogFile[], window: MicroWindow): LogFile[] {
  const dated = files
    .filter((f) => f.start !== undefined)
    .sort((a, b) => (a.start as number) - (b.start as number));
  const chosen = files.filter((f) => f.start === undefined);
  dated.forEach((file, i) => {
    const next = dated[i + 1]?.start;
    const startsBeforeEnd = (file.start as number) - FILE_OVERLAP < window.hi;
    const endsAfterStart = next === undefined || next + FILE_OVERLAP > window.lo;
    if (startsBeforeEnd && endsAfterStart) chosen.push(file);
  });
  if (chosen.length === 0 && dated[0]) chosen.push(dated[0]);
  return chosen;
}

/**
 * Amazon RDS / Aurora: one log_fdw foreign table per csv log file, created as
 * files appear and dropped when they are gone; a window reads every file that
 * may hold its lines.
 */
async function logFdwFiles(session: DatabaseSession): Promise<LogFile[]> {
  const installed = await session.scalar(
    "SELECT COUNT(*) FROM pg_catalog.pg_extension WHERE extname = 'log_fdw'",
  );
  if (Number(installed) === 0) {
    throw new ExportError(
      'log-source is log_fdw, but the log_fdw extension is not installed: CREATE EXTENSION log_fdw',
    );
  }
  await session.scalar(`CREATE SERVER IF NOT EXISTS ${LOG_FDW_SERVER} FOREIGN DATA WRAPPER log_fdw`);
  const files: LogFile[] = [];
  for await (const row of session.stream(
    "SELECT file_name FROM list_postgres_log_files() WHERE file_name LIKE '%.csv' ORDER BY file_name",
  )) {
    const name = String(row.file_name);
    files.push({ name, table: logFdwTableName(name), start: logFileStart(name) });
  }
  if (files.length === 0) {
    throw new ExportError('log_fdw lists no csv log files: add csvlog to the log_destination parameter');
  }
  const existing = new Set<string>();
  for await (const row of session.stream(
    `SELECT c.relname FROM pg_catalog.pg_foreign_table ft JOIN pg_catalog.pg_class c ON c.oid = ft.ftrelid JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver WHERE s.srvname = ${quoteLiteral(LOG_FDW_SERVER)} AND c.relnamespace = current_schema()::regnamespace`,
  )) {
    existing.add(String(row.relname));
  }
  const current = new Set(files.map((f) => f.table));
  for (const file of files) {
    if (!existing.has(file.table)) {
      await session.scalar(
        `SELECT create_foreign_table_for_log_file(${quoteLiteral(file.table)}, ${quoteLiteral(LOG_FDW_SERVER)}, ${quoteLiteral(file.name)})`,
      );
    }
  }
  for (const table of existing) {
    if (!current.has(table)) await session.scalar(`DROP FOREIGN TABLE IF EXISTS ${quoteIdent(table)}`);
  }
  return files;
}

export const postgresLog: TableDefinition = {
  name: 'postgres_log',
  family: 'postgres',
  standard: true,
  eventTimeColumn: 'log_time',
  orderBy: ['log_time', 'session_id', 'session_line_num'],
  // Each query reads the log files through the foreign tables.
  fullScan: true,
  // log_statement puts statements in `message`; errors carry them in `query`, `internal_query` and `context`.
  sqlTextColumns: ['message', 'detail', 'query', 'internal_query', 'context'],
  lagSeconds: async () => ONE_MINUTE,
  async source({ session, options }): Promise<WindowQuery> {
    const own = String(await session.scalar(OWN_SESSION_ID));
    if (options['log-source'] === 'log_fdw') {
      const files = await logFdwFiles(session);
      return (window) =>
        csvlogWindowQuery(
          filesForWindow(files, window).map((f) => quoteIdent(f.table)),
          window,
          session,
          own,
        );
    }
    const relation = await fileFdwRelation(session, options);
    return (window) => csvlogWindowQuery([relation], window, session, own);
  },
};

/** pg_stat_statements as of PostgreSQL 15 (extension 1.10), in view order. */
const PG_STAT_STATEMENTS_COLUMNS = columnList({
  userid: 'oid',
  dbid: 'oid',
  toplevel: 'boolean',
  queryid: 'bigint',
  query: 'text',
  plans: 'bigint',
  total_plan_time: 'double precision',
  min_plan_time: 'double precision',
  max_plan_time: 'double precision',
  mean_plan_time: 'double precision',
  stddev_plan_time: 'double precision',
  calls: 'bigint',
  total_exec_time: 'double precision',
  min_exec_time: 'double precision',
  max_exec_time: 'double precision',
  mean_exec_time: 'double precision',
  stddev_exec_time: 'double precision',
  rows: 'bigint',
  shared_blks_hit: 'bigint',
  shared_blks_read: 'bigint',
  shared_blks_dirtied: 'bigint',
  shared_blks_written: 'bigint',
  local_blks_hit: 'bigint',
  local_blks_read: 'bigint',
  local_blks_dirtied: 'bigint',
  local_blks_written: 'bigint',
  temp_blks_read: 'bigint',
  temp_blks_written: 'bigint',
  blk_read_time: 'double precision',
  blk_write_time: 'double precision',
  temp_blk_read_time: 'double precision',
  temp_blk_write_time: 'double precision',
  wal_records: 'bigint',
  wal_fpi: 'bigint',
  wal_bytes: 'numeric',
  jit_functions: 'bigint',
  jit_generation_time: 'double precision',
  jit_inlining_count: 'bigint',
  jit_inlining_time: 'double precision',
  jit_optimization_count: 'bigint',
  jit_optimization_time: 'double precision',
  jit_emission_count: 'bigint',
  jit_emission_time: 'double precision',
});

/** The snapshot's own columns, ahead of the view's. */
const SNAPSHOT_COLUMNS = columnList({
  captured_at: 'timestamp with time zone',
  stats_reset: 'timestamp with time zone',
  dealloc: 'bigint',
  database_name: 'name',
  user_name: 'name',
});

/**
 * pg_stat_statements has cumulative counters and no event time, so it is
 * exported as snapshots: in each run, the newest window whose time has come
 * gets one snapshot of the whole view, stamped `captured_at` (the database
 * clock). Older windows of the same run (missed schedules, the first run's
 * lookback) get none: a snapshot cannot be taken in the past. `stats_reset`
 * and `dealloc` (pg_stat_statements_info, PostgreSQL 14+) tell consumers when
 * counters restarted or entries were evicted, so deltas between snapshots are sound.
 */
export const pgStatStatements: TableDefinition = {
  name: 'pg_stat_statements',
  family: 'postgres',
  standard: true,
  eventTimeColumn: 'captured_at',
  orderBy: ['captured_at', 'dbid', 'userid', 'queryid'],
  sqlTextColumns: ['query'],
  // Nothing arrives late: a snapshot is due the moment its window ends.
  lagSeconds: async () => 0,
  async source({ session, dueUntil }): Promise<WindowQuery | SkippedSource> {
    const schema = await session.scalar(
      "SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'",
    );
    if (schema === undefined) return { skipped: 'extension not installed' };
    const ns = quoteIdent(String(schema));
    const hasInfo = await relationExists(session, `${ns}.pg_stat_statements_info`);
    const info = hasInfo
      ? `CROSS JOIN ${ns}.pg_stat_statements_info i`
      : 'CROSS JOIN (SELECT NULL::timestamptz AS stats_reset, NULL::bigint AS dealloc) i';
    return (window) => {
      const newest = window.hi + (window.hi - window.lo) > dueUntil;
      return `SELECT to_char(statement_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS captured_at, i.stats_reset, i.dealloc, d.datname AS database_name, r.rolname AS user_name, s.* FROM ${ns}.pg_stat_statements s LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.userid ${info} WHERE ${newest}`;
    };
  },
};

/** The columns of each PostgreSQL catalog table's rows (PostgreSQL 15), for the Athena DDL. */
export const POSTGRES_COLUMNS: Readonly<Record<string, readonly ColumnSpec[]>> = {
  postgres_log: csvlogColumns(),
  pg_stat_statements: [...SNAPSHOT_COLUMNS, ...PG_STAT_STATEMENTS_COLUMNS],
};

export const POSTGRES_TABLES: readonly TableDefinition[] = [postgresLog, pgStatStatements];
