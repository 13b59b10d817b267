import { type AttributeValue, type DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { checkRotationHealth, type SecretHealth } from '../rotation/health';

/** One (cluster, table) as its watermark item says. */
export interface WatermarkStatus {
  cluster: string;
  table: string;
  watermark?: string;
  /** Seconds between now and the watermark: how far behind the export is. */
  lagSeconds?: number;
  rowsExported: number;
  /** Who holds the lease and until when, when it has not lapsed. */
  leaseOwner?: string;
  leaseUntil?: string;
}

export interface StatusOptions {
  dynamo: DynamoDBClient;
  secretsManager: SecretsManagerClient;
  /** The watermark table; none: watermarks are not listed. */
  watermarkTable?: string;
  /** Only secrets rotated by this function; else every secret with rotation configured. */
  rotationFunctionArn?: string;
  now?: () => number;
}

export interface StatusReport {
  watermarks: WatermarkStatus[];
  secrets: SecretHealth[];
}

/** Reads every watermark (a paged Scan) and the health of every rotated secret. */
export async function readStatus(options: StatusOptions): Promise<StatusReport> {
  const now = (options.now ?? Date.now)();
  const watermarks: WatermarkStatus[] = [];
  let start: Record<string, AttributeValue> | undefined;
  while (options.watermarkTable) {
    const page = await options.dynamo.send(
      new ScanCommand({ TableName: options.watermarkTable, ExclusiveStartKey: start }),
    );
    for (const item of page.Items ?? []) {
      const watermark = item.watermark?.S;
      const leaseUntil = Number(item.leaseUntil?.N ?? 0);
      const held = item.leaseOwner?.S && leaseUntil > now;
      watermarks.push({
        cluster: item.cluster?.S ?? '',
        table: item.table?.S ?? '',
        ...(watermark ? { watermark, lagSeconds: Math.round((now - Date.parse(watermark)) / 1000) } : {}),
        rowsExported: Number(item.rowsExported?.N ?? 0),
        ...(held ? { leaseOwner: item.leaseOwner?.S, leaseUntil: new Date(leaseUntil).toISOString() } : {}),
      });
    }
    start = page.LastEvaluatedKey;
    if (!start) break;
  }
  watermarks.sort((a, b) => a.cluster.localeCompare(b.cluster) || a.table.localeCompare(b.table));
  const health = await checkRotationHealth({
    secretsManager: options.secretsManager,
    rotationFunctionArn: options.rotationFunctionArn,
    now: () => now,
  });
  return { watermarks, secrets: health.secrets };
}

/** The largest unit and the next one when not zero: `1d 2h`, `3h`, `5m 6s`, `7s`. */
export function duration(seconds: number): string {
  const sizes: Array<[string, number]> = [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ];
  const s = Math.max(0, Math.round(seconds));
  const first = sizes.findIndex(([, size]) => s >= size);
  if (first < 0) return '0s';
  const [unit, size] = sizes[first] as [string, number];
  const text = `${Math.floor(s / size)}${unit}`;
  const next = sizes[first + 1];
  const rest = next ? Math.floor((s % size) / next[1]) : 0;
  return next && rest > 0 ? `${text} ${rest}${next[0]}` : text;
}

/** Left-aligned columns, two spaces apart. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** The two tables `npm run status` prints. */
export function formatStatus(report: StatusReport): string {
  const exports =
    report.watermarks.length === 0
      ? '(no watermarks)'
      : table(
          ['cluster', 'table', 'watermark', 'lag', 'rows', 'lease'],
          report.watermarks.map((w) => [
            w.cluster,
            w.table,
            w.watermark ?? '-',
            w.lagSeconds === undefined ? '-' : duration(w.lagSeconds),
            String(w.rowsExported),
            w.leaseOwner ? `${w.leaseOwner} until ${w.leaseUntil}` : '-',
          ]),
        );
  const secrets =
    report.secrets.length === 0
      ? '(no rotated secrets)'
      : table(
          ['secret', 'schedule', 'last rotation', 'age', 'due', 'state'],
          report.secrets.map((s) => [
            s.name,
            s.rotationEnabled ? (s.schedule ?? '-') : 'disabled',
            s.lastRotated ?? 'never',
            duration(s.ageSeconds),
            s.due ?? '-',
            [
              s.stuck ? `STUCK: AWSPENDING on ${s.pendingVersion} since ${s.pendingSince}` : '',
              s.overdue ? 'OVERDUE' : '',
            ]
              .filter(Boolean)
              .join(', ') || 'ok',
          ]),
        );
  return `Exports\n${exports}\n\nRotated secrets\n${secrets}\n`;
}
