import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExportSummary } from '../../shared/export';
import { exportDirectory, mysqlEventsExport, readWatermark } from '../shared/export/support';
import { bundleAsDeployed } from '../support/bundle';
import { duckdbQuery, sqlString } from '../support/duckdb';

/**
 * The Parquet encoder runs on a thread whose program is a bundle of its own,
 * built beside the export function's (deploy/esbuild-plugins.cjs). These run
 * the bundles as Lambda would, in a plain Node.js process.
 */

const run = promisify(execFile);
let work: string;
let bundle: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'parquet-bundle-'));
  bundle = await bundleAsDeployed({ path: 'functions/export.ts' }, join(work, 'export', 'export.cjs'), {
    sourcemap: false,
  });
}, 120_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A Parquet export of 30 MariaDB rows, configured under a fresh path. */
async function setUp() {
  const directory = exportDirectory();
  return { directory, ...(await mysqlEventsExport(directory, { 'global/format': 'parquet' })) };
}

/** Invokes the bundle's handler with `{ cluster: 'c1' }` in a fresh process; its summary. */
async function invoke(bundleFile: string, path: string, watermarkTable: string): Promise<ExportSummary> {
  const script = `require(process.argv[1]).handler({ cluster: 'c1' }).then((s) => process.stdout.write('\\n' + JSON.stringify(s) + '\\n'))`;
  const { stdout } = await run(process.execPath, ['-e', script, bundleFile], {
    env: { ...process.env, CONFIG_PATH: path, WATERMARK_TABLE: watermarkTable, LOG_LEVEL: 'ERROR' },
  });
  return JSON.parse(stdout.trim().split('\n').at(-1) as string) as ExportSummary;
}

describe('the export bundle and its Parquet encoder', () => {
  it('is built beside the export function only', async () => {
    expect(existsSync(join(work, 'export', 'parquet-worker.cjs'))).toBe(true);
    await bundleAsDeployed({ path: 'functions/rotate.ts' }, join(work, 'rotate', 'rotate.cjs'), {
      sourcemap: false,
    });
    expect(await readdir(join(work, 'rotate'))).toEqual(['rotate.cjs']);
  });

  it('writes every row as Parquet through the bundled encoder, read back by DuckDB', async () => {
    const { directory, path, watermarkTable } = await setUp();

    const summary = await invoke(bundle, path, watermarkTable);

    const table = summary.clusters[0]?.tables[0];
    expect(table?.error).toBeUndefined();
    expect(table?.rows).toBe(30);
    const read = await duckdbQuery(
      `SELECT count(*) AS n, count(DISTINCT id) AS ids FROM read_parquet(${sqlString(`${directory}/**/*.parquet`)})`,
    );
    expect(read.rows[0]).toEqual({ n: '30', ids: '30' });
  }, 60_000);

  it('without its encoder program fails the table with an error saying so, and writes nothing', async () => {
    const alone = join(work, 'alone');
    mkdirSync(alone, { recursive: true });
    copyFileSync(bundle, join(alone, 'export.cjs'));
    const { directory, path, watermarkTable } = await setUp();

    const summary = await invoke(join(alone, 'export.cjs'), path, watermarkTable);

    expect(summary.clusters[0]?.tables[0]?.error).toContain(
      `The Parquet encoder's program is missing: ${join(alone, 'parquet-worker.cjs')}`,
    );
    expect(await readdir(directory, { recursive: true })).toEqual([]);
    // The lease came and went; no window was committed.
    expect(await readWatermark(watermarkTable, 'c1', 'events')).toMatchObject({
      rowsExported: 0,
      leaseOwner: undefined,
    });
  }, 60_000);
});
