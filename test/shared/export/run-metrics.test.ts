import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../shared/errors';
import type { ExportSummary } from '../../../shared/export/exporter';
import {
  lagLimitSeconds,
  publishExportMetrics,
  type TableMetrics,
  tableMetricsSetting,
} from '../../../shared/export/run-metrics';
import { emfMetrics } from '../../deploy/emitted-metrics';
import { captureOutput } from '../../support/capture';

const NOW = Date.parse('2026-11-30T12:00:00Z');
const table = (name: string, watermark: string, extra: object = {}) => ({
  table: name,
  windows: 1,
  rows: 10,
  objectsWritten: 1,
  objectsSkipped: 0,
  bytes: 321,
  watermark,
  ...extra,
});

function publish(summary: ExportSummary, tableMetrics?: TableMetrics) {
  const output = captureOutput();
  try {
    publishExportMetrics(summary, new Metrics({ namespace: 'T', serviceName: 'log-export' }), {
      windowMinutes: 5,
      now: NOW,
      tableMetrics,
    });
  } finally {
    output.stop();
  }
  const lines = output
    .text()
    .split('\n')
    .filter((l) => l.includes('"_aws"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { metrics: emfMetrics(output.text()), lines };
}

describe('export run metrics', () => {
  it('a table is lagging once its watermark is more than 4 windows plus a minute behind', () => {
    expect(lagLimitSeconds({ windowMinutes: 5, now: NOW })).toBe(21 * 60);
    const { lines } = publish({
      mode: 'scheduled',
      clusters: [
        {
          cluster: 'c1',
          tables: [
            table('fresh', '2026-11-30T11:39:00.000000Z'), // 21 min: at the limit
            table('late', '2026-11-30T11:38:59.000000Z'), // 21 min 1 s: over
            table('broken', '2026-11-30T11:55:00.000000Z', { error: 'boom' }),
            { ...table('absent', ''), watermark: undefined, skipped: 'not installed' },
          ],
        },
        { cluster: 'c2', tables: [], error: 'no login' },
      ],
    });
    const run = lines.find((l) => 'TablesExported' in l);
    expect(run).toMatchObject({ TablesExported: 3, LaggingTables: 1, ExportTableErrors: 2 });
    const lag = (t: string) => lines.find((l) => l.Table === t && 'ExportLagSeconds' in l)?.ExportLagSeconds;
    expect(lag('fresh')).toBe(21 * 60);
    expect(lag('late')).toBe(21 * 60 + 1);
    expect(lines.find((l) => l.Table === 'late' && 'BytesExported' in l)).toMatchObject({
      Cluster: 'c1',
      BytesExported: 321,
    });
    expect(lines.some((l) => l.Table === 'absent')).toBe(false);
  });

  it('counts the lag of a table skipped for a lease another run holds, and nothing else of it', () => {
    const { lines } = publish({
      mode: 'scheduled',
      clusters: [
        {
          cluster: 'c1',
          tables: [
            {
              ...table('held', '2026-11-30T09:00:00.000000Z'),
              skipped: 'Another run holds the lease',
              leaseHeld: true,
            },
            { ...table('gone', '2026-11-30T09:00:00.000000Z'), skipped: 'extension not installed' },
          ],
        },
      ],
    });

    expect(lines.find((l) => 'TablesExported' in l)).toMatchObject({ TablesExported: 0, LaggingTables: 1 });
    expect(
      lines.filter((l) => l.Table === 'held').map((l) => Object.keys(l).filter((k) => /^[A-Z]/.test(k))),
    ).toEqual([['Cluster', 'Table', 'ExportLagSeconds']]);
    expect(lines.some((l) => l.Table === 'gone')).toBe(false);
  });

  it('backfills report rows and bytes but no lag', () => {
    const { metrics } = publish({
      mode: 'backfill',
      clusters: [{ cluster: 'c1', tables: [table('t', '2026-11-01T00:00:00.000000Z')] }],
    });
    const names = new Set(metrics.map((m) => m.name));
    expect(names.has('RowsExported')).toBe(true);
    expect(names.has('ExportLagSeconds')).toBe(false);
    expect(metrics.find((m) => m.name === 'RowsExported')?.dimensions).toEqual({
      service: 'log-export',
      Cluster: 'c1',
      Table: 't',
    });
  });

  it('emits per table only the lag with tableMetrics lag, and nothing per table with none; the run metrics always', () => {
    const summary: ExportSummary = {
      mode: 'scheduled',
      clusters: [
        {
          cluster: 'c1',
          tables: [
            table('fresh', '2026-11-30T11:55:00.000000Z'),
            table('late', '2026-11-30T10:00:00.000000Z'),
          ],
        },
      ],
    };
    const names = (tableMetrics: TableMetrics) =>
      [
        ...new Set(
          publish(summary, tableMetrics).metrics.map(
            (m) => `${m.name}${m.dimensions.Table ? ' per table' : ''}`,
          ),
        ),
      ].sort();

    expect(names('all')).toEqual([
      'BytesExported per table',
      'ExportLagSeconds per table',
      'ExportTableErrors',
      'LaggingTables',
      'ObjectsWritten per table',
      'RowsExported per table',
      'TablesExported',
      'WindowsLeft per table',
    ]);
    expect(names('lag')).toEqual([
      'ExportLagSeconds per table',
      'ExportTableErrors',
      'LaggingTables',
      'TablesExported',
    ]);
    expect(names('none')).toEqual(['ExportTableErrors', 'LaggingTables', 'TablesExported']);
    // The alarm's count does not depend on what is emitted per table.
    const run = publish(summary, 'none').lines.find((l) => 'LaggingTables' in l);
    expect(run).toMatchObject({ TablesExported: 2, LaggingTables: 1 });
  });

  it('reads EXPORT_TABLE_METRICS: all by default, and refuses anything but all, lag or none', () => {
    expect(tableMetricsSetting(undefined)).toBe('all');
    expect(tableMetricsSetting('')).toBe('all');
    expect(tableMetricsSetting('lag')).toBe('lag');
    expect(tableMetricsSetting('none')).toBe('none');
    expect(() => tableMetricsSetting('some')).toThrow(ConfigError);
    expect(() => tableMetricsSetting('some')).toThrow(/EXPORT_TABLE_METRICS: must be all, lag or none/);
  });
});
