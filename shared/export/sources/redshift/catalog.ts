import { type ColumnSpec, columnList } from '../columns';
import type { DatabaseSession } from '../session';
import type { MicroWindow, TableDefinition } from '../table-definition';
import { sqlTimestamp } from '../time';

/**
 * Redshift's STL and SYS tables, read through the PostgreSQL protocol. Times in
 * these tables are `timestamp` (without time zone) in UTC, CHAR columns come
 * padded with blanks (trimmed here), and long SQL text is stored in 200-character
 * pieces numbered by `sequence` (reassembled here into one row per statement).
 */

/** STL rows reach the leader node minutes after the event; windows stay open this long. */
const REDSHIFT_LAG_SECONDS = 300;

/**
 * Reassembled text is capped at this many pieces (64,000 characters): Redshift's
 * LISTAGG fails above 65,535 bytes. Longer statements are cut and flagged in
 * `text_truncated`.
 */
export const MAX_TEXT_PIECES = 320;
const PIECE_CHARS = 200;

const q = (identifier: string) => `"${identifier}"`;

/** A plain timestamp literal: compares with `timestamp` columns whatever the session's time zone. */
const literal = (micros: number) => `TIMESTAMP '${sqlTimestamp(micros)}'`;

export function redshiftWindow(column: string, window: MicroWindow): string {
  return `${column} >= ${literal(window.lo)} AND ${column} < ${literal(window.hi)}`;
}

const isPaddedChar = (type: string) => /^character\(\d+\)$/.test(type);

/** The select list of `columns` (qualified by `alias` when given), CHAR columns trimmed of their padding. */
export function selectList(columns: readonly ColumnSpec[], alias?: string): string {
  const prefix = alias ? `${alias}.` : '';
  return columns
    .map((c) =>
      isPaddedChar(c.type) ? `RTRIM(${prefix}${q(c.name)}) AS ${q(c.name)}` : `${prefix}${q(c.name)}`,
    )
    .join(', ');
}

/**
 * Concatenates text pieces in `sequence` order. Every piece but the last is a
 * full 200 characters, but CHAR drops its trailing blanks: padding each piece
 * back to 200 and trimming the whole keeps a blank that fell on a piece boundary.
 * Redshift spells the aggregate LISTAGG; PostgreSQL (the test fixtures) string_agg.
 */
export type TextAggregate = (piece: string, sequence: string) => string;

export const listagg: TextAggregate = (piece, sequence) =>
  `RTRIM(LISTAGG(CASE WHEN ${sequence} < ${MAX_TEXT_PIECES} THEN RPAD(RTRIM(${piece}), ${PIECE_CHARS}) END, '') WITHIN GROUP (ORDER BY ${sequence}))`;

export const stringAgg: TextAggregate = (piece, sequence) =>
  `RTRIM(string_agg(CASE WHEN ${sequence} < ${MAX_TEXT_PIECES} THEN RPAD(RTRIM(${piece}), ${PIECE_CHARS}) END, '' ORDER BY ${sequence}))`;

async function textAggregate(session: DatabaseSession): Promise<TextAggregate> {
  const version = String(await session.scalar('SELECT version()'));
  return /redshift/i.test(version) ? listagg : stringAgg;
}

/**
 * Is the relation there? On Serverless the STL tables are missing, on older
 * clusters the SYS views. Redshift has no to_regclass; pg_class works on both.
 */
async function visible(session: DatabaseSession, relation: string): Promise<boolean> {
  const found = await session.scalar(
    `SELECT COUNT(*) FROM pg_catalog.pg_class c WHERE c.relname = '${relation}' AND pg_catalog.pg_table_is_visible(c.oid)`,
  );
  return Number(found) > 0;
}

const unavailable = (relation: string) => ({ skipped: `${relation} is not available on this cluster` });

/** A Redshift definition: its columns as Redshift declares them, and how a window is selected. */
export interface RedshiftTable extends TableDefinition {
  /** The columns of the exported rows, in order, with Redshift's types. */
  readonly columns: readonly ColumnSpec[];
}

interface Simple {
  name: string;
  eventTimeColumn: string;
  keys: string[];
  sqlTextColumns?: string[];
  columns: readonly ColumnSpec[];
  standard?: boolean;
  /** Further conditions on the rows of a window. */
  filter?: string;
}

/** A table read by its own event-time column. */
function simpleTable(t: Simple): RedshiftTable {
  return {
    name: t.name,
    family: 'redshift',
    standard: t.standard ?? true,
    eventTimeColumn: t.eventTimeColumn,
    orderBy: [t.eventTimeColumn, ...t.keys],
    sqlTextColumns: t.sqlTextColumns ?? [],
    columns: t.columns,
    lagSeconds: async () => REDSHIFT_LAG_SECONDS,
    async source({ session }) {
      if (!(await visible(session, t.name))) return unavailable(t.name);
      return (window) =>
        `SELECT ${selectList(t.columns)} FROM ${t.name} WHERE ${redshiftWindow(q(t.eventTimeColumn), window)}${t.filter ? ` AND ${t.filter}` : ''}`;
    },
  };
}

/** stl_ddltext / stl_utilitytext: one row per statement (same xid, pid, label, start and end), text reassembled. */
function statementText(name: 'stl_ddltext' | 'stl_utilitytext'): RedshiftTable {
  const keys = ['userid', 'xid', 'pid', 'label', 'starttime', 'endtime'];
  const stored = columnList({
    userid: 'integer',
    xid: 'bigint',
    pid: 'integer',
    label: 'character(320)',
    starttime: 'timestamp',
    endtime: 'timestamp',
  });
  return {
    name,
    family: 'redshift',
    standard: true,
    eventTimeColumn: 'endtime',
    orderBy: ['endtime', 'starttime', 'xid', 'pid'],
    sqlTextColumns: ['text'],
    columns: [...stored, ...columnList({ text: 'varchar(64000)', text_truncated: 'boolean' })],
    lagSeconds: async () => REDSHIFT_LAG_SECONDS,
    async source({ session }) {
      if (!(await visible(session, name))) return unavailable(name);
      const aggregate = await textAggregate(session);
      return (window) =>
        `SELECT ${selectList(stored)}, ${aggregate(q('text'), q('sequence'))} AS ${q('text')}, MAX(${q('sequence')}) >= ${MAX_TEXT_PIECES} AS ${q('text_truncated')} FROM ${name} WHERE ${redshiftWindow(q('endtime'), window)} GROUP BY ${keys.map(q).join(', ')}`;
    },
  };
}

/**
 * stl_querytext and stl_explain carry no time: their rows belong to the window
 * in which the stl_query row of the same query ends (its `endtime` is added to
 * every row), so text and plans arrive in the same window as the query, with no gap.
 */
function queryWindow(window: MicroWindow): string {
  return `SELECT ${q('query')}, ${q('endtime')} FROM stl_query WHERE ${redshiftWindow(q('endtime'), window)}`;
}

export const stlQuery = simpleTable({
  name: 'stl_query',
  eventTimeColumn: 'endtime',
  keys: ['query'],
  sqlTextColumns: ['querytxt'],
  columns: columnList({
    userid: 'integer',
    query: 'integer',
    label: 'character(320)',
    xid: 'bigint',
    pid: 'integer',
    database: 'character(32)',
    querytxt: 'character(4000)',
    starttime: 'timestamp',
    endtime: 'timestamp',
    aborted: 'integer',
    insert_pristine: 'integer',
    concurrency_scaling_status: 'integer',
  }),
});

export const stlWlmQuery = simpleTable({
  name: 'stl_wlm_query',
  eventTimeColumn: 'exec_end_time',
  keys: ['query', 'service_class'],
  columns: columnList({
    userid: 'integer',
    xid: 'integer',
    task: 'integer',
    query: 'integer',
    service_class: 'integer',
    slot_count: 'integer',
    service_class_start_time: 'timestamp',
    queue_start_time: 'timestamp',
    queue_end_time: 'timestamp',
    total_queue_time: 'bigint',
    exec_start_time: 'timestamp',
    exec_end_time: 'timestamp',
    total_exec_time: 'bigint',
    service_class_end_time: 'timestamp',
    final_state: 'character(16)',
    est_peak_mem: 'bigint',
    query_priority: 'character(20)',
    service_class_name: 'character(64)',
  }),
});

export const stlAlertEventLog = simpleTable({
  name: 'stl_alert_event_log',
  eventTimeColumn: 'event_time',
  keys: ['query', 'slice', 'segment', 'step'],
  columns: columnList({
    userid: 'integer',
    query: 'integer',
    slice: 'integer',
    segment: 'integer',
    step: 'integer',
    pid: 'integer',
    xid: 'bigint',
    event: 'character(1024)',
    solution: 'character(1024)',
    event_time: 'timestamp',
  }),
});

/** One row per scan step and slice: voluminous, so only exported when listed in `tables`. */
export const stlScan = simpleTable({
  name: 'stl_scan',
  eventTimeColumn: 'endtime',
  keys: ['query', 'segment', 'step', 'slice'],
  standard: false,
  columns: columnList({
    userid: 'integer',
    query: 'integer',
    slice: 'integer',
    segment: 'integer',
    step: 'integer',
    starttime: 'timestamp',
    endtime: 'timestamp',
    tasknum: 'integer',
    rows: 'bigint',
    bytes: 'bigint',
    fetches: 'bigint',
    type: 'integer',
    tbl: 'integer',
    is_rrscan: 'character(1)',
    is_delayed_scan: 'character(1)',
    rows_pre_filter: 'bigint',
    rows_pre_user_filter: 'bigint',
    perm_table_name: 'character(136)',
    is_rlf_scan: 'character(1)',
    is_rlf_scan_reason: 'integer',
    num_em_blocks: 'integer',
    checksum: 'bigint',
    runtime_filtering: 'character(1)',
  }),
});

/** Serverless and newer clusters: finished queries only (a running query's row still changes). */
export const sysQueryHistory = simpleTable({
  name: 'sys_query_history',
  eventTimeColumn: 'end_time',
  keys: ['query_id'],
  sqlTextColumns: ['query_text'],
  filter: `RTRIM(${q('status')}) IN ('success', 'failed', 'canceled')`,
  columns: columnList({
    user_id: 'integer',
    query_id: 'bigint',
    query_label: 'character(320)',
    transaction_id: 'bigint',
    session_id: 'integer',
    database_name: 'character(128)',
    query_type: 'character(32)',
    status: 'character(10)',
    result_cache_hit: 'boolean',
    start_time: 'timestamp',
    end_time: 'timestamp',
    elapsed_time: 'bigint',
    queue_time: 'bigint',
    execution_time: 'bigint',
    error_message: 'character(512)',
    returned_rows: 'bigint',
    returned_bytes: 'bigint',
    query_text: 'character(4000)',
    redshift_version: 'character(256)',
  }),
});

export const stlDdltext = statementText('stl_ddltext');
export const stlUtilitytext = statementText('stl_utilitytext');

const querytextStored = columnList({ userid: 'integer', xid: 'bigint', pid: 'integer', query: 'integer' });

/** One row per query: the pieces of its text concatenated in `sequence` order. */
export const stlQuerytext: RedshiftTable = {
  name: 'stl_querytext',
  family: 'redshift',
  standard: true,
  eventTimeColumn: 'endtime',
  orderBy: ['endtime', 'query'],
  sqlTextColumns: ['text'],
  columns: [
    ...querytextStored,
    ...columnList({ endtime: 'timestamp', text: 'varchar(64000)', text_truncated: 'boolean' }),
  ],
  lagSeconds: async () => REDSHIFT_LAG_SECONDS,
  async source({ session }) {
    if (!(await visible(session, 'stl_querytext'))) return unavailable('stl_querytext');
    const aggregate = await textAggregate(session);
    return (window) =>
      `SELECT ${selectList(querytextStored, 't')}, w.${q('endtime')}, ${aggregate(`t.${q('text')}`, `t.${q('sequence')}`)} AS ${q('text')}, MAX(t.${q('sequence')}) >= ${MAX_TEXT_PIECES} AS ${q('text_truncated')} FROM stl_querytext t JOIN (${queryWindow(window)}) w ON w.${q('query')} = t.${q('query')} GROUP BY t.${q('userid')}, t.${q('xid')}, t.${q('pid')}, t.${q('query')}, w.${q('endtime')}`;
  },
};

const explainStored = columnList({
  userid: 'integer',
  query: 'integer',
  nodeid: 'integer',
  parentid: 'integer',
  plannode: 'character(400)',
  info: 'character(400)',
});

/** One row per plan node of the window's queries, in plan order. */
export const stlExplain: RedshiftTable = {
  name: 'stl_explain',
  family: 'redshift',
  standard: true,
  eventTimeColumn: 'endtime',
  orderBy: ['endtime', 'query', 'nodeid'],
  sqlTextColumns: [],
  columns: [...explainStored, ...columnList({ endtime: 'timestamp' })],
  lagSeconds: async () => REDSHIFT_LAG_SECONDS,
  async source({ session }) {
    if (!(await visible(session, 'stl_explain'))) return unavailable('stl_explain');
    return (window) =>
      `SELECT ${selectList(explainStored, 'e')}, w.${q('endtime')} FROM stl_explain e JOIN (${queryWindow(window)}) w ON w.${q('query')} = e.${q('query')}`;
  },
};

export const REDSHIFT_TABLES: readonly RedshiftTable[] = [
  stlQuery,
  stlQuerytext,
  stlWlmQuery,
  stlAlertEventLog,
  stlDdltext,
  stlUtilitytext,
  stlExplain,
  stlScan,
  sysQueryHistory,
];
