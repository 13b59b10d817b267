import type { Socket } from 'node:net';
import type { Connection as CallbackConnection } from 'mysql2';
import type { Connection } from 'mysql2/promise';
import { type ConnectionTarget, classify, connectMysql } from '../../../db/connect';
import type { Logger } from '../../../log';
import { CHUNK_CHARS, jsonLine } from '../../encode/jsonl';
import { ChunkQueue } from '../chunk-queue';
import type { ColumnSpec } from '../columns';
import {
  ConnectionGuard,
  connectionLost,
  DEFAULT_READ_TIMEOUT_MS,
  type SessionOptions,
} from '../connection-guard';
import type { DatabaseSession, Row, SqlDialect } from '../session';
import { isoFromDatabase, sqlTimestamp } from '../time';
import { BINARY_CHARSET, type MysqlField, mysqlTypeName } from './column-types';

/** Column types (protocol codes) of TIMESTAMP and DATETIME, and of strings that may be binary. */
const TIMESTAMP_TYPES = new Set([7, 12, 17, 18]);
const BYTES_TYPES = new Set([249, 250, 251, 252, 253, 254]);
/** Rows per array of `batches`: a promise per thousand rows costs nothing next to the rows. */
const BATCH_ROWS = 1000;

interface ColumnDefinition {
  name: string;
  columnType: number;
  characterSet: number;
}

/**
 * Per-row fix-ups decided once from the result's column definitions:
 * timestamps leave as ISO-8601 UTC strings at the column's precision (the
 * session runs in UTC and mysql2 hands them over as text), and binary columns
 * holding text, such as MySQL's general_log.argument, leave as UTF-8. Doing
 * this per column rather than through mysql2's typeCast callback keeps
 * mysql2's generated row parser on its fast path.
 */
function rowConverter(fields: readonly ColumnDefinition[]): ((row: Row) => void) | undefined {
  const timestamps = fields.filter((f) => TIMESTAMP_TYPES.has(f.columnType)).map((f) => f.name);
  const binaries = fields
    .filter((f) => BYTES_TYPES.has(f.columnType) && f.characterSet === BINARY_CHARSET)
    .map((f) => f.name);
  if (timestamps.length === 0 && binaries.length === 0) return undefined;
  return (row) => {
    for (const name of timestamps) {
      const value = row[name];
      if (typeof value === 'string') row[name] = isoFromDatabase(value);
    }
    for (const name of binaries) {
      const value = row[name];
      if (Buffer.isBuffer(value)) row[name] = value.toString('utf8');
    }
  };
}

export const mysqlDialect: SqlDialect = {
  quote: (identifier) => `\`${identifier.replaceAll('`', '``')}\``,
  timestamp: (micros) => `'${sqlTimestamp(micros)}'`,
};

/**
 * A MySQL / MariaDB session in UTC, streaming through mysql2's row stream.
 * Every read is bounded: a dropped connection fails it at once, a silent
 * server after the read timeout (see connection-guard.ts).
 */
export class MysqlSession implements DatabaseSession {
  readonly dialect = mysqlDialect;
  private readonly guard: ConnectionGuard;

  private constructor(
    private readonly connection: Connection,
    private readonly target: ConnectionTarget,
    private readonly purpose: string,
    readTimeoutMs: number,
  ) {
    const core = this.core();
    this.guard = new ConnectionGuard(core.stream, readTimeoutMs);
    // mysql2 reports a lost connection to the connection, not to a streaming query: the guard passes it on.
    core.on('error', (error: Error) => this.guard.fail(connectionLost(error)));
  }

  static async open(
    target: ConnectionTarget,
    logger: Logger,
    purpose: string,
    options: SessionOptions = {},
  ): Promise<MysqlSession> {
    const connection = await connectMysql(
      target,
      { dateStrings: true, timezone: 'Z', supportBigNumbers: true, charset: 'utf8mb4' },
      { logger, purpose },
    );
    const session = new MysqlSession(
      connection,
      target,
      purpose,
      options.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS,
    );
    try {
      await session.scalar("SET time_zone = '+00:00'");
    } catch (error) {
      await session.close();
      throw error;
    }
    return session;
  }

  async now(): Promise<string> {
    return isoFromDatabase(String(await this.scalar('SELECT UTC_TIMESTAMP(6)')));
  }

  async scalar(sql: string): Promise<unknown> {
    try {
      const [rows] = await this.guard.during(this.connection.query({ sql, rowsAsArray: true }));
      return Array.isArray(rows) ? (rows[0] as unknown[] | undefined)?.[0] : undefined;
    } catch (error) {
      throw classify(error, this.target, { purpose: this.purpose });
    }
  }

  async relationExists(schema: string, table: string): Promise<boolean> {
    const found = await this.scalar(
      `SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${quoteString(schema)} AND TABLE_NAME = ${quoteString(table)}`,
    );
    return Number(found) > 0;
  }

  /** The result columns of `sql` with their DDL types, from a query that stops before its first row. */
  async describe(sql: string): Promise<ColumnSpec[]> {
    try {
      const [, fields] = await this.guard.during(
        this.connection.query({ sql: `SELECT * FROM (${sql}) AS described LIMIT 0` }),
      );
      return (fields as unknown as MysqlField[]).map((f) => ({ name: f.name, type: mysqlTypeName(f) }));
    } catch (error) {
      throw classify(error, this.target, { purpose: this.purpose });
    }
  }

  async *stream(sql: string): AsyncIterable<Row> {
    const query = this.core().query({ sql });
    let convert: ((row: Row) => void) | undefined;
    query.on('fields', (fields: ColumnDefinition[]) => {
      convert = rowConverter(fields);
    });
    const rows = query.stream({ objectMode: true, highWaterMark: 256 });
    // A connection lost after the last row has arrived takes nothing from this result.
    let received = false;
    query.on('end', () => {
      received = true;
    });
    const done = this.guard.watch((error) => {
      if (!received) rows.destroy(error);
    });
    try {
      for await (const row of rows) {
        convert?.(row as Row);
        yield row as Row;
      }
    } catch (error) {
      throw classify(error, this.target, { purpose: this.purpose });
    } finally {
      done();
    }
  }

  /**
   * The fast path: rows are JSON-encoded as mysql2 parses them, in its row
   * events, and handed on in chunks, without a stream or a promise per row;
   * the socket is paused while a few chunks wait. The bytes are those of
   * `stream` encoded line by line, masking included: the same rows, the same
   * encoder.
   */
  async jsonLines(
    sql: string,
    counter: { rows: number },
    redactColumns: readonly string[],
  ): Promise<AsyncIterable<Uint8Array>> {
    return this.encodedRows(sql, counter, redactColumns);
  }

  /** `stream`'s rows in arrays of up to BATCH_ROWS, built in mysql2's row events: no promise per row. */
  async *batches(sql: string): AsyncIterable<Row[]> {
    let batch: Row[] = [];
    yield* this.produce<Row[]>(
      sql,
      (row) => {
        batch.push(row);
        if (batch.length < BATCH_ROWS) return undefined;
        const full = batch;
        batch = [];
        return full;
      },
      () => (batch.length > 0 ? batch : undefined),
    );
  }

  private encodedRows(
    sql: string,
    counter: { rows: number },
    redactColumns: readonly string[],
  ): AsyncIterable<Uint8Array> {
    let lines = '';
    return this.produce<Buffer>(
      sql,
      (row) => {
        lines += jsonLine(row, redactColumns);
        counter.rows += 1;
        if (lines.length < CHUNK_CHARS) return undefined;
        const chunk = Buffer.from(lines, 'utf8');
        lines = '';
        return chunk;
      },
      () => (lines ? Buffer.from(lines, 'utf8') : undefined),
    );
  }

  /**
   * Runs `sql` and hands its rows (converted as `stream` converts them) to
   * `take`, in mysql2's row events; what `take` returns, and what `last`
   * returns at the end, is yielded. The socket is paused while a few chunks wait.
   */
  private async *produce<T>(
    sql: string,
    take: (row: Row) => T | undefined,
    last: () => T | undefined,
  ): AsyncIterable<T> {
    const core = this.core();
    const queue = new ChunkQueue<T>(
      () => core.pause(),
      () => core.resume(),
    );
    let convert: ((row: Row) => void) | undefined;
    const query = core.query({ sql });
    query.on('fields', (fields: ColumnDefinition[]) => {
      convert = rowConverter(fields);
    });
    query.on('result', (row: Row) => {
      if (queue.done) return;
      let chunk: T | undefined;
      try {
        convert?.(row);
        chunk = take(row);
      } catch (error) {
        queue.fail(error);
        return;
      }
      if (chunk !== undefined) queue.push(chunk);
    });
    query.on('end', () => {
      if (queue.done) return;
      try {
        const chunk = last();
        if (chunk !== undefined) queue.push(chunk);
        queue.end();
      } catch (error) {
        queue.fail(error);
      }
    });
    query.on('error', (error: unknown) => queue.fail(error));
    // A connection lost after the last row has arrived takes nothing from this result.
    const done = this.guard.watch((error) => {
      if (!queue.done) queue.fail(error);
    });
    try {
      yield* queue.drain();
    } catch (error) {
      throw classify(error, this.target, { purpose: this.purpose });
    } finally {
      done();
    }
  }

  /** The promise API has no streams; its wrapped callback connection does. */
  private core(): CallbackConnection & { stream: Socket } {
    return (this.connection as unknown as { connection: CallbackConnection & { stream: Socket } }).connection;
  }

  async close(): Promise<void> {
    // A stream stopped half-way leaves unread rows on the wire: drop the socket rather than drain them.
    this.connection.destroy();
  }
}

function quoteString(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}
