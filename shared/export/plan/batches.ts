import { ExportError } from '../../errors';
import type { Row } from '../sources/session';
import { hours, parseTimestamp, toMicros } from '../sources/time';
import type { Window } from './planner';

/**
 * Reading several windows with one query, for tables whose every query reads
 * the whole source: the windows of a batch share one ordered query, and its
 * rows are split at the window bounds into one object per window as before.
 */

/** The longest span one query covers: a deadline stop leaves at most this much unread. */
const BATCH_SPAN = hours(1);

/**
 * Groups consecutive windows into batches read by one query each: up to an
 * hour of windows for a full-scan table, one window otherwise.
 */
export function batchWindows(windows: readonly Window[], fullScan: boolean): Window[][] {
  const batches: Window[][] = [];
  for (const window of windows) {
    const batch = batches.at(-1);
    if (
      fullScan &&
      batch &&
      batch.at(-1)?.hi === window.lo &&
      toMicros(window.hi) - toMicros((batch[0] as Window).lo) <= BATCH_SPAN
    ) {
      batch.push(window);
    } else {
      batches.push([window]);
    }
  }
  return batches;
}

/** The rows of one ordered query, handed out window by window by their event time. */
export class WindowedRows {
  private readonly iterator: AsyncIterator<Row>;
  /** The row read ahead, which belongs to a later window than the one asked for. */
  private next: { row: Row; at: number } | undefined;
  private done = false;

  constructor(
    rows: AsyncIterable<Row>,
    private readonly column: string,
  ) {
    this.iterator = rows[Symbol.asyncIterator]();
  }

  /** The rows in `[lo, hi)`; windows must be asked for in order, and a row before `lo` is an error. */
  async *within(lo: number, hi: number): AsyncGenerator<Row> {
    for (;;) {
      if (!this.next) {
        if (this.done) return;
        const result = await this.iterator.next();
        if (result.done) {
          this.done = true;
          return;
        }
        this.next = { row: result.value, at: this.eventTime(result.value) };
      }
      if (this.next.at >= hi) return;
      if (this.next.at < lo) {
        throw new ExportError(
          `A row's ${this.column} lies before its window: the query does not return rows in ${this.column} order`,
        );
      }
      const { row } = this.next;
      this.next = undefined;
      yield row;
    }
  }

  /** Passes over the rows in `[lo, hi)` (their object exists already). */
  async skip(lo: number, hi: number): Promise<void> {
    for await (const _ of this.within(lo, hi));
  }

  /** Stops the query (rows not read yet are dropped). */
  async close(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.iterator.return?.();
    }
  }

  private eventTime(row: Row): number {
    const value = row[this.column];
    const at = typeof value === 'string' ? parseTimestamp(value) : undefined;
    if (at === undefined) {
      throw new ExportError(
        `The ${this.column} column of a row is not a timestamp; it places rows in windows`,
      );
    }
    return at;
  }
}
