import { SSMClient } from '@aws-sdk/client-ssm';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/export';
import { ConfigLoader, clearConfigCache } from '../../shared/config';
import { ConfigError, EventError } from '../../shared/errors';
import { exportConfigSchema } from '../../shared/export/config';
import {
  countItems,
  createBucket,
  createWatermarkTable,
  mysqlClusterParameters,
  putParameters,
  readS3Objects,
  testRuntime,
} from '../shared/export/support';
import { uniqueName } from '../stack/fixtures';

/**
 * What a fanned-out scheduled run costs in SSM requests. Every request the SDK
 * sends to moto (retries included) is counted by a middleware on the client
 * that the handler's loader is given.
 */

const CLUSTERS = 50;
const FUNCTION_NAME = 'log-export-prod-export';
const scheduled = { 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} };

/** An SSM client that records every request it sends: the command and, for reads by path, the path. */
function countingSsm() {
  const requests: string[] = [];
  const ssm = new SSMClient({});
  ssm.middlewareStack.add(
    (next, context) => (args) => {
      const path = (args.input as { Path?: string }).Path;
      requests.push(path === undefined ? String(context.commandName) : `${context.commandName} ${path}`);
      return next(args);
    },
    // Above the retry middleware: one entry per call the code makes (a retry of a slow emulator is not one).
    { step: 'initialize', name: 'countRequests' },
  );
  return { ssm, requests };
}

/** One simulated container: its own loader (cache TTL 300 s) on a clock the test moves. */
function container(path: string, watermarkTable: string, ssm: SSMClient, clock: { now: number }) {
  const invoked: string[] = [];
  const handler = makeHandler({
    ...testRuntime({
      path,
      watermarkTable,
      invoker: async (_functionName, cluster) => {
        invoked.push(cluster);
      },
    }),
    loader: new ConfigLoader({
      path,
      schema: exportConfigSchema,
      ttlSeconds: 300,
      ssm,
      now: () => clock.now,
    }),
  });
  return { handler, invoked };
}

describe('export handler: SSM reads of a fanned-out scheduled run of 50 clusters', () => {
  const path = `/${uniqueName('fleet')}`;
  const names = Array.from({ length: CLUSTERS }, (_, i) => `db-${String(i).padStart(2, '0')}`);
  let watermarkTable: string;

  beforeAll(async () => {
    watermarkTable = await createWatermarkTable();
    const bucket = await createBucket();
    await putParameters(path, {
      'global/destination': `s3://${bucket}/logs`,
      'global/enabled-clusters': names,
      'global/window-minutes': '5',
      'global/initial-lookback-hours': '48',
      'global/fan-out': 'auto',
    });
    // Nine parameters a cluster (a password among them); no table, so that the runs touch no database.
    for (let i = 0; i < names.length; i += 10) {
      await Promise.all(
        names.slice(i, i + 10).map((name) =>
          putParameters(path, {
            ...mysqlClusterParameters(name),
            [`clusters/${name}/database`]: 'mysql',
            [`clusters/${name}/redact`]: 'true',
            [`clusters/${name}/tables`]: 'none',
          }),
        ),
      );
    }
  }, 180_000);

  it('reads global/ for the coordinator and global/ plus its own subtree for each cluster, cold and warm', async () => {
    const { ssm, requests } = countingSsm();
    const clock = { now: 1_000_000_000 };
    const context = { functionName: FUNCTION_NAME, getRemainingTimeInMillis: () => 600_000 };
    /** SSM requests of one invocation. */
    const measure = async (run: () => Promise<unknown>) => {
      const before = requests.length;
      await run();
      return requests.slice(before);
    };

    // Cold: the coordinator and every cluster in a container of its own (an empty cache each).
    clearConfigCache();
    const coordinator = container(path, watermarkTable, ssm, clock);
    const coordinatorCold = await measure(() => coordinator.handler(scheduled, context));
    expect(coordinatorCold).toEqual([`GetParametersByPathCommand ${path}/global`]);
    expect(coordinator.invoked).toEqual(names);

    const perCluster = { cold: 0, warmWithinTtl: 0, warmAfterTtl: 0, warmOtherCluster: 0 };
    for (const [index, name] of names.entries()) {
      clearConfigCache();
      const { handler } = container(path, watermarkTable, ssm, clock);
      const cold = await measure(() => handler({ cluster: name }, context));
      expect(cold.sort()).toEqual([
        `GetParametersByPathCommand ${path}/clusters/${name}`,
        `GetParametersByPathCommand ${path}/global`,
      ]);
      perCluster.cold += cold.length;
      // Warm: the same container again within the cache's TTL, after it, and for another cluster.
      clock.now += 299_000;
      perCluster.warmWithinTtl += (await measure(() => handler({ cluster: name }, context))).length;
      clock.now += 2_000;
      perCluster.warmAfterTtl += (await measure(() => handler({ cluster: name }, context))).length;
      const other = names[(index + 1) % names.length] as string;
      perCluster.warmOtherCluster += (await measure(() => handler({ cluster: other }, context))).length;
    }
    clock.now += 1_000;
    const coordinatorWithinTtl = (await measure(() => coordinator.handler(scheduled, context))).length;

    expect({ coordinator: coordinatorCold.length, coordinatorWithinTtl, ...perCluster }).toEqual({
      coordinator: 1,
      coordinatorWithinTtl: 0,
      // Each subtree fits in one page of 10.
      cold: 2 * CLUSTERS,
      warmWithinTtl: 0,
      warmAfterTtl: 2 * CLUSTERS,
      // global/ is cached; the other cluster's subtree is read.
      warmOtherCluster: CLUSTERS,
    });
    // The runs exported nothing and took no lease: the counts are SSM's alone.
    expect(await countItems(watermarkTable)).toBe(0);
  }, 180_000);
});

describe('export handler: a run reads only its own part of the configuration', () => {
  async function setUp(extra: Record<string, string | string[]>) {
    const path = `/${uniqueName('scope')}`;
    const [watermarkTable, bucket] = await Promise.all([createWatermarkTable(), createBucket()]);
    await putParameters(path, {
      'global/destination': `s3://${bucket}/logs`,
      'global/fan-out': 'off',
      ...mysqlClusterParameters('c1'),
      'clusters/c1/tables': 'none',
      ...extra,
    });
    return { path, watermarkTable, bucket };
  }

  it("runs a cluster's catch-up whatever the state of other clusters' parameters", async () => {
    const { path, watermarkTable } = await setUp({
      'global/enabled-clusters': ['c1', 'c9'],
      'clusters/c2/engine': 'oracle',
    });

    const result = await makeHandler(testRuntime({ path, watermarkTable }))({ cluster: 'c1' });

    expect(result).toEqual({ mode: 'catch-up', clusters: [{ cluster: 'c1', tables: [] }] });
  });

  it('refuses, before writing anything, an in-process scheduled run whose enabled clusters name one without parameters', async () => {
    const { path, watermarkTable, bucket } = await setUp({ 'global/enabled-clusters': ['c1', 'c9', 'c8'] });

    const failure = makeHandler(testRuntime({ path, watermarkTable }))(scheduled);

    await expect(failure).rejects.toBeInstanceOf(ConfigError);
    await expect(failure).rejects.toThrow(
      `${path}/global/enabled-clusters: names cluster "c9", which has no clusters/c9/ parameters; ${path}/global/enabled-clusters: names cluster "c8"`,
    );
    expect(await countItems(watermarkTable)).toBe(0);
    expect((await readS3Objects(bucket)).size).toBe(0);
  });

  it('refuses an enabled cluster name that is not a cluster name', async () => {
    const { path, watermarkTable } = await setUp({ 'global/enabled-clusters': ['c1', 'c1/custom'] });

    await expect(makeHandler(testRuntime({ path, watermarkTable }))(scheduled)).rejects.toThrow(
      `${path}/global/enabled-clusters: "c1/custom" is not a valid cluster name`,
    );
  });

  it('refuses an enabled cluster listed twice, before writing anything', async () => {
    const { path, watermarkTable, bucket } = await setUp({ 'global/enabled-clusters': ['c1', 'c1'] });

    const failure = makeHandler(testRuntime({ path, watermarkTable }))(scheduled);

    await expect(failure).rejects.toBeInstanceOf(ConfigError);
    await expect(failure).rejects.toThrow(`${path}/global/enabled-clusters: "c1" is listed more than once`);
    expect(await countItems(watermarkTable)).toBe(0);
    expect((await readS3Objects(bucket)).size).toBe(0);
  });

  it('refuses an event whose cluster is not a cluster name without reading SSM', async () => {
    const { path, watermarkTable } = await setUp({});
    const { ssm, requests } = countingSsm();
    const handler = makeHandler({
      ...testRuntime({ path, watermarkTable }),
      loader: new ConfigLoader({ path, schema: exportConfigSchema, ttlSeconds: 0, ssm }),
    });

    for (const cluster of ['c1/custom', '../c1', 'c1/']) {
      await expect(handler({ cluster })).rejects.toBeInstanceOf(EventError);
    }
    expect(requests).toEqual([]);
  });
});
