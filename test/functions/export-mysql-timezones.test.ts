import { setTimeout as sleep } from 'node:timers/promises';
import { Metrics } from '@aws-lambda-powertools/metrics';
import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/export';
import type { ExportSummary } from '../../shared/export';
import { floorToGrid, minutes, toMicros } from '../../shared/export/sources/time';
import {
  createWatermarkTable,
  exportDirectory,
  parseKey,
  putParameters,
  readFileObjects,
  readWatermark,
  testRuntime,
} from '../shared/export/support';
import { randomPassword, uniqueName } from '../stack/fixtures';
import { type MariadbHandle, startMariadb } from '../stack/mariadb';
import { captureOutput } from '../support/capture';

/**
 * MariaDB stamps a log row with the writing session's local time. These tests
 * write from sessions in several zones while exports run, and check that every
 * statement lands in exactly one object.
 */

interface Server {
  host: string;
  port: number;
  adminUser: string;
  adminPassword: string;
}

const connect = (server: Server) =>
  mysql.createConnection({
    host: server.host,
    port: server.port,
    user: server.adminUser,
    password: server.adminPassword,
  });

/** The server's UTC clock in microseconds. */
async function serverNow(server: Server): Promise<number> {
  const conn = await connect(server);
  try {
    const [rows] = await conn.query({ sql: 'SELECT CAST(UTC_TIMESTAMP(6) AS CHAR)', rowsAsArray: true });
    return toMicros(String((rows as unknown[][])[0]?.[0]));
  } finally {
    await conn.end();
  }
}

/** Waits until the minute in progress on the server has closed (a 1-minute window with zero lag is due). */
async function nextMinute(server: Server): Promise<void> {
  const now = await serverNow(server);
  const closes = floorToGrid(now, 1) + minutes(1);
  await sleep((closes - now) / 1000 + 300);
}

/**
 * Sessions that each set a time zone (`null`: the server's default) and run
 * `SELECT '<marker> <zone> <n>'` every few tens of milliseconds until stopped;
 * `stop` returns the statements that succeeded.
 */
async function startWriters(server: Server, zones: Array<string | null>, marker: string) {
  let running = true;
  const written: string[] = [];
  const loops = zones.map(async (zone) => {
    const conn = await connect(server);
    try {
      if (zone) await conn.query('SET time_zone = ?', [zone]);
      for (let n = 0; running; n++) {
        const sql = `SELECT '${marker} ${zone ?? 'default'} ${n}'`;
        await conn.query(sql);
        written.push(sql);
        await sleep(40);
      }
    } finally {
      await conn.end();
    }
  });
  // Stopped by the test, or at the end of the file if the test failed first.
  const stop = async (): Promise<string[]> => {
    running = false;
    await Promise.all(loops);
    return written;
  };
  runningWriters.add(stop);
  return { stop };
}

const runningWriters = new Set<() => Promise<string[]>>();
afterEach(async () => {
  await Promise.allSettled([...runningWriters].map((stop) => stop()));
  runningWriters.clear();
});

/** The exported general_log rows whose statement mentions `marker`, by statement, with the window each is in. */
async function exportedStatements(directory: string, marker: string) {
  const found = new Map<string, Array<{ lo: string; hi: string; row: Record<string, unknown> }>>();
  for (const [key, rows] of await readFileObjects(directory)) {
    const { table, lo, hi } = parseKey(key);
    if (table !== 'general_log') continue;
    for (const row of rows) {
      const argument = String(row.argument);
      if (row.command_type !== 'Query' || !argument.startsWith(`SELECT '${marker} `)) continue;
      found.set(argument, [...(found.get(argument) ?? []), { lo, hi, row }]);
    }
  }
  return found;
}

function expectNoErrors(summaries: ExportSummary[]): void {
  for (const summary of summaries) {
    expect(summary.clusters[0]?.error).toBeUndefined();
    for (const table of summary.clusters[0]?.tables ?? []) expect(table.error).toBeUndefined();
  }
}

/** Parameters of a cluster on `server` that exports general_log in 1-minute windows without lag. */
async function configure(
  server: Server,
  cluster: string,
  tables = ['general_log'],
  overrides: Record<string, string | { secure: string } | undefined> = {},
) {
  const path = `/${uniqueName('export')}`;
  const directory = exportDirectory();
  const watermarkTable = await createWatermarkTable();
  const parameters: Record<string, string | string[] | { secure: string } | undefined> = {
    'global/destination': `file://${directory}`,
    'global/window-minutes': '1',
    'global/lag-seconds': '0',
    'global/initial-lookback-hours': '1',
    [`clusters/${cluster}/engine`]: 'mariadb',
    [`clusters/${cluster}/host`]: server.host,
    [`clusters/${cluster}/port`]: String(server.port),
    [`clusters/${cluster}/user`]: server.adminUser,
    [`clusters/${cluster}/password`]: { secure: server.adminPassword },
    [`clusters/${cluster}/ssl`]: 'false',
    [`clusters/${cluster}/tables`]: tables,
    ...overrides,
  };
  await putParameters(
    path,
    Object.fromEntries(Object.entries(parameters).filter(([, v]) => v !== undefined)) as Record<
      string,
      string | string[] | { secure: string }
    >,
  );
  return { path, directory, watermarkTable };
}

/** Every statement written exactly once in the export, and nothing else with the marker. */
async function expectExactlyOnce(directory: string, marker: string, written: string[]) {
  const exported = await exportedStatements(directory, marker);
  const duplicated = [...exported].filter(([, places]) => places.length > 1).map(([sql]) => sql);
  const missing = written.filter((sql) => !exported.has(sql));
  expect(duplicated).toEqual([]);
  expect(missing).toEqual([]);
  expect(exported.size).toBe(written.length);
  return exported;
}

/**
 * A MariaDB of these tests' own, whose global time_zone is +05:00 (a server-global setting, so not the shared
 * one), with its own tmpdir: servers that share /tmp can delete each other's temporary tables when their pids
 * coincide (seen here as "Error on delete of '/tmp/#sql-temptable-...'").
 */
let server: MariadbHandle;
beforeAll(async () => {
  server = await startMariadb(randomPassword(), {
    serverArgs: ['--default-time-zone=+05:00'],
    privateTmpdir: true,
  });
}, 120_000);
afterAll(async () => {
  await server?.stop();
});

describe('general_log written from sessions in several time zones', () => {
  it('exports every statement exactly once over several runs while the writers keep writing', async () => {
    const { path, directory, watermarkTable } = await configure(server, 'zones');
    const handler = makeHandler(testRuntime({ path, watermarkTable }));
    const marker = uniqueName('zoned');
    const writers = await startWriters(server, ['+00:00', '-07:00', '+05:00'], marker);
    const summaries: ExportSummary[] = [];
    try {
      // Runs across at least two minute boundaries while the writers go on.
      for (let run = 0; run < 4; run++) {
        summaries.push(await handler({ cluster: 'zones' }));
        await sleep(25_000);
      }
    } finally {
      const written = await writers.stop();
      await nextMinute(server);
      summaries.push(await handler({ cluster: 'zones' }));
      expectNoErrors(summaries);
      expect(written.length).toBeGreaterThan(300);
      const exported = await expectExactlyOnce(directory, marker, written);

      // The recorded time stays the writer's local time: -07:00 rows read 7 hours behind the +00:00 ones.
      const recorded = (zone: string) =>
        [...exported]
          .filter(([sql]) => sql.includes(` ${zone} `))
          .map(([, [place]]) => toMicros(String(place?.row.event_time)));
      const west = Math.min(...recorded('-07:00'));
      const utc = Math.min(...recorded('+00:00'));
      const east = Math.min(...recorded('+05:00'));
      expect(Math.round((utc - west) / minutes(60))).toBe(7);
      expect(Math.round((east - utc) / minutes(60))).toBe(5);
      // Rows recorded before their window's start went to the batch's first window, after its end to its last.
      const plural = summaries.filter((s) => (s.clusters[0]?.tables[0]?.windows ?? 0) > 0);
      expect(plural.length).toBeGreaterThanOrEqual(3);
    }
    const mark = await readWatermark(watermarkTable, 'zones', 'general_log');
    expect(mark?.watermark).toBe(summaries.at(-1)?.clusters[0]?.tables[0]?.watermark);
  }, 240_000);
});

describe('general_log on a server whose global time_zone is +05:00', () => {
  it('exports every statement exactly once through a crash, a rotation to _backup, a TRUNCATE and log_output off and on', async () => {
    const { path, directory, watermarkTable } = await configure(server, 'east');
    let crashes = 1;
    const handler = makeHandler(
      testRuntime({
        path,
        watermarkTable,
        // The first object written is followed by a crash before the watermark moves.
        afterObjectWritten: async () => {
          if (crashes-- > 0) throw new Error('simulated crash between object and watermark');
        },
      }),
    );
    const marker = uniqueName('east');
    const admin = await connect(server);
    const summaries: ExportSummary[] = [];
    let written: string[] = [];
    try {
      const global = await admin.query({ sql: 'SELECT @@global.time_zone', rowsAsArray: true });
      expect((global[0] as unknown[][])[0]?.[0]).toBe('+05:00');
      let writers = await startWriters(server, [null, '-07:00', '+00:00'], marker);
      await sleep(3000);
      const crashed = await handler({ cluster: 'east' });
      expect(crashed.clusters[0]?.tables[0]?.error).toMatch(/simulated crash/);
      await nextMinute(server);
      // The rerun finishes the batch the crash left: the object written before the crash is found, not rewritten.
      const resumed = await handler({ cluster: 'east' });
      expect(resumed.clusters[0]?.tables[0]?.objectsSkipped).toBeGreaterThanOrEqual(1);
      summaries.push(resumed);

      // Amazon RDS-style rotation: the live table becomes general_log_backup, a new one takes its place.
      await admin.query('DROP TABLE IF EXISTS mysql.general_log_backup');
      await admin.query('CREATE TABLE mysql.general_log_new LIKE mysql.general_log');
      await admin.query(
        'RENAME TABLE mysql.general_log TO mysql.general_log_backup, mysql.general_log_new TO mysql.general_log',
      );
      await sleep(2000);
      await nextMinute(server);
      summaries.push(await handler({ cluster: 'east' }));

      // log_output off and on: what runs meanwhile goes to the file log, not the table; the positions stay valid.
      written = await writers.stop();
      await admin.query("SET GLOBAL log_output = 'FILE'");
      await admin.query("SELECT 'logged to the file only'");
      await admin.query("SET GLOBAL log_output = 'TABLE'");
      writers = await startWriters(server, [null, '-07:00', '+00:00'], `${marker}b`);
      await sleep(3000);
      await nextMinute(server);
      summaries.push(await handler({ cluster: 'east' }));

      // TRUNCATE: rows written between a run and the TRUNCATE are gone from the server (and so from the
      // export), so the writers stop and a run reads everything before it.
      const second = await writers.stop();
      await nextMinute(server);
      summaries.push(await handler({ cluster: 'east' }));
      await admin.query('TRUNCATE TABLE mysql.general_log');
      writers = await startWriters(server, [null, '-07:00', '+00:00'], `${marker}c`);
      await sleep(4000);
      await nextMinute(server);
      summaries.push(await handler({ cluster: 'east' }));
      const third = await writers.stop();
      await nextMinute(server);
      summaries.push(await handler({ cluster: 'east' }));
      summaries.push(await handler({ cluster: 'east' }));
      expectNoErrors(summaries);
      expect(summaries.at(-1)?.clusters[0]?.tables[0]?.objectsWritten).toBe(0);

      expect(written.length).toBeGreaterThan(100);
      await expectExactlyOnce(directory, marker, written);
      await expectExactlyOnce(directory, `${marker}b`, second);
      await expectExactlyOnce(directory, `${marker}c`, third);
    } finally {
      await admin.end();
    }
  }, 600_000);

  it('exports every statement once from the start when the cursor is new, rows older than the first window included', async () => {
    const marker = uniqueName('old');
    const conn = await connect(server);
    // Written before the exporter ever ran for this cluster, and recorded in +05:00 by the server's default.
    await conn.query(`SELECT '${marker} default 0'`);
    await conn.end();
    const { path, directory, watermarkTable } = await configure(server, 'fresh');
    const handler = makeHandler(testRuntime({ path, watermarkTable }));
    const first = await handler({ cluster: 'fresh' });
    expectNoErrors([first]);
    await expectExactlyOnce(directory, marker, [`SELECT '${marker} default 0'`]);
    const [place] = (await exportedStatements(directory, marker)).get(`SELECT '${marker} default 0'`) ?? [];
    // Recorded five hours ahead of UTC, it was placed in the last window of the first batch.
    const hi = String(place?.hi).replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z');
    expect(toMicros(String(place?.row.event_time))).toBeGreaterThan(toMicros(hi) + minutes(4 * 60));
  }, 120_000);
});

describe('slow_log without the PROCESS privilege', () => {
  it('warns once per run with a metric and falls back to a lag of 900 s', async () => {
    const user = uniqueName('noproc');
    const password = randomPassword();
    const admin = await connect(server);
    await admin.query('CREATE USER ?@? IDENTIFIED BY ?', [user, '%', password]);
    await admin.query('GRANT SELECT ON mysql.slow_log TO ?@?', [user, '%']);
    await admin.query('GRANT SELECT ON mysql.general_log TO ?@?', [user, '%']);
    await admin.end();
    const { path, watermarkTable } = await configure(server, 'np', ['slow_log', 'general_log'], {
      'global/lag-seconds': undefined,
      'clusters/np/user': user,
      'clusters/np/password': { secure: password },
    });
    const metrics = new Metrics({ namespace: 'LogExportTest', serviceName: 'log-export-test' });
    const handler = makeHandler(testRuntime({ path, watermarkTable, metrics }));
    const output = captureOutput();
    let summary: ExportSummary;
    try {
      summary = await handler({ cluster: 'np' });
    } finally {
      output.stop();
    }
    expectNoErrors([summary]);
    const lines = output
      .text()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const emf = lines.filter((l) => 'SlowLogLagFallback' in l);
    expect(emf).toHaveLength(1);
    expect(emf[0]).toMatchObject({ Cluster: 'np', Table: 'slow_log', SlowLogLagFallback: 1 });
    const warnings = lines.filter((l) => String(l.message).startsWith('No PROCESS privilege'));
    expect(warnings).toHaveLength(1);
    const planned = lines.filter((l) => l.message === 'Planned windows' && l.table === 'slow_log');
    expect(planned[0]?.lagSeconds).toBe(900);
    const dbNow = toMicros(String(planned[0]?.dbNow));
    expect(toMicros(String(summary.clusters[0]?.tables[0]?.watermark))).toBeLessThanOrEqual(
      dbNow - minutes(15),
    );
    // general_log's lag does not depend on PROCESS: no warning for it.
    expect(
      lines.filter((l) => l.message === 'Planned windows' && l.table === 'general_log')[0]?.lagSeconds,
    ).toBe(60);
  }, 120_000);

  it('measures the lag without a warning when the user holds PROCESS', async () => {
    const { path, watermarkTable } = await configure(server, 'wp', ['slow_log'], {
      'global/lag-seconds': undefined,
    });
    const metrics = new Metrics({ namespace: 'LogExportTest', serviceName: 'log-export-test' });
    const handler = makeHandler(testRuntime({ path, watermarkTable, metrics }));
    const output = captureOutput();
    try {
      expectNoErrors([await handler({ cluster: 'wp' })]);
    } finally {
      output.stop();
    }
    expect(output.text()).not.toContain('SlowLogLagFallback');
    expect(output.text()).not.toContain('No PROCESS privilege');
  }, 120_000);
});
