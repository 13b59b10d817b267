import { z } from 'zod';
import { EventError } from '../errors';
import { dayOf, parseTimestamp } from './sources/time';

/** A daily compaction (`{ "compact": { cluster?, table?, date? } }`). */
export interface CompactRequest {
  kind: 'compact';
  /** Every enabled cluster when absent. */
  cluster?: string;
  /** Every table of the cluster when absent. */
  table?: string;
  /** `YYYY-MM-DD` (UTC); the day before today when absent. */
  date?: string;
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

const timestamp = z.string().refine((s) => parseTimestamp(s) !== undefined, 'must be an ISO-8601 timestamp');

const manual = z
  .strictObject({
    cluster: z.string().min(1),
    tables: z.array(z.string().min(1)).min(1).optional(),
    from: timestamp.optional(),
    to: timestamp.optional(),
    dryRun: z.boolean().optional(),
    replace: z.boolean().optional(),
  })
  .superRefine((e, ctx) => {
    if ((e.from === undefined) !== (e.to === undefined)) {
      ctx.addIssue({ code: 'custom', path: [e.from ? 'to' : 'from'], message: 'from and to go together' });
    } else if (e.from && e.to && (parseTimestamp(e.from) ?? 0) >= (parseTimestamp(e.to) ?? 0)) {
      ctx.addIssue({ code: 'custom', path: ['from'], message: 'must be before to' });
    }
    if (e.from === undefined && (e.dryRun !== undefined || e.replace !== undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'dryRun and replace need from and to' });
    }
  });

const compact = z.strictObject({
  compact: z
    .strictObject({
      cluster: z.string().min(1).optional(),
      table: z.string().min(1).optional(),
      date: z
        .string()
        .regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a day, YYYY-MM-DD')
        .refine(isCalendarDay, 'is not a calendar day')
        .optional(),
    })
    .refine((c) => c.table === undefined || c.cluster !== undefined, {
      message: 'a table needs its cluster',
      path: ['table'],
    }),
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
