import type { Readable } from 'node:stream';
import { isoFromDatabase } from './time';

/**
 * The PostgreSQL fast path: the server writes each row as one JSON line
 * (row_to_json over per-column expressions) and COPY sends the lines as they
 * are, so Node only counts newlines and gzips bytes. Each expression reproduces
 * what the cursor path makes of the column (its type parser, then
 * JSON.stringify); a column type without such an expression sends the whole
 * query back to the cursor path. Among those: json and jsonb (JSON.parse and
 * JSON.stringify rewrite them), arrays the parser turns into JS arrays, points,
 * and floats, whose shortest digits PostgreSQL (Ryu) and V8 choose differently
 * when a decimal half an ulp away is shorter (2.5299661345350968e+16 against
 * 25299661345350970); an exact SQL emulation cost milliseconds per value.
 */

/** A column as the query describes it. */
export interface ColumnField {
  name: string;
  dataTypeID: number;
}

export type TypeParser = (text: string) => unknown;

/** Lines are handed to gzip in chunks of at least this many bytes: fewer, larger writes. */
const CHUNK_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

/**
 * isoFromDatabase in SQL, for output in DateStyle ISO and TimeZone UTC (the
 * session checks both): `YYYY-MM-DD HH:MM:SS[.f]` (`+00` after it for
 * timestamptz) becomes `YYYY-MM-DDTHH:MM:SS[.f]Z`; BC, years beyond 9999 and
 * infinities stay as they are. String functions: a regular expression cost
 * more than the whole row.
 */
function isoExpression(ref: string, oid: number): string {
  const s = `${ref}::text`;
  return oid === 1184
    ? `CASE WHEN substr(${s}, 5, 1) = '-' AND right(${s}, 3) = '+00' THEN overlay(left(${s}, -3) PLACING 'T' FROM 11 FOR 1) || 'Z' ELSE ${s} END`
    : `CASE WHEN substr(${s}, 5, 1) = '-' AND right(${s}, 3) <> ' BC' THEN overlay(${s} PLACING 'T' FROM 11 FOR 1) || 'Z' ELSE ${s} END`;
}

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

/**
 * A value as its type's output function writes it, as the cursor path receives
 * it. Not `::text`: some types cast to text differently (char(n) drops its
 * padding, inet shows its netmask). concat() writes through the output function
 * but makes NULL empty, so NULL is kept apart.
 */
const outputText = (ref: string) => `CASE WHEN ${ref} IS NULL THEN NULL ELSE concat(${ref}) END`;

/** Types whose cast to text is their output function (faster than concat): int8, numeric, dates and times, uuid, bytea, and the arrays read as text. */
const IO_CAST_TO_TEXT = new Set([20, 1700, 1082, 1083, 1266, 1186, 2950, 17, 1115, 1185, 1182, 1187]);

/** Does the parser turn `text` into `expected`? A parser that throws (JSON.parse) does not. */
function parsesTo(parser: TypeParser, text: string, expected: unknown): boolean {
  try {
    return parser(text) === expected;
  } catch {
    return false;
  }
}

/**
 * The SQL expression that row_to_json turns into the same JSON as the cursor
 * path writes for this column, or undefined when there is none. The parser is
 * the one the cursor path uses, checked rather than assumed.
 */
export function columnExpression(ref: string, oid: number, parser: TypeParser): string | undefined {
  if (parser === isoFromDatabase && (oid === 1114 || oid === 1184)) return isoExpression(ref, oid);
  if (PASS_THROUGH_PROBES.every((probe) => parsesTo(parser, probe, probe))) {
    // text and varchar row_to_json quotes as they are; others (numbers, dates, arrays) it would turn into JSON.
    if (oid === 25 || oid === 1043) return ref;
    return IO_CAST_TO_TEXT.has(oid) ? `${ref}::text` : outputText(ref);
  }
  switch (oid) {
    case 16: // bool
      return parsesTo(parser, 't', true) && parsesTo(parser, 'f', false) ? ref : undefined;
    case 21: // int2
    case 23: // int4
      return parsesTo(parser, '-32768', -32768) ? ref : undefined;
    case 26: // oid, which row_to_json would quote: as int8 it stays a number
      return parsesTo(parser, '4294967295', 4294967295) ? `${ref}::int8` : undefined;
    default:
      return undefined;
  }
}

/**
 * The COPY statement that writes the rows of `sql` (in its order) as JSON lines,
 * or undefined when some column cannot be written exactly as the cursor path
 * would. Column names must make the same object keys: no duplicates (a JS object
 * keeps one), no array-index names (a JS object puts them first), no __proto__.
 */
export function jsonLinesCopy(
  sql: string,
  fields: readonly ColumnField[],
  parserFor: (oid: number) => TypeParser,
  quote: (identifier: string) => string,
): string | undefined {
  const names = fields.map((f) => f.name);
  if (new Set(names).size !== names.length) return undefined;
  if (names.some((name) => name === '__proto__' || /^(0|[1-9][0-9]*)$/.test(name))) return undefined;
  const columns: string[] = [];
  for (const field of fields) {
    const expression = columnExpression(
      `w.${quote(field.name)}`,
      field.dataTypeID,
      parserFor(field.dataTypeID),
    );
    if (expression === undefined) return undefined;
    columns.push(`${expression} AS ${quote(field.name)}`);
  }
  // JSON text has no raw control characters, so with these delimiters CSV never quotes or escapes a line.
  return `COPY (SELECT row_to_json(j) FROM (SELECT ${columns.join(', ')} FROM (${sql}) AS w) AS j) TO STDOUT WITH (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')`;
}

/**
 * Reads a COPY stream in chunks of at least CHUNK_BYTES, counting lines (one per
 * row). Stopping early reads the rest to the end and discards it, so that the
 * connection leaves COPY mode and stays usable.
 */
export async function* countedLines(copy: Readable, counter: { rows: number }): AsyncGenerator<Buffer> {
  const iterator = copy.iterator({ destroyOnReturn: false });
  let finished = false;
  try {
    let parts: Buffer[] = [];
    let size = 0;
    for await (const chunk of iterator as AsyncIterable<Buffer>) {
      for (let i = chunk.indexOf(NEWLINE); i !== -1; i = chunk.indexOf(NEWLINE, i + 1)) counter.rows += 1;
      parts.push(chunk);
      size += chunk.length;
      if (size >= CHUNK_BYTES) {
        yield parts.length === 1 ? chunk : Buffer.concat(parts, size);
        parts = [];
        size = 0;
      }
    }
    finished = true;
    if (size > 0) yield Buffer.concat(parts, size);
  } finally {
    if (!finished && !copy.destroyed && !copy.readableEnded) {
      copy.resume();
      await new Promise<void>((resolve) => {
        copy.once('end', resolve);
        copy.once('error', () => resolve());
        copy.once('close', resolve);
      });
    }
  }
}
