import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createWatermarkTable,
  type Lease,
  LeaseLostError,
  WatermarkStore,
} from '../../../../shared/export/plan/watermark-store';
import { uniqueName } from '../../../stack/fixtures';
import { startDynalite } from '../../../support/dynalite';

/**
 * The lease under real serialisation of conditional writes: DynamoDB on
 * dynalite (moto lets two conditional updates of one item that arrive together
 * both succeed, so it cannot show a race lost or won).
 */

let dynamo: DynamoDBClient;
let stop: () => Promise<void>;
let table: string;

beforeAll(async () => {
  ({ dynamo, stop } = await startDynalite());
  table = uniqueName('watermarks');
  await createWatermarkTable(dynamo, table);
});

afterAll(async () => {
  await stop();
});

async function item(cluster: string, name: string) {
  const { Item } = await dynamo.send(
    new GetItemCommand({
      TableName: table,
      Key: { cluster: { S: cluster }, table: { S: name } },
      ConsistentRead: true,
    }),
  );
  return {
    watermark: Item?.watermark?.S,
    version: Number(Item?.version?.N ?? 0),
    leaseOwner: Item?.leaseOwner?.S,
  };
}

const MINUTE = 60_000;

describe('WatermarkStore lease under serialised conditional writes (dynalite)', () => {
  it('lets exactly one of eight runs racing for a free or lapsed lease take it, every time', async () => {
    const store = new WatermarkStore(dynamo, table);
    for (let round = 0; round < 20; round++) {
      const cluster = `race-${round}`;
      // Odd rounds race for a lease that a crashed run left behind, even rounds for a table never leased.
      if (round % 2 === 1) await store.acquire(cluster, 'general_log', 'crashed', Date.now() - 1);
      const owners = Array.from({ length: 8 }, (_, i) => `run-${i}`);

      const results = await Promise.allSettled(
        owners.map((owner) => store.acquire(cluster, 'general_log', owner, Date.now() + MINUTE)),
      );

      const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      expect(won, `round ${round}`).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(LeaseLostError);
      }
      const winner = won[0] as Lease;
      expect(await item(cluster, 'general_log')).toMatchObject({
        leaseOwner: winner.owner,
        version: winner.version,
      });
    }
  });

  it('stops a run whose lease lapsed while it was writing and was taken over: no commit, renewal or release', async () => {
    let now = 1_700_000_000_000;
    const store = new WatermarkStore(dynamo, table, () => now);
    const slow = await store.acquire('lapsed', 'slow_log', 'run-a', now + MINUTE);
    // run-a writes for longer than its lease; run-b finds the lease lapsed and takes it over.
    now += 2 * MINUTE;
    const taker = await store.acquire('lapsed', 'slow_log', 'run-b', now + MINUTE);

    await expect(store.advance(slow, '2024-05-01T10:05:00.000000Z', 10, now + MINUTE)).rejects.toBeInstanceOf(
      LeaseLostError,
    );
    await expect(store.renew(slow, now + MINUTE)).rejects.toBeInstanceOf(LeaseLostError);
    await store.release(slow);

    expect(await item('lapsed', 'slow_log')).toMatchObject({
      watermark: undefined,
      leaseOwner: 'run-b',
      version: taker.version,
    });
    const advanced = await store.advance(taker, '2024-05-01T10:05:00.000000Z', 10, now + MINUTE);
    expect(advanced.version).toBe(taker.version + 1);
  });

  it("lets exactly one of a lapsed run's commit and another run's takeover win, and the winner sees the other's effect", async () => {
    let now = 1_700_000_000_000;
    const store = new WatermarkStore(dynamo, table, () => now);
    const winners = new Set<string>();
    for (let round = 0; round < 20; round++) {
      const cluster = `commit-${round}`;
      const first = await store.acquire(cluster, 'events', 'run-a', now + MINUTE);
      const before = await store.advance(first, '2024-05-01T10:00:00.000000Z', 1, now + MINUTE);
      now += 2 * MINUTE;

      // run-a commits its next window with a lapsed lease, while run-b takes the lease over; each is
      // sent first in half of the rounds.
      const commitNow = () => store.advance(before, '2024-05-01T10:05:00.000000Z', 1, now + MINUTE);
      const takeoverNow = () => store.acquire(cluster, 'events', 'run-b', now + MINUTE);
      const [commit, takeover] =
        round % 2 === 0
          ? await Promise.allSettled([commitNow(), takeoverNow()])
          : await Promise.allSettled([takeoverNow(), commitNow()]).then(([t, c]) => [c, t] as const);

      const state = await item(cluster, 'events');
      winners.add(commit.status === 'fulfilled' ? 'commit' : 'takeover');
      if (commit.status === 'fulfilled') {
        // The commit came first and renewed the lease: the takeover found it held.
        expect(takeover.status, `round ${round}`).toBe('rejected');
        expect(state).toMatchObject({ watermark: '2024-05-01T10:05:00.000000Z', leaseOwner: 'run-a' });
      } else {
        expect(commit.reason).toBeInstanceOf(LeaseLostError);
        expect(takeover.status, `round ${round}`).toBe('fulfilled');
        // The taker resumes from the last committed watermark, which the lapsed run did not move.
        expect((takeover as PromiseFulfilledResult<Lease>).value.watermark).toBe(
          '2024-05-01T10:00:00.000000Z',
        );
        expect(state).toMatchObject({ watermark: '2024-05-01T10:00:00.000000Z', leaseOwner: 'run-b' });
      }
    }
    // Both orders happened, so both outcomes were checked.
    expect([...winners].sort()).toEqual(['commit', 'takeover']);
  });

  it("lets a lapsed run's last commit (which also releases the lease) and a takeover never both count: the taker sees the commit or the commit fails", async () => {
    let now = 1_700_000_000_000;
    const store = new WatermarkStore(dynamo, table, () => now);
    const orders = new Set<string>();
    for (let round = 0; round < 20; round++) {
      const cluster = `last-commit-${round}`;
      const first = await store.acquire(cluster, 'events', 'run-a', now + MINUTE);
      const before = await store.advance(first, '2024-05-01T10:00:00.000000Z', 1, now + MINUTE);
      now += 2 * MINUTE;

      const commitNow = () => store.advanceAndRelease(before, '2024-05-01T10:05:00.000000Z', 1);
      const takeoverNow = () => store.acquire(cluster, 'events', 'run-b', now + MINUTE);
      const [commit, takeover] =
        round % 2 === 0
          ? await Promise.allSettled([commitNow(), takeoverNow()])
          : await Promise.allSettled([takeoverNow(), commitNow()]).then(([t, c]) => [c, t] as const);

      // The lease had lapsed, and a released lease is free: the takeover wins in either order.
      expect(takeover.status, `round ${round}`).toBe('fulfilled');
      const taken = (takeover as PromiseFulfilledResult<Lease>).value;
      const state = await item(cluster, 'events');
      expect(state.leaseOwner).toBe('run-b');
      expect(state.version).toBe(taken.version);
      if (commit.status === 'fulfilled') {
        // The commit came first: the taker resumes after it.
        orders.add('commit first');
        expect(taken.watermark).toBe('2024-05-01T10:05:00.000000Z');
        expect(state.watermark).toBe('2024-05-01T10:05:00.000000Z');
      } else {
        orders.add('takeover first');
        expect(commit.reason).toBeInstanceOf(LeaseLostError);
        expect(taken.watermark).toBe('2024-05-01T10:00:00.000000Z');
        expect(state.watermark).toBe('2024-05-01T10:00:00.000000Z');
      }
    }
    expect([...orders].sort()).toEqual(['commit first', 'takeover first']);
  });
});
