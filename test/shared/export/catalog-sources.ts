import type { SessionOpener } from '../../../shared/export/exporter';
import type { ExportRuntime } from '../../../shared/export/runtime';
import { SESSION_OPENERS } from '../../../shared/export/runtime';
import { CATALOG } from '../../../shared/export/sources/catalog';
import type { DatabaseSession } from '../../../shared/export/sources/session';
import { formatTimestamp, hours, seconds, sqlTimestamp, toMicros } from '../../../shared/export/sources/time';
import { createPgDatabase, mysqlAdmin, pgAdmin, uniqueName } from '../../stack/fixtures';
import { createPglogTable, postgresClusterParameters } from '../../support/csvlog-fixtures';
import { createRedshiftFixture, pieces, redshiftClusterParameters } from '../../support/redshift-fixtures';
import { mysqlClusterParameters } from './support';

/**
 * Every catalog table with rows to export: MariaDB's general_log and slow_log,
 * PostgreSQL's csv log and pg_stat_statements, and Redshift's STL/SYS tables
 * (PostgreSQL fixtures), as three clusters `my`, `pg` and `rs` whose sessions
 * run a day ahead, so that today's rows are due in one run.
 */

/** The same session with a clock a day ahead: today's window counts as complete, so today's rows are exported now. */
export function dayAhead(open: SessionOpener): SessionOpener {
  return async (target, logger, purpose) => {
    const session = await open(target, logger, purpose);
    const shifted: DatabaseSession = {
      dialect: session.dialect,
      now: async () => formatTimestamp(toMicros(await session.now()) + hours(24)),
      scalar: (sql) => session.scalar(sql),
      relationExists: (schema, table) => session.relationExists(schema, table),
      describe: (sql) => session.describe(sql),
      stream: (sql) => session.stream(sql),
      close: () => session.close(),
    };
    return shifted;
  };
}

/** The real session openers, each a day ahead. */
export function dayAheadOpeners(): ExportRuntime['openers'] {
  return {
    mysql: dayAhead(SESSION_OPENERS.mysql),
    postgres: dayAhead(SESSION_OPENERS.postgres),
    redshift: dayAhead(SESSION_OPENERS.redshift),
  };
}

export interface CatalogSources {
  /** The PostgreSQL database with the csv log's foreign table and pg_stat_statements. */
  pgDatabase: string;
  /** The PostgreSQL database holding the Redshift fixtures. */
  redshiftDatabase: string;
}

/** Fills one row (or a few) into every catalog table's source: MariaDB's logs, the csv log, pg_stat_statements, Redshift fixtures. */
export async function sourcesWithRows(): Promise<CatalogSources> {
  const mysql = await mysqlAdmin();
  try {
    await mysql.query('SET SESSION long_query_time = 0');
    await mysql.query(`SELECT '${uniqueName('athena')}'`);
  } finally {
    await mysql.end();
  }
  const pgDatabase = await createPgDatabase();
  const admin = await pgAdmin(pgDatabase);
  let now: number;
  try {
    await admin.query('CREATE EXTENSION pg_stat_statements');
    const { rows } = await admin.query(
      `SELECT pg_current_logfile('csvlog') AS file, current_setting('data_directory') AS data, to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS now`,
    );
    now = toMicros(rows[0].now);
    await createPglogTable(pgDatabase, 'postgres_log', { filename: `${rows[0].data}/${rows[0].file}` });
  } finally {
    await admin.end();
  }
  const redshift = await createRedshiftFixture();
  const at = sqlTimestamp(now - seconds(1));
  const before = sqlTimestamp(now - seconds(2));
  const keys = { userid: 100, xid: 9001, pid: 4001 };
  await redshift.insert('stl_query', [
    {
      ...keys,
      query: 1,
      label: 'default',
      database: 'dev',
      querytxt: 'select 1',
      starttime: before,
      endtime: at,
      aborted: 0,
      insert_pristine: 0,
      concurrency_scaling_status: 0,
    },
  ]);
  await redshift.insert(
    'stl_querytext',
    pieces('select 1').map((p) => ({ ...keys, query: 1, ...p })),
  );
  await redshift.insert('stl_explain', [
    { userid: 100, query: 1, nodeid: 1, parentid: 0, plannode: 'XN Result', info: '' },
  ]);
  const statement = { ...keys, label: 'default', starttime: before, endtime: at };
  await redshift.insert(
    'stl_ddltext',
    pieces('CREATE TABLE t (id int)').map((p) => ({ ...statement, ...p })),
  );
  await redshift.insert(
    'stl_utilitytext',
    pieces('VACUUM t').map((p) => ({ ...statement, ...p })),
  );
  await redshift.insert('stl_wlm_query', [
    {
      userid: 100,
      xid: 9001,
      task: 1,
      query: 1,
      service_class: 6,
      slot_count: 1,
      service_class_start_time: before,
      queue_start_time: before,
      queue_end_time: before,
      total_queue_time: 0,
      exec_start_time: before,
      exec_end_time: at,
      total_exec_time: 1000,
      service_class_end_time: at,
      final_state: 'Completed',
      est_peak_mem: 1024,
      query_priority: 'Normal',
      service_class_name: 'Default queue',
    },
  ]);
  await redshift.insert('stl_alert_event_log', [
    {
      userid: 100,
      query: 1,
      slice: 0,
      segment: 0,
      step: 0,
      pid: 4001,
      xid: 9001,
      event: 'Very selective query filter',
      solution: 'Review the sort keys',
      event_time: at,
    },
  ]);
  await redshift.insert('stl_scan', [
    {
      userid: 100,
      query: 1,
      slice: 0,
      segment: 0,
      step: 0,
      starttime: before,
      endtime: at,
      tasknum: 1,
      rows: 10,
      bytes: 100,
      fetches: 0,
      type: 2,
      tbl: 100200,
      is_rrscan: 'f',
      is_delayed_scan: 'f',
      rows_pre_filter: 10,
      rows_pre_user_filter: 10,
      perm_table_name: 't',
      is_rlf_scan: 'f',
      is_rlf_scan_reason: 0,
      num_em_blocks: 0,
      checksum: 0,
      runtime_filtering: 'f',
    },
  ]);
  await redshift.insert('sys_query_history', [
    {
      user_id: 100,
      query_id: 1,
      query_label: 'default',
      transaction_id: 9001,
      session_id: 4001,
      database_name: 'dev',
      query_type: 'SELECT',
      status: 'success',
      result_cache_hit: false,
      start_time: before,
      end_time: at,
      elapsed_time: 1000,
      queue_time: 0,
      execution_time: 1000,
      error_message: '',
      returned_rows: 1,
      returned_bytes: 8,
      query_text: 'select 1',
      redshift_version: '1.0.77467',
    },
  ]);
  return { pgDatabase, redshiftDatabase: redshift.database };
}

/**
 * The parameters of one export of every catalog table from `sources` to
 * `destination`: clusters `my`, `pg` and `rs` (every Redshift table, stl_scan
 * included), one window a day, no lag, no fan-out.
 */
export function catalogExportParameters(
  destination: string,
  sources: CatalogSources,
): Record<string, string | string[] | { secure: string }> {
  return {
    'global/destination': destination,
    'global/window-minutes': '1440',
    'global/initial-lookback-hours': '24',
    'global/lag-seconds': '0',
    'global/fan-out': 'off',
    'global/enabled-clusters': ['my', 'pg', 'rs'],
    ...mysqlClusterParameters('my'),
    ...postgresClusterParameters('pg', sources.pgDatabase),
    ...redshiftClusterParameters('rs', sources.redshiftDatabase),
    'clusters/rs/tables': CATALOG.filter((t) => t.family === 'redshift').map((t) => t.name),
  };
}
