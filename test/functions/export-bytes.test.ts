import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/export';
import { floorToGrid, hours, minutes } from '../../shared/export/sources/time';
import {
  createMysqlEvents,
  createWatermarkTable,
  exportDirectory,
  mysqlClusterParameters,
  mysqlNow,
  putParameters,
  testRuntime,
} from '../shared/export/support';
import { uniqueName } from '../stack/fixtures';

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile());
}

describe('export summary: bytes', () => {
  it.each([false, true])(
    'counts the compressed bytes of every object written (full-scan %s)',
    async (fullScan) => {
      const start = floorToGrid((await mysqlNow()) - hours(2), 15);
      const rows = Array.from({ length: 3000 }, (_, i) => ({ id: i + 1, at: start + i * 1_000_000 }));
      const events = await createMysqlEvents(rows);
      const path = `/${uniqueName('bytes')}`;
      const directory = exportDirectory();
      const watermarkTable = await createWatermarkTable();
      await putParameters(path, {
        'global/destination': `file://${directory}`,
        'global/window-minutes': '15',
        'global/initial-lookback-hours': '3',
        ...mysqlClusterParameters('c1'),
        'clusters/c1/tables': 'none',
        'clusters/c1/custom/events/query': events.query,
        'clusters/c1/custom/events/watermark-column': 'at',
        'clusters/c1/custom/events/full-scan': String(fullScan),
      });

      const summary = await makeHandler(testRuntime({ path, watermarkTable }))({ cluster: 'c1' });

      const table = summary.clusters[0]?.tables[0];
      const files = filesUnder(directory);
      expect(table?.objectsWritten).toBe(Math.ceil((3000 * 1_000_000) / minutes(15)));
      expect(files).toHaveLength(table?.objectsWritten ?? -1);
      expect(table?.bytes).toBe(files.reduce((n, f) => n + statSync(f).size, 0));
    },
  );
});
