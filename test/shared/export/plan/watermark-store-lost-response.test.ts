import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { type Lease, LeaseLostError, WatermarkStore } from '../../../../shared/export/plan/watermark-store';
import { createWatermarkTable, readWatermark } from '../support';

/**
 * Writes whose answer is lost after DynamoDB (moto) applied them: the real SDK client, with a middleware
 * that lets one UpdateItem reach the server and then fails the attempt with a reset connection, so that
 * the SDK's own retry sends the same request again.
 */

interface Attempt {
  body: string;
  /** What the server answered to an attempt whose answer was lost: `applied` or the error's name. */
  lost?: string;
}

function clientThatLosesAnAnswer() {
  const client = new DynamoDBClient({ maxAttempts: 3 });
  const attempts: Attempt[] = [];
  let armed: { meanwhile?: () => Promise<unknown> } | undefined;
  let recording = false;
  // Ahead of the deserializer (priority high): a refused attempt shows as ConditionalCheckFailedException.
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'UpdateItemCommand' || !recording) return next(args);
      const attempt: Attempt = { body: String((args.request as { body?: unknown }).body) };
      attempts.push(attempt);
      const lose = armed;
      if (!lose) return next(args);
      armed = undefined;
      attempt.lost = await next(args).then(
        () => 'applied',
        (error: Error) => error.name,
      );
      // Writes of other runs in the meantime are not attempts of this request.
      recording = false;
      await lose.meanwhile?.();
      recording = true;
      throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    },
    { step: 'deserialize', priority: 'high', name: 'loseAnAnswer' },
  );
  return {
    client,
    /** The UpdateItem attempts sent since the last `loseNextAnswer`. */
    attempts,
    /** Loses the answer of the next UpdateItem; `meanwhile` runs before the SDK retries it. */
    loseNextAnswer(meanwhile?: () => Promise<unknown>) {
      armed = { meanwhile };
      recording = true;
      attempts.length = 0;
    },
  };
}

const MINUTE = 60_000;
const W1 = '2024-05-01T10:05:00.000000Z';
const W2 = '2024-05-01T10:10:00.000000Z';
const W3 = '2024-05-01T10:15:00.000000Z';
const BATCH = {
  lo: '2024-05-01T10:05:00.000000Z',
  hi: '2024-05-01T10:10:00.000000Z',
  windowMinutes: 5,
  ranges: [{ rows: 16, fingerprint: 'f'.repeat(64), from: 0, to: 40 }],
};

let clients: DynamoDBClient[] = [];
afterEach(() => {
  for (const client of clients) client.destroy();
  clients = [];
});

/** A store on a fresh table, through a client that can lose an answer. */
async function losingStore(now?: () => number) {
  const losing = clientThatLosesAnAnswer();
  clients.push(losing.client);
  const table = await createWatermarkTable();
  return { losing, table, store: new WatermarkStore(losing.client, table, now) };
}

/** A store on the losing client, holding a lease on a fresh item that has one window committed (W1, 2 rows). */
async function storeWithLease() {
  const { losing, table, store } = await losingStore();
  const first = await store.acquire('c1', 'events', 'run-a', Date.now() + MINUTE);
  const lease = await store.advance(first, W1, 2, Date.now() + MINUTE);
  return { ...losing, table, store, lease };
}

/**
 * Run-a's lease with one window committed (W1, 2 rows), two minutes later: lapsed, for another run to take.
 * The store's clock is `clock.now`.
 */
async function lapsedRun() {
  const clock = { now: 1_700_000_000_000 };
  const { losing, table, store } = await losingStore(() => clock.now);
  const lapsed = await store.advance(
    await store.acquire('c1', 'events', 'run-a', clock.now + MINUTE),
    W1,
    2,
    clock.now + MINUTE,
  );
  clock.now += 2 * MINUTE;
  return { losing, table, store, lapsed, clock };
}

/** The lost attempt was applied, and the SDK sent the very same request once more. */
function expectOneRetryOfAnAppliedWrite(attempts: Attempt[]) {
  expect(attempts).toHaveLength(2);
  expect(attempts[0]?.lost).toBe('applied');
  expect(attempts[1]?.body).toBe(attempts[0]?.body);
}

describe('WatermarkStore when the answer to an applied write is lost and the SDK retries it', () => {
  it('advance succeeds with one increment of version and rows, and its lease makes the next commit', async () => {
    const { store, lease, table, attempts, loseNextAnswer } = await storeWithLease();
    loseNextAnswer();

    const advanced = await store.advance(lease, W2, 5, Date.now() + MINUTE);

    expectOneRetryOfAnAppliedWrite(attempts);
    expect(advanced).toEqual({ ...lease, version: lease.version + 1, watermark: W2 });
    expect(await readWatermark(table, 'c1', 'events')).toEqual({
      watermark: W2,
      version: lease.version + 1,
      rowsExported: 7,
      leaseOwner: 'run-a',
    });
    await store.advanceAndRelease(advanced, W3, 1);
    expect(await readWatermark(table, 'c1', 'events')).toMatchObject({ watermark: W3, rowsExported: 8 });
  });

  it('advanceAndRelease succeeds once, although the retry finds the lease released', async () => {
    const { store, lease, table, attempts, loseNextAnswer } = await storeWithLease();
    loseNextAnswer();

    await store.advanceAndRelease(lease, W2, 5);

    expectOneRetryOfAnAppliedWrite(attempts);
    expect(await readWatermark(table, 'c1', 'events')).toEqual({
      watermark: W2,
      version: lease.version + 1,
      rowsExported: 7,
      leaseOwner: undefined,
    });
  });

  it('advanceAndRelease succeeds when another run takes the released lease before the retry', async () => {
    const { store, lease, table, attempts, loseNextAnswer } = await storeWithLease();
    let taken: Lease | undefined;
    loseNextAnswer(async () => {
      taken = await store.acquire('c1', 'events', 'run-b', Date.now() + MINUTE);
    });

    await store.advanceAndRelease(lease, W2, 5);

    expectOneRetryOfAnAppliedWrite(attempts);
    expect(taken).toMatchObject({ owner: 'run-b', watermark: W2, version: lease.version + 2 });
    expect(await readWatermark(table, 'c1', 'events')).toEqual({
      watermark: W2,
      version: lease.version + 2,
      rowsExported: 7,
      leaseOwner: 'run-b',
    });
  });

  it('begin succeeds with one increment of version, and its lease makes the batch commit', async () => {
    const { store, lease, table, attempts, loseNextAnswer } = await storeWithLease();
    loseNextAnswer();

    const begun = await store.begin(lease, BATCH, Date.now() + MINUTE);

    expectOneRetryOfAnAppliedWrite(attempts);
    expect(begun).toEqual({ ...lease, version: lease.version + 1, pending: BATCH });
    expect(await readWatermark(table, 'c1', 'events')).toMatchObject({ version: lease.version + 1 });
    const cursor = [{ rows: 16, fingerprint: 'f'.repeat(64), position: 40 }];
    await store.advanceAndRelease(begun, W2, 40, cursor);
    const next = await store.acquire('c1', 'events', 'run-b', Date.now() + MINUTE);
    expect(next).toMatchObject({ watermark: W2, cursor, pending: undefined, version: lease.version + 3 });
  });

  it('renew succeeds with one increment of version, and its lease makes the next commit', async () => {
    const { store, lease, table, attempts, loseNextAnswer } = await storeWithLease();
    loseNextAnswer();

    const renewed = await store.renew(lease, Date.now() + 2 * MINUTE);

    expectOneRetryOfAnAppliedWrite(attempts);
    expect(renewed).toEqual({ ...lease, version: lease.version + 1 });
    expect(await readWatermark(table, 'c1', 'events')).toMatchObject({
      version: lease.version + 1,
      watermark: W1,
    });
    const advanced = await store.advance(renewed, W2, 1, Date.now() + MINUTE);
    expect(advanced.version).toBe(lease.version + 2);
  });

  it('acquire succeeds as it is: the retry passes as the lease owner and bumps version once more', async () => {
    const { losing, table, store } = await losingStore();
    losing.loseNextAnswer();

    const lease = await store.acquire('c1', 'events', 'run-a', Date.now() + MINUTE);

    expectOneRetryOfAnAppliedWrite(losing.attempts);
    // Both attempts were applied: the lease carries the version they left, so it commits.
    expect(lease).toMatchObject({ owner: 'run-a', version: 2 });
    expect(await readWatermark(table, 'c1', 'events')).toMatchObject({ version: 2, leaseOwner: 'run-a' });
    await store.advanceAndRelease(lease, W1, 3);
    expect(await readWatermark(table, 'c1', 'events')).toMatchObject({ watermark: W1, version: 3 });
  });
});

describe('WatermarkStore with a lost answer around a lease that is genuinely lost', () => {
  it('refuses the commit of a run whose lease was taken over and committed to: the token is not its own', async () => {
    const { losing, table, store, lapsed, clock } = await lapsedRun();
    const now = clock.now;
    const taker = await store.advance(
      await store.acquire('c1', 'events', 'run-b', now + MINUTE),
      W2,
      3,
      now + MINUTE,
    );
    losing.loseNextAnswer();

    await expect(store.advance(lapsed, W2, 5, now + MINUTE)).rejects.toBeInstanceOf(LeaseLostError);

    expect(losing.attempts.map((a) => a.lost)).toEqual(['ConditionalCheckFailedException', undefined]);
    expect(await readWatermark(table, 'c1', 'events')).toEqual({
      watermark: W2,
      version: taker.version,
      rowsExported: 5,
      leaseOwner: 'run-b',
    });
  });

  it("refuses the last commit of a run whose lease was taken over, though the item still carries that run's previous token", async () => {
    const { losing, table, store, lapsed, clock } = await lapsedRun();
    const now = clock.now;
    // An acquire writes no token: the item's lastWrite is still run-a's advance.
    const taker = await store.acquire('c1', 'events', 'run-b', now + MINUTE);
    losing.loseNextAnswer();

    await expect(store.advanceAndRelease(lapsed, W2, 5)).rejects.toBeInstanceOf(LeaseLostError);

    expect(losing.attempts.map((a) => a.lost)).toEqual(['ConditionalCheckFailedException', undefined]);
    expect(await readWatermark(table, 'c1', 'events')).toEqual({
      watermark: W1,
      version: taker.version,
      rowsExported: 2,
      leaseOwner: 'run-b',
    });
  });

  it("refuses a window the watermark is already past, though the item carries the same run's previous token", async () => {
    const { store, lease, table, attempts, loseNextAnswer } = await storeWithLease();
    const advanced = await store.advance(lease, W3, 1, Date.now() + MINUTE);
    loseNextAnswer();

    await expect(store.advance(advanced, W2, 5, Date.now() + MINUTE)).rejects.toBeInstanceOf(LeaseLostError);

    expect(attempts.map((a) => a.lost)).toEqual(['ConditionalCheckFailedException', undefined]);
    expect(await readWatermark(table, 'c1', 'events')).toEqual({
      watermark: W3,
      version: advanced.version,
      rowsExported: 3,
      leaseOwner: 'run-a',
    });
  });

  it('refuses an acquire while another run holds the lease', async () => {
    const { losing, table, store } = await losingStore();
    const held = await store.acquire('c1', 'events', 'run-b', Date.now() + MINUTE);
    losing.loseNextAnswer();

    await expect(store.acquire('c1', 'events', 'run-a', Date.now() + MINUTE)).rejects.toBeInstanceOf(
      LeaseLostError,
    );

    expect(losing.attempts.map((a) => a.lost)).toEqual(['ConditionalCheckFailedException', undefined]);
    expect(await readWatermark(table, 'c1', 'events')).toMatchObject({
      version: held.version,
      leaseOwner: 'run-b',
    });
  });
});
