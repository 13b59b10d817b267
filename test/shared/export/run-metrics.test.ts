import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it } from 'vitest';
import type { ExportSummary } from '../../../shared/export/exporter';
import { lagLimitSeconds, publishExportMetrics } from '../../../shared/export/run-metrics';
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

function publish(summary: ExportSummary) {
  const output = captureOutput();
  try {
    publishExportMetrics(summary, new Metrics({ namespace: 'T', serviceName: 'log-export' }), {
      windowMinutes: 5,
      now: NOW,
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
});
