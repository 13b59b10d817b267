/**
 * PostgreSQL's binary COPY read by column, for Parquet: each value's bytes
 * become what the Parquet encoder would make of the cursor path's value for
 * it (parquet-values.ts), with no text to parse and no row objects; text
 * stays UTF-8 bytes, copied into its column. Row groups are closed at the
 * encoder's bounds, so they go to the encoder thread as they come.
 *
 * Only for columns whose types are read exactly here (planBinaryColumns);
 * any other query takes the CSV path (copy.ts). The format:
 * https://www.postgresql.org/docs/current/sql-copy.html (Binary Format):
 * a signature, flags and a header extension, then per row a 16-bit field
 * count and per field a 32-bit length (-1: NULL) and the value's bytes, all
 * big-endian, and a field count of -1 at the end.
 */
import { isAscii } from 'node:buffer';
import type { ColumnGroup, GroupLimits, Utf8Column } from '../../encode/parquet';
import type { ParquetColumn } from '../../encode/parquet-types';
import {
  INFINITY_MICROS,
  int32Value,
  MINUS_INFINITY_MICROS,
  ValueMismatch,
} from '../../encode/parquet-values';
import type { ColumnField } from './copy';

/** How one column's bytes are read. */
const BOOLEAN = 0;
const INT2 = 1;
const INT4 = 2;
const OID = 3;
const INT8 = 4;
/** int8 into an INT32 column: in range or refused as the cursor path's text would be. */
const INT8_AS_INT32 = 5;
const FLOAT8 = 6;
const TEXT = 7;
const TIMESTAMP = 8;
const DATE = 9;
type Reader = number;

/** The readers for each (type OID, Parquet kind) this path takes; anything else takes the CSV path. */
const READERS: Record<number, Partial<Record<ParquetColumn['type']['kind'], Reader>>> = {
  16: { boolean: BOOLEAN }, // bool
  21: { int32: INT2, int64: INT2 }, // int2
  23: { int32: INT4, int64: INT4 }, // int4
  26: { int64: OID }, // oid
  20: { int64: INT8, int32: INT8_AS_INT32 }, // int8
  701: { double: FLOAT8 }, // float8 (float4's bytes are not the double its text parses to)
  25: { string: TEXT }, // text
  1043: { string: TEXT }, // varchar
  1042: { string: TEXT }, // bpchar
  19: { string: TEXT }, // name
  1114: { timestamp: TIMESTAMP }, // timestamp: in a UTC session, its wall time is UTC
  1184: { timestamp: TIMESTAMP }, // timestamptz
  1082: { date: DATE }, // date
};

/** The binary COPY statement for `sql`. */
export function binaryCopyStatement(sql: string): string {
  return `COPY (${sql}) TO STDOUT (FORMAT binary)`;
}

/**
 * How each column of `sql` is read, or undefined unless every described
 * field (`fields`, in order) is the Parquet column of the same name and a
 * type read here.
 */
export function planBinaryColumns(
  fields: readonly ColumnField[],
  columns: readonly ParquetColumn[],
): Reader[] | undefined {
  if (fields.length === 0 || fields.length !== columns.length) return undefined;
  const readers: Reader[] = [];
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i] as ColumnField;
    const column = columns[i] as ParquetColumn;
    const reader = field.name === column.name ? READERS[field.dataTypeID]?.[column.type.kind] : undefined;
    if (reader === undefined) return undefined;
    readers.push(reader);
  }
  return readers;
}

/**
 * Whether `readers` read a float8: its bytes are the double its text parses
 * to only while the server writes that text exactly (extra_float_digits of at
 * least 1, the default since PostgreSQL 12).
 */
export function readsFloat8(readers: readonly Reader[]): boolean {
  return readers.includes(FLOAT8);
}

/** PostgreSQL's epoch (2000-01-01) in microseconds and in days since 1970-01-01. */
const EPOCH_MICROS = 946_684_800_000_000;
const EPOCH_MICROS_BIG = 946_684_800_000_000n;
const EPOCH_DAYS = 10_957;
const TWO_32 = 4_294_967_296;
/** PostgreSQL's infinities: the int64 extremes. */
const INT64_MAX = 0x7fff_ffff_ffff_ffffn;
const INT64_MIN = -0x8000_0000_0000_0000n;
/** The instants and dates the cursor path's ISO-8601 text can hold: years 1 to 9999. */
const FIRST_MICROS = -62_135_596_800_000_000n;
const END_MICROS = 253_402_300_800_000_000n;
const FIRST_DAY = -719_162;
const END_DAY = 2_932_897;
const INT32_MAX = 2_147_483_647;
const INT32_MIN = -2_147_483_648;

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
/** Bytes of the header before its extension: signature, flags, extension length. */
const HEADER_BYTES = SIGNATURE.length + 8;
/** Bytes a text column's buffer starts with; it doubles as needed. */
const FIRST_TEXT_BYTES = 64 * 1024;

/** Text values of at most this many bytes are copied by a loop, longer ones by a view (bench:export's CPU profiles). */
const SHORT_TEXT = 48;

/** A text column's values of the current group, appended as they come. */
class Utf8Builder {
  private bytes: Uint8Array;
  /** Bytes and values so far. */
  used = 0;
  count = 0;
  private lengths: Int32Array;

  /** Sized for what the last group held, so that a group's text is rarely copied to grow. */
  constructor(bytes: number, values: number) {
    // Not zeroed, and an ArrayBuffer of its own (never Node's pool): it is moved to the encoder thread.
    this.bytes = Buffer.allocUnsafeSlow(Math.max(FIRST_TEXT_BYTES, bytes + (bytes >> 3)));
    this.lengths = new Int32Array(Math.max(1024, values));
  }

  /**
   * Appends the UTF-8 bytes of one value; returns its length as the encoder
   * counts a string's (UTF-16 code units), so that groups close where its do.
   */
  append(from: Buffer, start: number, length: number): number {
    const used = this.used;
    if (used + length > this.bytes.length) this.grow(used + length);
    const bytes = this.bytes;
    let units = length;
    // A view of the source (for copying and the ASCII check) is an allocation: a loop is cheaper for short values.
    if (length <= SHORT_TEXT)
      for (let i = 0; i < length; i++) {
        const byte = from[start + i] as number;
        bytes[used + i] = byte;
        if (byte >= 0x80) units += utf16Change(byte);
      }
    else {
      const value = from.subarray(start, start + length);
      bytes.set(value, used);
      if (!isAscii(value)) units = utf16Length(value);
    }
    this.used = used + length;
    this.push(length);
    return units;
  }

  /** Appends `text` as UTF-8 (a value changed on the way, masked SQL); returns its UTF-16 length. */
  appendText(text: string): number {
    const encoded = Buffer.from(text, 'utf8');
    this.append(encoded, 0, encoded.length);
    return text.length;
  }

  private grow(size: number): void {
    let capacity = this.bytes.length * 2;
    while (capacity < size) capacity *= 2;
    const grown = Buffer.allocUnsafeSlow(capacity);
    grown.set(this.bytes.subarray(0, this.used));
    this.bytes = grown;
  }

  appendNull(): void {
    this.push(-1);
  }

  /** Takes back the last value. */
  undo(): void {
    const length = this.lengths[--this.count] as number;
    if (length > 0) this.used -= length;
  }

  private push(length: number): void {
    if (this.count === this.lengths.length) {
      const grown = new Int32Array(this.lengths.length * 2);
      grown.set(this.lengths);
      this.lengths = grown;
    }
    this.lengths[this.count++] = length;
  }

  /** The values so far; the builder is not used again. */
  take(): Utf8Column {
    return { bytes: this.bytes.subarray(0, this.used), lengths: this.lengths.subarray(0, this.count) };
  }
}

/**
 * What one byte of UTF-8 adds to the UTF-16 length when the byte count is
 * taken for it: a continuation byte -1 (its character is counted once), a
 * four-byte character's first byte +1 (a surrogate pair).
 */
function utf16Change(byte: number): number {
  if (byte < 0xc0) return -1;
  return byte >= 0xf0 ? 1 : 0;
}

/** The UTF-16 length of valid UTF-8 bytes. */
function utf16Length(bytes: Uint8Array): number {
  let units = bytes.length;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i] as number;
    if (byte >= 0x80) units += utf16Change(byte);
  }
  return units;
}

/**
 * A value that does not fit its column: `column` (its index) and `row` (counted
 * from 1 over the whole query) for the encoder's error, and why.
 */
export class BinaryValueError extends Error {
  constructor(
    readonly column: number,
    readonly row: number,
    readonly mismatch: ValueMismatch,
  ) {
    super(mismatch.message);
    this.name = 'BinaryValueError';
  }
}

/**
 * Reads binary COPY output as it comes (`write` each piece of the CopyData
 * payloads, then `end`) into row groups of at most `limits`.
 */
export class BinaryGroupReader {
  rows = 0;
  private pending: Buffer | undefined;
  private header = false;
  private ended = false;
  private values: unknown[][] = [];
  private text: (Utf8Builder | undefined)[] = [];
  private groupRows = 0;
  private groupBytes = 0;
  private readonly fixedBytes: number;

  constructor(
    private readonly readers: readonly Reader[],
    private readonly limits: GroupLimits,
    /** Per column, what its text values become (masking), or undefined: as they are. */
    private readonly changes: readonly (((text: string) => string) | undefined)[] = [],
  ) {
    this.fixedBytes = 8 * readers.filter((r) => r !== TEXT).length;
    this.startGroup();
  }

  /**
   * Reads the rows of `input` from `start` to `end` (by default all of it), a
   * row cut at the end kept for the next piece; adds the groups they closed
   * to `groups` and returns it.
   */
  write(input: Buffer, start = 0, end = input.length, groups: ColumnGroup[] = []): ColumnGroup[] {
    let bytes = input;
    let position = start;
    let stop = end;
    if (this.pending) {
      bytes = Buffer.concat([this.pending, input.subarray(start, end)]);
      position = 0;
      stop = bytes.length;
      this.pending = undefined;
    }
    if (!this.header) {
      const rows = this.readHeader(bytes, position, stop);
      if (rows < 0) {
        this.pending = Buffer.from(bytes.subarray(position, stop));
        return groups;
      }
      position = rows;
      this.header = true;
    }
    const fields = this.readers.length;
    while (position < stop) {
      if (this.ended) throw new Error('Binary COPY output goes on after its end');
      if (stop - position < 2) break;
      const count = bytes.readInt16BE(position);
      if (count === -1) {
        this.ended = true;
        position += 2;
        continue;
      }
      if (count !== fields) throw new Error(`Binary COPY row of ${count} fields, expected ${fields}`);
      const end = this.readRow(bytes, position + 2, stop);
      if (end < 0) break;
      position = end;
      if (this.groupRows >= this.limits.maxRows || this.groupBytes >= this.limits.maxBytes)
        groups.push(this.takeGroup());
    }
    // A copy: the rest of a row must not keep the whole read alive.
    if (position < stop) this.pending = Buffer.from(bytes.subarray(position, stop));
    return groups;
  }

  /** The last group; throws unless the output ended where it should. */
  end(): ColumnGroup[] {
    if (!this.ended || this.pending) throw new Error('Binary COPY output ended inside a row');
    return this.groupRows > 0 ? [this.takeGroup()] : [];
  }

  /** Where the rows start, or -1 while the header is not all there. */
  private readHeader(input: Buffer, start: number, end: number): number {
    if (end - start < HEADER_BYTES) return -1;
    if (!input.subarray(start, start + SIGNATURE.length).equals(SIGNATURE))
      throw new Error('Not binary COPY output');
    const flags = input.readInt32BE(start + SIGNATURE.length);
    // Bits 0-15 are critical (none defined yet) and bit 16 puts an OID in every row; 17-31 may be ignored.
    if ((flags & 0x1ffff) !== 0)
      throw new Error(`Binary COPY output with flags ${flags}, which this reader does not read`);
    const extension = input.readInt32BE(start + SIGNATURE.length + 4);
    if (extension < 0) throw new Error('Binary COPY output with a negative header extension');
    const rows = start + HEADER_BYTES + extension;
    return end < rows ? -1 : rows;
  }

  /**
   * Reads the row whose fields start at `at` into the columns; returns where
   * it ends, or -1 (nothing read) when it does not end before `stop`.
   */
  private readRow(input: Buffer, at: number, stop: number): number {
    const fields = this.readers.length;
    let position = at;
    let bytes = this.fixedBytes;
    for (let c = 0; c < fields; c++) {
      if (stop - position < 4) return this.undo(c);
      const length = int32At(input, position);
      position += 4;
      if (length > stop - position) return this.undo(c);
      const reader = this.readers[c] as Reader;
      if (reader === TEXT) {
        const builder = this.text[c] as Utf8Builder;
        if (length < 0) builder.appendNull();
        else {
          const change = this.changes[c];
          bytes += change
            ? builder.appendText(change(input.toString('utf8', position, position + length)))
            : builder.append(input, position, length);
          position += length;
        }
        continue;
      }
      const values = this.values[c] as unknown[];
      if (length < 0) {
        values.push(null);
        continue;
      }
      try {
        values.push(readValue(reader, input, position, length));
      } catch (error) {
        if (error instanceof ValueMismatch) throw new BinaryValueError(c, this.rows + 1, error);
        throw error;
      }
      position += length;
    }
    this.rows++;
    this.groupRows++;
    this.groupBytes += bytes;
    return position;
  }

  /** Takes back the first `columns` values of a row cut short; returns -1. */
  private undo(columns: number): number {
    for (let c = 0; c < columns; c++) {
      const builder = this.text[c];
      if (builder) builder.undo();
      else (this.values[c] as unknown[]).pop();
    }
    return -1;
  }

  private startGroup(): void {
    const rows = this.groupRows;
    this.values = this.readers.map(() => []);
    this.text = this.text.length
      ? this.text.map((last) => last && new Utf8Builder(last.used, rows + 1))
      : this.readers.map((r) => (r === TEXT ? new Utf8Builder(0, 0) : undefined));
    this.groupRows = 0;
    this.groupBytes = 0;
  }

  private takeGroup(): ColumnGroup {
    const group: ColumnGroup = {
      rows: this.groupRows,
      columns: this.readers.map((_, c) => this.text[c]?.take() ?? (this.values[c] as unknown[])),
    };
    this.startGroup();
    return group;
  }
}

/** The bytes of one value, by reader (text has any length). */
const VALUE_BYTES: Record<Reader, number> = {
  [BOOLEAN]: 1,
  [INT2]: 2,
  [INT4]: 4,
  [OID]: 4,
  [INT8]: 8,
  [INT8_AS_INT32]: 8,
  [FLOAT8]: 8,
  [TIMESTAMP]: 8,
  [DATE]: 4,
};

/** One non-NULL value of a column that is not text. */
function readValue(reader: Reader, input: Buffer, at: number, length: number): unknown {
  const expected = VALUE_BYTES[reader];
  if (length !== expected)
    throw new Error(`Binary COPY value of ${length} bytes where ${expected} were expected`);
  switch (reader) {
    case BOOLEAN:
      return input[at] !== 0;
    case INT2:
      return input.readInt16BE(at);
    case INT4:
      return input.readInt32BE(at);
    case OID:
      return input.readUInt32BE(at);
    case INT8:
      return int64At(input, at);
    case INT8_AS_INT32: {
      const value = int64At(input, at);
      // Out of range: refused as the cursor path's text of it is.
      return typeof value === 'number' && value >= INT32_MIN && value <= INT32_MAX
        ? value
        : int32Value(String(value));
    }
    case FLOAT8:
      return input.readDoubleBE(at);
    case TIMESTAMP:
      return timestampAt(input, at);
    case DATE:
      return dateAt(input, at);
    default:
      throw new Error(`Unknown binary COPY reader ${reader}`);
  }
}

/** A big-endian int32 (Buffer's readInt32BE checks its arguments on every call). */
function int32At(input: Buffer, at: number): number {
  return (
    ((input[at] as number) << 24) |
    ((input[at + 1] as number) << 16) |
    ((input[at + 2] as number) << 8) |
    (input[at + 3] as number)
  );
}

/** A big-endian int64: a number where a double holds it exactly, else a bigint. */
function int64At(input: Buffer, at: number): number | bigint {
  const high = int32At(input, at);
  const low = int32At(input, at + 4) >>> 0;
  // |high| < 2^21: |value| < 2^53.
  if (high >= -0x200000 && high < 0x200000) return high * TWO_32 + low;
  return input.readBigInt64BE(at);
}

/**
 * Microseconds since 1970 of a timestamp (microseconds since 2000), as
 * timestampMicrosValue makes them of the cursor path's text: infinities as
 * INT64's extremes; before the year 1 or after 9999 refused (ISO-8601 text
 * cannot hold them).
 */
function timestampAt(input: Buffer, at: number): number | bigint {
  const value = int64At(input, at);
  if (typeof value === 'number') {
    const micros = value + EPOCH_MICROS;
    // Within 2^53 of 1970 (the years 1685 to 2254): a double, as the cursor path's hot path makes it.
    if (Number.isSafeInteger(micros)) return micros;
  }
  const raw = input.readBigInt64BE(at);
  if (raw === INT64_MAX) return INFINITY_MICROS;
  if (raw === INT64_MIN) return MINUS_INFINITY_MICROS;
  const micros = raw + EPOCH_MICROS_BIG;
  if (micros >= FIRST_MICROS && micros < END_MICROS) return micros;
  throw new ValueMismatch('is outside the years 1 to 9999, which ISO-8601 text cannot hold', 'a timestamp');
}

/** Days since 1970 of a date (days since 2000), as dateDays makes them of the cursor path's text. */
function dateAt(input: Buffer, at: number): number {
  const days = input.readInt32BE(at) + EPOCH_DAYS;
  if (days >= FIRST_DAY && days < END_DAY) return days;
  throw new ValueMismatch(
    'is outside the years 1 to 9999 (or infinite), which YYYY-MM-DD cannot hold',
    'a date',
  );
}
