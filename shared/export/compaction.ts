import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
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
import type { WatermarkStore } from './plan/watermark-store';
import { type Sink, writeStreamed } from './sinks';
import { dayOf, hours, parseTimestamp, toMicros } from './sources/time';
import type { TableSummary } from './table-export';

/**
 * Daily compaction (opt-in): once a table's watermark has passed the end of a
 * UTC day, that day's window objects become one object under
 * `<table>_daily/cluster=<c>/dt=<d>/<table>.<c>.<YYYYMMDD>.<ext>`, in the
 * configured format, with exactly their rows in window order (which is event
 * time order: windows are disjoint and each object is ordered). Write-once and
 * idempotent like every object; the window objects stay, so a compaction that
 * fails half-way loses nothing and leaves nothing visible.
 */

export interface CompactionDeps {
  config: ExportConfig;
  store: WatermarkStore;
  sink: Sink;
  logger: Logger;
  now: () => number;
  /** Tables compacted at once. */
  concurrency: number;
}

/** The key of a table's daily object. */
export function dailyKey(cluster: string, table: string, date: string, format: OutputFormat): string {
  return `${table}_daily/cluster=${cluster}/dt=${date}/${table}.${cluster}.${date.replaceAll('-', '')}.${format}`;
}

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
  const results = await mapLimited(jobs, deps.concurrency, (job) =>
    compactTable(job.cluster.name, job.table, date, deps),
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
 * what failed.
 */
async function compactTable(
  cluster: string,
  table: string,
  date: string,
  deps: CompactionDeps,
): Promise<TableSummary> {
  const logger = deps.logger.createChild({ persistentKeys: { cluster, table, date } });
  const format = deps.config.format;
  const summary: TableSummary = { table, windows: 0, rows: 0, objectsWritten: 0, objectsSkipped: 0 };
  const refuse = (reason: string) => {
    summary.skipped = `refused: ${reason}`;
    logger.warn('Compaction refused', { reason });
    return summary;
  };
  try {
    const dayEnd = toMicros(`${date}T00:00:00Z`) + hours(24);
    const { watermark } = await deps.store.read(cluster, table);
    summary.watermark = watermark;
    if (watermark === undefined || toMicros(watermark) < dayEnd) {
      return refuse(
        `the watermark (${watermark ?? 'none'}) has not passed the end of ${date}: its windows are not all committed`,
      );
    }
    const key = dailyKey(cluster, table, date, format);
    summary.key = deps.sink.describe(key);
    if (await deps.sink.exists(key)) {
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
    const outcome = await writeDaily(deps, key, format, windows, counter);
    summary.windows = windows.length;
    if (outcome === 'written') {
      summary.objectsWritten = 1;
      summary.rows = counter.rows;
      summary.bytes = counter.bytes;
    } else {
      summary.objectsSkipped = 1;
    }
    logger.info('Day compacted', { outcome, objects: windows.length, rows: summary.rows, key: summary.key });
  } catch (error) {
    summary.error = (error as Error).message;
    logger.error('Compaction failed', { error: error as Error });
  }
  return summary;
}

async function writeDaily(
  deps: CompactionDeps,
  key: string,
  format: OutputFormat,
  windows: readonly string[],
  counter: { rows: number; bytes: number },
): Promise<'written' | 'exists'> {
  // JSON lines: decompressed and gzipped again as one member. Parquet: the windows' row groups copied as they are.
  // A window that cannot be read to its end leaves no daily object behind (writeStreamed aborts the write).
  const { outcome, bytes } =
    format === 'jsonl.gz'
      ? await writeStreamed(deps.sink, key, jsonLinesOf(deps.sink, windows, counter), createParallelGzip(), {
          replace: false,
        })
      : await writeStreamed(
          deps.sink,
          key,
          concatParquet(parquetFilesOf(deps.sink, windows), counter),
          new ByteCounter(),
          { replace: false, contentType: PARQUET_CONTENT_TYPE },
        );
  counter.bytes = bytes;
  return outcome;
}

/** Each window's Parquet object, read whole (a Parquet file is read from its footer), one at a time. */
async function* parquetFilesOf(sink: Sink, keys: readonly string[]) {
  for (const key of keys) {
    yield { name: sink.describe(key), bytes: new Uint8Array(await buffer(await sink.read(key))) };
  }
}

/** The JSON lines of the window objects, in key (time) order, decompressed; counts the rows. */
async function* jsonLinesOf(
  sink: Sink,
  keys: readonly string[],
  counter: { rows: number },
): AsyncGenerator<Buffer> {
  for (const key of keys) {
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
