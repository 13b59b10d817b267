import { readdir } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/export';
import type { OutputFormat } from '../../shared/export/config';
import {
  createMysqlEvents,
  createWatermarkTable,
  exportDirectory,
  mysqlClusterParameters,
  putParameters,
  readFileObjects,
  readWatermark,
  testRuntime,
} from '../shared/export/support';
import { createPgDatabase, pgAdmin, uniqueName } from '../stack/fixtures';
import { postgresClusterParameters } from '../support/csvlog-fixtures';
import { duckdbQuery, sqlString } from '../support/duckdb';

/**
 * Custom exports whose column names a careless or hostile query makes hard to
 * keep: two columns of one name (PostgreSQL allows them in a subquery, and
 * `SELECT 1, 2` names both "?column?") are refused before anything is written,
 * in both formats, since a row object would keep only the last of them; names
 * that are special to JavaScript objects or to JSON keep every value.
 */

const ROWS = 12;
const FORMATS: OutputFormat[] = ['jsonl.gz', 'parquet'];

let database: string;
beforeAll(async () => {
  database = await createPgDatabase();
  const admin = await pgAdmin(database);
  try {
    await admin.query(
      `CREATE TABLE ev (id int PRIMARY KEY, at timestamptz NOT NULL, note text, amount numeric(10, 2));
       INSERT INTO ev SELECT g, now() - interval '2 hours' + g * interval '1 minute', 'row ' || g, g * 1.25
       FROM generate_series(1, ${ROWS}) g`,
    );
  } finally {
    await admin.end();
  }
});

/**
 * One run of a custom export `query` of cluster `c` (PostgreSQL unless `parameters` say otherwise: the cluster's
 * connection parameters) into a fresh directory, in `format`.
 */
async function exportQuery(
  format: OutputFormat,
  query: string,
  c = 'p1',
  parameters: Record<string, string | { secure: string }> = postgresClusterParameters(c, database),
) {
  const path = `/${uniqueName('export')}`;
  const directory = exportDirectory();
  const watermarkTable = await createWatermarkTable();
  await putParameters(path, {
    'global/destination': `file://${directory}`,
    'global/window-minutes': '15',
    'global/initial-lookback-hours': '4',
    'global/format': format,
    ...parameters,
    [`clusters/${c}/tables`]: 'none',
    [`clusters/${c}/custom/picked/query`]: query,
    [`clusters/${c}/custom/picked/watermark-column`]: 'at',
  });
  const summary = await makeHandler(testRuntime({ path, watermarkTable }))({ cluster: c });
  const table = summary.clusters[0]?.tables[0];
  const files = await readdir(directory, { recursive: true });
  return { table, directory, files, watermark: await readWatermark(watermarkTable, c, 'picked') };
}

describe('custom export column names', () => {
  it.each(
    FORMATS.flatMap((format) => [
      [format, 'SELECT id, at, note AS x, amount AS x FROM ev', 'x'],
      [format, 'SELECT id, at, note AS "Id", 1, 2 FROM ev', '?column?'],
      [format, 'SELECT ev.*, at FROM ev', 'at'],
    ]),
  )('%s: %s is refused before anything is written, naming the column', async (format, query, column) => {
    const { table, files, watermark } = await exportQuery(format as OutputFormat, query);

    expect(table?.error).toBe(
      `Custom export picked: its query returns more than one column named "${column}"; give each column a name of its own (AS)`,
    );
    expect(table?.objectsWritten).toBe(0);
    expect(files).toEqual([]);
    // The lease is given back and the watermark not moved.
    expect(watermark?.leaseOwner).toBeUndefined();
    expect(watermark?.rowsExported ?? 0).toBe(0);
  });

  it.each(FORMATS)('%s: names special to JavaScript objects or to JSON keep every value', async (format) => {
    const query = `SELECT id, at, note AS "__proto__", 'c' || id AS "constructor", id * 2 AS "10",
      amount AS "toString", note AS "a""quoted"" name", note AS "line
break" FROM ev`;

    const { table, directory } = await exportQuery(format, query);

    expect(table?.error).toBeUndefined();
    expect(table?.rows).toBe(ROWS);
    const read =
      format === 'jsonl.gz'
        ? [...(await readFileObjects(directory)).values()].flat()
        : // DuckDB names the columns; JSON.parse of its rows keeps __proto__ as an own key.
          (
            await duckdbQuery(
              `SELECT to_json(t)::VARCHAR AS line FROM (SELECT * EXCLUDE (cluster, dt) FROM read_parquet(${sqlString(`${directory}/**/*.parquet`)}, hive_partitioning = true)) t`,
            )
          ).rows.map((r) => JSON.parse(String(r.line)) as Record<string, unknown>);
    const byId = new Map(read.map((row) => [Number(row.id), row]));
    expect(byId.size).toBe(ROWS);
    for (let id = 1; id <= ROWS; id++) {
      const row = byId.get(id) as Record<string, unknown>;
      expect(Object.hasOwn(row, '__proto__')).toBe(true);
      expect(Object.getOwnPropertyDescriptor(row, '__proto__')?.value).toBe(`row ${id}`);
      expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
      expect(row.constructor).toBe(`c${id}`);
      expect(Number(row['10'])).toBe(id * 2);
      expect(Number(row.toString)).toBe(id * 1.25);
      expect(row['a"quoted" name']).toBe(`row ${id}`);
      expect(row['line\nbreak']).toBe(`row ${id}`);
    }
  });

  it('MariaDB refuses two columns of one name itself (a derived table), before anything is written', async () => {
    const events = await createMysqlEvents([{ id: 1, at: Date.now() * 1000 - 3_600_000_000 }]);

    const { table, files } = await exportQuery(
      'jsonl.gz',
      events.query.replace('note', 'note AS id'),
      'm1',
      mysqlClusterParameters('m1'),
    );

    expect(table?.error).toMatch(/Duplicate column name 'id'/);
    expect(files).toEqual([]);
  });
});
