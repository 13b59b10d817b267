import { StringDecoder } from 'node:string_decoder';
import { redactSql } from '../../masking';
import type { Row } from '../session';
import { isoFromDatabase } from '../time';

/**
 * The PostgreSQL fast path. The server sends the rows through COPY as CSV with
 * every value quoted and `"` and `\` escaped by a backslash: each quoted value
 * is then already a JSON string, as long as it holds no control character. Node
 * turns the CSV bytes into JSON lines without building row objects: a text
 * value is copied as it is, integers and booleans lose their quotes, timestamps
 * get their `T` and `Z`; any other value (floats, json, arrays, points, a value
 * with control characters, a column to mask) is decoded, put through the same
 * type parser as the cursor path, masked when asked, and JSON-encoded.
 *
 * The bytes are those of the cursor path (its rows JSON-encoded line by line):
 * COPY writes each value with the type's output function, the same text the
 * cursor path parses. Names that a JS object would reorder or merge
 * (duplicates, array indexes, __proto__) send the query back to the cursor path.
 *
 * The same CSV also gives the cursor path's row objects (CsvRowParser), for
 * encoders that take rows: each value through the type parser the cursor path
 * uses. One scanner (CsvRowScanner) finds the values for both.
 */

/** A column as the query describes it. */
export interface ColumnField {
  name: string;
  dataTypeID: number;
  /** The type modifier (length, precision and scale, timestamp precision); -1 when none. */
  dataTypeModifier?: number;
}

export type TypeParser = (text: string) => unknown;

/** How one column's CSV value becomes JSON. */
type Kind = 'text' | 'integer' | 'boolean' | 'timestamp' | 'timestamptz' | 'value';

export interface ColumnPlan {
  name: string;
  /** `{"name":` for the first column, `,"name":` for the others: UTF-8 bytes held as a latin1 string. */
  prefix: string;
  kind: Kind;
  /** The cursor path's value for the column's text: its type parser, then the mask if any. */
  convert: (text: string) => unknown;
}

/** Output is handed on in chunks of at least this many bytes (gzip gathers them into its own blocks). */
const CHUNK_BYTES = 64 * 1024;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const NEWLINE = 0x0a;
/** Control characters other than the newline, which JSON must escape and CSV leaves raw. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROL = /[\x00-\x09\x0b-\x1f]/;
const INTEGER = /^-?[0-9]+$/;
/** The shapes a fast timestamp may take; anything else (BC, years past 9999, infinities) takes the parser. */
const TIMESTAMP = /^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?$/;
const TIMESTAMPTZ = /^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?\+00$/;

/** Texts that a parser handing text through unchanged (text, int8, numeric, uuid, ...) returns as they are. */
const PASS_THROUGH_PROBES = [
  '',
  'x',
  '12',
  '-1.5',
  't',
  'NaN',
  '{1,2}',
  '(1,2)',
  '\\x41',
  '2024-05-01 12:00:00',
];

/** Does the parser turn `text` into `expected`? A parser that throws (JSON.parse) does not. */
function parsesTo(parser: TypeParser, text: string, expected: unknown): boolean {
  try {
    return parser(text) === expected;
  } catch {
    return false;
  }
}

/** The fastest way to write a column that still gives the parser's JSON; `value` always does. */
function kindOf(oid: number, parser: TypeParser): Kind {
  if (parser === isoFromDatabase && oid === 1114) return 'timestamp';
  if (parser === isoFromDatabase && oid === 1184) return 'timestamptz';
  if (PASS_THROUGH_PROBES.every((probe) => parsesTo(parser, probe, probe))) return 'text';
  // int2, int4 and oid print as plain integers; the parser must make numbers of them.
  if ((oid === 21 || oid === 23 || oid === 26) && parsesTo(parser, '-32768', -32768)) return 'integer';
  if (oid === 16 && parsesTo(parser, 't', true) && parsesTo(parser, 'f', false)) return 'boolean';
  return 'value';
}

/** A string's UTF-8 bytes, one character per byte: the transcoder's working form. */
const asBytes = (text: string) => Buffer.from(text, 'utf8').toString('latin1');

/**
 * How each column is written, or undefined when the result's names cannot make
 * the same object keys as the cursor path (or there is no column at all).
 */
export function planColumns(
  fields: readonly ColumnField[],
  parserFor: (oid: number) => TypeParser,
  redactColumns: readonly string[] = [],
): ColumnPlan[] | undefined {
  const names = fields.map((f) => f.name);
  if (names.length === 0 || new Set(names).size !== names.length) return undefined;
  if (names.some((name) => name === '__proto__' || /^(0|[1-9][0-9]*)$/.test(name))) return undefined;
  return fields.map((field, index) => {
    const parser = parserFor(field.dataTypeID);
    const redact = redactColumns.includes(field.name);
    return {
      name: field.name,
      prefix: asBytes(`${index === 0 ? '{' : ','}${JSON.stringify(field.name)}:`),
      kind: redact ? 'value' : kindOf(field.dataTypeID, parser),
      convert: redact
        ? (text: string) => {
            const value = parser(text);
            return typeof value === 'string' ? redactSql(value) : value;
          }
        : parser,
    };
  });
}

/** The COPY statement for `sql`: CSV, every non-NULL value quoted, quotes and backslashes escaped by a backslash. */
export function copyStatement(sql: string): string {
  return `COPY (${sql}) TO STDOUT WITH (FORMAT csv, FORCE_QUOTE *, ESCAPE '\\')`;
}

/**
 * Cuts COPY's CSV text into rows, whatever the chunk boundaries: `push` the
 * text as it comes, then take the rows complete so far with `next`. The text
 * may be UTF-8 bytes held as latin1 or decoded text: the delimiters are ASCII,
 * and UTF-8 has no ASCII byte inside a multibyte character.
 */
export class CsvRowScanner {
  rows = 0;
  /** The text holding the current row. */
  input = '';
  /** The current row's quotes in `input`: column i's opening one at 2i (-1 for NULL), its closing one at 2i + 1. */
  readonly quotes: Int32Array;
  private position = 0;
  /** How much text must wait before an incomplete row is tried again (doubling, so a huge row is scanned O(1) times per byte). */
  private retryAt = 0;
  private ended = false;
  private readonly last: number;

  constructor(columns: number) {
    this.quotes = new Int32Array(2 * columns);
    this.last = columns - 1;
  }

  /** Text not part of a complete row yet. */
  get waiting(): number {
    return this.input.length - this.position;
  }

  push(text: string): void {
    this.input = this.waiting === 0 ? text : this.input.slice(this.position) + text;
    this.position = 0;
  }

  /** No more text: `next` then throws when the text stopped inside a row. */
  end(): void {
    this.ended = true;
    this.retryAt = 0;
  }

  /** Moves to the next complete row; false when there is none yet. Throws on text that is not COPY's CSV. */
  next(): boolean {
    if (this.waiting < this.retryAt) return false;
    const end = this.scan();
    if (end < 0) {
      if (this.ended && this.waiting > 0) throw new Error('COPY output ended inside a row');
      this.retryAt = 2 * this.waiting;
      return false;
    }
    this.position = end;
    this.retryAt = 0;
    this.rows += 1;
    return true;
  }

  /** Finds the quotes of the row at `position`; returns where the next row starts, or -1 when the row is incomplete. */
  private scan(): number {
    const input = this.input;
    const quotes = this.quotes;
    const length = input.length;
    let position = this.position;
    for (let index = 0; index <= this.last; index++) {
      if (position >= length) return -1;
      if (input.charCodeAt(position) === QUOTE) {
        // A quoted value ends at the first quote not escaped by a backslash.
        let close = input.indexOf('"', position + 1);
        while (close !== -1 && input.charCodeAt(close - 1) === BACKSLASH && isEscaped(input, close))
          close = input.indexOf('"', close + 1);
        if (close === -1) return -1;
        quotes[2 * index] = position;
        quotes[2 * index + 1] = close;
        position = close + 1;
      } else {
        // CSV's NULL: nothing between the separators.
        quotes[2 * index] = -1;
      }
      if (position >= length) return -1;
      if (input.charCodeAt(position) !== (index === this.last ? NEWLINE : COMMA))
        throw new Error(`Unexpected COPY output at column ${index + 1}`);
      position += 1;
    }
    return position;
  }
}

/**
 * Turns COPY's CSV bytes into JSON lines, row by row, whatever the chunk
 * boundaries. The bytes are handled as latin1 strings (one character per
 * byte, so UTF-8 passes through untouched) because V8's native string search
 * and slicing beat byte loops in JavaScript.
 */
export class CsvJsonTranscoder {
  /** JSON lines not handed on yet: UTF-8 bytes held as a latin1 string. */
  private out = '';
  private readonly scanner: CsvRowScanner;
  /** Whether the text waiting in the scanner may hold a control character (other than the newline). */
  private pendingControl = false;

  constructor(private readonly columns: readonly ColumnPlan[]) {
    this.scanner = new CsvRowScanner(columns.length);
  }

  get rows(): number {
    return this.scanner.rows;
  }

  /** Transcodes the complete rows so far; returns output chunks that are ready. */
  write(chunk: Buffer): Buffer[] {
    return this.writeText(chunk.toString('latin1'));
  }

  /** `write` for bytes held as a latin1 string (one character per byte). */
  writeText(text: string): Buffer[] {
    this.pendingControl ||= CONTROL.test(text);
    this.scanner.push(text);
    return this.transcode();
  }

  /** The last output; throws when the input stopped inside a row. */
  end(): Buffer[] {
    this.scanner.end();
    const ready = this.transcode();
    return this.out.length > 0 ? [...ready, this.take()] : ready;
  }

  private transcode(): Buffer[] {
    const scanner = this.scanner;
    const ready: Buffer[] = [];
    const hasControl = this.pendingControl;
    // The first newline at or after the value being written: a value reaching past it holds a newline.
    let newline = -1;
    while (scanner.next()) {
      newline = this.row(scanner.input, scanner.quotes, hasControl, newline);
      if (this.out.length >= CHUNK_BYTES) ready.push(this.take());
    }
    this.pendingControl = hasControl && scanner.waiting > 0;
    return ready;
  }

  private take(): Buffer {
    const done = Buffer.from(this.out, 'latin1');
    this.out = '';
    return done;
  }

  /** Writes the row whose values lie between `quotes`; returns the newline tracked onwards. */
  private row(input: string, quotes: Int32Array, hasControl: boolean, firstNewline: number): number {
    let newline = firstNewline;
    let line = '';
    for (let index = 0; index < this.columns.length; index++) {
      const column = this.columns[index] as ColumnPlan;
      const open = quotes[2 * index] as number;
      if (open < 0) {
        line += `${column.prefix}null`;
        continue;
      }
      const close = quotes[2 * index + 1] as number;
      if (newline < open) {
        newline = input.indexOf('\n', open);
        if (newline === -1) newline = input.length;
      }
      const plain = newline > close && !(hasControl && CONTROL.test(input.slice(open, close)));
      line += column.prefix + this.value(column, input, open, close, plain);
    }
    this.out += `${line}}\n`;
    return newline;
  }

  /** The JSON (as latin1-held UTF-8) of the quoted value between `open` and `close`. */
  private value(column: ColumnPlan, input: string, open: number, close: number, plain: boolean): string {
    if (plain) {
      switch (column.kind) {
        case 'text':
          // Quoted, with `"` and `\` escaped and no control character: already a JSON string.
          return input.slice(open, close + 1);
        case 'integer': {
          const digits = input.slice(open + 1, close);
          if (INTEGER.test(digits)) return digits;
          break;
        }
        case 'boolean':
          if (close === open + 2) {
            const flag = input.charCodeAt(open + 1);
            if (flag === 0x74) return 'true';
            if (flag === 0x66) return 'false';
          }
          break;
        case 'timestamp':
        case 'timestamptz': {
          const text = input.slice(open + 1, close);
          const zoned = column.kind === 'timestamptz';
          // isoFromDatabase, for the common shapes. PostgreSQL has no year 0; the parser leaves such a date alone.
          if ((zoned ? TIMESTAMPTZ : TIMESTAMP).test(text) && !text.startsWith('0000-00-00'))
            return `"${text.slice(0, 10)}T${text.slice(11, zoned ? -3 : undefined)}Z"`;
          break;
        }
      }
    }
    const text = withoutEscapes(Buffer.from(input.slice(open + 1, close), 'latin1').toString('utf8'));
    const json = JSON.stringify(column.convert(text)) as string | undefined;
    if (json === undefined) throw new Error('A type parser returned a value JSON cannot hold');
    return asBytes(json);
  }
}

/**
 * Turns COPY's CSV bytes into the cursor path's row objects, whatever the chunk
 * boundaries. The bytes are decoded to text once per chunk (StringDecoder keeps
 * a character split across chunks whole); a value is then a slice of that
 * text, unescaped only when it holds a backslash, put through its column's
 * `convert`.
 */
export class CsvRowParser {
  private readonly scanner: CsvRowScanner;
  private readonly decoder = new StringDecoder('utf8');
  private readonly names: string[];
  private readonly converts: Array<(text: string) => unknown>;
  /** Every column null, in order: a row starts as its copy, as pg's rows do. */
  private readonly template: Row = {};

  constructor(columns: readonly ColumnPlan[]) {
    this.scanner = new CsvRowScanner(columns.length);
    this.names = columns.map((column) => column.name);
    this.converts = columns.map((column) => column.convert);
    for (const name of this.names) this.template[name] = null;
  }

  get rows(): number {
    return this.scanner.rows;
  }

  /** The rows complete so far. */
  write(chunk: Buffer): Row[] {
    this.scanner.push(this.decoder.write(chunk));
    return this.parse();
  }

  /** `write` for bytes held as a latin1 string (one character per byte), as CopyOutQuery hands them. */
  writeText(text: string): Row[] {
    return this.write(Buffer.from(text, 'latin1'));
  }

  /** The last rows; throws when the input stopped inside a row. */
  end(): Row[] {
    this.scanner.push(this.decoder.end());
    this.scanner.end();
    return this.parse();
  }

  private parse(): Row[] {
    const { scanner, names, converts, template } = this;
    const quotes = scanner.quotes;
    const rows: Row[] = [];
    // The first backslash at or after the value being read (the input's length when there is none).
    let backslash = -1;
    while (scanner.next()) {
      const input = scanner.input;
      const row = { ...template };
      for (let index = 0; index < names.length; index++) {
        const open = quotes[2 * index] as number;
        if (open < 0) continue;
        const close = quotes[2 * index + 1] as number;
        if (backslash < open) {
          backslash = input.indexOf('\\', open);
          if (backslash === -1) backslash = input.length;
        }
        const text = input.slice(open + 1, close);
        const convert = converts[index] as (text: string) => unknown;
        row[names[index] as string] = convert(backslash < close ? withoutEscapes(text) : text);
      }
      rows.push(row);
    }
    return rows;
  }
}

/** A quoted value's text without its backslash escapes. */
function withoutEscapes(text: string): string {
  return text.includes('\\') ? text.replace(/\\([\s\S])/g, '$1') : text;
}

/** Is the quote at `at` escaped, that is preceded by an odd run of backslashes? */
function isEscaped(input: string, at: number): boolean {
  let run = 0;
  for (let i = at - 1; input.charCodeAt(i) === BACKSLASH; i--) run += 1;
  return run % 2 === 1;
}
