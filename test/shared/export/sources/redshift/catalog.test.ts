import { describe, expect, it } from 'vitest';
import { makeHandler } from '../../../../../functions/export';
import { redactSql } from '../../../../../shared/export/masking';
import {
  stlDdltext,
  stlQuerytext,
  sysQueryHistory,
} from '../../../../../shared/export/sources/redshift/catalog';
import type { DatabaseSession } from '../../../../../shared/export/sources/session';
import {
  compactTimestamp,
  floorToGrid,
  formatTimestamp,
  hours,
  minutes,
  seconds,
  sqlTimestamp,
  toMicros,
} from '../../../../../shared/export/sources/time';
import { createPgDatabase, pgAdmin, uniqueName } from '../../../../stack/fixtures';
import {
  createRedshiftFixture,
  pieces,
  redshiftClusterParameters,
} from '../../../../support/redshift-fixtures';
import {
  createBucket,
  createWatermarkTable,
  parseKey,
  putParameters,
  readS3Objects,
  testRuntime,
} from '../../support';

async function pgNow(): Promise<number> {
  const admin = await pgAdmin();
  try {
    const { rows } = await admin.query(
      `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS now`,
    );
    return toMicros(rows[0].now);
  } finally {
    await admin.end();
  }
}

const ALL_TABLES = [
  'stl_query',
  'stl_querytext',
  'stl_wlm_query',
  'stl_alert_event_log',
  'stl_ddltext',
  'stl_utilitytext',
  'stl_explain',
  'stl_scan',
  'sys_query_history',
];

/** A statement whose text has blanks exactly where Redshift cuts it into pieces (positions 200 and 400). */
const LONG_SELECT = `SELECT ${'a'.repeat(192)} ${'b'.repeat(199)} ${'c'.repeat(40)} FROM t`;
/** COPY credentials whose literal straddles the first piece boundary. */
const COPY_WITH_CREDENTIALS = `COPY t FROM 's3://bucket/key' ${'x'.repeat(140)} CREDENTIALS 'aws_access_key_id=AKIAEXAMPLE;aws_secret_access_key=wJalrSecretKeyValue'`;
/** 66,000 characters: 330 pieces. */
const HUGE_INSERT =
  `INSERT INTO t VALUES ${Array.from({ length: 10_000 }, (_, i) => `(${String(i).padStart(4, '0')})`).join(',')}`.slice(
    0,
    66_000,
  );
/** A password literal that starts just before the first piece boundary. */
const ALTER_USER = `ALTER USER ${'u'.repeat(170)} PASSWORD 'Sup3rSecretValue'`;

describe('Redshift catalog over fixture tables', () => {
  it('exports text and plans only for the queries of each window, reassembled in sequence order, trimmed and masked', async () => {
    const now = await pgNow();
    const base = floorToGrid(now - hours(2), 5);
    const at = (offsetSeconds: number) => sqlTimestamp(base + seconds(offsetSeconds));
    const fixture = await createRedshiftFixture();
    const query = (id: number, end: number) => ({
      userid: 100,
      query: id,
      label: 'default',
      xid: 9000 + id,
      pid: 4000 + id,
      database: 'dev',
      querytxt: `query ${id}`,
      starttime: at(end - 2),
      endtime: at(end),
      aborted: 0,
    });
    // q101 ends in the previous window, q102 exactly on the window's start, q103 a microsecond before its end, q104 in the next.
    await fixture.insert('stl_query', [
      query(101, -60),
      query(102, 0),
      { ...query(103, 0), endtime: sqlTimestamp(base + minutes(5) - 1) },
      query(104, 300),
      query(105, 200),
    ]);
    const text = (id: number, sql: string) =>
      pieces(sql)
        .reverse()
        .map((p) => ({ userid: 100, xid: 9000 + id, pid: 4000 + id, query: id, ...p }));
    await fixture.insert('stl_querytext', [
      ...text(101, 'SELECT 101'),
      ...text(102, LONG_SELECT),
      ...text(103, COPY_WITH_CREDENTIALS),
      ...text(104, 'SELECT 104'),
      ...text(105, HUGE_INSERT),
    ]);
    const node = (id: number, nodeid: number, parentid: number, plannode: string) => ({
      userid: 100,
      query: id,
      nodeid,
      parentid,
      plannode,
      info: '',
    });
    await fixture.insert('stl_explain', [
      node(101, 1, 0, 'XN Seq Scan on a'),
      node(102, 3, 2, 'XN Seq Scan on t'),
      node(102, 1, 0, 'XN Merge'),
      node(102, 2, 1, 'XN Network'),
      node(104, 1, 0, 'XN Result'),
    ]);
    const statement = (sql: string, start: number, end: number, pid: number) =>
      pieces(sql).map((p) => ({
        userid: 100,
        xid: 7000 + pid,
        pid,
        label: 'default',
        starttime: at(start),
        endtime: at(end),
        ...p,
      }));
    await fixture.insert('stl_ddltext', [
      ...statement('CREATE TABLE early (id int)', -100, -99, 1),
      ...statement(ALTER_USER, 10, 11, 2),
    ]);
    await fixture.insert('stl_utilitytext', [
      ...statement('VACUUM t', 20, 25, 3),
      ...statement('ANALYZE t', 400, 401, 4),
    ]);
    await fixture.insert('stl_wlm_query', [
      {
        userid: 100,
        xid: 9102,
        task: 1,
        query: 102,
        service_class: 6,
        exec_start_time: at(-1),
        exec_end_time: at(0),
        final_state: 'Completed',
        service_class_name: 'Default queue',
      },
      { userid: 100, xid: 9104, task: 2, query: 104, service_class: 6, exec_end_time: at(300) },
    ]);
    await fixture.insert('stl_alert_event_log', [
      {
        userid: 100,
        query: 102,
        slice: 0,
        segment: 1,
        step: 2,
        pid: 4102,
        xid: 9102,
        event: 'Missing query planner statistics',
        solution: 'Run the ANALYZE command',
        event_time: at(1),
      },
    ]);
    await fixture.insert('stl_scan', [
      {
        userid: 100,
        query: 102,
        slice: 1,
        segment: 0,
        step: 0,
        starttime: at(-1),
        endtime: at(0),
        rows: 42,
        is_rrscan: 'f',
        perm_table_name: 't',
      },
    ]);
    const history = (id: number, status: string, end: number) => ({
      user_id: 100,
      query_id: id,
      transaction_id: 9000 + id,
      session_id: 4000 + id,
      database_name: 'dev',
      query_type: 'SELECT',
      status,
      result_cache_hit: false,
      start_time: at(end - 1),
      end_time: at(end),
      query_text: `select ${id}`,
    });
    await fixture.insert('sys_query_history', [
      history(201, 'success', 30),
      history(202, 'failed', 31),
      history(203, 'canceled', 32),
      history(204, 'running', 33),
      history(205, 'queued', 34),
      history(206, 'success', 330),
    ]);
    const path = `/${uniqueName('export')}`;
    const [watermarkTable, bucket] = await Promise.all([createWatermarkTable(), createBucket()]);
    await putParameters(path, {
      'global/destination': `s3://${bucket}/logs`,
      'global/window-minutes': '5',
      'global/lag-seconds': '0',
      'global/fan-out': 'off',
      ...redshiftClusterParameters('rs1', fixture.database),
      'clusters/rs1/tables': ALL_TABLES,
    });
    const handler = makeHandler(testRuntime({ path, watermarkTable }));

    const summary = await handler({
      cluster: 'rs1',
      from: formatTimestamp(base - minutes(5)),
      to: formatTimestamp(base + minutes(10)),
    });

    const tables = summary.clusters[0]?.tables ?? [];
    expect(tables.map((t) => t.table).sort()).toEqual([...ALL_TABLES].sort());
    for (const t of tables) expect(t.error, t.table).toBeUndefined();
    const objects = await readS3Objects(bucket, 'logs/');
    const rowsOf = (table: string, offsetMinutes: number) => {
      const lo = compactTimestamp(base + minutes(offsetMinutes));
      const found = [...objects].find(([key]) => parseKey(key).table === table && parseKey(key).lo === lo);
      return found?.[1] ?? [];
    };
    const window = 0;

    // Text: one row per query, in the window of its stl_query row, pieces in sequence order.
    expect(rowsOf('stl_querytext', -5).map((r) => r.query)).toEqual([101]);
    const texts = rowsOf('stl_querytext', window);
    expect(texts.map((r) => r.query)).toEqual([102, 105, 103]);
    expect(texts[0]).toMatchObject({
      userid: 100,
      xid: '9102',
      pid: 4102,
      text: LONG_SELECT,
      text_truncated: false,
    });
    // Timestamps keep the source's precision (no fraction when it is zero).
    expect(texts.map((r) => toMicros(String(r.endtime)))).toEqual([
      base,
      base + seconds(200),
      base + minutes(5) - 1,
    ]);
    // Beyond 320 pieces (LISTAGG's limit) the text is cut, and says so.
    expect(texts[1]).toMatchObject({ text: HUGE_INSERT.slice(0, 64_000), text_truncated: true });
    expect(texts[2]?.text).toBe(redactSql(COPY_WITH_CREDENTIALS));
    expect(rowsOf('stl_querytext', 5).map((r) => r.query)).toEqual([104]);

    // Plans: only the window's queries, in plan order, CHAR padding trimmed.
    const plan = rowsOf('stl_explain', window);
    expect(plan.map((r) => [r.query, r.nodeid, r.parentid, r.plannode])).toEqual([
      [102, 1, 0, 'XN Merge'],
      [102, 2, 1, 'XN Network'],
      [102, 3, 2, 'XN Seq Scan on t'],
    ]);
    expect(plan[0]?.info).toBe('');
    expect(rowsOf('stl_explain', -5).map((r) => r.query)).toEqual([101]);
    expect(rowsOf('stl_explain', 5).map((r) => r.query)).toEqual([104]);

    // DDL and utility statements: reassembled, then masked (the literal spanned two pieces).
    const ddl = rowsOf('stl_ddltext', window);
    expect(ddl).toHaveLength(1);
    expect(ddl[0]?.text).toBe(`ALTER USER ${'u'.repeat(170)} PASSWORD '<redacted>'`);
    expect(ddl[0]?.label).toBe('default');
    expect(rowsOf('stl_ddltext', -5).map((r) => r.text)).toEqual(['CREATE TABLE early (id int)']);
    expect(rowsOf('stl_utilitytext', window).map((r) => r.text)).toEqual(['VACUUM t']);
    expect(rowsOf('stl_utilitytext', 5).map((r) => r.text)).toEqual(['ANALYZE t']);

    const queries = rowsOf('stl_query', window);
    expect(queries.map((r) => r.query)).toEqual([102, 105, 103]);
    expect(queries[0]).toMatchObject({ label: 'default', database: 'dev', querytxt: 'query 102' });
    expect(rowsOf('stl_wlm_query', window)).toMatchObject([
      { query: 102, final_state: 'Completed', service_class_name: 'Default queue' },
    ]);
    expect(rowsOf('stl_alert_event_log', window)).toMatchObject([
      { query: 102, event: 'Missing query planner statistics', solution: 'Run the ANALYZE command' },
    ]);
    expect(rowsOf('stl_scan', window)).toMatchObject([
      { query: 102, rows: '42', is_rrscan: 'f', perm_table_name: 't' },
    ]);

    // Only finished statements from sys_query_history.
    const history_ = rowsOf('sys_query_history', window);
    expect(history_.map((r) => [r.query_id, r.status])).toEqual([
      ['201', 'success'],
      ['202', 'failed'],
      ['203', 'canceled'],
    ]);
    expect(rowsOf('sys_query_history', 5).map((r) => r.query_id)).toEqual(['206']);

    // Nothing secret left anywhere, and every row sits in the object of its window.
    const everything = JSON.stringify([...objects.values()]);
    expect(everything).not.toContain('Sup3rSecretValue');
    expect(everything).not.toContain('wJalrSecretKeyValue');
    const eventTime: Record<string, string> = {
      stl_query: 'endtime',
      stl_querytext: 'endtime',
      stl_explain: 'endtime',
      stl_wlm_query: 'exec_end_time',
      stl_alert_event_log: 'event_time',
      stl_ddltext: 'endtime',
      stl_utilitytext: 'endtime',
      stl_scan: 'endtime',
      sys_query_history: 'end_time',
    };
    for (const [key, rows] of objects) {
      const { table, lo, hi } = parseKey(key);
      for (const row of rows) {
        const t = compactTimestamp(toMicros(String(row[eventTime[table as string] as string])));
        expect(t >= lo && t < hi, `${table} row at ${t} in ${lo}..${hi}`).toBe(true);
      }
    }
  });

  it('skips, without error, the tables a cluster does not have (STL on Serverless, SYS on older clusters)', async () => {
    const database = await createPgDatabase();
    const path = `/${uniqueName('export')}`;
    const [watermarkTable, bucket] = await Promise.all([createWatermarkTable(), createBucket()]);
    await putParameters(path, {
      'global/destination': `s3://${bucket}/logs`,
      'global/lag-seconds': '0',
      'global/initial-lookback-hours': '1',
      'global/fan-out': 'off',
      ...redshiftClusterParameters('rs2', database),
      'clusters/rs2/tables': ['stl_query', 'stl_querytext', 'sys_query_history'],
    });

    const summary = await makeHandler(testRuntime({ path, watermarkTable }))({ cluster: 'rs2' });

    expect(summary.clusters[0]?.tables).toMatchObject([
      { table: 'stl_query', skipped: 'stl_query is not available on this cluster', objectsWritten: 0 },
      { table: 'stl_querytext', skipped: 'stl_querytext is not available on this cluster' },
      { table: 'sys_query_history', skipped: 'sys_query_history is not available on this cluster' },
    ]);
    for (const t of summary.clusters[0]?.tables ?? []) expect(t.error).toBeUndefined();
    expect((await readS3Objects(bucket)).size).toBe(0);
  });
});

/** A session that answers like Redshift: its version string names Redshift, and every relation exists. */
function redshiftLikeSession(): DatabaseSession {
  return {
    dialect: { quote: (i) => `"${i}"`, timestamp: (m) => `'${formatTimestamp(m)}'` },
    now: async () => formatTimestamp(0),
    scalar: async (sql) =>
      sql === 'SELECT version()' ? 'PostgreSQL 8.0.2 on i686-pc-linux-gnu, Redshift 1.0.77467' : '1',
    relationExists: async () => true,
    describe: async () => {
      throw new Error('not used');
    },
    stream: () => {
      throw new Error('not used');
    },
    close: async () => {},
  };
}

describe('Redshift SQL', () => {
  const window = { lo: toMicros('2024-05-01T12:00:00Z'), hi: toMicros('2024-05-01T12:05:00Z') };
  const context = { session: redshiftLikeSession(), options: {}, dueUntil: window.hi };

  it('reassembles text with LISTAGG ... WITHIN GROUP on Redshift, capped below its 64K limit', async () => {
    const query = await stlQuerytext.source(context);
    if (typeof query !== 'function') throw new Error('expected a query');

    const sql = query(window);

    expect(sql).toContain(
      `RTRIM(LISTAGG(CASE WHEN t."sequence" < 320 THEN RPAD(RTRIM(t."text"), 200) END, '') WITHIN GROUP (ORDER BY t."sequence")) AS "text"`,
    );
    expect(sql).toContain(
      `FROM stl_query WHERE "endtime" >= TIMESTAMP '2024-05-01 12:00:00.000000' AND "endtime" < TIMESTAMP '2024-05-01 12:05:00.000000'`,
    );
    expect(sql).not.toContain('string_agg');
    const ddl = await stlDdltext.source(context);
    if (typeof ddl !== 'function') throw new Error('expected a query');
    expect(ddl(window)).toContain('WITHIN GROUP (ORDER BY "sequence")');
  });

  it('selects finished sys_query_history rows by end_time with plain timestamp literals, CHAR columns trimmed', async () => {
    const query = await sysQueryHistory.source(context);
    if (typeof query !== 'function') throw new Error('expected a query');

    const sql = query(window);

    expect(sql).toContain(`RTRIM("status") AS "status"`);
    expect(sql).toContain(`"end_time" >= TIMESTAMP '2024-05-01 12:00:00.000000'`);
    expect(sql).toContain(`RTRIM("status") IN ('success', 'failed', 'canceled')`);
  });
});
