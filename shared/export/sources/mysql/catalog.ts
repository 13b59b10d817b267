import { type ColumnSpec, columnList } from '../columns';
import type { DatabaseSession } from '../session';
import { inWindow, ONE_MINUTE, type TableDefinition } from '../table-definition';

/** The MySQL family's log tables, general_log and slow_log, read by position on incremental runs. */

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
        // No range: no rows, but the same columns as with ranges (a Parquet schema is described from the first query).
        return parts.length > 0
          ? parts.join(' UNION ALL ')
          : `SELECT *, ${basis} FROM ${from(session, name)} WHERE FALSE`;
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

/**
 * The columns of the exported rows of MariaDB's log tables (MySQL's lack
 * `rows_affected`; a missing key reads as NULL), with the exporter's
 * `time_basis` key (what the time column means, see above). Where servers
 * differ, the type is the widest, so that every server's values fit it.
 */
export const MYSQL_COLUMNS: Readonly<Record<string, readonly ColumnSpec[]>> = {
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
    // int in MySQL and in MariaDB's documentation, bigint unsigned in MariaDB 10.11.19: the widest holds both.
    rows_sent: 'bigint unsigned',
    rows_examined: 'bigint unsigned',
    db: 'varchar(512)',
    last_insert_id: 'int',
    insert_id: 'int',
    server_id: 'int unsigned',
    sql_text: 'mediumtext',
    thread_id: 'bigint unsigned',
    rows_affected: 'bigint unsigned',
    time_basis: 'varchar(32)',
  }),
};
