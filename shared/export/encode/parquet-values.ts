/**
 * One value of a row to the physical value of its Parquet column, exactly or
 * not at all: a value that does not fit its column's type throws a
 * `ValueMismatch` saying why (the encoder adds the column and the row).
 * Timestamps go from ISO-8601 text to integer microseconds without a
 * JavaScript Date, which would drop the microseconds.
 */

import { EncodeError } from '../../errors';
import type { ParquetColumn } from './parquet-types';

/** Why one value does not fit its column: `shown` (a safe description of the value) `reason`. */
export class ValueMismatch extends Error {
  constructor(
    readonly reason: string,
    readonly shown: string,
  ) {
    super(`${shown} ${reason}`);
    this.name = 'ValueMismatch';
  }
}

/** INT64's extremes: PostgreSQL's and DuckDB's `infinity` and `-infinity` timestamps. */
export const INFINITY_MICROS = 2n ** 63n - 1n;
export const MINUS_INFINITY_MICROS = -(2n ** 63n - 1n);

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const MICROS_PER_SECOND = 1_000_000n;

/**
 * How a value shows in an error: numbers and short text shaped like a number,
 * date or time as they are; other text by its length only, since a column's
 * text may be anything (the exporter never prints row text).
 */
export function describeValue(value: unknown): string {
  if (typeof value === 'string')
    return /^[0-9TZeE:.+\- ]{1,40}$/.test(value) ? `"${value}"` : `a string of ${value.length} characters`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Date) return 'a Date object';
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (Array.isArray(value)) return 'an array';
  return `a value of type ${typeof value}`;
}

const mismatch = (value: unknown, reason: string) => new ValueMismatch(reason, describeValue(value));

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  return era * 146097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719468;
}

function validDate(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  if (month === 2) return day <= (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28);
  return day <= (month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31);
}

const ISO =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/;

/**
 * Microseconds since the epoch of an ISO-8601 timestamp: `T` or a space, an
 * optional fraction of up to nine digits (those past the sixth must be zero),
 * `Z`, an offset, or none (UTC). `infinity` / `-infinity` as PostgreSQL has them.
 */
export function timestampMicros(value: unknown): bigint {
  return BigInt(timestampMicrosValue(value));
}

/**
 * `timestampMicros` as a number where a double holds it exactly (every
 * instant before the year 2255), else as a bigint: the encoder hands numbers
 * to its thread, which makes the bigints the writer takes (int64Wide).
 */
export function timestampMicrosValue(value: unknown): number | bigint {
  if (typeof value !== 'string') throw mismatch(value, 'is not ISO-8601 timestamp text');
  return canonicalTimestampMicros(value) ?? anyTimestampMicros(value);
}

const ZERO = 48;
/** The digit at `i`, or NaN (which fails every range check below). */
const digit = (text: string, i: number) => {
  const d = text.charCodeAt(i) - ZERO;
  return d >= 0 && d <= 9 ? d : Number.NaN;
};
const digits = (text: string, from: number, count: number) => {
  let n = 0;
  for (let i = from; i < from + count; i++) n = n * 10 + digit(text, i);
  return n;
};

/** The last date read by the hot path and its day number: a window's rows are mostly of one day. */
let lastDate = '';
let lastDays = 0;

/**
 * The forms the sessions hand over, `YYYY-MM-DDTHH:MM:SS[.f{1,6}]Z` (MySQL
 * pads the fraction to six digits, PostgreSQL drops its trailing zeros), read
 * without a regular expression (the hot path); undefined for any other form.
 */
function canonicalTimestampMicros(text: string): number | undefined {
  const length = text.length;
  if (length < 20 || length > 27 || length === 21 || text.charCodeAt(length - 1) !== 90 /* Z */)
    return undefined;
  if (text.charCodeAt(10) !== 84 /* T */ || text.charCodeAt(13) !== 58 || text.charCodeAt(16) !== 58)
    return undefined;
  let fraction = 0;
  if (length > 20) {
    if (text.charCodeAt(19) !== 46 /* . */) return undefined;
    const places = length - 21;
    fraction = digits(text, 20, places) * 10 ** (6 - places);
  }
  let days: number;
  if (lastDate !== '' && text.startsWith(lastDate)) days = lastDays;
  else {
    if (text.charCodeAt(4) !== 45 /* - */ || text.charCodeAt(7) !== 45) return undefined;
    const year = digits(text, 0, 4);
    const month = digits(text, 5, 2);
    const day = digits(text, 8, 2);
    if (!validDate(year, month, day)) return undefined;
    days = daysFromCivil(year, month, day);
    lastDate = text.slice(0, 10);
    lastDays = days;
  }
  const hour = digits(text, 11, 2);
  const minute = digits(text, 14, 2);
  const second = digits(text, 17, 2);
  // NaN fails every comparison: a non-digit goes to the general path, which explains it.
  if (!(fraction >= 0 && hour <= 23 && minute <= 59 && second <= 59)) return undefined;
  const micros = (days * 86400 + hour * 3600 + minute * 60 + second) * 1e6 + fraction;
  // Exact in a double until the year 2255; later instants take the bigint path.
  return Number.isSafeInteger(micros) ? micros : undefined;
}

function anyTimestampMicros(value: string): bigint {
  const m = ISO.exec(value);
  if (!m) {
    if (value === 'infinity') return INFINITY_MICROS;
    if (value === '-infinity') return MINUS_INFINITY_MICROS;
    throw mismatch(value, 'is not an ISO-8601 timestamp');
  }
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = m[6] === undefined ? 0 : Number(m[6]);
  if (!validDate(year, month, day) || hour > 23 || minute > 59 || second > 59)
    throw mismatch(value, 'is not a valid date and time');
  const fraction = m[7] === undefined ? '000000' : m[7].padEnd(9, '0');
  if (fraction.length > 6 && !/^0*$/.test(fraction.slice(6)))
    throw mismatch(value, 'is finer than microseconds (would be cut)');
  let offsetSeconds = 0;
  const zone = m[8];
  if (zone !== undefined && zone !== 'Z') {
    const digits = zone.slice(1).replace(':', '');
    const hours = Number(digits.slice(0, 2));
    const minutes = Number(digits.slice(2) || '0');
    if (hours > 23 || minutes > 59) throw mismatch(value, 'has an invalid UTC offset');
    offsetSeconds = (zone.startsWith('-') ? -1 : 1) * (hours * 3600 + minutes * 60);
  }
  const seconds =
    daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offsetSeconds;
  return BigInt(seconds) * MICROS_PER_SECOND + BigInt(Number(fraction.slice(0, 6)));
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Days since 1970-01-01 of `YYYY-MM-DD`. */
export function dateDays(value: unknown): number {
  if (typeof value !== 'string') throw mismatch(value, 'is not YYYY-MM-DD text');
  const m = DATE.exec(value);
  const [year, month, day] = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [0, 0, 0];
  if (!m || !validDate(year, month, day)) throw mismatch(value, 'is not a valid YYYY-MM-DD date');
  return daysFromCivil(year, month, day);
}

const INTEGER_TEXT = /^[+-]?\d+$/;

/** A whole number as a bigint, from a number, a bigint or decimal integer text. */
function integerOf(value: unknown): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw mismatch(value, 'is not an integer');
    if (!Number.isSafeInteger(value))
      throw mismatch(value, 'is beyond 2^53 (as a number it has already lost digits)');
    return BigInt(value);
  }
  if (typeof value === 'string' && INTEGER_TEXT.test(value)) return BigInt(value);
  throw mismatch(value, 'is not an integer');
}

export function int32Value(value: unknown): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX)
    return value;
  const n = integerOf(value);
  if (n < INT32_MIN || n > INT32_MAX) throw mismatch(value, 'is out of the INT32 range');
  return Number(n);
}

/**
 * `int64Value` as a number where the value is a number already within 2^53,
 * or short integer text (15 digits at most), else as a bigint: the encoder
 * hands numbers to its thread, which makes the bigints the writer takes (int64Wide).
 */
export function int64Compact(value: unknown): number | bigint {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  if (typeof value === 'string' && isShortInteger(value)) return Number(value);
  return int64Value(value);
}

/** Decimal integer text of at most 15 characters (sign included): exact as a number. */
function isShortInteger(text: string): boolean {
  const length = text.length;
  if (length === 0 || length > 15) return false;
  const first = text.charCodeAt(0);
  let i = first === 45 /* - */ || first === 43 /* + */ ? 1 : 0;
  if (i === length) return false;
  for (; i < length; i++) {
    const code = text.charCodeAt(i);
    if (code < 48 || code > 57) return false;
  }
  return true;
}

/** INT64 values as the writer takes them: bigints, in place. */
export function int64Wide(values: unknown[]): unknown[] {
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (typeof value === 'number') values[i] = BigInt(value);
  }
  return values;
}

export function int64Value(value: unknown): bigint {
  const n = integerOf(value);
  if (n < INT64_MIN || n > INT64_MAX) throw mismatch(value, 'is out of the INT64 range');
  return n;
}

const FLOAT_TEXT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$|^[+-]?Infinity$|^NaN$/;

export function doubleValue(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && FLOAT_TEXT.test(value)) return Number(value);
  throw mismatch(value, 'is not a number');
}

export function booleanValue(value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  if (value === 1 || value === '1' || value === 't' || value === 'true') return true;
  if (value === 0 || value === '0' || value === 'f' || value === 'false') return false;
  throw mismatch(value, 'is not a boolean');
}

const DECIMAL_TEXT = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/**
 * The unscaled integer of DECIMAL(precision, scale): `12.30` in DECIMAL(5,2)
 * is 1230. Refuses what would need rounding (more fraction digits than the
 * scale, unless zeros) or more integer digits than the precision allows.
 */
export function decimalUnscaled(value: unknown, precision: number, scale: number): bigint {
  let text: string;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'bigint') text = value.toString();
  // A number's shortest round-trip text is the decimal it was parsed from.
  else if (typeof value === 'number' && Number.isFinite(value)) text = String(value);
  else throw mismatch(value, 'is not a decimal number');
  const m = DECIMAL_TEXT.exec(text);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) throw mismatch(value, 'is not a decimal number');
  let digits = `${m[2]}${m[3] ?? ''}`;
  // Position of the point, counted from the left of `digits`.
  let point = (m[2] as string).length + Number(m[4] ?? 0);
  if (point < 0) {
    digits = '0'.repeat(-point) + digits;
    point = 0;
  }
  if (point > digits.length) digits = digits.padEnd(point, '0');
  const fraction = digits.slice(point);
  if (fraction.length > scale && !/^0*$/.test(fraction.slice(scale)))
    throw mismatch(value, `has more than ${scale} digits after the point (would be rounded)`);
  const unscaled = BigInt(`${digits.slice(0, point) || '0'}${fraction.slice(0, scale).padEnd(scale, '0')}`);
  if (unscaled >= 10n ** BigInt(precision))
    throw mismatch(value, `has more than ${precision - scale} digits before the point`);
  return m[1] === '-' ? -unscaled : unscaled;
}

/** ES2024's String.prototype.isWellFormed (Node 20 has it; the project's lib is ES2023). */
interface WellFormedCheck {
  isWellFormed(): boolean;
}

export function stringValue(value: unknown): string {
  if (typeof value !== 'string') throw mismatch(value, 'is not a string');
  // A lone surrogate has no UTF-8 form: writing it would silently become U+FFFD.
  if (!(value as unknown as WellFormedCheck).isWellFormed())
    throw mismatch(value, 'has a lone UTF-16 surrogate (UTF-8 cannot hold it)');
  return value;
}

/** Text as it is; anything else as the JSON text that the JSON-lines format writes for it. */
export function jsonValue(value: unknown): string {
  if (typeof value === 'string') return stringValue(value);
  return jsonDocumentValue(value);
}

/**
 * Any value, strings included, as the JSON text that the JSON-lines format
 * writes for it (JSON.stringify escapes a lone surrogate, so any string has one).
 */
export function jsonDocumentValue(value: unknown): string {
  const text = JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? v.toString() : v));
  if (text === undefined) throw mismatch(value, 'has no JSON form');
  return text;
}

/** A value that does not fit its column as the encoder reports it: an EncodeError naming the column and the row. */
export function valueError(column: ParquetColumn, rowNumber: number, error: unknown): Error {
  if (!(error instanceof ValueMismatch)) return error as Error;
  const type =
    column.type.kind === 'decimal'
      ? `decimal(${column.type.precision},${column.type.scale})`
      : column.type.kind;
  return new EncodeError(
    `Column "${column.name}" (${type}), row ${rowNumber}: ${error.message}`,
    column.name,
    rowNumber,
    { cause: error },
  );
}
