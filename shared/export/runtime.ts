import { Metrics } from '@aws-lambda-powertools/metrics';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClients } from '../aws/assume-role';
import { dynamoDbClient, lambdaClient, s3Client, secretsManagerClient } from '../aws/clients';
import { ConfigError } from '../errors';
import { lazy } from '../lazy';
import { createLogger, type Logger } from '../log';
import { runCompaction } from './compaction';
import {
  clusterScopes,
  type ExportConfigSource,
  exportConfigLoader,
  loadExportConfig,
  resolveConfig,
  runningOnLambda,
} from './config';
import { CredentialSource, secretCacheTtlMs } from './credentials';
import type { ExportRequest } from './event';
import { type ExportSummary, runExport, type SessionOpener } from './exporter';
import { type ClusterInvoker, lambdaInvoker } from './plan/fan-out';
import { WatermarkStore } from './plan/watermark-store';
import { publishExportMetrics, type TableMetrics, tableMetricsSetting } from './run-metrics';
import { sinkFor } from './sinks';
import type { EngineFamily } from './sources/catalog';

// An engine's sessions, and its driver, load when a cluster of that engine is first exported.
const mysqlSessions = lazy(() => import('./sources/mysql/session'));
const postgresSessions = lazy(() => import('./sources/postgres/session'));

/** Everything the export handler needs, built once per container; tests pass their own. */
export interface ExportRuntime {
  /** `refresh` reads past the cache (after a refused login). */
  loader: ExportConfigSource;
  /** The DynamoDB table of watermarks (`WATERMARK_TABLE`). */
  watermarkTable: string | undefined;
  dynamo: () => DynamoDBClient;
  s3: () => S3Client;
  credentials: CredentialSource;
  invoker: ClusterInvoker;
  openers: Readonly<Record<EngineFamily, SessionOpener>>;
  logger: Logger;
  /** Where each run's metrics go (EMF): per table and per run, and warnings such as the slow_log lag fallback. */
  metrics?: Metrics;
  /** A table lags when its watermark is more than this many windows (plus its lag) behind. */
  lagAlarmWindows?: number;
  /** Metrics per (Cluster, Table): each is a custom metric billed per month (default all). */
  tableMetrics?: TableMetrics;
  safetyMarginMs: number;
  concurrency: number;
  /** Time budget of a run outside Lambda, where no context tells the deadline. */
  localBudgetMs: number;
  /** How long a compaction waits for a table whose lease another run holds (default 30 s). */
  compactionLeaseWaitMs?: number;
  now: () => number;
  /** Test hook: runs after a window's object is durable and before its watermark moves. */
  afterObjectWritten?: (key: string) => Promise<void>;
}

/** The parts of the Lambda context the exporter uses. */
export interface InvocationContext {
  functionName?: string;
  getRemainingTimeInMillis?: () => number;
}

export const SESSION_OPENERS: Readonly<Record<EngineFamily, SessionOpener>> = {
  mysql: async (...args) => (await mysqlSessions()).MysqlSession.open(...args),
  postgres: async (...args) => (await postgresSessions()).PostgresSession.open(...args),
  redshift: async (...args) => (await postgresSessions()).PostgresSession.open(...args),
};

export function defaultExportRuntime(): ExportRuntime {
  return {
    loader: exportConfigLoader(),
    watermarkTable: process.env.WATERMARK_TABLE,
    dynamo: dynamoDbClient,
    s3: s3Client,
    // Clusters in other accounts read their secret as a role there (clusters/<name>/role-arn).
    credentials: new CredentialSource(
      new SecretsManagerClients({ own: secretsManagerClient }),
      Date.now,
      secretCacheTtlMs(process.env.EXPORT_SECRET_CACHE_TTL_SECONDS),
    ),
    invoker: lambdaInvoker(lambdaClient),
    openers: SESSION_OPENERS,
    logger: createLogger('log-export'),
    metrics: new Metrics({
      namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'LogExport',
      serviceName: 'log-export',
    }),
    lagAlarmWindows: Number(process.env.EXPORT_LAG_ALARM_WINDOWS ?? 4),
    tableMetrics: tableMetricsSetting(process.env.EXPORT_TABLE_METRICS),
    safetyMarginMs: Number(process.env.EXPORT_SAFETY_MARGIN_SECONDS ?? 60) * 1000,
    concurrency: exportConcurrency(process.env.EXPORT_CONCURRENCY),
    localBudgetMs: 14 * 60_000,
    now: Date.now,
  };
}

/**
 * `EXPORT_CONCURRENCY`: clusters (tables, when compacting) run at once in process, 4 unless set. Anything but a
 * positive integer is refused: NaN or 0 would start no worker, and the run would do nothing and report no error.
 */
export function exportConcurrency(value: string | undefined): number {
  if (value === undefined) return 4;
  if (!/^\s*[1-9]\d*\s*$/.test(value)) {
    throw new ConfigError('Invalid concurrency', [
      { parameter: 'EXPORT_CONCURRENCY', problem: 'must be a positive integer' },
    ]);
  }
  return Number(value);
}

/** Loads the configuration and runs one validated request. */
export async function executeExport(
  request: ExportRequest,
  runtime: ExportRuntime,
  context: InvocationContext = {},
): Promise<ExportSummary> {
  if (!runtime.watermarkTable) {
    throw new ConfigError('The exporter needs its watermark table', [
      { parameter: 'WATERMARK_TABLE', problem: 'missing environment variable' },
    ]);
  }
  const startedAt = runtime.now();
  const remainingMs =
    context.getRemainingTimeInMillis ?? (() => runtime.localBudgetMs - (runtime.now() - startedAt));
  const functionName = context.functionName ?? process.env.AWS_LAMBDA_FUNCTION_NAME;
  const config = await loadExportConfig(runtime.loader, request, {
    functionName,
    onLambda: runningOnLambda(),
  });
  // A refused login reloads that cluster's configuration past the cache, once per cluster and run.
  const reloaded = new Map<string, ReturnType<typeof reloadOne>>();
  const reloadOne = async (name: string) =>
    resolveConfig(await runtime.loader.refresh(clusterScopes(name))).clusters.get(name);
  const reloadCluster = (name: string) => {
    if (!reloaded.has(name)) reloaded.set(name, reloadOne(name));
    return reloaded.get(name) as ReturnType<typeof reloadOne>;
  };
  const store = new WatermarkStore(runtime.dynamo(), runtime.watermarkTable, runtime.now);
  const sink = sinkFor(config.destination, runtime.s3, config.kmsKeyId);
  if (request.kind === 'compact') {
    const compacted = await runCompaction(request, {
      config,
      store,
      sink,
      logger: runtime.logger,
      now: runtime.now,
      remainingMs,
      functionName,
      concurrency: runtime.concurrency,
      leaseWaitMs: runtime.compactionLeaseWaitMs,
    });
    runtime.logger.info('Compaction finished', { summary: compacted });
    return compacted;
  }
  const summary = await runExport(request, {
    config,
    store,
    sink,
    credentials: runtime.credentials,
    openers: runtime.openers,
    invoker: runtime.invoker,
    logger: runtime.logger,
    functionName,
    remainingMs,
    safetyMarginMs: runtime.safetyMarginMs,
    concurrency: runtime.concurrency,
    now: runtime.now,
    afterObjectWritten: runtime.afterObjectWritten,
    reloadCluster,
    metrics: runtime.metrics,
  });
  runtime.logger.info('Export finished', { summary });
  if (runtime.metrics) {
    publishExportMetrics(summary, runtime.metrics, {
      windowMinutes: config.windowMinutes,
      lagSeconds: config.lagSeconds,
      alarmWindows: runtime.lagAlarmWindows,
      tableMetrics: runtime.tableMetrics,
      now: runtime.now(),
    });
  }
  return summary;
}
