import type { Connection as CallbackConnection } from 'mysql2';
import type { Connection, ConnectionOptions } from 'mysql2/promise';
import { type ConnectionTarget, classify, connectMysql } from '../db/connect';
import type { Logger } from '../log';
import type { DatabaseSession, Row, SqlDialect } from './session';
import { isoFromDatabase, sqlTimestamp } from './time';

type TypeCast = Extract<NonNullable<ConnectionOptions['typeCast']>, (...args: never[]) => unknown>;
type Field = Parameters<TypeCast>[0];
type Next = Parameters<TypeCast>[1];

const TIMESTAMP_TYPES = new Set(['TIMESTAMP', 'TIMESTAMP2', 'DATETIME', 'DATETIME2']);
const BYTES_TYPES = new Set(['TINY_BLOB', 'MEDIUM_BLOB', 'LONG_BLOB', 'BLOB', 'VAR_STRING', 'STRING']);

/**
 * Timestamps leave as ISO-8601 UTC strings at the column's precision (the session
 * runs in UTC and mysql2 hands them over as text); binary columns holding text,
 * such as MySQL's general_log.argument, leave as UTF-8.
 */
function typeCast(field: Field, next: Next): unknown {
  if (TIMESTAMP_TYPES.has(field.type)) {
    const text = field.string();
    return text === null ? null : isoFromDatabase(text);
  }
  if (BYTES_TYPES.has(field.type) && (field as Field & { encoding?: string }).encoding === 'binary') {
    return field.string('utf8');
  }
  return next();
}

export const mysqlDialect: SqlDialect = {
  quote: (identifier) => `\`${identifier.replaceAll('`', '``')}\``,
  timestamp: (micros) => `'${sqlTimestamp(micros)}'`,
};

/** A MySQL / MariaDB session in UTC, streaming through mysql2's row stream. */
export class MysqlSession implements DatabaseSession {
  readonly dialect = mysqlDialect;

  private constructor(
    private readonly connection: Connection,
    private readonly target: ConnectionTarget,
    private readonly purpose: string,
  ) {}

  static async open(target: ConnectionTarget, logger: Logger, purpose: string): Promise<MysqlSession> {
    const connection = await connectMysql(
      target,
      { dateStrings: true, timezone: 'Z', supportBigNumbers: true, typeCast, charset: 'utf8mb4' },
      { logger, purpose },
    );
    const session = new MysqlSession(connection, target, purpose);
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
      const [rows] = await this.connection.query({ sql, rowsAsArray: true });
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

  async *stream(sql: string): AsyncIterable<Row> {
    // The promise API has no streams; its wrapped callback connection does.
    const core = (this.connection as unknown as { connection: CallbackConnection }).connection;
    const query = core.query({ sql });
    const rows = query.stream({ objectMode: true, highWaterMark: 256 });
    try {
      for await (const row of rows) yield row as Row;
    } catch (error) {
      throw classify(error, this.target, { purpose: this.purpose });
    }
  }

  async close(): Promise<void> {
    // A stream stopped half-way leaves unread rows on the wire: drop the socket rather than drain them.
    this.connection.destroy();
  }
}

function quoteString(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}
