import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { LeaseLostError, WatermarkStore } from '../../../../shared/export/plan/watermark-store';
import { createWatermarkTable, dynamo, readWatermark } from '../support';

describe('WatermarkStore against the DynamoDB emulator', () => {
  it('refuses a second lease while the first holds, and lets the owner renew it', async () => {
    const store = new WatermarkStore(dynamo, await createWatermarkTable());
    const until = Date.now() + 60_000;
    const lease = await store.acquire('c1', 'general_log', 'run-a', until);

    await expect(store.acquire('c1', 'general_log', 'run-b', until)).rejects.toBeInstanceOf(LeaseLostError);
    const renewed = await store.renew(lease, until + 1000);

    expect(renewed.version).toBe(lease.version + 1);
  });

  it('lets a lapsed lease be taken over, after which the old owner can neither advance nor release it', async () => {
    const table = await createWatermarkTable();
    const store = new WatermarkStore(dynamo, table);
    const crashed = await store.acquire('c1', 'slow_log', 'run-a', Date.now() - 1);
    const taker = await store.acquire('c1', 'slow_log', 'run-b', Date.now() + 60_000);

    await expect(
      store.advance(crashed, '2024-05-01T10:05:00.000000Z', 10, Date.now() + 60_000),
    ).rejects.toBeInstanceOf(LeaseLostError);
    await store.release(crashed);

    expect(await readWatermark(table, 'c1', 'slow_log')).toMatchObject({
      leaseOwner: 'run-b',
      watermark: undefined,
    });
    const advanced = await store.advance(taker, '2024-05-01T10:05:00.000000Z', 10, Date.now() + 60_000);
    await store.release(advanced);
    expect(await readWatermark(table, 'c1', 'slow_log')).toMatchObject({
      watermark: '2024-05-01T10:05:00.000000Z',
      rowsExported: 10,
      leaseOwner: undefined,
    });
  });

  it('never moves a watermark backwards', async () => {
    const table = await createWatermarkTable();
    const store = new WatermarkStore(dynamo, table);
    let lease = await store.acquire('c1', 'events', 'run-a', Date.now() + 60_000);
    lease = await store.advance(lease, '2024-05-01T10:10:00.000000Z', 1, Date.now() + 60_000);

    await expect(
      store.advance(lease, '2024-05-01T10:05:00.000000Z', 1, Date.now() + 60_000),
    ).rejects.toBeInstanceOf(LeaseLostError);

    expect((await readWatermark(table, 'c1', 'events'))?.watermark).toBe('2024-05-01T10:10:00.000000Z');
  });

  it("gives the lease up in the run's last commit: one write moves the watermark, clears the lease and bumps the version", async () => {
    const table = await createWatermarkTable();
    const store = new WatermarkStore(dynamo, table);
    let lease = await store.acquire('c1', 'events', 'run-a', Date.now() + 60_000);
    lease = await store.advance(lease, '2024-05-01T10:05:00.000000Z', 2, Date.now() + 60_000);

    await store.advanceAndRelease(lease, '2024-05-01T10:10:00.000000Z', 3);

    const { Item } = await dynamo.send(
      new GetItemCommand({ TableName: table, Key: { cluster: { S: 'c1' }, table: { S: 'events' } } }),
    );
    expect(Item?.leaseOwner).toBeUndefined();
    expect(Item?.leaseUntil).toBeUndefined();
    expect(await readWatermark(table, 'c1', 'events')).toMatchObject({
      watermark: '2024-05-01T10:10:00.000000Z',
      rowsExported: 5,
      version: lease.version + 1,
    });
    // The lease it held is spent: no further commit with it; another run takes the table at once.
    await expect(
      store.advance(lease, '2024-05-01T10:15:00.000000Z', 1, Date.now() + 60_000),
    ).rejects.toBeInstanceOf(LeaseLostError);
    const next = await store.acquire('c1', 'events', 'run-b', Date.now() + 60_000);
    expect(next.watermark).toBe('2024-05-01T10:10:00.000000Z');
  });

  it('stores the cursor and clears the pending batch in the last commit of a batch read by position', async () => {
    const table = await createWatermarkTable();
    const store = new WatermarkStore(dynamo, table);
    const cursor = [{ rows: 16, fingerprint: 'f'.repeat(64), position: 40 }];
    let lease = await store.acquire('c1', 'general_log', 'run-a', Date.now() + 60_000);
    lease = await store.begin(
      lease,
      {
        lo: '2024-05-01T10:00:00.000000Z',
        hi: '2024-05-01T10:05:00.000000Z',
        windowMinutes: 5,
        ranges: [{ rows: 16, fingerprint: 'f'.repeat(64), from: 0, to: 40 }],
      },
      Date.now() + 60_000,
    );

    await store.advanceAndRelease(lease, '2024-05-01T10:05:00.000000Z', 40, cursor);

    const taken = await store.acquire('c1', 'general_log', 'run-b', Date.now() + 60_000);
    expect(taken).toMatchObject({ watermark: '2024-05-01T10:05:00.000000Z', cursor, pending: undefined });
  });

  it('refuses the last commit of a run whose lease was taken over, leaving the watermark and the new lease alone', async () => {
    const table = await createWatermarkTable();
    const store = new WatermarkStore(dynamo, table);
    const lapsed = await store.acquire('c1', 'events', 'run-a', Date.now() - 1);
    const taker = await store.acquire('c1', 'events', 'run-b', Date.now() + 60_000);

    await expect(store.advanceAndRelease(lapsed, '2024-05-01T10:05:00.000000Z', 1)).rejects.toBeInstanceOf(
      LeaseLostError,
    );

    expect(await readWatermark(table, 'c1', 'events')).toMatchObject({
      watermark: undefined,
      leaseOwner: 'run-b',
      version: taker.version,
    });
  });
});
