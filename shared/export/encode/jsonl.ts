import { redactSql } from '../masking';

/** Lines are handed on in chunks of about this many characters (gzip gathers them into its own blocks). */
export const CHUNK_CHARS = 64 * 1024;

/** One row as a source gives it: column name to value, timestamps already ISO-8601 strings. */
export type Row = Record<string, unknown>;

/** Counts what went through an encoder. */
export interface RowCounter {
  rows: number;
}

/** Masks credentials in a row's SQL text columns, in place (every format writes the row after this). */
export function maskSqlText(row: Row, columns: readonly string[]): Row {
  for (const column of columns) {
    const value = row[column];
    if (typeof value === 'string') row[column] = redactSql(value);
  }
  return row;
}

/** One row as a JSON line, its SQL text columns masked (in place). */
export function jsonLine(row: Row, redactColumns: readonly string[]): string {
  return `${JSON.stringify(maskSqlText(row, redactColumns))}\n`;
}

/**
 * Encodes rows as JSON lines, masking credentials in the SQL text columns, and
 * yields them in chunks so that one window never sits whole in memory.
 */
export async function* encodeJsonLines(
  rows: AsyncIterable<Row>,
  redactColumns: readonly string[],
  counter: RowCounter,
): AsyncGenerator<string> {
  let chunk = '';
  for await (const row of rows) {
    chunk += jsonLine(row, redactColumns);
    counter.rows += 1;
    if (chunk.length >= CHUNK_CHARS) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}

/**
 * Reads the first item, so a caller can tell an empty stream before it opens a
 * sink; the item is replayed. A consumer that stops early (a failed upload)
 * stops `items` too, so that what it holds (a query, a file on the Parquet
 * encoder thread) is given up.
 */
export async function peek<T>(items: AsyncIterable<T>): Promise<AsyncIterable<T> | undefined> {
  const iterator = items[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done) return undefined;
  return {
    async *[Symbol.asyncIterator]() {
      let done = false;
      try {
        yield first.value;
        for (;;) {
          const next = await iterator.next();
          if (next.done) {
            done = true;
            return;
          }
          yield next.value;
        }
      } finally {
        if (!done) await iterator.return?.();
      }
    },
  };
}

/** Rows in arrays of up to `size` (none empty), for consumers that take arrays. */
export async function* inBatches<T>(items: AsyncIterable<T>, size = 1000): AsyncGenerator<T[]> {
  let batch: T[] = [];
  for await (const item of items) {
    batch.push(item);
    if (batch.length >= size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}
