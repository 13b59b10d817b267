import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/export';
import { floorToGrid, minutes } from '../../shared/export/sources/time';
import {
  createWatermarkTable,
  exportDirectory,
  mysqlClusterParameters,
  mysqlNow,
  parseKey,
  putParameters,
  readFileObjects,
  readWatermark,
  testRuntime,
} from '../shared/export/support';
import { mysqlAdmin, randomPassword, uniqueName } from '../stack/fixtures';
import { readParquetTree } from '../support/duckdb';

describe('export handler: the real MariaDB general_log and slow_log to files', () => {
  it('exports each statement once, backup twin included, with passwords in CREATE USER, ALTER USER and SET PASSWORD masked', async () => {
    const path = `/${uniqueName('export')}`;
    const directory = exportDirectory();
    const watermarkTable = await createWatermarkTable();
    await putParameters(path, {
      'global/destination': `file://${directory}`,
      'global/window-minutes': '1',
      'global/lag-seconds': '0',
      'global/initial-lookback-hours': '1',
      ...mysqlClusterParameters('db1'),
      'clusters/db1/tables': ['general_log', 'slow_log'],
    });
    const user = uniqueName('logged');
    const marker = uniqueName('marker');
    const passwords = [randomPassword(), `${randomPassword()}'q`, randomPassword()];
    const rotated = uniqueName('rotated');
    const admin = await mysqlAdmin();
    try {
      // Amazon RDS rotates log rows into mysql.general_log_backup: stand one in, with a row from 10 minutes ago.
      await admin.query("SET time_zone = '+00:00'");
      await admin.query('CREATE TABLE IF NOT EXISTS mysql.general_log_backup LIKE mysql.general_log');
      await admin.query(
        "INSERT INTO mysql.general_log_backup VALUES (UTC_TIMESTAMP(6) - INTERVAL 10 MINUTE, 'app[app] @ [10.0.0.9]', 999999, 1, 'Query', ?)",
        [`SELECT '${rotated}'`],
      );
      // Every statement of this session goes to slow_log too.
      await admin.query('SET SESSION long_query_time = 0');
      await admin.query('CREATE USER ?@? IDENTIFIED BY ?', [user, '%', passwords[0]]);
      await admin.query('ALTER USER ?@? IDENTIFIED BY ?', [user, '%', passwords[1]]);
      await admin.query('SET PASSWORD FOR ?@? = PASSWORD(?)', [user, '%', passwords[2]]);
      await admin.query(`SELECT '${marker}'`);
      await admin.query('DROP USER ?@?', [user, '%']);
    } finally {
      await admin.end();
    }
    const closes = floorToGrid(await mysqlNow(), 1) + minutes(1);
    const handler = makeHandler(testRuntime({ path, watermarkTable }));

    // The first run catches up on the hour before; the statements' minute is still open.
    const early = await handler({ cluster: 'db1' });
    await sleep(Math.max(0, (closes - (await mysqlNow())) / 1000) + 500);
    const first = await handler({ cluster: 'db1' });
    const second = await handler({ cluster: 'db1' });
    const cleanup = await mysqlAdmin();
    await cleanup.query('DROP TABLE mysql.general_log_backup');
    await cleanup.end();

    for (const table of [...(early.clusters[0]?.tables ?? []), ...(first.clusters[0]?.tables ?? [])]) {
      expect(table.error).toBeUndefined();
    }
    expect(second.clusters[0]?.tables.map((t) => t.objectsWritten)).toEqual([0, 0]);
    const objects = await readFileObjects(directory);
    const general = [...objects]
      .filter(([key]) => parseKey(key).table === 'general_log')
      .flatMap(([, r]) => r);
    const slow = [...objects].filter(([key]) => parseKey(key).table === 'slow_log').flatMap(([, r]) => r);
    const mentioning = (rows: Record<string, unknown>[], column: string, text: string) =>
      rows.filter((r) => String(r[column]).includes(text));
    // Each statement exactly once.
    expect(mentioning(general, 'argument', user).map((r) => String(r.argument).split(' ')[0])).toEqual([
      'CREATE',
      'ALTER',
      'SET',
      'DROP',
    ]);
    expect(mentioning(general, 'argument', marker)).toHaveLength(1);
    // The backup twin's row, once (the statements that put it there are logged separately).
    expect(
      general.filter((r) => r.thread_id === 999999 && r.argument === `SELECT '${rotated}'`),
    ).toHaveLength(1);
    expect(mentioning(slow, 'sql_text', marker)).toHaveLength(1);
    expect(mentioning(general, 'argument', user)[0]?.argument).toContain("IDENTIFIED BY '<redacted>'");
    expect(mentioning(general, 'argument', user)[2]?.argument).toContain("PASSWORD('<redacted>')");
    const everything = JSON.stringify([...objects.values()]);
    for (const password of passwords) expect(everything).not.toContain(password.replace("'", ''));
    expect(mentioning(slow, 'sql_text', user).length).toBeGreaterThan(0);
    const row = mentioning(general, 'argument', marker)[0] as Record<string, unknown>;
    expect(Object.keys(row)).toEqual([
      'event_time',
      'user_host',
      'thread_id',
      'server_id',
      'command_type',
      'argument',
      'time_basis',
    ]);
    expect(row.time_basis).toBe('writer_session_time_zone');
    expect(row.event_time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
    const mark = await readWatermark(watermarkTable, 'db1', 'general_log');
    expect(mark?.watermark).toBe(first.clusters[0]?.tables[0]?.watermark);
  }, 150_000);

  it('masks passwords in general_log as Parquet (global/format parquet) as it does in JSON lines', async () => {
    const path = `/${uniqueName('export')}`;
    const directory = exportDirectory();
    const watermarkTable = await createWatermarkTable();
    await putParameters(path, {
      'global/destination': `file://${directory}`,
      'global/format': 'parquet',
      'global/window-minutes': '1',
      'global/lag-seconds': '0',
      'global/initial-lookback-hours': '1',
      ...mysqlClusterParameters('db1'),
      'clusters/db1/tables': ['general_log'],
    });
    const user = uniqueName('parquet');
    const passwords = [randomPassword(), randomPassword()];
    const admin = await mysqlAdmin();
    try {
      await admin.query('CREATE USER ?@? IDENTIFIED BY ?', [user, '%', passwords[0]]);
      await admin.query('SET PASSWORD FOR ?@? = PASSWORD(?)', [user, '%', passwords[1]]);
      await admin.query('DROP USER ?@?', [user, '%']);
    } finally {
      await admin.end();
    }
    const closes = floorToGrid(await mysqlNow(), 1) + minutes(1);
    await sleep(Math.max(0, (closes - (await mysqlNow())) / 1000) + 500);
    const handler = makeHandler(testRuntime({ path, watermarkTable }));
    const summary = await handler({ cluster: 'db1' });
    expect(summary.clusters[0]?.tables[0]?.error).toBeUndefined();

    const { rows } = await readParquetTree(directory);
    const mine = rows.filter((r) => String(r.argument).includes(user));
    expect(mine.map((r) => String(r.argument).split(' ')[0])).toEqual(['CREATE', 'SET', 'DROP']);
    expect(mine[0]?.argument).toContain("IDENTIFIED BY '<redacted>'");
    expect(mine[1]?.argument).toContain("PASSWORD('<redacted>')");
    const everything = JSON.stringify(rows);
    for (const password of passwords) expect(everything).not.toContain(password);
  }, 150_000);
});
