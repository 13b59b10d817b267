import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { makeHandler } from '../../../../../functions/export';
import {
  filesForWindow,
  LOG_FDW_SERVER,
  logFdwTableName,
  logFileStart,
  postgresLog,
} from '../../../../../shared/export/sources/postgres/catalog';
import type { DatabaseSession, Row } from '../../../../../shared/export/sources/session';
import {
  compactTimestamp,
  floorToGrid,
  formatTimestamp,
  minutes,
  seconds,
  toMicros,
} from '../../../../../shared/export/sources/time';
import {
  createPgDatabase,
  createPgUser,
  pgAdmin,
  randomPassword,
  uniqueName,
} from '../../../../stack/fixtures';
import {
  createPglogTable,
  postgresClusterParameters,
  rotateCsvlog,
} from '../../../../support/csvlog-fixtures';
import {
  createBucket,
  createWatermarkTable,
  parseKey,
  putParameters,
  readS3Objects,
  readWatermark,
  setWatermark,
  testRuntime,
} from '../../support';

const SCHEDULED = { 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} };

async function dbNow(): Promise<number> {
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

/** Runs `SELECT 'marker <tag> <n>'` statements, each a csv log line of its own (log_statement = all). */
async function logMarkers(tag: string, from: number, count: number): Promise<void> {
  const client = await pgAdmin();
  try {
    for (let n = from; n < from + count; n++) await client.query(`SELECT 'marker ${tag} ${n}'`);
  } finally {
    await client.end();
  }
}

/** When each marker was logged, read back from the csv log as the superuser (parameterised, so this query does not log a marker). */
async function markerTimes(database: string, table: string, tag: string): Promise<Map<number, number>> {
  const client = await pgAdmin(database);
  try {
    const { rows } = await client.query(
      `SELECT message, to_char(log_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at FROM ${table} WHERE message LIKE $1`,
      [`statement: SELECT 'marker ${tag} %`],
    );
    return new Map(rows.map((r) => [Number(/ (\d+)'$/.exec(r.message)?.[1]), toMicros(r.at)]));
  } finally {
    await client.end();
  }
}

async function waitUntil(micros: number): Promise<void> {
  for (;;) {
    const now = await dbNow();
    if (now >= micros) return;
    await new Promise((r) => setTimeout(r, Math.min(1000, (micros - now) / 1000 + 20)));
  }
}

describe('postgres_log from the csv log through file_fdw', () => {
  it('exports every statement exactly once across runs while the current log file grows, from an operator table, a doubled source and a table the exporter creates', async () => {
    const file = await rotateCsvlog();
    const database = await createPgDatabase();
    // The documented pglog table; the same file read twice (overlapping sources); none yet for c_auto.
    await createPglogTable(database, 'ops_log', { filename: file });
    await createPglogTable(database, 'twice_log', { program: `cat '${file}' '${file}'` });
    const tag = randomBytes(4).toString('hex');
    const path = `/${uniqueName('export')}`;
    const [watermarkTable, bucket] = await Promise.all([createWatermarkTable(), createBucket()]);
    const clusters = ['c_ops', 'c_twice', 'c_auto'];
    await putParameters(path, {
      'global/destination': `s3://${bucket}/logs`,
      'global/window-minutes': '1',
      'global/lag-seconds': '2',
      'global/fan-out': 'off',
      'global/enabled-clusters': clusters,
      ...postgresClusterParameters('c_ops', database),
      'clusters/c_ops/csvlog-table': 'ops_log',
      ...postgresClusterParameters('c_twice', database),
      'clusters/c_twice/csvlog-table': 'public.twice_log',
      ...postgresClusterParameters('c_auto', database),
      'clusters/c_auto/csvlog-table': 'auto_log',
      'clusters/c_auto/log-source': 'file_fdw',
    });
    const start = formatTimestamp(floorToGrid(await dbNow(), 1));
    for (const c of clusters) await setWatermark(watermarkTable, c, 'postgres_log', start);
    const handler = makeHandler(testRuntime({ path, watermarkTable }));

    await logMarkers(tag, 0, 20);
    // Runs while more lines are being written to the current file.
    const [first] = await Promise.all([handler(SCHEDULED), logMarkers(tag, 20, 20)]);
    const early = await markerTimes(database, 'ops_log', tag);
    await waitUntil(floorToGrid(Math.max(...early.values()), 1) + minutes(1) + seconds(2));
    await logMarkers(tag, 40, 10);
    const [second] = await Promise.all([handler(SCHEDULED), logMarkers(tag, 50, 20)]);
    const third = await handler(SCHEDULED);

    for (const run of [first, second, third]) {
      for (const cluster of run.clusters)
        for (const t of cluster.tables) expect(t.error, cluster.cluster).toBeUndefined();
    }
    const logged = await markerTimes(database, 'ops_log', tag);
    expect(logged.size).toBe(70);
    const objects = await readS3Objects(bucket, 'logs/');
    for (const cluster of clusters) {
      const watermark = toMicros(
        (await readWatermark(watermarkTable, cluster, 'postgres_log'))?.watermark ?? '',
      );
      const counts = new Map<number, number>();
      const lines = new Set<string>();
      for (const [key, rows] of objects) {
        const k = parseKey(key);
        if (k.cluster !== cluster) continue;
        for (const row of rows) {
          const at = compactTimestamp(toMicros(String(row.log_time)));
          expect(at >= k.lo && at < k.hi).toBe(true);
          const line = `${row.session_id}/${row.session_line_num}`;
          expect(lines.has(line), `${cluster}: line ${line} twice`).toBe(false);
          lines.add(line);
          const marker = new RegExp(`^statement: SELECT 'marker ${tag} (\\d+)'$`).exec(String(row.message));
          if (marker) counts.set(Number(marker[1]), (counts.get(Number(marker[1])) ?? 0) + 1);
        }
      }
      // Exactly the markers logged before the watermark, each once; the later ones wait for their window.
      const expected = [...logged].filter(([, at]) => at < watermark).map(([n]) => n);
      expect(expected.length, cluster).toBeGreaterThanOrEqual(40);
      expect(expected.length, cluster).toBeLessThan(70);
      expect(
        [...counts.keys()].sort((a, b) => a - b),
        cluster,
      ).toEqual(expected.sort((a, b) => a - b));
      expect(new Set(counts.values()), cluster).toEqual(new Set([1]));
    }
    // The exporter created its own table, over every csv file of the log directory.
    const admin = await pgAdmin(database);
    try {
      const { rows } = await admin.query(
        "SELECT ftoptions FROM pg_foreign_table WHERE ftrelid = 'auto_log'::regclass",
      );
      expect(String(rows[0]?.ftoptions)).toMatch(/program=find .* -name '\*\.csv' -exec cat/);
    } finally {
      await admin.end();
    }
  }, 150_000);
});

describe('pg_stat_statements snapshots', () => {
  it('writes one snapshot for the newest due window, stamped captured_at, with stats_reset and dealloc, masked; skips cleanly where the extension is missing', async () => {
    const [withExtension, without, noTable] = await Promise.all([
      createPgDatabase(),
      createPgDatabase(),
      createPgDatabase(),
    ]);
    const role = uniqueName('r');
    const secret = randomPassword();
    const admin = await pgAdmin(withExtension);
    try {
      await admin.query('CREATE EXTENSION pg_stat_statements');
      await admin.query(`CREATE TABLE pgss_${role} (x int)`);
      await admin.query(`INSERT INTO pgss_${role} VALUES (1)`);
      await admin.query(`CREATE ROLE ${role} LOGIN`);
      await admin.query(`ALTER ROLE ${role} PASSWORD '${secret}'`);
    } finally {
      await admin.end();
    }
    // An ordinary user may not have the exporter create the csv log table for it.
    const plainPassword = randomPassword();
    const plainUser = await createPgUser({ password: plainPassword, database: noTable });
    const path = `/${uniqueName('export')}`;
    const [watermarkTable, bucket] = await Promise.all([createWatermarkTable(), createBucket()]);
    await putParameters(path, {
      'global/destination': `s3://${bucket}/logs`,
      'global/window-minutes': '1',
      'global/lag-seconds': '0',
      'global/fan-out': 'off',
      'global/enabled-clusters': ['p1', 'p2', 'p3', 'p4'],
      ...postgresClusterParameters('p1', withExtension),
      'clusters/p1/tables': ['pg_stat_statements'],
      ...postgresClusterParameters('p2', without),
      'clusters/p2/tables': ['pg_stat_statements'],
      ...postgresClusterParameters('p3', noTable),
      'clusters/p3/tables': ['postgres_log'],
      ...postgresClusterParameters('p4', noTable),
      'clusters/p4/user': plainUser,
      'clusters/p4/password': { secure: plainPassword },
      'clusters/p4/tables': ['postgres_log'],
      'clusters/p4/log-source': 'file_fdw',
    });
    const now = await dbNow();
    await setWatermark(
      watermarkTable,
      'p1',
      'pg_stat_statements',
      formatTimestamp(floorToGrid(now, 1) - minutes(3)),
    );

    const summary = await makeHandler(testRuntime({ path, watermarkTable }))(SCHEDULED);

    const [p1, p2, p3, p4] = summary.clusters.map((c) => c.tables[0]);
    expect(p1?.error).toBeUndefined();
    expect(p1?.windows).toBeGreaterThanOrEqual(3);
    expect(p1?.objectsWritten).toBe(1);
    const objects = await readS3Objects(bucket, 'logs/pg_stat_statements/');
    expect(objects.size).toBe(1);
    const [key, rows] = [...objects][0] as [string, Record<string, unknown>[]];
    // The newest window of the run, not the older ones it caught up.
    expect(parseKey(key).hi).toBe(compactTimestamp(toMicros(p1?.watermark ?? '')));
    const insert = rows.find((r) => r.query === `INSERT INTO pgss_${role} VALUES ($1)`);
    expect(insert).toMatchObject({
      calls: '1',
      rows: '1',
      database_name: withExtension,
      user_name: 'postgres',
      dealloc: '0',
    });
    expect(String(insert?.captured_at)).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
    expect(toMicros(String(insert?.captured_at))).toBeGreaterThanOrEqual(toMicros(p1?.watermark ?? ''));
    expect(new Set(rows.map((r) => r.captured_at)).size).toBe(1);
    expect(toMicros(String(insert?.stats_reset))).toBeLessThan(toMicros(String(insert?.captured_at)));
    const alter = rows.find((r) => String(r.query).startsWith(`ALTER ROLE ${role}`));
    expect(alter?.query).toBe(`ALTER ROLE ${role} PASSWORD '<redacted>'`);
    expect(JSON.stringify(rows)).not.toContain(secret);

    expect(p2).toMatchObject({ skipped: 'extension not installed', objectsWritten: 0 });
    expect(p2?.error).toBeUndefined();
    expect(p3?.error).toMatch(/csv log foreign table postgres_log does not exist: create it/);
    expect(p4?.error).toMatch(/does not exist, and the exporter's role may not create it/);
  });
});

/** Records every statement; answers log_fdw's questions like an Amazon RDS instance would. */
function rdsLikeSession(files: string[], existingTables: string[]) {
  const statements: string[] = [];
  const session: DatabaseSession = {
    dialect: { quote: (i) => `"${i}"`, timestamp: (m) => `'${formatTimestamp(m)}'::timestamptz` },
    now: async () => formatTimestamp(0),
    async scalar(sql) {
      statements.push(sql);
      if (sql.includes('pg_stat_activity')) return '65f1a2b3.1f40';
      if (sql.includes("extname = 'log_fdw'")) return '1';
      return undefined;
    },
    relationExists: async () => true,
    describe: async () => {
      throw new Error('not used');
    },
    async *stream(sql): AsyncIterable<Row> {
      statements.push(sql);
      if (sql.includes('list_postgres_log_files()')) yield* files.map((file_name) => ({ file_name }));
      if (sql.includes('pg_foreign_table')) yield* existingTables.map((relname) => ({ relname }));
    },
    close: async () => {},
  };
  return { session, statements };
}

describe('postgres_log through Amazon RDS log_fdw (SQL only: no RDS here)', () => {
  const files = [
    'postgresql.log.2024-05-01-10.csv',
    'postgresql.log.2024-05-01-11.csv',
    'postgresql.log.2024-05-01-12.csv',
  ];

  it('creates one foreign table per new csv file, drops those of vanished files, and reads every file overlapping the window', async () => {
    const { session, statements } = rdsLikeSession(files, [
      logFdwTableName('postgresql.log.2024-05-01-10.csv'),
      logFdwTableName('postgresql.log.2024-04-28-09.csv'),
    ]);

    const query = await postgresLog.source({ session, options: { 'log-source': 'log_fdw' }, dueUntil: 0 });

    expect(statements).toContain(
      `CREATE SERVER IF NOT EXISTS ${LOG_FDW_SERVER} FOREIGN DATA WRAPPER log_fdw`,
    );
    expect(statements.filter((s) => s.includes('create_foreign_table_for_log_file'))).toEqual([
      `SELECT create_foreign_table_for_log_file('log_export_csv_postgresql_log_2024_05_01_11', '${LOG_FDW_SERVER}', 'postgresql.log.2024-05-01-11.csv')`,
      `SELECT create_foreign_table_for_log_file('log_export_csv_postgresql_log_2024_05_01_12', '${LOG_FDW_SERVER}', 'postgresql.log.2024-05-01-12.csv')`,
    ]);
    expect(statements).toContain(
      'DROP FOREIGN TABLE IF EXISTS "log_export_csv_postgresql_log_2024_04_28_09"',
    );
    if (typeof query !== 'function') throw new Error('expected a query');
    const sql = query({ lo: toMicros('2024-05-01T11:58:00Z'), hi: toMicros('2024-05-01T11:59:00Z') });
    expect(sql).toBe(
      `SELECT * FROM (SELECT DISTINCT ON ("session_id", "session_line_num") * FROM (` +
        `SELECT * FROM "log_export_csv_postgresql_log_2024_05_01_11" WHERE "log_time" >= '2024-05-01T11:58:00.000000Z'::timestamptz AND "log_time" < '2024-05-01T11:59:00.000000Z'::timestamptz AND "session_id" IS DISTINCT FROM '65f1a2b3.1f40' UNION ALL ` +
        `SELECT * FROM "log_export_csv_postgresql_log_2024_05_01_12" WHERE "log_time" >= '2024-05-01T11:58:00.000000Z'::timestamptz AND "log_time" < '2024-05-01T11:59:00.000000Z'::timestamptz AND "session_id" IS DISTINCT FROM '65f1a2b3.1f40'` +
        `) AS log_lines ORDER BY "session_id", "session_line_num") AS postgres_log`,
    );
  });

  it('fails clearly when log_fdw is not installed', async () => {
    const { session } = rdsLikeSession(files, []);
    session.scalar = async (sql) => (sql.includes("extname = 'log_fdw'") ? '0' : 'x');

    await expect(
      postgresLog.source({ session, options: { 'log-source': 'log_fdw' }, dueUntil: 0 }),
    ).rejects.toThrow(/log_fdw extension is not installed/);
  });

  it('picks files by the times in their names, with a margin around rotations', () => {
    const listed = [
      'postgresql.log.2024-05-01-10.csv',
      'postgresql.log.2024-05-01-11.csv',
      'postgresql.log.2024-05-01-12.csv',
      'odd-name.csv',
    ].map((name) => ({ name, table: logFdwTableName(name), start: logFileStart(name) }));
    const pick = (lo: string, hi: string) =>
      filesForWindow(listed, { lo: toMicros(lo), hi: toMicros(hi) }).map(
        (f) => f.name.slice(15, 28) || f.name,
      );

    expect(pick('2024-05-01T11:30:00Z', '2024-05-01T11:35:00Z')).toEqual(['odd-name.csv', '2024-05-01-11']);
    expect(pick('2024-05-01T12:02:00Z', '2024-05-01T12:03:00Z')).toEqual([
      'odd-name.csv',
      '2024-05-01-11',
      '2024-05-01-12',
    ]);
    expect(pick('2024-05-01T14:00:00Z', '2024-05-01T14:05:00Z')).toEqual(['odd-name.csv', '2024-05-01-12']);
    expect(logFileStart('postgresql-2020-01-10_095546.csv')).toBe(toMicros('2020-01-10T09:55:46Z'));
    expect(logFileStart('postgresql.log.2024-05-01-1230.csv')).toBe(toMicros('2024-05-01T12:30:00Z'));
  });
});
