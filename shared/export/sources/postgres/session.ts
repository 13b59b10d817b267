import type { Socket } from 'node:net';
import pg from 'pg';
import Cursor from 'pg-cursor';
import { type ConnectionTarget, classify, connectPostgres } from '../../../db/connect';
import { EncodeError } from '../../../errors';
import type { Logger } from '../../../log';
import type { ColumnGroup, GroupLimits } from '../../encode/parquet';
import type { ParquetColumn } from '../../encode/parquet-types';
import { valueError } from '../../encode/parquet-values';
import { redactSql } from '../../masking';
import { ChunkQueue } from '../chunk-queue';
import type { ColumnSpec } from '../columns';
import {
  ConnectionGuard,
  connectionLost,
  DEFAULT_READ_TIMEOUT_MS,
  type SessionOptions,
} from '../connection-guard';
import type { DatabaseSession, Row, SqlDialect } from '../session';
import { formatTimestamp, isoFromDatabase } from '../time';
import {
  BinaryGroupReader,
  BinaryValueError,
  binaryCopyStatement,
  planBinaryColumns,
  readsFloat8,
} from './binary-copy';
import {
  type ColumnField,
  type ColumnPlan,
  CsvJsonTranscoder,
  CsvRowParser,
  copyStatement,
  planColumns,
  type TypeParser,
} from './copy';
import { CopyDataBytesReader, CopyOutQuery, type CopyPayloads, type CopyReader } from './copy-out';

const BATCH_ROWS = 1000;
/** How long a closing session waits for the server's goodbye before dropping the socket. */
const CLOSE_WAIT_MS = 2_000;

const asText = (value: string) => value;
/** Type OIDs parsed differently from pg's defaults: no Date objects, no Buffers, no interval objects. */
const PARSERS = new Map<number, (value: string) => unknown>([
  [1114, isoFromDatabase], // timestamp
  [1184, isoFromDatabase], // timestamptz (the session runs in UTC)
  [1082, asText], // date
  [1115, asText], // timestamp[]
  [1185, asText], // timestamptz[]
  [1182, asText], // date[]
  [1186, asText], // interval
  [1187, asText], // interval[]
  [17, asText], // bytea, as its hex text
]);

const types = {
  getTypeParser: ((oid: number, format?: string) =>
    PARSERS.get(oid) ?? pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/** The parser the session gives a text-format column of type `oid`. */
export const typeParser = (oid: number): TypeParser => types.getTypeParser(oid, 'text') as TypeParser;

/**
 * A query object for pg's client (its submittable interface, as pg-cursor and
 * CopyOutQuery use it) that parses the statement and asks for its row
 * description, without binding or executing it.
 */
class StatementDescription implements pg.Submittable {
  private fields: ColumnField[] = [];
  private error: Error | undefined;

  constructor(
    private readonly text: string,
    private readonly done: (error: Error | undefined, fields: ColumnField[]) => void,
  ) {}

  submit(connection: pg.Connection): void {
    connection.parse({ name: '', text: this.text, types: [] }, true);
    connection.describe({ type: 'S' }, true);
    connection.sync();
  }

  handleRowDescription(message: { fields: ColumnField[] }): void {
    this.fields = message.fields.map(({ name, dataTypeID, dataTypeModifier }) => ({
      name,
      dataTypeID,
      dataTypeModifier,
    }));
  }

  handleError(error: Error): void {
    this.error = error;
  }

  handleReadyForQuery(): void {
    this.done(this.error, this.fields);
  }

  // Not sent for a statement description; the client may still call them.
  handleDataRow(): void {}
  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}
  handleCopyData(): void {}
}

/**
 * What COPY's output becomes, in pieces handed on as they are ready: its text
 * (UTF-8 bytes held as latin1), or where its payloads are (binary COPY).
 */
interface CopyOutput<T, R extends string | CopyPayloads = string> {
  write(rows: R): T[];
  /** The last pieces; throws when the text stopped inside a row. */
  end(): T[];
}

export const postgresDialect: SqlDialect = {
  quote: (identifier) => `"${identifier.replaceAll('"', '""')}"`,
  timestamp: (micros) => `'${formatTimestamp(micros)}'::timestamptz`,
};

/**
 * A PostgreSQL-protocol session (PostgreSQL, Aurora PostgreSQL, Redshift) in
 * UTC, streaming through a cursor. Every read is bounded: a dropped connection
 * fails it at once, a silent server after the read timeout (see
 * connection-guard.ts).
 */
export class PostgresSession implements DatabaseSession {
  readonly dialect = postgresDialect;
  /** Whether the server can run the COPY fast path; asked once. */
  private copySupport?: Promise<boolean>;
  /** Whether float8's text is the exact double (extra_float_digits >= 1); asked once. */
  private exactFloatText?: Promise<boolean>;
  private readonly guard: ConnectionGuard;

  private constructor(
    private readonly client: pg.Client,
    private readonly target: ConnectionTarget,
    private readonly purpose: string,
    readTimeoutMs: number,
  ) {
    this.guard = new ConnectionGuard(this.socket(), readTimeoutMs);
    client.on('error', (error: Error) => this.guard.fail(connectionLost(error)));
    client.on('end', () => this.guard.fail(new Error('Connection terminated')));
  }

  static async open(
    target: ConnectionTarget,
    logger: Logger,
    purpose: string,
    options: SessionOptions = {},
  ): Promise<PostgresSession> {
    // The time zone is set by a statement, not the startup packet's `options`, which PgBouncer refuses
    // ("unsupported startup parameter") and other proxies may drop.
    const client = await connectPostgres(
      target,
      { types, application_name: 'log-export' },
      { logger, purpose },
    );
    const session = new PostgresSession(
      client,
      target,
      purpose,
      options.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS,
    );
    try {
      await session.scalar("SET TimeZone = 'UTC'");
    } catch (error) {
      await session.close();
      throw error;
    }
    return session;
  }

  async now(): Promise<string> {
    const now = await this.scalar(
      `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`,
    );
    return String(now);
  }

  async scalar(sql: string): Promise<unknown> {
    try {
      const result = await this.guard.during(this.client.query({ text: sql, rowMode: 'array' }));
      return (result.rows[0] as unknown[] | undefined)?.[0];
    } catch (error) {
      throw classify(error, this.target, { purpose: this.purpose });
    }
  }

  async relationExists(schema: string, table: string): Promise<boolean> {
    const found = await this.scalar(
      `SELECT to_regclass(${pg.escapeLiteral(`${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(table)}`)}) IS NOT NULL`,
    );
    return found === true;
  }

  /**
   * The result columns of `sql` with their types as the server names them
   * (`format_type`: `bigint`, `timestamp(6) with time zone`, `numeric(10,2)`),
   * from the parsed statement's description: nothing runs.
   */
  async describe(sql: string): Promise<ColumnSpec[]> {
    try {
      const fields = await this.guard.during(this.describeFields(sql));
      if (fields.length === 0) return [];
      // One row, one column per field (no unnest: Redshift's leader node has format_type but not unnest).
      const calls = fields.map((f) => `format_type(${f.dataTypeID}, ${f.dataTypeModifier ?? -1})`);
      const result = await this.guard.during(
        this.client.query({ text: `SELECT ${calls.join(', ')}`, rowMode: 'array' }),
      );
      const names = result.rows[0] as unknown[];
      return fields.map((f, i) => ({ name: f.name, type: String(names[i]) }));
    } catch (error) {
      throw classify(error, this.target, { purpose: this.purpose });
    }
  }

  async *stream(sql: string): AsyncIterable<Row> {
    for await (const batch of this.cursorBatches(sql)) yield* batch;
  }

  /**
   * `stream`'s rows in arrays: read through COPY where the server has the COPY
   * path (copyBatches), else as the cursor reads them.
   */
  async *batches(sql: string): AsyncIterable<Row[]> {
    yield* (await this.copyBatches(sql)) ?? this.cursorBatches(sql);
  }

  /** `stream`'s rows as the cursor reads them, BATCH_ROWS at a time. */
  private async *cursorBatches(sql: string): AsyncIterable<Row[]> {
    const cursor = this.client.query(new Cursor<Row>(sql, undefined, { types }));
    try {
      for (;;) {
        // Armed only while a batch is owed: between batches the server waits for us.
        const rows = await this.guard.during(cursor.read(BATCH_ROWS));
        if (rows.length === 0) break;
        yield rows;
      }
    } catch (error) {
      throw classify(error, this.target, { purpose: this.purpose });
    } finally {
      if (!this.guard.failed) await this.guard.during(cursor.close()).catch(() => {});
    }
  }

  /**
   * The COPY fast path (see copy.ts), for PostgreSQL 12 or later in UTF-8,
   * DateStyle ISO and UTC: not Redshift, which has no COPY TO STDOUT.
   */
  async jsonLines(
    sql: string,
    counter: { rows: number },
    redactColumns: readonly string[] = [],
  ): Promise<AsyncIterable<Uint8Array> | undefined> {
    const columns = await this.copyPlan(sql, redactColumns);
    if (columns === undefined) return undefined;
    const transcoder = new CsvJsonTranscoder(columns);
    const counted = counter.rows;
    const count = (chunks: Buffer[]) => {
      counter.rows = counted + transcoder.rows;
      return chunks;
    };
    return this.copyOut(copyStatement(sql), {
      write: (text) => count(transcoder.writeText(text)),
      end: () => count(transcoder.end()),
    });
  }

  /**
   * The rows of `sql` exactly as `stream(sql)` gives them, in arrays (none
   * empty), read through COPY: pg's per-row protocol parsing is the cost it
   * saves. Undefined where jsonLines has no COPY path either.
   */
  async copyBatches(sql: string): Promise<AsyncIterable<Row[]> | undefined> {
    const columns = await this.copyPlan(sql);
    if (columns === undefined) return undefined;
    const parser = new CsvRowParser(columns);
    const batch = (rows: Row[]) => (rows.length > 0 ? [rows] : []);
    return this.copyOut(copyStatement(sql), {
      write: (text) => batch(parser.writeText(text)),
      end: () => batch(parser.end()),
    });
  }

  /**
   * The rows of `sql` for a Parquet file of `columns` (its described columns,
   * typed), read through binary COPY by column (binary-copy.ts): the row
   * groups `encodeParquetBatches` would make of `batches(sql)`, at most
   * `limits` each, the SQL text of `redactColumns` masked as it is read (so
   * that groups close where the masked rows' would). Undefined where the
   * server has no COPY path or a column's type is not one read that way.
   */
  async parquetGroups(
    sql: string,
    columns: readonly ParquetColumn[],
    limits: GroupLimits,
    redactColumns: readonly string[] = [],
  ): Promise<AsyncIterable<ColumnGroup> | undefined> {
    if (!(await this.supportsCopy())) return undefined;
    let readers: ReturnType<typeof planBinaryColumns>;
    try {
      readers = planBinaryColumns(await this.guard.during(this.describeFields(sql)), columns);
    } catch (error) {
      throw classify(error, this.target, { purpose: this.purpose });
    }
    if (readers === undefined) return undefined;
    // Rounded float8 text (an older client's setting) parses to another double than the bytes hold.
    if (readsFloat8(readers) && !(await this.floatTextIsExact())) return undefined;
    const reader = new BinaryGroupReader(
      readers,
      limits,
      columns.map((c) => (redactColumns.includes(c.name) ? redactSql : undefined)),
    );
    const located = (groups: () => ColumnGroup[]) => {
      try {
        return groups();
      } catch (error) {
        // The encoder's own error for a value that does not fit: the column and the row.
        if (error instanceof BinaryValueError)
          throw valueError(columns[error.column] as ParquetColumn, error.row, error.mismatch);
        throw error;
      }
    };
    return this.copyOut(
      binaryCopyStatement(sql),
      {
        write: ({ inputs, ranges, length }) =>
          located(() => {
            const groups: ColumnGroup[] = [];
            for (let i = 0; i < 3 * length; i += 3)
              reader.write(inputs[ranges[i] as number] as Buffer, ranges[i + 1], ranges[i + 2], groups);
            return groups;
          }),
        end: () => located(() => reader.end()),
      },
      () => new CopyDataBytesReader(),
      // A group is megabytes: the socket pauses while one waits.
      1,
    );
  }

  /**
   * How COPY's columns are read for `sql`, from its description; undefined
   * when the server has no COPY path or the names cannot make the cursor
   * path's keys.
   */
  private async copyPlan(
    sql: string,
    redactColumns: readonly string[] = [],
  ): Promise<ColumnPlan[] | undefined> {
    if (!(await this.supportsCopy())) return undefined;
    try {
      return planColumns(await this.guard.during(this.describeFields(sql)), typeParser, redactColumns);
    } catch (error) {
      throw classify(error, this.target, { purpose: this.purpose });
    }
  }

  /**
   * The result columns of `sql`, from the server's description of the parsed
   * statement: nothing runs (a file_fdw program, for one, is not started).
   */
  private describeFields(sql: string): Promise<ColumnField[]> {
    return new Promise((resolve, reject) => {
      this.client.query(
        new StatementDescription(sql, (error, fields) => (error ? reject(error) : resolve(fields))),
      );
    });
  }

  /**
   * Runs the COPY and yields what `output` makes of its text; the socket is
   * paused while four pieces wait. Stopping early (or text that `output`
   * cannot read) lets the COPY run to its end with its rows dropped, so that
   * the connection leaves copy-out mode and stays usable.
   */
  private async *copyOut<T, R extends string | CopyPayloads = string>(
    copySql: string,
    output: CopyOutput<T, R>,
    reader?: () => CopyReader<R>,
    /** Pieces that may wait before the socket is paused. */
    limit?: number,
  ): AsyncGenerator<T> {
    let dropping = false;
    let settled = false;
    const queue = new ChunkQueue<T>(
      () => query.pause(),
      () => query.resume(),
      limit,
    );
    const onRows = (rows: R) => {
      if (dropping) return;
      try {
        for (const piece of output.write(rows)) queue.push(piece);
      } catch (error) {
        dropping = true;
        query.resume();
        queue.fail(error);
      }
    };
    const query = new CopyOutQuery<R>(copySql, onRows, reader?.());
    query.finished.then(
      () => {
        settled = true;
        if (dropping) return;
        try {
          for (const piece of output.end()) queue.push(piece);
          queue.end();
        } catch (error) {
          queue.fail(error);
        }
      },
      (error) => {
        settled = true;
        queue.fail(error);
      },
    );
    const done = this.guard.watch((error) => {
      // A connection lost after the COPY ended takes nothing from its rows.
      if (settled) return;
      settled = true;
      queue.fail(error);
    });
    this.client.query(query);
    try {
      yield* queue.drain();
    } catch (error) {
      // A value that does not fit its Parquet column is the encoder's error (column and row), not the database's.
      if (error instanceof EncodeError) throw error;
      throw classify(error, this.target, { purpose: this.purpose });
    } finally {
      if (!settled) {
        dropping = true;
        query.resume();
        await query.finished.catch(() => {});
      }
      done();
    }
  }

  private floatTextIsExact(): Promise<boolean> {
    this.exactFloatText ??= this.scalar(`SELECT current_setting('extra_float_digits')::int >= 1`)
      .then((exact) => exact === true)
      .catch(() => false);
    return this.exactFloatText;
  }

  private supportsCopy(): Promise<boolean> {
    this.copySupport ??= (async () => {
      const version = String(await this.scalar('SELECT version()'));
      if (!version.startsWith('PostgreSQL ') || version.includes('Redshift')) return false;
      const settings = await this.scalar(
        `SELECT current_setting('server_version_num')::int >= 120000 AND current_setting('server_encoding') = 'UTF8' AND current_setting('client_encoding') = 'UTF8' AND current_setting('DateStyle') LIKE 'ISO,%' AND current_setting('TimeZone') = 'UTC'`,
      );
      return settings === true;
    })().catch(() => false);
    return this.copySupport;
  }

  /** Says goodbye, but drops the socket if the server does not answer in time (it may be stopped). */
  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, CLOSE_WAIT_MS);
    });
    await Promise.race([this.client.end().catch(() => {}), waited]);
    clearTimeout(timer);
    this.socket().destroy();
  }

  private socket(): Socket {
    return (this.client as unknown as { connection: { stream: Socket } }).connection.stream;
  }
}
