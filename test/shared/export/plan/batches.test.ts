import { describe, expect, it } from 'vitest';
import { batchWindows, WindowedRows } from '../../../../shared/export/plan/batches';
import { planWindows } from '../../../../shared/export/plan/planner';
import type { Row } from '../../../../shared/export/sources/session';
import { toMicros } from '../../../../shared/export/sources/time';

const windowsOf = (windowMinutes: number, hours: number) =>
  planWindows({
    dbNow: '2024-05-01T12:00:00Z',
    lagSeconds: 0,
    windowMinutes,
    initialLookbackHours: hours,
  });

describe('batchWindows', () => {
  it('keeps one window per batch unless the table is read whole', () => {
    const windows = windowsOf(5, 2);
    expect(batchWindows(windows, false)).toEqual(windows.map((w) => [w]));
  });

  it('groups consecutive windows into batches spanning an hour at most', () => {
    const windows = windowsOf(5, 3);
    const batches = batchWindows(windows, true);
    expect(batches).toHaveLength(3);
    expect(batches.map((b) => b.length)).toEqual([12, 12, 12]);
    expect(batches.flat()).toEqual(windows);
    expect(batches[1]?.[0]?.lo).toBe('2024-05-01T10:00:00.000000Z');
  });

  it('reads windows of an hour or more one by one, and starts a new batch after a gap', () => {
    expect(batchWindows(windowsOf(60, 3), true).map((b) => b.length)).toEqual([1, 1, 1]);
    const gap = [
      { lo: '2024-05-01T10:00:00.000000Z', hi: '2024-05-01T10:05:00.000000Z' },
      { lo: '2024-05-01T10:10:00.000000Z', hi: '2024-05-01T10:15:00.000000Z' },
    ];
    expect(batchWindows(gap, true).map((b) => b.length)).toEqual([1, 1]);
  });
});

/** Rows with an `at` column, and a record of how far the source was read and whether it was stopped. */
function source(times: string[]) {
  const state = { read: 0, stopped: false };
  async function* rows(): AsyncGenerator<Row> {
    try {
      for (const [id, at] of times.entries()) {
        state.read += 1;
        yield { id, at };
      }
    } finally {
      state.stopped = true;
    }
  }
  return { rows: rows(), state };
}

async function collect(rows: AsyncIterable<Row>): Promise<unknown[]> {
  const ids: unknown[] = [];
  for await (const row of rows) ids.push(row.id);
  return ids;
}

const at = (time: string) => toMicros(`2024-05-01T${time}Z`);

describe('WindowedRows', () => {
  it('hands out each window its rows, a row on a bound going to the later window, and empty windows empty', async () => {
    const { rows } = source([
      '2024-05-01T10:00:00.000000Z',
      '2024-05-01T10:04:59.999999Z',
      '2024-05-01T10:05:00.000000Z',
      '2024-05-01T10:14:00.5Z',
    ]);
    const windowed = new WindowedRows(rows, 'at');
    expect(await collect(windowed.within(at('10:00:00'), at('10:05:00')))).toEqual([0, 1]);
    expect(await collect(windowed.within(at('10:05:00'), at('10:10:00')))).toEqual([2]);
    expect(await collect(windowed.within(at('10:10:00'), at('10:12:00')))).toEqual([]);
    expect(await collect(windowed.within(at('10:12:00'), at('10:15:00')))).toEqual([3]);
    expect(await collect(windowed.within(at('10:15:00'), at('10:20:00')))).toEqual([]);
  });

  it('skips the rows of a window and goes on with the next', async () => {
    const { rows } = source(['2024-05-01T10:01:00Z', '2024-05-01T10:02:00Z', '2024-05-01T10:06:00Z']);
    const windowed = new WindowedRows(rows, 'at');
    await windowed.skip(at('10:00:00'), at('10:05:00'));
    expect(await collect(windowed.within(at('10:05:00'), at('10:10:00')))).toEqual([2]);
  });

  it('refuses a row before its window (rows out of order) and a row whose event time is not a timestamp', async () => {
    // A row earlier than the one before it: the query's order is not the event time's.
    const unordered = new WindowedRows(source(['2024-05-01T10:06:00Z', '2024-05-01T10:01:00Z']).rows, 'at');
    await expect(collect(unordered.within(at('10:05:00'), at('10:10:00')))).rejects.toThrow(
      /lies before its window/,
    );
    const behind = new WindowedRows(source(['2024-05-01T10:01:00Z']).rows, 'at');
    await expect(collect(behind.within(at('10:05:00'), at('10:10:00')))).rejects.toThrow(
      /lies before its window/,
    );
    const bad = new WindowedRows(source(['yesterday']).rows, 'at');
    await expect(collect(bad.within(at('10:00:00'), at('10:05:00')))).rejects.toThrow(/not a timestamp/);
  });

  it('stops the query on close, leaving the rest of the rows unread', async () => {
    const { rows, state } = source(['2024-05-01T10:01:00Z', '2024-05-01T10:06:00Z', '2024-05-01T10:07:00Z']);
    const windowed = new WindowedRows(rows, 'at');
    expect(await collect(windowed.within(at('10:00:00'), at('10:05:00')))).toEqual([0]);
    await windowed.close();
    expect(state).toEqual({ read: 2, stopped: true });
  });
});
