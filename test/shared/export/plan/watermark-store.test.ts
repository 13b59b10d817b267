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
});
