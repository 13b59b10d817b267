import { type DynamoDBClient, GetItemCommand, type UpdateItemCommandInput } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/export';
import type { ExportSummary } from '../../shared/export/exporter';
import { createWatermarkTable } from '../../shared/export/plan/watermark-store';
import { floorToGrid, hours } from '../../shared/export/sources/time';
import {
  createBucket,
  createMysqlEvents,
  mysqlClusterParameters,
  mysqlNow,
  putParameters,
  readS3Objects,
  testRuntime,
} from '../shared/export/support';
import { uniqueName } from '../stack/fixtures';
import { startDynalite } from '../support/dynalite';

/**
 * Two exports of one table at once. DynamoDB runs on dynalite here, which
 * serialises conditional writes of one item as DynamoDB does (moto does not);
 * SSM, S3 and the database are the stack's.
 */

let dynamo: DynamoDBClient;
let stop: () => Promise<void>;
/** Every lease write DynamoDB accepted, in order: who wrote it, and which kind. */
const accepted: Array<{ owner: string; kind: string }> = [];
/** Lease acquisitions DynamoDB refused, by owner. */
const refused: string[] = [];

beforeAll(async () => {
  ({ dynamo, stop } = await startDynalite());
  dynamo.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'UpdateItemCommand') return next(args);
      const input = args.input as UpdateItemCommandInput;
      const owner = input.ExpressionAttributeValues?.[':owner']?.S ?? '';
      const kind = (input.UpdateExpression ?? '').startsWith('SET leaseOwner') ? 'acquire' : 'commit';
      try {
        const result = await next(args);
        accepted.push({ owner, kind });
        return result;
      } catch (error) {
        if (kind === 'acquire') refused.push(owner);
        throw error;
      }
    },
    { step: 'initialize', name: 'recordLeaseWrites' },
  );
});

afterAll(async () => {
  await stop();
});

async function setUp(fullScan: boolean) {
  const now = await mysqlNow();
  const start = floorToGrid(now - hours(2), 5);
  const rows = Array.from({ length: 3000 }, (_, i) => ({ id: i + 1, at: start + i * 2_000_000 + 3 }));
  const path = `/${uniqueName('export')}`;
  const watermarkTable = uniqueName('watermarks');
  const [bucket, events] = await Promise.all([
    createBucket(),
    createMysqlEvents(rows),
    createWatermarkTable(dynamo, watermarkTable),
  ]);
  await putParameters(path, {
    'global/destination': `s3://${bucket}/logs`,
    'global/window-minutes': '5',
    'global/initial-lookback-hours': '2',
    'global/fan-out': 'off',
    ...mysqlClusterParameters('c1'),
    'clusters/c1/tables': 'none',
    'clusters/c1/custom/events/query': events.query,
    'clusters/c1/custom/events/watermark-column': 'at',
    'clusters/c1/custom/events/full-scan': String(fullScan),
  });
  return { path, watermarkTable, bucket, rows };
}

/** The real runtime, with DynamoDB on dynalite. */
function runtime(options: Parameters<typeof testRuntime>[0]) {
  return { ...testRuntime(options), dynamo: () => dynamo };
}

/** Every id in the objects, each expected once. */
async function exportedIds(bucket: string): Promise<number[]> {
  const objects = await readS3Objects(bucket, 'logs/');
  return [...objects.values()].flat().map((row) => row.id as number);
}

async function leaseOwner(watermarkTable: string): Promise<string | undefined> {
  const { Item } = await dynamo.send(
    new GetItemCommand({
      TableName: watermarkTable,
      Key: { cluster: { S: 'c1' }, table: { S: 'events' } },
      ConsistentRead: true,
    }),
  );
  return Item?.leaseOwner?.S;
}

const ids = (count: number) => Array.from({ length: count }, (_, i) => i + 1);

describe.each([{ fullScan: false }, { fullScan: true }])(
  'export handler: two runs of one table at once, DynamoDB on dynalite (full-scan $fullScan)',
  ({ fullScan }) => {
    it('lets exactly one run hold the lease: the other is refused it, writes nothing, and the union is exported once', async () => {
      const { path, watermarkTable, bucket, rows } = await setUp(fullScan);
      accepted.length = 0;
      refused.length = 0;
      // A run that holds the lease waits, at its first object, until the other run has ended: so the other
      // asks for the lease while it is held, however the two are scheduled. (Had both taken it, both would
      // wait here a while and then race their commits.)
      const ended: Array<Promise<unknown>> = [];
      const waitForTheOther = (self: number) => {
        let first = true;
        return async () => {
          if (!first) return;
          first = false;
          await Promise.race([ended[1 - self], new Promise((r) => setTimeout(r, 5000))]);
        };
      };
      const handlers = [0, 1].map((self) =>
        makeHandler(runtime({ path, watermarkTable, afterObjectWritten: waitForTheOther(self) })),
      );

      for (const handler of handlers) ended.push(handler({ cluster: 'c1' }).catch((error) => error));
      const runs = (await Promise.all(ended)) as ExportSummary[];

      const tables = runs.map((r) => r.clusters[0]?.tables[0]);
      const winner = tables.find((t) => t?.skipped === undefined);
      const loser = tables.find((t) => t?.skipped !== undefined);
      expect(winner?.rows).toBe(rows.length);
      expect(winner?.error).toBeUndefined();
      // Scheduled runs that meet leave the table to the one holding it: skipped, not failed (no alarm).
      expect(loser?.error).toBeUndefined();
      expect(loser?.skipped).toMatch(/^Another run holds the lease on c1\/events .*the next run catches up$/);
      expect(loser).toMatchObject({ windows: 0, rows: 0, objectsWritten: 0, objectsSkipped: 0 });
      // One owner took the lease and made every accepted lease write; the other was refused once.
      const owners = new Set(accepted.map((w) => w.owner));
      expect(owners.size).toBe(1);
      expect(accepted.filter((w) => w.kind === 'acquire')).toHaveLength(1);
      expect(refused).toHaveLength(1);
      expect(owners.has(refused[0] as string)).toBe(false);
      expect(await leaseOwner(watermarkTable)).toBeUndefined();
      expect((await exportedIds(bucket)).sort((a, b) => a - b)).toEqual(ids(rows.length));
    });
  },
);

describe('export handler: a run whose lease lapsed while it was writing', () => {
  it('stops at its next commit once another run took the lease over, and the taker exports the rest exactly once', async () => {
    const { path, watermarkTable, bucket, rows } = await setUp(false);
    accepted.length = 0;
    let taker: ExportSummary | undefined;
    let writes = 0;
    // The slow run's lease lasts one second (its remaining time); at its second object it stalls for
    // longer, and meanwhile another run finds the lease lapsed and exports everything.
    const slow = makeHandler(
      runtime({
        path,
        watermarkTable,
        afterObjectWritten: async () => {
          writes += 1;
          if (writes !== 2) return;
          await new Promise((r) => setTimeout(r, 1500));
          taker = await makeHandler(runtime({ path, watermarkTable }))({ cluster: 'c1' });
        },
      }),
    );

    const stalled = await slow({ cluster: 'c1' }, { getRemainingTimeInMillis: () => 1000 });

    const stalledTable = stalled.clusters[0]?.tables[0];
    expect(stalledTable?.error).toMatch(/^Lost the lease on c1\/events/);
    // Its first window committed; the second object was written but its window committed by the taker.
    expect(stalledTable?.objectsWritten).toBe(2);
    expect(stalledTable?.windows).toBe(1);
    const takerTable = taker?.clusters[0]?.tables[0];
    expect(takerTable?.error).toBeUndefined();
    expect(takerTable?.objectsSkipped).toBe(1);
    expect(takerTable?.watermark).toBeDefined();
    // After the takeover, only the taker's writes were accepted.
    const takeover = accepted.findIndex((w, i) => i > 0 && w.kind === 'acquire');
    expect(new Set(accepted.slice(takeover).map((w) => w.owner)).size).toBe(1);
    expect(accepted[takeover]?.owner).not.toBe(accepted[0]?.owner);
    expect((await exportedIds(bucket)).sort((a, b) => a - b)).toEqual(ids(rows.length));
  });
});
