/**
 * `npm run athena-ddl -- --destination s3://bucket/prefix [--database log_export]
 * [--since 2024-01-01] [--clusters c1,c2] [--daily] [--format jsonl.gz|parquet]`: prints
 * the CREATE EXTERNAL TABLE statements of every catalog table, ready for the Athena
 * console or `aws athena start-query-execution` (one statement each).
 */
import { parseArgs } from 'node:util';
import { athenaDdl } from '../shared/export/athena';
import type { OutputFormat } from '../shared/export/config';

const { values } = parseArgs({
  options: {
    destination: { type: 'string', default: process.env.EXPORT_DESTINATION },
    database: { type: 'string', default: 'log_export' },
    since: { type: 'string', default: '2024-01-01' },
    clusters: { type: 'string' },
    daily: { type: 'boolean', default: false },
    format: { type: 'string', default: 'jsonl.gz' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});

if (values.help || !values.destination) {
  process.stderr.write(
    'usage: npm run athena-ddl -- --destination s3://bucket/prefix [--database log_export] [--since yyyy-MM-dd] [--clusters c1,c2] [--daily] [--format jsonl.gz|parquet]\n' +
      "  --destination  the exporter's global/destination (or EXPORT_DESTINATION)\n" +
      '  --clusters     project `cluster` as an enum of these names (queries may then span all clusters);\n' +
      '                 without it `cluster` is injected and every query names its cluster(s)\n' +
      "  --daily        the tables over the daily compaction's objects (<table>_daily)\n" +
      "  --format       the exporter's global/format: jsonl.gz (default) or parquet (typed columns)\n",
  );
  process.exit(values.help ? 0 : 2);
}

try {
  const statements = athenaDdl({
    destination: values.destination,
    database: values.database,
    since: values.since,
    clusters: values.clusters
      ?.split(',')
      .map((c) => c.trim())
      .filter(Boolean),
    daily: values.daily,
    // Checked with the other options: a format that is neither is named in the error.
    format: values.format as OutputFormat,
  });
  process.stdout.write(`${statements.join('\n\n')}\n`);
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(2);
}
