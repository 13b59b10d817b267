import { afterAll, describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/export';
import { hours, toMicros } from '../../shared/export/sources/time';
import {
  createWatermarkTable,
  exportDirectory,
  putParameters,
  readFileObjects,
  readWatermark,
  testRuntime,
} from '../shared/export/support';
import {
  createPgDatabase,
  createPgUser,
  pgAdmin,
  randomPassword,
  stack,
  uniqueName,
} from '../stack/fixtures';
import { type PgBouncerHandle, startPgBouncer } from '../support/pgbouncer';

/**
 * The exporter through PgBouncer in session pooling (issue 12, item 3):
 * PgBouncer refuses the startup packet's `options`, so the session's time zone
 * must be set after connecting. The user's own default time zone is not UTC,
 * so a session that kept it would write other timestamps (or leave the COPY
 * fast path, which needs UTC).
 */

describe('export handler: PostgreSQL through PgBouncer (session pooling)', () => {
  let bouncer: PgBouncerHandle | undefined;

  afterAll(async () => {
    await bouncer?.stop();
  });

  it.each([
    ['one query per window (COPY fast path)', false],
    ['an hour of windows per query (cursor)', true],
  ])('exports every row exactly once with UTC timestamps: %s', async (_name, fullScan) => {
    const database = await createPgDatabase();
    const password = randomPassword();
    const user = await createPgUser({ password, database });
    const admin = await pgAdmin(database);
    const { rows } = await admin.query(
      `SELECT (extract(epoch FROM date_trunc('hour', now())) * 1000000)::bigint AS hour`,
    );
    const start = Number(rows[0].hour) - hours(3);
    try {
      await admin.query(`ALTER ROLE ${user} SET TimeZone = 'Asia/Kathmandu'`);
      await admin.query(`CREATE TABLE events AS SELECT g AS id,
          to_timestamp(${start / 1e6}) + g * interval '7 seconds' + g * interval '1 microsecond' AS at
        FROM generate_series(1, 1000) g`);
      await admin.query(`GRANT SELECT ON events TO ${user}`);
    } finally {
      await admin.end();
    }
    await bouncer?.stop();
    bouncer = await startPgBouncer(stack().postgres, [{ user, password }]);
    const path = `/${uniqueName('export')}`;
    const directory = exportDirectory();
    const watermarkTable = await createWatermarkTable();
    await putParameters(path, {
      'global/destination': `file://${directory}/`,
      'global/window-minutes': '15',
      'global/initial-lookback-hours': '4',
      'global/lag-seconds': '0',
      'clusters/pg/engine': 'postgres',
      'clusters/pg/host': bouncer.host,
      'clusters/pg/port': String(bouncer.port),
      'clusters/pg/database': database,
      'clusters/pg/user': user,
      'clusters/pg/password': { secure: password },
      'clusters/pg/ssl': 'false',
      'clusters/pg/tables': 'none',
      'clusters/pg/custom/events/query': 'SELECT id, at FROM events',
      'clusters/pg/custom/events/watermark-column': 'at',
      'clusters/pg/custom/events/full-scan': String(fullScan),
    });

    const result = await makeHandler(testRuntime({ path, watermarkTable }))({ cluster: 'pg' });

    expect(result.clusters[0]?.error).toBeUndefined();
    expect(result.clusters[0]?.tables[0]?.error).toBeUndefined();
    const exported = [...(await readFileObjects(directory)).values()].flat();
    expect(exported.map((r) => r.id).sort((a, b) => Number(a) - Number(b))).toEqual(
      Array.from({ length: 1000 }, (_, i) => i + 1),
    );
    // UTC at the source's precision (PostgreSQL drops trailing zeros): 'Z', and the instant stored.
    for (const row of exported) {
      expect(row.at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
      expect(toMicros(row.at as string)).toBe(start + Number(row.id) * 7_000_001);
    }
    const mark = await readWatermark(watermarkTable, 'pg', 'events');
    expect(toMicros(mark?.watermark ?? '')).toBeGreaterThan(start + 1000 * 7_000_001);
  });
});
