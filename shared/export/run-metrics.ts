import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { ConfigError } from '../errors';
import type { ExportSummary } from './exporter';

/**
 * Which metrics a run emits per (Cluster, Table), each a CloudWatch custom metric
 * billed per month: `all` five, `lag` ExportLagSeconds alone (the dashboard's lag
 * graph), `none` only the run's (what the alarms watch).
 */
export type TableMetrics = 'all' | 'lag' | 'none';

/** `EXPORT_TABLE_METRICS`: `all` unless set; anything else is refused. */
export function tableMetricsSetting(value: string | undefined): TableMetrics {
  if (value === undefined || value === '') return 'all';
  if (value === 'all' || value === 'lag' || value === 'none') return value;
  throw new ConfigError('Invalid metrics setting', [
    { parameter: 'EXPORT_TABLE_METRICS', problem: 'must be all, lag or none' },
  ]);
}

export interface ExportMetricsOptions {
  /** The window grid length. */
  windowMinutes: number;
  /** A table is lagging when its watermark is more than this many windows plus `lagSeconds` behind. Default 4. */
  alarmWindows?: number;
  /** The safety lag every table waits for (the configured override, else a minute). */
  lagSeconds?: number;
  now: number;
  /** Default `all`. */
  tableMetrics?: TableMetrics;
}

/** The freshness limit of one table: `alarmWindows` windows plus its safety lag. */
export function lagLimitSeconds(options: ExportMetricsOptions): number {
  return (options.alarmWindows ?? 4) * options.windowMinutes * 60 + (options.lagSeconds ?? 60);
}

/**
 * EMF metrics of one run. Per (Cluster, Table), as `tableMetrics` says: ExportLagSeconds
 * (now minus the watermark), RowsExported, BytesExported, ObjectsWritten and WindowsLeft. For the
 * run (dimension service only): TablesExported (the heartbeat whose absence means
 * the exporter stopped), LaggingTables (tables behind their freshness limit) and
 * ExportTableErrors; the alarms watch these three. Backfills and dry runs report
 * no lag (they do not move watermarks). A table skipped because another run holds
 * its lease reports its lag (a lease never given up must not hide it) and nothing else.
 */
export function publishExportMetrics(
  summary: ExportSummary,
  metrics: Metrics,
  options: ExportMetricsOptions,
): void {
  const limit = lagLimitSeconds(options);
  const perTableMetrics = options.tableMetrics ?? 'all';
  let tables = 0;
  let lagging = 0;
  let errors = 0;
  const incremental = summary.mode === 'scheduled' || summary.mode === 'catch-up';
  for (const cluster of summary.clusters) {
    if (cluster.error) errors += 1;
    for (const t of cluster.tables) {
      // A table left to a run that holds its lease was not exported, but it lags all the same.
      if (t.skipped && !t.leaseHeld) continue;
      const perTable = (name: string, unit: (typeof MetricUnit)[keyof typeof MetricUnit], value: number) => {
        const single = metrics.singleMetric();
        single.addDimensions({ Cluster: cluster.cluster, Table: t.table });
        single.addMetric(name, unit, value);
      };
      if (incremental && t.watermark) {
        const lag = Math.max(0, Math.round((options.now - Date.parse(t.watermark)) / 1000));
        if (perTableMetrics !== 'none') perTable('ExportLagSeconds', MetricUnit.Seconds, lag);
        if (lag > limit) lagging += 1;
      }
      if (t.skipped) continue;
      tables += 1;
      if (t.error) errors += 1;
      if (perTableMetrics !== 'all') continue;
      perTable('RowsExported', MetricUnit.Count, t.rows);
      perTable('BytesExported', MetricUnit.Bytes, t.bytes ?? 0);
      perTable('ObjectsWritten', MetricUnit.Count, t.objectsWritten);
      perTable('WindowsLeft', MetricUnit.Count, t.windowsLeft ?? 0);
    }
  }
  metrics.addMetric('TablesExported', MetricUnit.Count, tables);
  metrics.addMetric('LaggingTables', MetricUnit.Count, lagging);
  metrics.addMetric('ExportTableErrors', MetricUnit.Count, errors);
  metrics.publishStoredMetrics();
}
