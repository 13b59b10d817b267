/**
 * One measured export, run in its own process so that its peak RSS is its own:
 * a one-window backfill of one cluster's custom export. Prints one JSON line.
 * Arguments (JSON in BENCH_EXPORT_CHILD, not on the command line: they hold the stack's passwords):
 * stack, path, watermarkTable, cluster, from, to.
 */
import { performance } from 'node:perf_hooks';
import { ConfigLoader } from '../shared/config';
import { exportConfigSchema } from '../shared/export/config';
import { defaultExportRuntime, executeExport } from '../shared/export/runtime';
import { type StackInfo, useStackEnvironment } from '../test/stack';

interface ChildArgs {
  stack: StackInfo;
  path: string;
  watermarkTable: string;
  cluster: string;
  from: string;
  to: string;
}

const args = JSON.parse(process.env.BENCH_EXPORT_CHILD ?? '{}') as ChildArgs;
useStackEnvironment(args.stack);
process.env.LOG_LEVEL = 'WARN';
const runtime = {
  ...defaultExportRuntime(),
  loader: new ConfigLoader({ path: args.path, schema: exportConfigSchema }),
  watermarkTable: args.watermarkTable,
  metrics: undefined,
};
const started = performance.now();
const summary = await executeExport(
  { kind: 'backfill', cluster: args.cluster, from: args.from, to: args.to, dryRun: false, replace: true },
  runtime,
);
const seconds = (performance.now() - started) / 1000;
const table = summary.clusters[0]?.tables[0];
if (!table || table.error) throw new Error(`export failed: ${JSON.stringify(summary)}`);
process.stdout.write(
  `${JSON.stringify({ rows: table.rows, seconds, peakRssMb: process.resourceUsage().maxRSS / 1024 })}\n`,
);
