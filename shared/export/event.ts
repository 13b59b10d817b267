import { EventError } from '../errors';
import * as z from '../validation';
import { dayOf, parseTimestamp } from './sources/time';

/** A daily compaction (`{ "compact": { cluster?, table?, date?, replace? } }`). */
export interface CompactRequest {
  kind: 'compact';
  /** Every enabled cluster when absent. */
  cluster?: string;
  /** Every table of the cluster when absent. */
  table?: string;
  /** `YYYY-MM-DD` (UTC); the day before today when absent. */
  date?: string;
  /**
   * Rewrites a daily object that exists from the day's window objects: an explicit override of write-once, as
   * a backfill's `replace` is for window objects. Only with a cluster and a date: the scheduled form never replaces.
   */
  replace?: boolean;
}

/** What the handler was asked to do. */
export type ExportRequest =
  | { kind: 'scheduled' }
  | { kind: 'catch-up'; cluster: string; tables?: string[] }
  | {
      kind: 'backfill';
      cluster: string;
      tables?: string[];
      from: string;
      to: string;
      dryRun: boolean;
      replace: boolean;
    }
  | CompactRequest;

const timestamp = z
  .string()
  .check(z.refine((s) => parseTimestamp(s) !== undefined, 'must be an ISO-8601 timestamp'));

const manual = z
  .strictObject({
    cluster: z.string().check(z.minLength(1)),
    tables: z.optional(z.array(z.string().check(z.minLength(1))).check(z.minLength(1))),
    from: z.optional(timestamp),
    to: z.optional(timestamp),
    dryRun: z.optional(z.boolean()),
    replace: z.optional(z.boolean()),
  })
  .check(
    z.superRefine((e, ctx) => {
      if ((e.from === undefined) !== (e.to === undefined)) {
        ctx.addIssue({ code: 'custom', path: [e.from ? 'to' : 'from'], message: 'from and to go together' });
      } else if (e.from && e.to && (parseTimestamp(e.from) ?? 0) >= (parseTimestamp(e.to) ?? 0)) {
        ctx.addIssue({ code: 'custom', path: ['from'], message: 'must be before to' });
      }
      if (e.from === undefined && (e.dryRun !== undefined || e.replace !== undefined)) {
        ctx.addIssue({ code: 'custom', path: [], message: 'dryRun and replace need from and to' });
      }
    }),
  );

const compact = z.strictObject({
  compact: z
    .strictObject({
      cluster: z.optional(z.string().check(z.minLength(1))),
      table: z.optional(z.string().check(z.minLength(1))),
      date: z.optional(
        z
          .string()
          .check(
            z.regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a day, YYYY-MM-DD'),
            z.refine(isCalendarDay, 'is not a calendar day'),
          ),
      ),
      replace: z.optional(z.boolean()),
    })
    .check(
      z.refine((c) => c.table === undefined || c.cluster !== undefined, {
        message: 'a table needs its cluster',
        path: ['table'],
      }),
      z.refine((c) => c.replace !== true || (c.cluster !== undefined && c.date !== undefined), {
        message: 'replace needs a cluster and a date (it rewrites the daily objects of one day)',
        path: ['replace'],
      }),
    ),
});

/** An EventBridge scheduled event (or any event EventBridge sends on a schedule rule). */
function isScheduled(event: unknown): boolean {
  const e = event as Record<string, unknown> | null;
  return (
    !!e && typeof e === 'object' && (e['detail-type'] === 'Scheduled Event' || e.source === 'aws.events')
  );
}

/** Validates the handler's event; every problem is named in one EventError. */
export function parseExportEvent(event: unknown): ExportRequest {
  if (isScheduled(event)) return { kind: 'scheduled' };
  if (event && typeof event === 'object' && 'compact' in event) {
    const parsed = compact.safeParse(event);
    if (!parsed.success)
      throw new EventError(`Invalid compact event: ${describeIssues(parsed.error.issues)}`);
    return { kind: 'compact', ...parsed.data.compact };
  }
  const result = manual.safeParse(event);
  if (!result.success) {
    throw new EventError(`Invalid export event: ${describeIssues(result.error.issues)}`);
  }
  const e = result.data;
  if (e.from !== undefined && e.to !== undefined) {
    return {
      kind: 'backfill',
      cluster: e.cluster,
      tables: e.tables,
      from: e.from,
      to: e.to,
      dryRun: e.dryRun ?? false,
      replace: e.replace ?? false,
    };
  }
  return { kind: 'catch-up', cluster: e.cluster, tables: e.tables };
}

/** Every problem of an event, one after the other, each with its path. */
function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}

/** `YYYY-MM-DD` naming a day that exists (not 2026-02-30, which a parser would roll over). */
export function isCalendarDay(date: string): boolean {
  const micros = parseTimestamp(`${date}T00:00:00Z`);
  return micros !== undefined && dayOf(micros) === date;
}
