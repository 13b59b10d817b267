/**
 * The rows measured: bench:export's general_log-like rows (id, event_time,
 * user_host, thread_id, server_id, command_type, argument) plus two slow_log
 * columns (query_time as seconds, rows_examined), as a session hands them to
 * the encoder: timestamps as ISO-8601 text with microseconds, integers as
 * numbers, text as strings. Made on the fly, so that holding them costs nothing.
 */
import type { ParquetColumn } from '../../shared/export/encode/parquet-types';
import { parquetTypeOf } from '../../shared/export/encode/parquet-types';
import type { Row } from './common';

export const BENCH_COLUMNS: readonly ParquetColumn[] = [
  ['id', 'bigint'],
  ['event_time', 'timestamp(6)'],
  ['user_host', 'mediumtext'],
  ['thread_id', 'bigint'],
  ['server_id', 'int'],
  ['command_type', 'varchar(64)'],
  ['argument', 'mediumtext'],
  ['query_time', 'double precision'],
  ['rows_examined', 'int'],
].map(([name, type]) => ({ name: name as string, type: parquetTypeOf(type as string) }));

const DAY = '2024-03-01';
const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** `count` rows spread over one day, in event-time order (as bench:export loads them). */
export async function* benchRows(count: number): AsyncIterable<Row> {
  for (let i = 1; i <= count; i++) {
    const micros = Math.floor((i * 86_000_000_000) / count);
    const second = Math.floor(micros / 1_000_000);
    const time = `${pad(Math.floor(second / 3600))}:${pad(Math.floor(second / 60) % 60)}:${pad(second % 60)}`;
    yield {
      id: i,
      event_time: `${DAY}T${time}.${pad(micros % 1_000_000, 6)}Z`,
      user_host: 'app[app] @ 10.0.0.1 [10.0.0.1]',
      thread_id: i % 5000,
      server_id: 1,
      command_type: 'Query',
      argument: `SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.created_at > NOW() - INTERVAL 1 DAY AND c.id = ${i}`,
      query_time: (i % 1000) * 0.000123,
      rows_examined: i % 100_000,
    };
  }
}
