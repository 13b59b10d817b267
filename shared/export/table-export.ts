import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { ExportError } from '../errors';
import type { Logger } from '../log';
import type { ClusterConfig, ExportConfig, OutputFormat } from './config';
import { ByteCounter } from './encode/byte-counter';
import { createParallelGzip } from './encode/gzip';
import { encodeJsonLines, inBatches, maskSqlText, peek, type Row, type RowCounter } from './encode/jsonl';
import {
  DEFAULT_GROUP_LIMITS,
  encodeParquetBatches,
  encodeParquetGroups,
  PARQUET_CONTENT_TYPE,
} from './encode/parquet';
import { type ParquetColumn, parquetTypeOf } from './encode/parquet-types';
import { batchWindows, WindowedRows } from './plan/batches';
import { planBackfill, planBatchWindows, planWindows, type Window } from './plan/planner';
import { type Lease, LeaseLostError, type WatermarkStore } from './plan/watermark-store';
import { type ObjectStage, type Sink, writeStreamed } from './sinks';
import {
  type AppendOnlySource,
  CATALOG_COLUMNS,
  type LagWarning,
  type MicroWindow,
  type TableDefinition,
} from './sources/catalog';
import type { ColumnSpec } from './sources/columns';
import {
  cursorAfter,
  type LocatedRange,
  locateRanges,
  type PositionWarning,
  planRanges,
  surveyTables,
} from './sources/mysql/log-position';
import type { DatabaseSession } from './sources/session';
import { compactTimestamp, dayOf, seconds, toMicros } from './sources/time';

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
  /** The object written or found (a compaction's daily object). */
  key?: string;
  /** Why the table was not read at all (e.g. "extension not installed"); nothing moved. */
  skipped?: string;
  /** Skipped because another run holds the table's lease: its `watermark` (as stored) still counts for the lag alarm. */
  leaseHeld?: true;
  /**
   * Backfills: the days (`YYYY-MM-DD`) it wrote window objects on that have a daily object, which no longer
   * holds exactly their rows until the day is compacted again with `replace`.
   */
  staleDailyDays?: string[];
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
  /** EMF metrics (warnings such as a lag fallback); none in tests that do not look. */
  metrics?: Metrics;
}

/** A lease never outlives the invocation, nor a Lambda's longest run. */
export const MAX_LEASE_MS = 15 * 60_000;

/** The object key of one window: `<table>/cluster=<c>/dt=<day>/<table>.<c>.<lo>.<hi>.<jsonl.gz|parquet>`. */
export function objectKey(
  cluster: string,
  table: string,
  window: Window,
  format: OutputFormat = 'jsonl.gz',
): string {
  const lo = toMicros(window.lo);
  const hi = toMicros(window.hi);
  return `${table}/cluster=${cluster}/dt=${dayOf(lo)}/${table}.${cluster}.${compactTimestamp(lo)}.${compactTimestamp(hi)}.${format}`;
}

/** The key of a table's daily object (compaction.ts): `<table>_daily/cluster=<c>/dt=<day>/<table>.<c>.<YYYYMMDD>.<format>`. */
export function dailyKey(cluster: string, table: string, date: string, format: OutputFormat): string {
  return `${table}_daily/cluster=${cluster}/dt=${date}/${table}.${cluster}.${date.replaceAll('-', '')}.${format}`;
}

/**
 * Exports one table: takes the lease, plans the windows from the database clock,
 * and for each window, oldest first, streams its rows into one write-once
 * object, then advances the watermark by a conditional write. A crash between
 * the two finds the object on the next run, which skips the write and advances.
 * Append-only tables read by position (MySQL's log tables) go through
 * `exportByPosition` in incremental runs.
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
  let runner: WindowRunner | undefined;
  try {
    if (table.appendOnly && mode.kind === 'backfill' && !dryRun) {
      // Objects of a table read by position hold rows by arrival; a rewrite by recorded time would duplicate some.
      throw new ExportError(
        `${table.name} is read by position, not by time: a backfill would duplicate rows (dry runs still count by recorded time)`,
      );
    }
    // A dry run writes nothing, not even a lease.
    if (!dryRun) {
      try {
        lease = await store.acquire(cluster.name, table.name, ctx.owner, leaseUntil());
      } catch (error) {
        // Another run is exporting or compacting the table (the daily compaction and the 5-minute schedule meet
        // every day): a scheduled run leaves it the table, and the next one catches up. Not an error, so not an
        // alarm; a lease that is never given up lapses, and a table that stays behind raises the lag alarm (its
        // stored watermark is reported for that).
        if (!(error instanceof LeaseLostError) || mode.kind !== 'incremental') throw error;
        summary.watermark = (await store.read(cluster.name, table.name)).watermark;
        summary.leaseHeld = true;
        summary.skipped = `${error.message} (an export, a backfill or a compaction of the table); the next run catches up`;
        logger.warn('Table skipped', { reason: summary.skipped });
        return summary;
      }
    }
    const watermark = lease ? lease.watermark : (await store.read(cluster.name, table.name)).watermark;
    summary.watermark = watermark;
    const dbNow = await session.now();
    const lagSeconds =
      ctx.config.lagSeconds ?? (await table.lagSeconds(session, (warning) => warnOnce(ctx, logger, warning)));
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
    runner = new WindowRunner(ctx, logger, summary, dryRun, mode.kind === 'backfill' && mode.replace);
    if (mode.kind === 'incremental' && table.appendOnly) {
      const held: HeldLease = { lease: lease as Lease, released: false };
      try {
        await exportByPosition(ctx, logger, runner, held, windows, leaseUntil);
      } finally {
        // The lease moved with every write: the release below needs its latest version (none if the last commit gave it up).
        lease = held.released ? undefined : held.lease;
      }
      return summary;
    }
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
    await runner.run({
      windows,
      query: source,
      takes: micro,
      commit: async (window, rows) => {
        lease = lease as Lease;
        if (mode.kind === 'incremental') {
          // The last window's commit releases the lease in the same write.
          if (window.hi === windows.at(-1)?.hi) {
            await store.advanceAndRelease(lease, window.hi, rows);
            lease = undefined;
          } else {
            lease = await store.advance(lease, window.hi, rows, leaseUntil());
          }
          summary.watermark = window.hi;
        } else {
          lease = await store.renew(lease, leaseUntil());
        }
      },
    });
  } catch (error) {
    // Reported, not thrown: the cluster's other tables go on. Committed windows stay committed.
    summary.error = (error as Error).message;
    logger.error('Table export failed', { error: error as Error, watermark: summary.watermark });
  } finally {
    if (lease)
      await store.release(lease).catch((error) => logger.warn('Could not release the lease', { error }));
  }
  // Also after a failure: the windows written before it are there.
  if (mode.kind === 'backfill' && runner && runner.daysWritten.size > 0) {
    await reportStaleDailyDays(ctx, logger, summary, runner.daysWritten);
  }
  return summary;
}

/**
 * A backfill that wrote window objects on a day that was compacted leaves that day's daily object
 * (write-once) without those rows: each such day is named in the summary and in a warning with the event that
 * compacts it again. One existence check per day written, whatever the configuration (compaction is an event).
 */
async function reportStaleDailyDays(
  ctx: TableExportContext,
  logger: Logger,
  summary: TableSummary,
  days: ReadonlySet<string>,
): Promise<void> {
  const cluster = ctx.cluster.name;
  const table = ctx.table.name;
  const stale: string[] = [];
  for (const date of days) {
    const key = dailyKey(cluster, table, date, ctx.config.format);
    let exists: boolean;
    try {
      exists = await ctx.sink.exists(key);
    } catch (error) {
      logger.warn('Could not check whether a day the backfill wrote on has a daily object', {
        date,
        dailyKey: ctx.sink.describe(key),
        error,
      });
      continue;
    }
    if (!exists) continue;
    stale.push(date);
    const compactEvent = JSON.stringify({ compact: { cluster, table, date, replace: true } });
    logger.warn(
      `Backfill wrote windows of ${date}, a day already compacted: its daily object is stale until the day is compacted again with ${compactEvent}`,
      { date, dailyKey: ctx.sink.describe(key), compactEvent },
    );
  }
  if (stale.length > 0) summary.staleDailyDays = stale;
}

/** Logs a lag fallback and counts it as an EMF metric by (Cluster, Table); runs once per table per run. */
function warnOnce(ctx: TableExportContext, logger: Logger, warning: LagWarning): void {
  logger.warn(warning.message, { metric: warning.metric });
  if (!ctx.metrics) return;
  const single = ctx.metrics.singleMetric();
  single.addDimension('Cluster', ctx.cluster.name);
  single.addDimension('Table', ctx.table.name);
  single.addMetric(warning.metric, MetricUnit.Count, 1);
}

/** The lease of a table read by position, moved by every write; `released` once its last commit gave it up. */
interface HeldLease {
  lease: Lease;
  released: boolean;
}

/**
 * Incremental export of an append-only table by position (`sources/mysql/log-position.ts`).
 * A batch (the due windows and, per generation of the table, the rows added
 * since the last batch) is recorded as pending before its first object, then
 * exported window by window; the last window's commit stores the new positions.
 * Each window holds the batch's rows whose recorded time lies in it; rows
 * recorded before the batch's first window (a writer in a zone west of UTC, a
 * statement that outlasted the lag) go to the first window, rows recorded after
 * its last (a writer east of UTC) to the last, with their recorded time kept.
 * A run that finds a pending batch (a crash, a deadline) finishes it first with
 * the same rows, so the objects it writes are those the stopped run would have.
 */
async function exportByPosition(
  ctx: TableExportContext,
  logger: Logger,
  runner: WindowRunner,
  held: HeldLease,
  due: Window[],
  leaseUntil: () => number,
): Promise<void> {
  const { session, store, summary } = { ...ctx, summary: runner.summary };
  const source = ctx.table.appendOnly as AppendOnlySource;
  const warn = (warning: PositionWarning) => logger.warn(warning.message, { ...warning });
  // A pending batch is finished first; then, if windows are due, a new one.
  for (let round = 0; round < 2; round++) {
    const tables = await source.tables(session);
    let batch = held.lease.pending;
    const resumed = batch !== undefined;
    if (!batch) {
      const windows = round === 0 ? due : planAfter(held.lease, due);
      if (windows.length === 0) break;
      const surveyed = await surveyTables(session, source.schema, tables, { count: true });
      batch = {
        lo: (windows[0] as Window).lo,
        hi: (windows.at(-1) as Window).hi,
        windowMinutes: ctx.config.windowMinutes,
        ranges: planRanges(held.lease.cursor, surveyed, warn),
      };
      held.lease = await store.begin(held.lease, batch, leaseUntil());
      logger.info('Batch planned', { batch });
    } else {
      logger.info('Resuming a pending batch', { batch, watermark: held.lease.watermark });
    }
    const fixed = batch;
    const windows = planBatchWindows(held.lease.watermark ?? fixed.lo, fixed.hi, fixed.windowMinutes);
    if (windows.length === 0) {
      // The last window's commit clears the batch in the same write: this state is not reachable by a run.
      throw new ExportError(`A pending batch ends at ${fixed.hi}, but the watermark is already there`);
    }
    const lo = toMicros(fixed.lo);
    const hi = toMicros(fixed.hi);
    let located: LocatedRange[] = [];
    const finished = await runner.run({
      windows,
      // Before each query: where each generation is now (a rotation may have moved it to `_backup`).
      prepare: async () => {
        located = locateRanges(
          fixed.ranges,
          await surveyTables(session, source.schema, await source.tables(session), { count: false }),
          warn,
        );
      },
      query: (span) =>
        source.query(session, located, {
          lo: span.lo === lo ? undefined : span.lo,
          hi: span.hi === hi ? undefined : span.hi,
        }),
      takes: (window) => {
        const bounds = micro(window);
        return {
          lo: bounds.lo === lo ? Number.NEGATIVE_INFINITY : bounds.lo,
          hi: bounds.hi === hi ? Number.POSITIVE_INFINITY : bounds.hi,
        };
      },
      commit: async (window, rows) => {
        const last = window.hi === fixed.hi;
        // The run ends with this batch unless it resumed one that stops short of the due windows.
        if (last && (!resumed || due.every((w) => w.lo < fixed.hi))) {
          await store.advanceAndRelease(held.lease, window.hi, rows, cursorAfter(fixed));
          held.released = true;
        } else {
          held.lease = await store.advance(
            held.lease,
            window.hi,
            rows,
            leaseUntil(),
            last ? cursorAfter(fixed) : undefined,
          );
        }
        summary.watermark = window.hi;
      },
    });
    if (!finished || held.released) break;
  }
}

/** The due windows that lie after the watermark (after a resumed batch ended inside them). */
function planAfter(lease: Lease, due: Window[]): Window[] {
  const mark = lease.watermark;
  return mark === undefined ? due : due.filter((w) => w.lo >= mark);
}

/** One run's windows: what to read for them and how each is committed. */
interface WindowPlan {
  windows: Window[];
  /** Runs before each query (one window's, or a batch of windows'). */
  prepare?: () => Promise<void>;
  /** The SELECT (unordered) of the rows of a span of consecutive windows. */
  query: (span: MicroWindow) => string;
  /** The event times a window takes (its own bounds, or open bounds at the ends of a batch read by position). */
  takes: (window: Window) => MicroWindow;
  /** Moves the watermark (or renews the lease) once a window's object is durable. */
  commit: (window: Window, rows: number) => Promise<void>;
}

/** Exports windows oldest first, each into one write-once object, and commits each. */
class WindowRunner {
  private readonly encoder: WindowEncoder;
  /** Backfills: the days (`YYYY-MM-DD`, of the object keys) of the window objects written, oldest first. */
  readonly daysWritten = new Set<string>();

  constructor(
    private readonly ctx: TableExportContext,
    private readonly logger: Logger,
    readonly summary: TableSummary,
    private readonly dryRun: boolean,
    private readonly replace: boolean,
  ) {
    this.encoder = ctx.config.format === 'parquet' ? new ParquetEncoder(ctx) : new JsonLinesEncoder(ctx);
  }

  /** Returns false when it stopped before the deadline with windows left. */
  async run(plan: WindowPlan): Promise<boolean> {
    const { ctx, summary, logger } = this;
    const { session, table } = ctx;
    const { windows } = plan;
    const ordered = (w: MicroWindow) =>
      `${plan.query(w)} ORDER BY ${table.orderBy.map((c) => session.dialect.quote(c)).join(', ')}`;
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
    for (const batch of batchWindows(windows, table.fullScan === true && !this.dryRun)) {
      if (!inTime(index)) return false;
      await plan.prepare?.();
      // A batch of several windows shares one ordered query, its rows split at the window bounds.
      const sharedSql =
        batch.length > 1
          ? ordered({ lo: micro(batch[0] as Window).lo, hi: micro(batch.at(-1) as Window).hi })
          : undefined;
      // Described before its rows are read (the session answers one question at a time): Parquet's columns.
      if (sharedSql !== undefined) await this.encoder.prepare?.(sharedSql);
      const shared =
        sharedSql === undefined
          ? undefined
          : new WindowedRows(session.stream(sharedSql), table.eventTimeColumn);
      try {
        for (const window of batch) {
          if (!inTime(index)) return false;
          index += 1;
          if (this.dryRun) {
            const count = Number(
              await session.scalar(`SELECT COUNT(*) FROM (${plan.query(micro(window))}) AS w`),
            );
            summary.rowsPerWindow = { ...summary.rowsPerWindow, [window.lo]: count };
            summary.rows += count;
            summary.windows += 1;
            continue;
          }
          const { lo, hi } = plan.takes(window);
          const key = objectKey(ctx.cluster.name, table.name, window, ctx.config.format);
          const result = shared
            ? await writeWindow(
                ctx,
                this.encoder,
                key,
                this.replace,
                (counter) => this.encoder.rows(sharedSql as string, shared.within(lo, hi), counter),
                () => shared.skip(lo, hi),
              )
            : await writeWindow(ctx, this.encoder, key, this.replace, (counter) =>
                this.encoder.query(ordered(micro(window)), counter),
              );
          summary.rows += result.rows;
          if (result.outcome === 'written') {
            summary.objectsWritten += 1;
            summary.bytes = (summary.bytes ?? 0) + (result.bytes ?? 0);
            if (ctx.mode.kind === 'backfill') this.daysWritten.add(dayOf(toMicros(window.lo)));
          }
          if (result.outcome === 'exists') summary.objectsSkipped += 1;
          logger.info('Window exported', {
            window: `${window.lo}/${window.hi}`,
            outcome: result.outcome,
            rows: result.rows,
            key: ctx.sink.describe(key),
          });
          // Only once its object is durable may the watermark pass the window.
          if (result.outcome !== 'empty') await ctx.afterObjectWritten?.(key);
          await plan.commit(window, result.rows);
          summary.windows += 1;
        }
      } finally {
        await shared?.close();
      }
    }
    return true;
  }
}

interface WindowResult {
  outcome: 'written' | 'exists' | 'empty';
  rows: number;
  /** Compressed bytes written (0 unless written). */
  bytes?: number;
}

const redactColumns = (ctx: TableExportContext) => (ctx.cluster.redact ? ctx.table.sqlTextColumns : []);

/**
 * How a window's rows become an object's bytes (`global/format`): from a query
 * of the window's own, or from rows already read (a batch's share of one
 * query, described by that query).
 */
interface WindowEncoder {
  /** Learns what it needs of a query before `rows` gets that query's rows (Parquet: the described columns). */
  prepare?(sql: string): Promise<void>;
  query(sql: string, counter: RowCounter): Promise<AsyncIterable<Uint8Array | string>>;
  rows(
    sql: string,
    rows: AsyncIterable<Row>,
    counter: RowCounter,
  ): Promise<AsyncIterable<Uint8Array | string>>;
  /** The stage between the bytes and the sink: gzip for JSON lines; none for Parquet (compressed inside). */
  compressor(): ObjectStage | undefined;
  /** The objects' media type. */
  readonly contentType: string;
}

/** Gzip JSON lines: the session's fast path where it has one, else rows encoded line by line. */
class JsonLinesEncoder implements WindowEncoder {
  readonly contentType = 'application/x-ndjson';

  constructor(private readonly ctx: TableExportContext) {}

  async query(sql: string, counter: RowCounter): Promise<AsyncIterable<Uint8Array | string>> {
    const redact = redactColumns(this.ctx);
    // The fast path writes the same bytes without row objects.
    const fast = await this.ctx.session.jsonLines?.(sql, counter, redact);
    return fast ?? encodeJsonLines(this.ctx.session.stream(sql), redact, counter);
  }

  async rows(_sql: string, rows: AsyncIterable<Row>, counter: RowCounter) {
    return encodeJsonLines(rows, redactColumns(this.ctx), counter);
  }

  compressor() {
    // Blocks are deflated on worker threads while the next rows are read and encoded.
    return createParallelGzip();
  }
}

/**
 * Parquet with typed columns: the columns are those the source describes for
 * the query (once per table and run), typed by the catalog's column list where
 * it has the column; never from the rows.
 */
class ParquetEncoder implements WindowEncoder {
  readonly contentType = PARQUET_CONTENT_TYPE;
  #columns: ParquetColumn[] | undefined;

  constructor(private readonly ctx: TableExportContext) {}

  /** Described before any of the query's rows are read: the session answers one question at a time. */
  async prepare(sql: string): Promise<void> {
    this.#columns ??= parquetColumns(
      CATALOG_COLUMNS[this.ctx.table.name],
      await this.ctx.session.describe(sql),
    );
  }

  async query(sql: string, counter: RowCounter) {
    await this.prepare(sql);
    const { session } = this.ctx;
    const columns = this.#columns as ParquetColumn[];
    // Read by column where the session can (PostgreSQL's binary COPY): the same file, without row objects.
    // The session masks the SQL text columns as it reads them: the groups close where the masked rows' would.
    const groups = await session.parquetGroups?.(sql, columns, DEFAULT_GROUP_LIMITS, redactColumns(this.ctx));
    if (groups) {
      const first = await peek(groups);
      if (!first) return EMPTY;
      return encodeParquetGroups(columns, first, { counter });
    }
    return this.batches(session.batches?.(sql) ?? inBatches(session.stream(sql)), counter);
  }

  async rows(_sql: string, rows: AsyncIterable<Row>, counter: RowCounter) {
    return this.batches(inBatches(rows), counter);
  }

  private async batches(batches: AsyncIterable<Row[]>, counter: RowCounter) {
    const columns = this.#columns;
    if (!columns) throw new Error('The Parquet columns are described before the rows are read');
    // An empty window writes nothing: the rows are looked at before any byte of the file.
    const first = await peek(batches);
    if (!first) return EMPTY;
    return encodeParquetBatches(columns, maskBatches(first, redactColumns(this.ctx), counter));
  }

  compressor() {
    return undefined;
  }
}

/**
 * The columns of a window's Parquet object: those described, in their order,
 * each typed by the catalog's list where it names the column, else by its
 * described type (custom exports, a column a newer server adds). Server
 * versions describe the same column differently (slow_log's rows_sent: int in
 * MySQL, bigint unsigned in MariaDB 10.11.19): one table's objects must agree
 * with each other and with the Athena DDL, which is built from the list.
 */
function parquetColumns(
  listed: readonly ColumnSpec[] | undefined,
  described: readonly ColumnSpec[],
): ParquetColumn[] {
  const catalogType = new Map(listed?.map((c) => [c.name, c.type]));
  return described.map((c) => ({ name: c.name, type: parquetTypeOf(catalogType.get(c.name) ?? c.type) }));
}

const EMPTY: AsyncIterable<Uint8Array> = { async *[Symbol.asyncIterator]() {} };

/** Masks credentials in the SQL text columns (in place) and counts the rows as they pass. */
async function* maskBatches(
  batches: AsyncIterable<Row[]>,
  columns: readonly string[],
  counter: RowCounter,
): AsyncGenerator<Row[]> {
  for await (const batch of batches) {
    counter.rows += batch.length;
    if (columns.length > 0) for (const row of batch) maskSqlText(row, columns);
    yield batch;
  }
}

/**
 * Streams one window's bytes (from `open`) through the format's compressor, if
 * any, into the sink; nothing is written for an empty window. When a backfill
 * finds the object there already, `skip` passes over the window's rows instead.
 */
async function writeWindow(
  ctx: TableExportContext,
  encoder: WindowEncoder,
  key: string,
  replace: boolean,
  open: (counter: RowCounter) => Promise<AsyncIterable<Uint8Array | string>>,
  skip?: () => Promise<void>,
): Promise<WindowResult> {
  // An incremental run writes conditionally and learns from the write that the object exists (after a crash
  // between an object and its commit); a backfill, where existing objects are the rule, asks first.
  if (!replace && ctx.mode.kind === 'backfill' && (await ctx.sink.exists(key))) {
    await skip?.();
    return { outcome: 'exists', rows: 0 };
  }
  const counter = { rows: 0 };
  const lines = await peek(await open(counter));
  if (!lines) return { outcome: 'empty', rows: 0 };
  // Rows that cannot be read to the end leave no object behind (writeStreamed aborts the write).
  const { outcome, bytes } = await writeStreamed(
    ctx.sink,
    key,
    lines,
    encoder.compressor() ?? new ByteCounter(),
    {
      replace,
      contentType: encoder.contentType,
    },
  );
  return outcome === 'written' ? { outcome, rows: counter.rows, bytes } : { outcome, rows: 0 };
}

const micro = (w: Window) => ({ lo: toMicros(w.lo), hi: toMicros(w.hi) });
