import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../log';
import { batchWindows, WindowedRows } from './batches';
import type { MicroWindow, TableDefinition } from './catalog';
import type { ClusterConfig, ExportConfig } from './config';
import { encodeJsonLines, peek, type RowCounter } from './encode';
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
  /** Bytes of the objects written (compressed). */
  bytes?: number;
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
    const ordered = (w: MicroWindow) =>
      `${windowQuery(w)} ORDER BY ${table.orderBy.map((c) => session.dialect.quote(c)).join(', ')}`;
    const replace = mode.kind === 'backfill' && mode.replace;

    /** Logs a finished window and commits it: only once its object is durable may the watermark pass it. */
    const commit = async (window: Window, key: string, result: WindowResult) => {
      summary.rows += result.rows;
      if (result.outcome === 'written') summary.objectsWritten += 1;
      if (result.outcome === 'exists') summary.objectsSkipped += 1;
      logger.info('Window exported', {
        window: `${window.lo}/${window.hi}`,
        outcome: result.outcome,
        rows: result.rows,
        key: ctx.sink.describe(key),
      });
      if (result.outcome !== 'empty') await ctx.afterObjectWritten?.(key);
      lease = lease as Lease;
      if (mode.kind === 'incremental') {
        lease = await store.advance(lease, window.hi, result.rows, leaseUntil());
        summary.watermark = window.hi;
      } else {
        lease = await store.renew(lease, leaseUntil());
      }
      summary.windows += 1;
    };
    /** Whether the window at `index` may start; if not, says how many are left. */
    const inTime = (index: number) => {
      if (ctx.remainingMs() >= ctx.safetyMarginMs) return true;
      summary.windowsLeft = windows.length - index;
      logger.warn('Stopping before the deadline; the next run resumes from the watermark', {
        windowsLeft: summary.windowsLeft,
      });
      return false;
    };

    let index = 0;
    batches: for (const batch of batchWindows(windows, table.fullScan === true && !dryRun)) {
      // A batch of several windows shares one ordered query, its rows split at the window bounds.
      const shared =
        batch.length > 1
          ? new WindowedRows(
              session.stream(
                ordered({ lo: micro(batch[0] as Window).lo, hi: micro(batch.at(-1) as Window).hi }),
              ),
              table.eventTimeColumn,
            )
          : undefined;
      try {
        for (const window of batch) {
          if (!inTime(index)) break batches;
          index += 1;
          const { lo, hi } = micro(window);
          if (dryRun) {
            const count = Number(
              await session.scalar(`SELECT COUNT(*) FROM (${windowQuery({ lo, hi })}) AS w`),
            );
            summary.rowsPerWindow = { ...summary.rowsPerWindow, [window.lo]: count };
            summary.rows += count;
            summary.windows += 1;
            continue;
          }
          const key = objectKey(cluster.name, table.name, window);
          const result = shared
            ? await writeWindow(
                ctx,
                key,
                replace,
                async (counter) => encodeJsonLines(shared.within(lo, hi), redactColumns(ctx), counter),
                () => shared.skip(lo, hi),
              )
            : await writeWindow(ctx, key, replace, (counter) =>
                windowLines(ctx, ordered({ lo, hi }), counter),
              );
          await commit(window, key, result);
        }
      } finally {
        await shared?.close();
      }
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

const redactColumns = (ctx: TableExportContext) => (ctx.cluster.redact ? ctx.table.sqlTextColumns : []);

/** A window's JSON lines from a query of its own: the session's fast path where it has one, else encoded rows. */
async function windowLines(
  ctx: TableExportContext,
  sql: string,
  counter: RowCounter,
): Promise<AsyncIterable<Uint8Array | string>> {
  const redact = redactColumns(ctx);
  // The fast path writes the same bytes without row objects.
  const fast = await ctx.session.jsonLines?.(sql, counter, redact);
  return fast ?? encodeJsonLines(ctx.session.stream(sql), redact, counter);
}

/**
 * Streams one window's JSON lines (from `open`) through gzip into the sink;
 * nothing is written for an empty window. When the object exists already,
 * `skip` passes over the window's rows instead.
 */
async function writeWindow(
  ctx: TableExportContext,
  key: string,
  replace: boolean,
  open: (counter: RowCounter) => Promise<AsyncIterable<Uint8Array | string>>,
  skip?: () => Promise<void>,
): Promise<WindowResult> {
  if (!replace && (await ctx.sink.exists(key))) {
    await skip?.();
    return { outcome: 'exists', rows: 0 };
  }
  const counter = { rows: 0 };
  const lines = await peek(await open(counter));
  if (!lines) return { outcome: 'empty', rows: 0 };
  // Blocks are deflated on worker threads while the next rows are read and encoded.
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
