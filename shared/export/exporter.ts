import { randomUUID } from 'node:crypto';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { ConnectionTarget } from '../db/connect';
import { AuthenticationError, EventError } from '../errors';
import type { Logger } from '../log';
import { type ClusterConfig, type ExportConfig, fansOut } from './config';
import type { CredentialSource } from './credentials';
import { prestartDeflateWorkers } from './encode/gzip';
import { prestartEncoderThread } from './encode/parquet-thread';
import type { CompactRequest, ExportRequest } from './event';
import type { ClusterInvoker } from './plan/fan-out';
import type { WatermarkStore } from './plan/watermark-store';
import type { Sink } from './sinks';
import type { EngineFamily } from './sources/catalog';
import type { SessionOptions } from './sources/connection-guard';
import type { DatabaseSession } from './sources/session';
import { exportTable, type TableMode, type TableSummary } from './table-export';

/** Opens a session for one engine family; the only place that maps families to drivers. */
export type SessionOpener = (
  target: ConnectionTarget,
  logger: Logger,
  purpose: string,
  options?: SessionOptions,
) => Promise<DatabaseSession>;

export interface ExporterDeps {
  config: ExportConfig;
  store: WatermarkStore;
  sink: Sink;
  credentials: CredentialSource;
  openers: Readonly<Record<EngineFamily, SessionOpener>>;
  invoker: ClusterInvoker;
  logger: Logger;
  /** The function's own name when running on Lambda (fan-out target). */
  functionName?: string;
  remainingMs: () => number;
  safetyMarginMs: number;
  /** Clusters exported at once in-process. */
  concurrency: number;
  now: () => number;
  afterObjectWritten?: (key: string) => Promise<void>;
  /**
   * The cluster as the configuration reads now, bypassing the cache: asked
   * once when a login is refused, as the cached credentials may be stale.
   */
  reloadCluster?: (name: string) => Promise<ClusterConfig | undefined>;
  metrics?: Metrics;
}

export interface ClusterSummary {
  cluster: string;
  tables: TableSummary[];
  error?: string;
}

export interface ExportSummary {
  mode: 'scheduled' | 'catch-up' | 'backfill' | 'dry-run' | 'compact';
  clusters: ClusterSummary[];
  /** The day a compaction worked on (`YYYY-MM-DD`). */
  date?: string;
  /** Clusters handed to asynchronous invocations of this function. */
  fannedOut?: string[];
}

/**
 * Runs one request. A scheduled run on Lambda fans out one asynchronous
 * invocation per enabled cluster; otherwise clusters run here, a few at a time.
 * A failing cluster or table is reported in the summary and stops nothing else.
 */
export async function runExport(
  request: Exclude<ExportRequest, CompactRequest>,
  deps: ExporterDeps,
): Promise<ExportSummary> {
  const { config } = deps;
  if (request.kind === 'scheduled') {
    const clusters = [...config.enabledClusters];
    if (fansOut(config.fanOut, deps.functionName)) {
      const { invoked, failed } = await fanOutClusters(clusters, deps);
      return { mode: 'scheduled', clusters: failed, fannedOut: invoked };
    }
    const summaries = await mapLimited(clusters, deps.concurrency, (name) =>
      exportCluster(config.clusters.get(name) as ClusterConfig, { kind: 'incremental' }, undefined, deps),
    );
    return { mode: 'scheduled', clusters: summaries };
  }
  const cluster = config.clusters.get(request.cluster);
  if (!cluster)
    throw new EventError(`Unknown cluster "${request.cluster}": no clusters/${request.cluster}/ parameters`);
  const unknown = (request.tables ?? []).filter((t) => !cluster.tables.has(t));
  if (unknown.length > 0) {
    throw new EventError(
      `Cluster ${cluster.name} exports no table ${unknown.map((t) => `"${t}"`).join(', ')} (it exports: ${[...cluster.tables.keys()].join(', ') || 'nothing'})`,
    );
  }
  const mode: TableMode =
    request.kind === 'backfill'
      ? {
          kind: 'backfill',
          from: request.from,
          to: request.to,
          dryRun: request.dryRun,
          replace: request.replace,
        }
      : { kind: 'incremental' };
  const summary = await exportCluster(cluster, mode, request.tables, deps);
  const kind = request.kind === 'backfill' && request.dryRun ? 'dry-run' : request.kind;
  return { mode: kind, clusters: [summary] };
}

async function fanOutClusters(
  clusters: string[],
  deps: ExporterDeps,
): Promise<{ invoked: string[]; failed: ClusterSummary[] }> {
  const functionName = deps.functionName;
  if (!functionName) throw new EventError('fan-out is on, but the function name is unknown (not on Lambda?)');
  const results = await mapLimited(clusters, 16, async (cluster): Promise<ClusterSummary | string> => {
    try {
      await deps.invoker(functionName, cluster);
      return cluster;
    } catch (error) {
      deps.logger.error('Could not invoke the export of a cluster', { cluster, error: error as Error });
      return { cluster, tables: [], error: `fan-out failed: ${(error as Error).message}` };
    }
  });
  const invoked = results.filter((r): r is string => typeof r === 'string');
  deps.logger.info('Fanned out', { clusters: invoked });
  return { invoked, failed: results.filter((r): r is ClusterSummary => typeof r !== 'string') };
}

/** Exports the tables of one cluster over one session, reopened after a table fails. */
async function exportCluster(
  cluster: ClusterConfig,
  mode: TableMode,
  only: readonly string[] | undefined,
  deps: ExporterDeps,
): Promise<ClusterSummary> {
  const logger = deps.logger.createChild({ persistentKeys: { cluster: cluster.name } });
  const summary: ClusterSummary = { cluster: cluster.name, tables: [] };
  const tables = [...cluster.tables.values()].filter((t) => !only || only.includes(t.name));
  const owner = `${deps.functionName ?? 'local'}:${randomUUID()}`;
  let credentials = cluster.credentials;
  let reloaded = false;
  const connect = () =>
    deps.credentials.open(
      credentials,
      cluster.family,
      (target) =>
        deps.openers[cluster.family](target, logger, `export ${cluster.name}`, {
          readTimeoutMs: deps.config.readTimeoutMs,
        }),
      logger,
    );
  const open = async () => {
    try {
      return await connect();
    } catch (error) {
      if (!(error instanceof AuthenticationError) || reloaded || !deps.reloadCluster) throw error;
      // The cached configuration may hold credentials changed since: read it again, once per run.
      reloaded = true;
      const fresh = await deps.reloadCluster(cluster.name).catch((reloadError) => {
        logger.warn('Could not reload the configuration after a refused login', { error: reloadError });
        return undefined;
      });
      if (!fresh || JSON.stringify(fresh.credentials) === JSON.stringify(credentials)) throw error;
      logger.warn("Login refused; retrying with the cluster's credentials as the configuration now reads");
      credentials = fresh.credentials;
      return connect();
    }
  };
  let session: DatabaseSession | undefined;
  // The format's threads boot (once per process) while the session connects.
  if (tables.length > 0) {
    if (deps.config.format === 'parquet') prestartEncoderThread();
    else prestartDeflateWorkers();
  }
  try {
    for (const table of tables) {
      try {
        session ??= await open();
      } catch (error) {
        // Without a session no table can go on: the cluster reports the error once.
        summary.error = (error as Error).message;
        logger.error('Could not connect', { error: error as Error });
        break;
      }
      const result = await exportTable({
        config: deps.config,
        cluster,
        table,
        mode,
        session,
        store: deps.store,
        sink: deps.sink,
        logger,
        owner,
        remainingMs: deps.remainingMs,
        safetyMarginMs: deps.safetyMarginMs,
        now: deps.now,
        afterObjectWritten: deps.afterObjectWritten,
        metrics: deps.metrics,
      });
      summary.tables.push(result);
      if (result.error) {
        // The connection may be mid-result; the next table gets a fresh one.
        await session.close();
        session = undefined;
      }
    }
  } finally {
    await session?.close();
  }
  return summary;
}

/** Runs `work` over `items` with at most `limit` at once, keeping the input order in the results. */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
