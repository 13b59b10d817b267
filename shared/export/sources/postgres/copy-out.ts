import type { Socket } from 'node:net';
import type pg from 'pg';

/**
 * `COPY ... TO STDOUT` for pg's client, reading the socket itself. In copy-out
 * mode the server sends one CopyData message per row
 * (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-COPY):
 * their payloads are cut out of the socket's bytes as latin1 text (one
 * character per byte) and handed on in one piece per socket read, without an
 * object or a Buffer per message. Any other message goes to pg's own parser;
 * at CopyDone or an ErrorResponse the socket goes back to pg, which ends the
 * query as it ends any other (CommandComplete, errors, ReadyForQuery).
 * CopyDataBytesReader does the same for binary COPY, its payloads as bytes.
 */

const COPY_DATA = 0x64; // d
const COPY_DONE = 0x63; // c
const ERROR_RESPONSE = 0x45; // E
const HEADER_BYTES = 5;

/** What one socket read holds: rows' bytes, messages for pg, and whether copy-out mode ended. */
export interface CopyRead<R = string> {
  /** The CopyData payloads, concatenated: CSV rows as latin1 text (CopyDataReader), or bytes. */
  rows: R;
  /** Other messages of copy-out mode (CopyOutResponse, notices, parameter status), whole, for pg's parser. */
  messages: Buffer[];
  /** From CopyDone or an ErrorResponse on: the bytes that belong to pg again. */
  rest?: Buffer;
}

/** Splits the server's bytes in copy-out mode into rows and other messages, whatever the read boundaries. */
export class CopyDataReader {
  /** Bytes of a message not complete yet, and how many bytes that message needs. */
  private pending = '';
  private need = HEADER_BYTES;

  read(chunk: Buffer): CopyRead {
    const result: CopyRead = { rows: '', messages: [] };
    this.pending += chunk.toString('latin1');
    if (this.pending.length < this.need) return result;
    const input = this.pending;
    let rows = '';
    let position = 0;
    for (;;) {
      if (input.length - position < HEADER_BYTES) {
        this.need = HEADER_BYTES;
        break;
      }
      const type = input.charCodeAt(position);
      const length =
        input.charCodeAt(position + 1) * 0x1000000 +
        ((input.charCodeAt(position + 2) << 16) |
          (input.charCodeAt(position + 3) << 8) |
          input.charCodeAt(position + 4));
      if (type === COPY_DONE || type === ERROR_RESPONSE) {
        result.rest = Buffer.from(input.slice(position), 'latin1');
        position = input.length;
        break;
      }
      const end = position + 1 + length;
      if (end > input.length) {
        this.need = 1 + length;
        break;
      }
      if (type === COPY_DATA) rows += input.slice(position + HEADER_BYTES, end);
      else result.messages.push(Buffer.from(input.slice(position, end), 'latin1'));
      position = end;
    }
    this.pending = input.slice(position);
    result.rows = rows;
    return result;
  }
}

/**
 * The CopyData payloads of one read of binary COPY output, where they are:
 * payload i is `inputs[ranges[3i]]` from `ranges[3i + 1]` to `ranges[3i + 2]`.
 * Read in place: one row per message is the rule.
 */
export interface CopyPayloads {
  /** The message a read completed (when the last read cut one), then the read itself. */
  inputs: Buffer[];
  ranges: number[];
  /** How many payloads. */
  length: number;
}

/**
 * CopyDataReader for binary COPY: where the payloads of one read are, in its
 * bytes. A message cut by the end of a read is completed from the next one,
 * copying only its own bytes, and only once all of it has come (a value of
 * many megabytes is not copied again per read).
 */
export class CopyDataBytesReader {
  /** The pieces of the message the last read cut, and its size (type byte included) once its header is in. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private size = 0;

  read(chunk: Buffer): CopyRead<CopyPayloads> {
    const inputs: Buffer[] = [];
    const ranges: number[] = [];
    const result: CopyRead<CopyPayloads> = { rows: { inputs, ranges, length: 0 }, messages: [] };
    let position = 0;
    if (this.pendingBytes > 0) {
      if (this.size === 0) {
        position = Math.min(HEADER_BYTES - this.pendingBytes, chunk.length);
        this.keep(chunk.subarray(0, position));
        if (this.pendingBytes < HEADER_BYTES) return result;
        const header = Buffer.concat(this.pending, this.pendingBytes);
        this.pending = [header];
        this.size = 1 + header.readUInt32BE(1);
      }
      const take = Math.min(this.size - this.pendingBytes, chunk.length - position);
      this.keep(chunk.subarray(position, position + take));
      position += take;
      if (this.pendingBytes < this.size) return result;
      const message = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
      this.size = 0;
      const type = message[0];
      if (type === COPY_DONE || type === ERROR_RESPONSE) {
        result.rest = Buffer.concat([message, chunk.subarray(position)]);
        return result;
      }
      if (type === COPY_DATA) ranges.push(inputs.push(message) - 1, HEADER_BYTES, message.length);
      else result.messages.push(message);
    }
    const index = inputs.push(chunk) - 1;
    for (;;) {
      if (chunk.length - position < HEADER_BYTES) break;
      const type = chunk[position] as number;
      const length = chunk.readUInt32BE(position + 1);
      if (type === COPY_DONE || type === ERROR_RESPONSE) {
        result.rest = chunk.subarray(position);
        position = chunk.length;
        break;
      }
      const end = position + 1 + length;
      if (end > chunk.length) {
        this.size = 1 + length;
        break;
      }
      if (type === COPY_DATA) ranges.push(index, position + HEADER_BYTES, end);
      else result.messages.push(chunk.subarray(position, end));
      position = end;
    }
    // A copy: the cut message must not keep the whole read alive.
    if (position < chunk.length) this.keep(Buffer.from(chunk.subarray(position)));
    result.rows.length = ranges.length / 3;
    return result;
  }

  private keep(piece: Buffer): void {
    this.pending.push(piece);
    this.pendingBytes += piece.length;
  }
}

/** How CopyOutQuery cuts the socket's bytes: CopyDataReader (text) or CopyDataBytesReader. */
export interface CopyReader<R> {
  read(chunk: Buffer): CopyRead<R>;
}

/**
 * A COPY TO STDOUT query whose rows' bytes go to `onRows` (which must not
 * throw: it runs in the socket's data handler); `finished` settles when the
 * query has ended.
 */
export class CopyOutQuery<R extends string | CopyPayloads = string> implements pg.Submittable {
  readonly finished: Promise<void>;
  private settle!: { resolve: () => void; reject: (error: Error) => void };
  private failure: Error | undefined;
  private stream: Socket | undefined;
  private pgListener: ((chunk: Buffer) => void) | undefined;
  /** Whether the socket is ours (copy-out mode) rather than pg's. */
  private copying = false;

  constructor(
    private readonly text: string,
    private readonly onRows: (rows: R) => void,
    /** The reader for the COPY's format: CopyDataReader for text and CSV. */
    private readonly reader: CopyReader<R> = new CopyDataReader() as unknown as CopyReader<R>,
  ) {
    this.finished = new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.finished.catch(() => {});
  }

  submit(connection: pg.Connection): void {
    const stream = (connection as unknown as { stream: Socket }).stream;
    const listeners = stream.listeners('data') as Array<(chunk: Buffer) => void>;
    if (listeners.length !== 1) throw new Error('Unexpected listeners on the PostgreSQL connection');
    this.stream = stream;
    this.pgListener = listeners[0];
    stream.removeListener('data', this.pgListener as (chunk: Buffer) => void);
    stream.on('data', this.onData);
    this.copying = true;
    (connection as unknown as { query(text: string): void }).query(this.text);
  }

  /** Stops reading the socket (the server waits) while the consumer catches up; only in copy-out mode. */
  pause(): void {
    if (this.copying) this.stream?.pause();
  }

  resume(): void {
    this.stream?.resume();
  }

  private readonly onData = (chunk: Buffer): void => {
    const read = this.reader.read(chunk);
    const pgListener = this.pgListener as (chunk: Buffer) => void;
    for (const message of read.messages) pgListener(message);
    if (read.rows.length > 0) this.onRows(read.rows);
    if (read.rest) {
      this.copying = false;
      const stream = this.stream as Socket;
      stream.removeListener('data', this.onData);
      stream.on('data', pgListener);
      stream.resume();
      pgListener(read.rest);
    }
  };

  handleError(error: Error): void {
    this.failure ??= error;
    this.settle.reject(error);
  }

  handleReadyForQuery(): void {
    if (this.failure) this.settle.reject(this.failure);
    else this.settle.resolve();
  }

  // Part of pg's query interface; copy-out mode has none of these.
  handleCommandComplete(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}
  handleCopyData(): void {}
}
