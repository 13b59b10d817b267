import { z } from 'zod';
import { EventError } from '../errors';
import { parseTimestamp } from './sources/time';

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
    };

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
  const result = manual.safeParse(event);
  if (!result.success) {
    const details = result.error.issues
      .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
      .join('; ');
    throw new EventError(`Invalid export event: ${details}`);
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
