/**
 * Runs the export handler locally (npm run export -- <event.json>), with the
 * same configuration, credentials and clients as on Lambda: CONFIG_PATH,
 * WATERMARK_TABLE and the usual AWS environment (AWS_ENDPOINT_URL for an
 * emulator). Without a file, the event is read from standard input. Prints the
 * JSON summary; exits 1 when a table or cluster reported an error.
 */
import { readFileSync } from 'node:fs';

// Standard output is the summary: the metrics' EMF lines only mean something to CloudWatch on Lambda
// (POWERTOOLS_METRICS_DISABLED=false prints them too). Set before the handler builds its metrics.
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
const { handler } = await import('../functions/export');
const { stopDeflateWorkers } = await import('../shared/export/encode/gzip');

const file = process.argv[2];
const event = JSON.parse(readFileSync(file ?? 0, 'utf8'));
const summary = await handler(event);
await stopDeflateWorkers();
process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
const failed = summary.clusters.some((c) => c.error || c.tables.some((t) => t.error));
process.exitCode = failed ? 1 : 0;
