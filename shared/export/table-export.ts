import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../log';
import type { TableDefinition } from './catalog';
import type { ClusterConfig, ExportConfig } from './config';
import { encodeJsonLines, peek } from './encode';
import { createParallelGzip } from './gzip';
import { planBackfill, planWindows, type Window } from './planner';
import type { DatabaseSession } from './session';
import type { Sink } from './sink';
import { compactTimestamp, dayOf, seconds, toMicros } from './time';
import type { Lease, WatermarkStore } from './watermark-store';

/** What a run does with one table. */
export type TableMode =
  | { kind: 'incremental' }
  | { kind: 'backfill'; from: string; to: string; dryRun: boolean; replace: boolean };

/** One table's result in the handler's summary. */
export interface TableSummary {
  table: string;
  /** Windows finished (exported, skipped or empty; counted in a dry run). */
  windows: number;
  rows: number;
  objectsWritten: number;
  objectsSkipped: number;
  /** The watermark after the run (unchanged by backfills). */
  watermark?: string;
  /** Windows left for the next run: the remaining time fell below the safety margin. */
  windowsLeft?: number;
  /** Dry run: rows per window, by window start. */
  rowsPerWindow?: Record<string, number>;
  /** Why the table was not read at all (e.g. "extension not installed"); nothing moved. */
  skipped?: string;
  error?: string;
}

export interface TableExportContext {
  config: ExportConfig;
  cluster: ClusterConfig;
  table: TableDefinition;
  mode: TableMode;
  session: DatabaseSession;
  store: WatermarkStore;
  sink: Sink;
  logger: Logger;
  /** Identifies this run as lease owner. */
  owner: string;
  /** Milliseconds this invocation has left. */
  remainingMs: () => number;
  /** No new window starts with less time left than this. */
  safetyMarginMs: number;
  now: () => number;
  /** Test hook: runs after a window's object is durable and before the watermark moves. */
  afterObjectWritten?: (key: string) => Promise<void>;
}

/** A lease never outlives the invocation, nor a Lambda's longest run. */
const MAX_LEASE_MS = 15 * 60_000;

/** The object key of one window: `<table>/cluster=<c>/dt=<day>/<table>.<c>.<lo>.<hi>.jsonl.gz`. */
export function objectKey(cluster: string, table: string, window: Window): string {
  const lo = toMicros(window.lo);
  const hi = toMicros(window.hi);
  return `${table}/cluster=${cluster}/dt=${dayOf(lo)}/${table}.${cluster}.${compactTimestamp(lo)}.${compactTimestamp(hi)}.jsonl.gz`;
}

/**
 * Exports one table: takes the lease, plans the windows from the database clock,
 * and for each window, oldest first, streams its rows into one write-once
 * object, then advances the watermark by a conditional write. A crash between
 * the two finds the object on the next run, which skips the write and advances.
 */
export async function exportTable(ctx: TableExportContext): Promise<TableSummary> {
  const { cluster, table, mode, store, session } = ctx;
  const logger = ctx.logger.createChild({ persistentKeys: { table: table.name } });
  const summary: TableSummary = {
    table: table.name,
    windows: 0,
    rows: 0,
    objectsWritten: 0,
    objectsSkipped: 0,
  };
  const dryRun = mode.kind === 'backfill' && mode.dryRun;
  const leaseUntil = () => ctx.now() + Math.min(ctx.remainingMs(), MAX_LEASE_MS);

  let lease: Lease | undefined;
  try {
    // A dry run writes nothing, not even a lease.
    if (!dryRun) lease = await store.acquire(cluster.name, table.name, ctx.owner, leaseUntil());
    const watermark = lease ? lease.watermark : (await store.read(cluster.name, table.name)).watermark;
    summary.watermark = watermark;
    const dbNow = await session.now();
    const lagSeconds = ctx.config.lagSeconds ?? (await table.lagSeconds(session));
    const windows =
      mode.kind === 'incremental'
        ? planWindows({
            watermark,
            dbNow,
            lagSeconds,
            windowMinutes: ctx.config.windowMinutes,
            initialLookbackHours: ctx.config.initialLookbackHours,
          })
        : planBackfill({
            from: mode.from,
            to: mode.to,
            dbNow,
            lagSeconds,
            windowMinutes: ctx.config.windowMinutes,
          });
    logger.info('Planned windows', {
      windows: windows.length,
      watermark,
      dbNow,
      lagSeconds,
      mode: mode.kind,
    });
    const source = await table.source({
      session,
      options: cluster.options,
      dueUntil: toMicros(dbNow) - seconds(lagSeconds),
    });
    if (typeof source !== 'function') {
      summary.skipped = source.skipped;
      logger.info('Table skipped', { reason: source.skipped });
      return summary;
    }
    const windowQuery = source;
    const ordered = (w: Window) =>
      `${windowQuery(micro(w))} ORDER BY ${table.orderBy.map((c) => session.dialect.quote(c)).join(', ')}`;

    for (const [index, window] of windows.entries()) {
      if (ctx.remainingMs() < ctx.safetyMarginMs) {
        summary.windowsLeft = windows.length - index;
        logger.warn('Stopping before the deadline; the next run resumes from the watermark', {
          windowsLeft: summary.windowsLeft,
        });
        break;
      }
      const windowLogger = logger.createChild({ persistentKeys: { window: `${window.lo}/${window.hi}` } });
      if (dryRun) {
        const count = Number(
          await session.scalar(`SELECT COUNT(*) FROM (${windowQuery(micro(window))}) AS w`),
        );
        summary.rowsPerWindow = { ...summary.rowsPerWindow, [window.lo]: count };
        summary.rows += count;
        summary.windows += 1;
        continue;
      }
      const key = objectKey(cluster.name, table.name, window);
      const replace = mode.kind === 'backfill' && mode.replace;
      const result = await writeWindow(ctx, key, ordered(window), replace);
      summary.rows += result.rows;
      if (result.outcome === 'written') summary.objectsWritten += 1;
      if (result.outcome === 'exists') summary.objectsSkipped += 1;
      windowLogger.info('Window exported', {
        outcome: result.outcome,
        rows: result.rows,
        key: ctx.sink.describe(key),
      });
      if (result.outcome !== 'empty') await ctx.afterObjectWritten?.(key);
      // The object is durable (or was already): only now may the watermark pass the window.
      lease = lease as Lease;
      if (mode.kind === 'incremental') {
        lease = await store.advance(lease, window.hi, result.rows, leaseUntil());
        summary.watermark = window.hi;
      } else {
        lease = await store.renew(lease, leaseUntil());
      }
      summary.windows += 1;
    }
  } catch (error) {
    // Reported, not thrown: the cluster's other tables go on. Committed windows stay committed.
    summary.error = (error as Error).message;
    logger.error('Table export failed', { error: error as Error, watermark: summary.watermark });
  } finally {
    if (lease)
      await store.release(lease).catch((error) => logger.warn('Could not release the lease', { error }));
  }
  return summary;
}

interface WindowResult {
  outcome: 'written' | 'exists' | 'empty';
  rows: number;
}

/** Streams one window's rows as gzip JSON lines into the sink; nothing is written for an empty window. */
async function writeWindow(
  ctx: TableExportContext,
  key: string,
  sql: string,
  replace: boolean,
): Promise<WindowResult> {
  if (!replace && (await ctx.sink.exists(key))) return { outcome: 'exists', rows: 0 };
  const counter = { rows: 0 };
  const redact = ctx.cluster.redact ? ctx.table.sqlTextColumns : [];
  // The session's fast path writes the same bytes without row objects, where it can.
  const databaseLines = await ctx.session.jsonLines?.(sql, counter, redact);
  const lines = databaseLines
    ? await peek(databaseLines)
    : await peek(ctx.session.stream(sql)).then((rows) => rows && encodeJsonLines(rows, redact, counter));
  if (!lines) return { outcome: 'empty', rows: 0 };
  // Blocks are deflated on the thread pool while the next rows are read and encoded.
  const gzip = createParallelGzip();
  const abort = new AbortController();
  const encoded = pipeline(Readable.from(lines, { highWaterMark: 1 }), gzip).catch((error) => {
    // Rows could not be read to the end: the object must not become visible.
    abort.abort(error);
    throw error;
  });
  const written = ctx.sink.write(key, gzip, { replace, signal: abort.signal });
  try {
    const [, outcome] = await Promise.all([encoded, written]);
    return { outcome, rows: outcome === 'written' ? counter.rows : 0 };
  } catch (error) {
    abort.abort(error);
    gzip.destroy();
    await Promise.allSettled([encoded, written]);
    throw error;
  }
}

const micro = (w: Window) => ({ lo: toMicros(w.lo), hi: toMicros(w.hi) });
