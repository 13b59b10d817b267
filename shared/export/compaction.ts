import { randomUUID } from 'node:crypto';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGunzip } from 'node:zlib';
import { EventError } from '../errors';
import type { Logger } from '../log';
import type { ClusterConfig, ExportConfig, OutputFormat } from './config';
import { ByteCounter } from './encode/byte-counter';
import { createParallelGzip } from './encode/gzip';
import { PARQUET_CONTENT_TYPE } from './encode/parquet';
import { concatParquet } from './encode/parquet-concat';
import { type CompactRequest, isCalendarDay } from './event';
import { type ExportSummary, mapLimited } from './exporter';
import { type Lease, LeaseLostError, type WatermarkStore } from './plan/watermark-store';
import { type Sink, writeStreamed } from './sinks';
import { dayOf, hours, parseTimestamp, toMicros } from './sources/time';
import { dailyKey, MAX_LEASE_MS, type TableSummary } from './table-export';

/**
 * Daily compaction (opt-in): once a table's watermark has passed the end of a
 * UTC day, that day's window objects become one object under
 * `<table>_daily/cluster=<c>/dt=<d>/<table>.<c>.<YYYYMMDD>.<ext>`, in the
 * configured format, with exactly their rows in window order (which is event
 * time order: windows are disjoint and each object is ordered). Write-once and
 * idempotent like every object, unless the event asks to `replace` it; the
 * window objects stay, so a compaction that fails half-way loses nothing and
 * leaves nothing visible. A table is compacted under its (cluster, table)
 * lease, the one exports and backfills take: no window of the day is written
 * while its objects are read.
 */

export interface CompactionDeps {
  config: ExportConfig;
  store: WatermarkStore;
  sink: Sink;
  logger: Logger;
  now: () => number;
  /** Milliseconds this invocation has left: a lease lasts no longer. */
  remainingMs: () => number;
  /** The function's own name on Lambda, in the lease owner (`npm run status` shows who holds a table). */
  functionName?: string;
  /** Tables compacted at once. */
  concurrency: number;
  /** How long a table waits for a lease another run holds before its compaction is refused. */
  leaseWaitMs?: number;
}

/**
 * An incremental export holds a table's lease for seconds: a compaction that finds it held waits this long
 * before it gives up the table, so that the daily schedule does not miss a day for a collision.
 */
const DEFAULT_LEASE_WAIT_MS = 30_000;
const LEASE_POLL_MS = 2_000;
/** A long compaction renews its lease at most this often, between window objects. */
const LEASE_RENEW_MS = 60_000;

/** A window object's key, `<...>/<table>.<cluster>.<lo>.<hi>.<format>` (see objectKey), parsed; undefined if it is not one. */
function parseWindowKey(
  key: string,
  cluster: string,
  table: string,
): { lo: number; hi: number; format: OutputFormat } | undefined {
  const name = key.slice(key.lastIndexOf('/') + 1);
  const head = `${table}.${cluster}.`;
  if (!name.startsWith(head)) return undefined;
  const match = /^(\d{8}T\d{6}Z)\.(\d{8}T\d{6}Z)\.(jsonl\.gz|parquet)$/.exec(name.slice(head.length));
  if (!match) return undefined;
  const micros = (t: string) =>
    parseTimestamp(
      `${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)}T${t.slice(9, 11)}:${t.slice(11, 13)}:${t.slice(13, 15)}Z`,
    );
  const lo = micros(match[1] as string);
  const hi = micros(match[2] as string);
  if (lo === undefined || hi === undefined || lo >= hi) return undefined;
  return { lo, hi, format: match[3] as OutputFormat };
}

/** Compacts one day of the requested tables; each table's outcome is reported, none stops the others. */
export async function runCompaction(request: CompactRequest, deps: CompactionDeps): Promise<ExportSummary> {
  const { config } = deps;
  const date = request.date ?? dayOf(deps.now() * 1000 - hours(24));
  if (!isCalendarDay(date))
    throw new EventError(`Invalid compact event: date: "${date}" is not a calendar day`);
  const names = request.cluster ? [request.cluster] : [...config.enabledClusters];
  const jobs: { cluster: ClusterConfig; table: string }[] = [];
  for (const name of names) {
    const cluster = config.clusters.get(name);
    if (!cluster) throw new EventError(`Unknown cluster "${name}": no clusters/${name}/ parameters`);
    if (request.table !== undefined && !cluster.tables.has(request.table)) {
      throw new EventError(
        `Cluster ${name} exports no table "${request.table}" (it exports: ${[...cluster.tables.keys()].join(', ') || 'nothing'})`,
      );
    }
    const tables = request.table !== undefined ? [request.table] : [...cluster.tables.keys()];
    for (const table of tables) jobs.push({ cluster, table });
  }
  const run = {
    date,
    replace: request.replace === true,
    // The scheduled form (no date: yesterday) is expected to leave a daily object; nobody reads its summary.
    expected: request.date === undefined,
    owner: `${deps.functionName ?? 'local'}:compact:${randomUUID()}`,
  };
  const results = await mapLimited(jobs, deps.concurrency, (job) =>
    compactTable(job.cluster.name, job.table, run, deps),
  );
  // One entry per cluster, its tables in request order: the summary every run returns.
  const clusters = names.map((cluster) => ({
    cluster,
    tables: results.filter((_, i) => jobs[i]?.cluster.name === cluster),
  }));
  return { mode: 'compact', date, clusters };
}

/**
 * One table's day, reported as a table summary: `windows` counts the window
 * objects read, `objectsWritten` / `objectsSkipped` the daily object written
 * or found; `skipped` says why nothing was done (refused or empty), `error`
 * what failed. A refusal of a run without a date (the scheduled one) is an
 * error too, logged as one with the event that compacts the day by hand: that
 * day would otherwise be left uncompacted without an alarm, since the schedule
 * never comes back to it. Everything from the watermark check to the daily object's
 * completion happens under the table's lease; it is released on every path.
 */
async function compactTable(
  cluster: string,
  table: string,
  run: { date: string; replace: boolean; expected: boolean; owner: string },
  deps: CompactionDeps,
): Promise<TableSummary> {
  const { date, replace } = run;
  const logger = deps.logger.createChild({ persistentKeys: { cluster, table, date } });
  const format = deps.config.format;
  const summary: TableSummary = { table, windows: 0, rows: 0, objectsWritten: 0, objectsSkipped: 0 };
  const refuse = (reason: string) => {
    if (run.expected) {
      const compactEvent = JSON.stringify({ compact: { cluster, table, date } });
      summary.error = `Compaction of ${date} refused: ${reason}; once that is resolved, run ${compactEvent}`;
      logger.error('Compaction refused', { reason, compactEvent });
    } else {
      summary.skipped = `refused: ${reason}`;
      logger.warn('Compaction refused', { reason });
    }
    return summary;
  };
  let held: HeldLease | undefined;
  try {
    const dayEnd = toMicros(`${date}T00:00:00Z`) + hours(24);
    const lease = await acquireWaiting(cluster, table, run.owner, deps);
    if (!lease) {
      return refuse(
        `another run holds the lease on ${cluster}/${table} (an export, a backfill or a compaction of the table): compact the day again once it has finished`,
      );
    }
    held = new HeldLease(lease, deps);
    // Read with the lease: no export or backfill of the table moves it, or writes a window, from here on.
    const watermark = lease.watermark;
    summary.watermark = watermark;
    if (watermark === undefined || toMicros(watermark) < dayEnd) {
      return refuse(
        `the watermark (${watermark ?? 'none'}) has not passed the end of ${date}: its windows are not all committed`,
      );
    }
    const key = dailyKey(cluster, table, date, format);
    summary.key = deps.sink.describe(key);
    if (!replace && (await deps.sink.exists(key))) {
      summary.objectsSkipped = 1;
      logger.info('Day already compacted', { key: summary.key });
      return summary;
    }
    const windowPrefix = `${table}.${cluster}.`;
    const listed = (await deps.sink.list(`${table}/cluster=${cluster}/dt=${date}/`)).filter((k) =>
      k.slice(k.lastIndexOf('/') + 1).startsWith(windowPrefix),
    );
    const parsed = listed.map((k) => ({ key: k, window: parseWindowKey(k, cluster, table) }));
    const stray = parsed.find((p) => p.window === undefined);
    if (stray) {
      // A copy or a foreign object under the table's name would put its rows into the day twice, or unknown rows in it.
      return refuse(`${deps.sink.describe(stray.key)} is not a window object`);
    }
    const others = parsed.filter((p) => p.window?.format !== format);
    if (others.length > 0) {
      // Rows of the other format would be left out of the day: refuse rather than compact part of it.
      return refuse(
        `${others.length} window object(s) of ${date} are not ${format} (the format changed that day)`,
      );
    }
    const foreign = parsed.find((p) => dayOf(p.window?.lo ?? 0) !== date);
    if (foreign) return refuse(`${deps.sink.describe(foreign.key)} holds a window not of ${date}`);
    // Key order is time order (fixed-width timestamps); windows must not overlap, or rows would be in the day twice.
    for (let i = 1; i < parsed.length; i++) {
      const previous = parsed[i - 1] as (typeof parsed)[number];
      const current = parsed[i] as (typeof parsed)[number];
      if ((current.window?.lo ?? 0) < (previous.window?.hi ?? 0)) {
        return refuse(
          `window objects ${deps.sink.describe(previous.key)} and ${deps.sink.describe(current.key)} overlap (the window length changed and the day was exported again)`,
        );
      }
    }
    const windows = parsed.map((p) => p.key);
    if (windows.length === 0) {
      summary.skipped = `no window objects on ${date}`;
      logger.info('Nothing to compact');
      return summary;
    }
    const counter = { rows: 0, bytes: 0 };
    const outcome = await writeDaily(deps, key, format, held.around(windows), counter, replace);
    summary.windows = windows.length;
    if (outcome === 'written') {
      summary.objectsWritten = 1;
      summary.rows = counter.rows;
      summary.bytes = counter.bytes;
    } else {
      summary.objectsSkipped = 1;
    }
    logger.info('Day compacted', {
      outcome,
      replace,
      objects: windows.length,
      rows: summary.rows,
      key: summary.key,
    });
  } catch (error) {
    if (held?.lost) {
      // Another run took the table over (the lease lapsed, or an operator bumped its version): nothing published.
      summary.error = `Lost the lease on ${cluster}/${table} while compacting ${date}: another run took the table over; no daily object was written`;
      logger.error('Compaction lost its lease', { error: held.lost });
    } else {
      summary.error = (error as Error).message;
      logger.error('Compaction failed', { error: error as Error });
    }
  } finally {
    if (held && !held.lost) {
      await deps.store
        .release(held.lease)
        .catch((error) => logger.warn('Could not release the lease', { error }));
    }
  }
  return summary;
}

const leaseUntil = (deps: CompactionDeps) => deps.now() + Math.min(deps.remainingMs(), MAX_LEASE_MS);

/** Takes the table's lease, waiting up to `leaseWaitMs` while another run holds it; undefined if it still does. */
async function acquireWaiting(
  cluster: string,
  table: string,
  owner: string,
  deps: CompactionDeps,
): Promise<Lease | undefined> {
  const giveUpAt = deps.now() + (deps.leaseWaitMs ?? DEFAULT_LEASE_WAIT_MS);
  for (;;) {
    try {
      return await deps.store.acquire(cluster, table, owner, leaseUntil(deps));
    } catch (error) {
      if (!(error instanceof LeaseLostError)) throw error;
      const left = giveUpAt - deps.now();
      if (left <= 0) return undefined;
      await sleep(Math.min(LEASE_POLL_MS, left));
    }
  }
}

/** The lease of the table being compacted, renewed as its window objects are read. */
class HeldLease {
  #renewedAt: number;
  /** Set when a renewal found the lease taken over. */
  lost?: LeaseLostError;

  constructor(
    public lease: Lease,
    private readonly deps: CompactionDeps,
  ) {
    this.#renewedAt = deps.now();
  }

  /**
   * The window keys, the lease renewed between them when it is due, and always after the last: the daily object
   * completes only after that renewal, so a compaction that lost its lease publishes nothing.
   */
  async *around(keys: readonly string[]): AsyncGenerator<string> {
    for (const key of keys) {
      if (this.deps.now() - this.#renewedAt >= LEASE_RENEW_MS) await this.#renew();
      yield key;
    }
    await this.#renew();
  }

  async #renew(): Promise<void> {
    try {
      this.lease = await this.deps.store.renew(this.lease, leaseUntil(this.deps));
      this.#renewedAt = this.deps.now();
    } catch (error) {
      if (error instanceof LeaseLostError) this.lost = error;
      throw error;
    }
  }
}

async function writeDaily(
  deps: CompactionDeps,
  key: string,
  format: OutputFormat,
  windows: AsyncIterable<string>,
  counter: { rows: number; bytes: number },
  replace: boolean,
): Promise<'written' | 'exists'> {
  // JSON lines: decompressed and gzipped again as one member. Parquet: the windows' row groups copied as they are.
  // A window that cannot be read to its end leaves no daily object behind (writeStreamed aborts the write).
  const { outcome, bytes } =
    format === 'jsonl.gz'
      ? await writeStreamed(deps.sink, key, jsonLinesOf(deps.sink, windows, counter), createParallelGzip(), {
          replace,
        })
      : await writeStreamed(
          deps.sink,
          key,
          concatParquet(parquetFilesOf(deps.sink, windows), counter),
          new ByteCounter(),
          { replace, contentType: PARQUET_CONTENT_TYPE },
        );
  counter.bytes = bytes;
  return outcome;
}

/** Each window's Parquet object, read whole (a Parquet file is read from its footer), one at a time. */
async function* parquetFilesOf(sink: Sink, keys: AsyncIterable<string>) {
  for await (const key of keys) {
    yield { name: sink.describe(key), bytes: new Uint8Array(await buffer(await sink.read(key))) };
  }
}

/** The JSON lines of the window objects, in key (time) order, decompressed; counts the rows. */
async function* jsonLinesOf(
  sink: Sink,
  keys: AsyncIterable<string>,
  counter: { rows: number },
): AsyncGenerator<Buffer> {
  for await (const key of keys) {
    const gunzip = createGunzip();
    // A read that fails fails the gunzip too, and so this loop.
    const piping = pipeline(await sink.read(key), gunzip);
    piping.catch(() => {});
    let last = 0x0a;
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) counter.rows += 1;
      if (chunk.length > 0) last = chunk[chunk.length - 1] as number;
      yield chunk;
    }
    // Every line of an object ends in a newline: a window cut short is an error, not a row glued to the next.
    await piping;
    if (last !== 0x0a) throw new Error(`${sink.describe(key)} does not end with a complete line`);
  }
}
