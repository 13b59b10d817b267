/**
 * Timestamp arithmetic on strings. Database timestamps carry microseconds that a
 * JavaScript Date would drop, so timestamps are kept as text or as integer
 * microseconds since the Unix epoch (exact in a double until the year 2255) and
 * never pass through Date.
 */

const MICROS_PER_SECOND = 1_000_000;
const MICROS_PER_MINUTE = 60 * MICROS_PER_SECOND;
const MICROS_PER_DAY = 1440 * MICROS_PER_MINUTE;

/** ISO-8601 in UTC with an optional fraction and a `Z` or `±HH:MM` offset; `T` or a space between date and time. */
const ISO =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/;

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function civilFromDays(days: number): [number, number, number] {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (month <= 2 ? 1 : 0), month, day];
}

function daysInMonth(year: number, month: number): number {
  return (
    daysFromCivil(month === 12 ? year + 1 : year, month === 12 ? 1 : month + 1, 1) -
    daysFromCivil(year, month, 1)
  );
}

/**
 * Parses an ISO-8601 timestamp into microseconds since the epoch, or returns
 * undefined when it is malformed (bad shape, month 13, February 30, ...). A
 * missing offset means UTC; digits beyond microseconds must be zero.
 */
export function parseTimestamp(text: string): number | undefined {
  const m = ISO.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? '0'].map(
    Number,
  ) as [number, number, number, number, number, number];
  const fraction = (m[7] ?? '').padEnd(9, '0');
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59 || !fraction.endsWith('000')) return undefined;
  let offsetMinutes = 0;
  const zone = m[8];
  if (zone && zone !== 'Z') {
    const digits = zone.slice(1).replace(':', '');
    const hours = Number(digits.slice(0, 2));
    const minutes = Number(digits.slice(2) || '0');
    if (hours > 23 || minutes > 59) return undefined;
    offsetMinutes = (zone.startsWith('-') ? -1 : 1) * (hours * 60 + minutes);
  }
  const seconds = daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
  return (seconds - offsetMinutes * 60) * MICROS_PER_SECOND + Number(fraction.slice(0, 6));
}

/** Like parseTimestamp, but throws for text this program produced itself. */
export function toMicros(text: string): number {
  const micros = parseTimestamp(text);
  if (micros === undefined) throw new RangeError(`Not an ISO-8601 timestamp: ${text}`);
  return micros;
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

function parts(micros: number) {
  const days = Math.floor(micros / MICROS_PER_DAY);
  const inDay = micros - days * MICROS_PER_DAY;
  const [year, month, day] = civilFromDays(days);
  const second = Math.floor(inDay / MICROS_PER_SECOND);
  return {
    date: `${pad(year, 4)}-${pad(month)}-${pad(day)}`,
    compactDate: `${pad(year, 4)}${pad(month)}${pad(day)}`,
    hh: pad(Math.floor(second / 3600)),
    mm: pad(Math.floor((second % 3600) / 60)),
    ss: pad(second % 60),
    fraction: pad(inDay % MICROS_PER_SECOND, 6),
  };
}

/** `YYYY-MM-DDTHH:MM:SS.ffffffZ`, the form of watermarks and window bounds. */
export function formatTimestamp(micros: number): string {
  const p = parts(micros);
  return `${p.date}T${p.hh}:${p.mm}:${p.ss}.${p.fraction}Z`;
}

/** `YYYY-MM-DD HH:MM:SS.ffffff`, a literal that MySQL reads in a UTC session. */
export function sqlTimestamp(micros: number): string {
  const p = parts(micros);
  return `${p.date} ${p.hh}:${p.mm}:${p.ss}.${p.fraction}`;
}

/** `YYYYMMDDTHHMMSSZ`, as object keys carry window bounds. */
export function compactTimestamp(micros: number): string {
  const p = parts(micros);
  return `${p.compactDate}T${p.hh}${p.mm}${p.ss}Z`;
}

/** `YYYY-MM-DD`, the UTC day (the `dt=` partition). */
export function dayOf(micros: number): string {
  return parts(micros).date;
}

/** The start of the grid cell of `windowMinutes` that holds `micros` (the grid starts at midnight UTC). */
export function floorToGrid(micros: number, windowMinutes: number): number {
  const step = windowMinutes * MICROS_PER_MINUTE;
  return Math.floor(micros / step) * step;
}

export const minutes = (n: number) => n * MICROS_PER_MINUTE;
export const seconds = (n: number) => n * MICROS_PER_SECOND;
export const hours = (n: number) => n * 60 * MICROS_PER_MINUTE;

/**
 * Rewrites a timestamp as a database prints it in a UTC session
 * (`2024-05-01 12:00:00.123456`, `2024-05-01 12:00:00.123+00`) as ISO-8601 UTC,
 * keeping exactly the digits the source gave. Text that is not such a
 * timestamp (a DATE, a zero date) is returned unchanged.
 */
export function isoFromDatabase(text: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?)(?:Z|\+00(?::?00)?)?$/.exec(text);
  if (!m || m[1] === '0000-00-00') return text;
  return `${m[1]}T${m[2]}Z`;
}
