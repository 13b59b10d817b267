import { mkdtempSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { makeHandler } from '../../functions/export';
import { ConfigError } from '../../shared/errors';
import { countItems, exportDirectory, mysqlEventsExport, testRuntime } from '../shared/export/support';

/**
 * On Lambda only /tmp is writable, and it goes with the container: a file://
 * destination there would let the watermark pass files that are gone.
 */

const setUp = (directory: string) => mysqlEventsExport(directory);

const files = async (directory: string) => (await readdir(directory, { recursive: true })).length;

describe('export handler: a file:// destination on Lambda', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it.each([
    ['under /tmp', () => exportDirectory()],
    ['elsewhere', () => mkdtempSync(join('/var/tmp', 'export-'))],
  ])(
    'is a ConfigError naming global/destination (%s), and nothing is written',
    async (_where, makeDirectory) => {
      const directory = makeDirectory();
      const { path, watermarkTable } = await setUp(directory);
      vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'log-export-prod-export');
      const invoked: string[] = [];
      const handler = makeHandler(
        testRuntime({
          path,
          watermarkTable,
          invoker: async (_name, cluster) => {
            invoked.push(cluster);
          },
        }),
      );

      for (const event of [{ cluster: 'c1' }, { 'detail-type': 'Scheduled Event', source: 'aws.events' }]) {
        const failure = handler(event);
        await expect(failure).rejects.toBeInstanceOf(ConfigError);
        await expect(failure).rejects.toThrow(`${path}/global/destination: file:// is refused on Lambda`);
      }

      expect(invoked).toEqual([]);
      expect(await files(directory)).toBe(0);
      expect(await countItems(watermarkTable)).toBe(0);
    },
  );

  it('is allowed under `serverless invoke local` (IS_LOCAL=true), which runs on this machine', async () => {
    const directory = exportDirectory();
    const { path, watermarkTable } = await setUp(directory);
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'log-export-dev-export');
    vi.stubEnv('IS_LOCAL', 'true');

    const result = await makeHandler(testRuntime({ path, watermarkTable }))({ cluster: 'c1' });

    expect(result.clusters[0]?.tables[0]).toMatchObject({ rows: 30 });
    expect(await files(directory)).toBeGreaterThan(0);
  });
});
