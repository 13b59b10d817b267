/**
 * One measured export, in a process of its own so that its peak RSS is its
 * own: the export function's bundle, built by bench/export.ts as the
 * deployment builds it (with its Parquet encoder beside it), invoked as Lambda
 * would with a one-window backfill of one cluster. Plain Node.js, no loader:
 * what runs is what is deployed. Prints one JSON line.
 * Arguments (JSON in BENCH_EXPORT_CHILD): bundle, path, watermarkTable, cluster, from, to.
 */
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';

const args = JSON.parse(process.env.BENCH_EXPORT_CHILD ?? '{}');
process.env.CONFIG_PATH = args.path;
process.env.WATERMARK_TABLE = args.watermarkTable;
process.env.LOG_LEVEL = 'WARN';
const { handler } = createRequire(import.meta.url)(args.bundle);
const started = performance.now();
const summary = await handler({ cluster: args.cluster, from: args.from, to: args.to, replace: true });
const seconds = (performance.now() - started) / 1000;
const table = summary.clusters[0]?.tables[0];
if (!table || table.error) throw new Error(`export failed: ${JSON.stringify(summary)}`);
process.stdout.write(
  `${JSON.stringify({ rows: table.rows, seconds, peakRssMb: process.resourceUsage().maxRSS / 1024 })}\n`,
);
