import { createHash } from 'node:crypto';
import { ExportError } from '../../../errors';
import type { DatabaseSession } from '../session';

/**
 * Reading an append-only log table (MySQL/MariaDB `general_log`, `slow_log`:
 * CSV tables) by position instead of by recorded time. The server stamps each
 * row with the writing session's local time (its `time_zone`), so the recorded
 * time cannot say whether a row was already read; the position in a full scan
 * can: a CSV table only grows at its end, and a scan returns rows in the order
 * they were appended. A generation of a table (its rows from its creation or
 * last TRUNCATE until it is truncated, rotated away or dropped) is known by a
 * fingerprint of its first rows, which never change while it lives, so the
 * cursor survives a rename to `_backup` (Amazon RDS rotation) and a restart.
 */

/** Rows hashed into a generation's fingerprint (a LIMIT query, cheap at any table size). */
export const FINGERPRINT_ROWS = 16;

/** One generation and how many of its rows have been exported. */
export interface Generation {
  /** How many first rows the fingerprint covers (fewer than FINGERPRINT_ROWS while the table was small). */
  rows: number;
  /** sha256 of those rows, as the exporter's UTC session reads them. */
  fingerprint: string;
  /** Rows exported so far: the next run starts at this position. */
  position: number;
}

/** The rows `[from, to)` of one generation: the part of it a batch exports. */
export interface PositionRange {
  rows: number;
  fingerprint: string;
  from: number;
  to: number;
}

/**
 * A batch of windows fixed before its first object is written, so that a run
 * that resumes it after a crash or a deadline writes the same objects with the
 * same rows: the windows `[lo, hi)` on the grid of `windowMinutes`, and the
 * position ranges whose rows they hold.
 */
export interface PendingBatch {
  lo: string;
  hi: string;
  windowMinutes: number;
  ranges: PositionRange[];
}

/** One table as surveyed now: its row count and the fingerprints of its first 1..16 rows. */
export interface SurveyedTable {
  table: string;
  count: number;
  /** `prefixes[i]` is the fingerprint of the first `i + 1` rows. */
  prefixes: string[];
}

/** A position range located in the table that holds its generation now. */
export interface LocatedRange extends PositionRange {
  table: string;
}

/** Fingerprints of the first rows of `schema.table`, one per prefix length. */
async function prefixFingerprints(
  session: DatabaseSession,
  schema: string,
  table: string,
): Promise<string[]> {
  const hash = createHash('sha256');
  const prefixes: string[] = [];
  const name = `${session.dialect.quote(schema)}.${session.dialect.quote(table)}`;
  for await (const row of session.stream(`SELECT * FROM ${name} LIMIT ${FINGERPRINT_ROWS}`)) {
    hash.update(`${JSON.stringify(row)}\n`);
    prefixes.push(hash.copy().digest('hex'));
  }
  return prefixes;
}

/**
 * Surveys the tables: row count and first-row fingerprints. The fingerprint
 * is read before and after the count; a rotation or TRUNCATE in between would
 * pair one generation's count with another's rows, so the survey is retried.
 * Without `count` (a full scan) only the fingerprints are read, to locate
 * generations.
 */
export async function surveyTables(
  session: DatabaseSession,
  schema: string,
  tables: readonly string[],
  options: { count: boolean },
): Promise<SurveyedTable[]> {
  const surveyed: SurveyedTable[] = [];
  for (const table of tables) {
    if (!options.count) {
      const prefixes = await prefixFingerprints(session, schema, table);
      surveyed.push({ table, count: prefixes.length, prefixes });
      continue;
    }
    for (let attempt = 1; ; attempt++) {
      const before = await prefixFingerprints(session, schema, table);
      const count = Number(
        await session.scalar(
          `SELECT COUNT(*) FROM ${session.dialect.quote(schema)}.${session.dialect.quote(table)}`,
        ),
      );
      const after = await prefixFingerprints(session, schema, table);
      const consistent = count === 0 ? after.length === 0 : after.length > 0 && count >= after.length;
      if (before[0] === after[0] && consistent) {
        surveyed.push({ table, count, prefixes: after });
        break;
      }
      if (attempt === 3) {
        throw new ExportError(`${schema}.${table} changed generation three times while it was surveyed`);
      }
    }
  }
  return surveyed;
}

/** Does `table` hold the generation whose first `rows` rows have this fingerprint? */
function holds(table: SurveyedTable, rows: number, fingerprint: string): boolean {
  return rows > 0 && table.prefixes[rows - 1] === fingerprint;
}

/** A warning for the operator, with its fields; the caller logs it. */
export interface PositionWarning {
  message: string;
  table: string;
  position: number;
  count: number;
}

/**
 * The ranges a new batch exports: for each non-empty table, from the position
 * of its generation in the cursor (0 for a generation not seen before: a new
 * table after TRUNCATE or rotation, or a first run) to its current row count.
 */
export function planRanges(
  cursor: readonly Generation[],
  surveyed: readonly SurveyedTable[],
  warn: (warning: PositionWarning) => void,
): PositionRange[] {
  const ranges: PositionRange[] = [];
  for (const table of surveyed) {
    if (table.count === 0) continue;
    const known = cursor.find((g) => holds(table, g.rows, g.fingerprint));
    let from = known?.position ?? 0;
    if (from > table.count) {
      // Rows were cut from the end (a crash repair of the CSV file): what is there now was read already.
      warn({
        message: 'The log table holds fewer rows than were exported from it; reading on from its end',
        table: table.table,
        position: from,
        count: table.count,
      });
      from = table.count;
    }
    const rows = Math.min(FINGERPRINT_ROWS, table.count, table.prefixes.length);
    ranges.push({ rows, fingerprint: table.prefixes[rows - 1] as string, from, to: table.count });
  }
  return ranges;
}

/** The cursor once a batch is committed: every range's generation, read up to its end. */
export function cursorAfter(batch: PendingBatch): Generation[] {
  return batch.ranges.map((r) => ({ rows: r.rows, fingerprint: r.fingerprint, position: r.to }));
}

/**
 * Finds, for each range of a batch, the table that holds its generation now
 * (after a rotation, the `_backup` twin). A generation found nowhere is gone
 * (truncated, or rotated away twice): it is reported and its rows skipped.
 */
export function locateRanges(
  ranges: readonly PositionRange[],
  surveyed: readonly SurveyedTable[],
  warn: (warning: PositionWarning) => void,
): LocatedRange[] {
  const located: LocatedRange[] = [];
  for (const range of ranges) {
    if (range.from >= range.to) continue;
    const table = surveyed.find((t) => holds(t, range.rows, range.fingerprint));
    if (!table) {
      warn({
        message:
          'The log rows of a batch are gone (table truncated or rotated away): they cannot be exported',
        table: '(none)',
        position: range.from,
        count: range.to,
      });
      continue;
    }
    located.push({ ...range, table: table.table });
  }
  return located;
}

/** Parses the JSON kept in the watermark item; malformed state is an error, not a silent restart. */
export function parseCursor(text: string | undefined): Generation[] {
  if (text === undefined) return [];
  const value = JSON.parse(text) as unknown;
  if (!Array.isArray(value) || !value.every(isGeneration)) {
    throw new ExportError('The watermark item holds a malformed logCursor');
  }
  return value;
}

export function parsePending(text: string | undefined): PendingBatch | undefined {
  if (text === undefined) return undefined;
  const value = JSON.parse(text) as Partial<PendingBatch>;
  if (
    typeof value?.lo !== 'string' ||
    typeof value.hi !== 'string' ||
    typeof value.windowMinutes !== 'number' ||
    !Array.isArray(value.ranges) ||
    !value.ranges.every((r) => isGeneration({ ...r, position: r.from }) && Number.isInteger(r.to))
  ) {
    throw new ExportError('The watermark item holds a malformed logPending');
  }
  return value as PendingBatch;
}

function isGeneration(value: unknown): value is Generation {
  const g = value as Generation;
  return (
    typeof g === 'object' &&
    g !== null &&
    Number.isInteger(g.rows) &&
    typeof g.fingerprint === 'string' &&
    Number.isInteger(g.position)
  );
}
