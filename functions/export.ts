import {
  defaultExportRuntime,
  type ExportRuntime,
  type ExportSummary,
  executeExport,
  type InvocationContext,
  parseExportEvent,
} from '../shared/export';

/**
 * The exporter's Lambda entry point. Events:
 * - an EventBridge scheduled event: every enabled cluster (fanned out on Lambda);
 * - `{ cluster, tables? }`: catch one cluster up now;
 * - `{ cluster, tables?, from, to, dryRun?, replace? }`: backfill a range;
 * - `{ compact: { cluster?, table?, date?, replace? } }`: compact a day's window objects into one.
 * Returns the JSON summary; a malformed event or configuration throws before anything is written.
 */
export function makeHandler(runtime: ExportRuntime) {
  return async (event: unknown, context?: InvocationContext): Promise<ExportSummary> => {
    const request = parseExportEvent(event);
    return executeExport(request, runtime, context);
  };
}

export const handler = makeHandler(defaultExportRuntime());
