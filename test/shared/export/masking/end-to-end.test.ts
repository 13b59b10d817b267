import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import { makeHandler } from '../../../../functions/export';
import { PostgresSession } from '../../../../shared/export/sources/postgres/session';
import {
  floorToGrid,
  formatTimestamp,
  minutes,
  seconds,
  toMicros,
} from '../../../../shared/export/sources/time';
import { createPgDatabase, mysqlAdmin, pgAdmin, uniqueName } from '../../../stack/fixtures';
import { postgresClusterParameters } from '../../../support/csvlog-fixtures';
import { duckdbQuery, sqlString } from '../../../support/duckdb';
import {
  createWatermarkTable,
  exportDirectory,
  mysqlClusterParameters,
  mysqlNow,
  putParameters,
  readFileObjects,
  setWatermark,
  testRuntime,
} from '../support';
import { type CorpusEntry, CREDENTIAL_CORPUS, secretsOf } from './corpus';

/**
 * The corpus entries marked `server` go to the real servers, which log them
 * (failing ones included); the exporter reads the logs back, masked. Users,
 * servers and tables carry a unique name, so nothing meets parallel test files;
 * the statements that would change the server (replication, ALTER SYSTEM,
 * subscriptions) are made to fail.
 */
const onServer = (dialect: CorpusEntry['dialect']) =>
  CREDENTIAL_CORPUS.filter((e) => e.server && e.dialect === dialect);

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

/** Every exported string value, and the one JSON text of all rows. */
function exported(objects: Map<string, Record<string, unknown>[]>) {
  const rows = [...objects.values()].flat();
  const texts = rows.flatMap((r) => Object.values(r).filter((v): v is string => typeof v === 'string'));
  return { rows, texts, everything: JSON.stringify(rows) };
}

describe.concurrent('masking end to end: corpus statements through the servers’ logs and the exporter', () => {
  it('masks every secret of the corpus in MariaDB’s general_log, failing statements included', async () => {
    const entries = onServer('mysql');
    expect(entries.length).toBeGreaterThanOrEqual(30);
    const user = uniqueName('mask_my');
    const path = `/${uniqueName('export')}`;
    const directory = exportDirectory();
    const watermarkTable = await createWatermarkTable();
    await putParameters(path, {
      'global/destination': `file://${directory}`,
      'global/window-minutes': '1',
      'global/lag-seconds': '0',
      'global/initial-lookback-hours': '1',
      ...mysqlClusterParameters('db1'),
      'clusters/db1/tables': ['general_log'],
    });
    const admin = await mysqlAdmin();
    const failed: string[] = [];
    try {
      for (const entry of entries) {
        await admin.query(entry.sql.replaceAll('{u}', user)).catch(() => failed.push(entry.sql));
      }
    } finally {
      await admin.query(`DROP USER IF EXISTS '${user}'@'%'`);
      await admin.end();
    }
    // Statements that fail to parse or to run are logged too: some must have failed for the test to mean that.
    expect(failed.length).toBeGreaterThan(3);
    const closes = floorToGrid(await mysqlNow(), 1) + minutes(1);
    await sleep(Math.max(0, (closes - (await mysqlNow())) / 1000) + 500);
    const summary = await makeHandler(testRuntime({ path, watermarkTable }))({ cluster: 'db1' });
    expect(summary.clusters[0]?.tables[0]?.error).toBeUndefined();

    const { rows, everything } = exported(await readFileObjects(directory));
    const logged = rows.map((r) => String(r.argument));
    for (const entry of entries) {
      for (const secret of secretsOf(entry)) expect(everything).not.toContain(secret);
      if (entry.masked) expect(logged).toContain(entry.masked.replaceAll('{u}', user));
    }
    // Each statement reached the log (and so was masked, not lost).
    const mine = logged.filter((a) => a.includes(user) || a.includes('<redacted>'));
    expect(mine.length).toBeGreaterThanOrEqual(entries.length);
  }, 180_000);

  it('masks every secret of the corpus in PostgreSQL’s csv log: statement lines, error messages and failed statements', async () => {
    const entries = onServer('postgres');
    expect(entries.length).toBeGreaterThanOrEqual(25);
    const user = uniqueName('mask_pg');
    const database = await createPgDatabase();
    const path = `/${uniqueName('export')}`;
    const directory = exportDirectory();
    const watermarkTable = await createWatermarkTable();
    // The exporter's own foreign table over every csv file: no log rotation, which other test files would feel.
    await putParameters(path, {
      'global/destination': `file://${directory}`,
      'global/window-minutes': '1',
      'global/lag-seconds': '2',
      ...postgresClusterParameters('pg1', database),
      'clusters/pg1/csvlog-table': 'mask_log',
      'clusters/pg1/log-source': 'file_fdw',
      'clusters/pg1/tables': ['postgres_log'],
    });
    const started = floorToGrid(await pgNow(), 1);
    await setWatermark(watermarkTable, 'pg1', 'postgres_log', formatTimestamp(started));
    const admin = await pgAdmin(database);
    const failed: string[] = [];
    try {
      for (const entry of entries) {
        await admin.query(entry.sql.replaceAll('{u}', user)).catch(async () => {
          failed.push(entry.sql);
          // A failure inside `BEGIN; ...` leaves the transaction open and aborted.
          await admin.query('ROLLBACK');
        });
      }
    } finally {
      await admin.query(`DROP ROLE IF EXISTS ${user}`);
      await admin.end();
    }
    expect(failed.length).toBeGreaterThan(5);
    const closes = floorToGrid(await pgNow(), 1) + minutes(1) + seconds(2);
    await sleep(Math.max(0, (closes - (await pgNow())) / 1000) + 500);
    const summary = await makeHandler(testRuntime({ path, watermarkTable }))({ cluster: 'pg1' });
    expect(summary.clusters[0]?.tables[0]?.error).toBeUndefined();

    const { rows, texts, everything } = exported(await readFileObjects(directory));
    for (const entry of entries) {
      for (const secret of secretsOf(entry)) expect(everything).not.toContain(secret);
      if (entry.masked) expect(texts).toContain(`statement: ${entry.masked.replaceAll('{u}', user)}`);
    }
    // Failed statements arrive as an error message plus the statement in `query`, both masked.
    const errors = rows.filter((r) => r.error_severity === 'ERROR' && String(r.query).includes(user));
    expect(errors.length).toBeGreaterThan(3);
    expect(texts).toContain('syntax error at or near "<redacted>"');
    expect(texts.some((t) => t.startsWith('unterminated quoted string at or near "<redacted>'))).toBe(true);

    // The same windows as Parquet: the csv log's columns are all read by column from binary COPY, and masked there.
    const parquetPath = `/${uniqueName('export')}`;
    const parquetDirectory = exportDirectory();
    const parquetWatermarks = await createWatermarkTable();
    await putParameters(parquetPath, {
      'global/destination': `file://${parquetDirectory}`,
      'global/window-minutes': '1',
      'global/lag-seconds': '2',
      'global/format': 'parquet',
      ...postgresClusterParameters('pg1', database),
      'clusters/pg1/csvlog-table': 'mask_log',
      'clusters/pg1/log-source': 'file_fdw',
      'clusters/pg1/tables': ['postgres_log'],
    });
    await setWatermark(parquetWatermarks, 'pg1', 'postgres_log', formatTimestamp(started));
    const byColumn = vi.spyOn(PostgresSession.prototype, 'parquetGroups');
    try {
      const parquet = await makeHandler(
        testRuntime({ path: parquetPath, watermarkTable: parquetWatermarks }),
      )({
        cluster: 'pg1',
      });
      expect(parquet.clusters[0]?.tables[0]?.error).toBeUndefined();
      const answers = await Promise.all(byColumn.mock.results.map((r) => r.value));
      expect(answers.length).toBeGreaterThan(0);
      expect(answers.every((a) => a !== undefined)).toBe(true);
    } finally {
      byColumn.mockRestore();
    }
    // Window by window, the Parquet object holds the JSON object's rows: every text as masked, no secret in any byte.
    for (const [key, jsonRows] of await readFileObjects(directory)) {
      const file = join(parquetDirectory, key.replace(/\.jsonl\.gz$/, '.parquet'));
      const { rows: parquetRows } = await duckdbQuery(`SELECT * FROM read_parquet(${sqlString(file)})`);
      const textsOf = (rows: Record<string, unknown>[]) =>
        rows.flatMap((r) => MASKED_COLUMNS.map((c) => String(r[c] ?? null))).sort();
      expect(textsOf(parquetRows), key).toEqual(textsOf(jsonRows));
      const bytes = await readFile(file);
      for (const entry of entries)
        for (const secret of secretsOf(entry)) {
          expect(JSON.stringify(parquetRows), key).not.toContain(secret);
          expect(bytes.includes(secret), key).toBe(false);
        }
    }
  }, 180_000);
});

/** postgres_log's SQL text columns, which the exporter masks. */
const MASKED_COLUMNS = ['message', 'detail', 'query', 'internal_query', 'context'];
