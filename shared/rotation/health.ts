import type { Metrics } from '@aws-lambda-powertools/metrics';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import {
  ListSecretsCommand,
  ListSecretVersionIdsCommand,
  type SecretListEntry,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** How one rotated secret is doing; never holds a secret value. */
export interface SecretHealth {
  name: string;
  arn: string;
  rotationEnabled: boolean;
  /** `every N days` or the schedule expression. */
  schedule?: string;
  /** Last successful rotation (ISO-8601); absent when the secret never rotated. */
  lastRotated?: string;
  /** Seconds since the last successful rotation, or since creation when it never rotated. */
  ageSeconds: number;
  /** When the next rotation is due (ISO-8601), where the schedule says. */
  due?: string;
  /** Rotation is enabled and the due time plus the grace period has passed. */
  overdue: boolean;
  /** AWSPENDING sits on a version other than AWSCURRENT for longer than the stuck threshold. */
  stuck: boolean;
  /** The version AWSPENDING sits on, when not AWSCURRENT's, and since when. */
  pendingVersion?: string;
  pendingSince?: string;
}

export interface RotationHealthOptions {
  secretsManager: SecretsManagerClient;
  /** Only secrets rotated by this Lambda (unqualified ARN); all secrets with rotation configured otherwise. */
  rotationFunctionArn?: string;
  now?: () => number;
  /** AWSPENDING on another version for longer than this is stuck. Default two hours. */
  stuckAfterMs?: number;
  /** A rotation later than its due time by more than this is overdue. Default 24 hours. */
  overdueGraceMs?: number;
}

export interface RotationHealthReport {
  checkedAt: string;
  secrets: SecretHealth[];
  /** AWS calls the check made, by operation. */
  calls: Record<string, number>;
}

/**
 * Lists the secrets that use the rotation function (ListSecrets, 100 a page: its
 * answer carries the rotation settings and the stage labels) and judges each one.
 * Only a secret with AWSPENDING away from AWSCURRENT costs one more call
 * (ListSecretVersionIds, for the pending version's age).
 */
export async function checkRotationHealth(options: RotationHealthOptions): Promise<RotationHealthReport> {
  const sm = options.secretsManager;
  const now = (options.now ?? Date.now)();
  const calls: Record<string, number> = { ListSecrets: 0, ListSecretVersionIds: 0 };
  const entries: SecretListEntry[] = [];
  let nextToken: string | undefined;
  do {
    calls.ListSecrets = (calls.ListSecrets ?? 0) + 1;
    const page = await sm.send(new ListSecretsCommand({ MaxResults: 100, NextToken: nextToken }));
    entries.push(...(page.SecretList ?? []));
    nextToken = page.NextToken;
  } while (nextToken);

  const wanted = options.rotationFunctionArn ? unqualified(options.rotationFunctionArn) : undefined;
  const rotated = entries.filter(
    (e) => e.RotationLambdaARN && (!wanted || unqualified(e.RotationLambdaARN) === wanted),
  );
  const secrets: SecretHealth[] = [];
  for (const entry of rotated) {
    const health = judge(entry, now, options.overdueGraceMs ?? DAY_MS);
    if (health.pendingVersion) {
      calls.ListSecretVersionIds = (calls.ListSecretVersionIds ?? 0) + 1;
      const created = await pendingCreated(sm, entry.ARN ?? health.name, health.pendingVersion);
      if (created) {
        health.pendingSince = new Date(created).toISOString();
        health.stuck = now - created > (options.stuckAfterMs ?? 2 * HOUR_MS);
      }
    }
    secrets.push(health);
  }
  secrets.sort((a, b) => a.name.localeCompare(b.name));
  return { checkedAt: new Date(now).toISOString(), secrets, calls };
}

function judge(entry: SecretListEntry, now: number, graceMs: number): SecretHealth {
  const rules = entry.RotationRules ?? {};
  const lastRotated = entry.LastRotatedDate?.getTime();
  const base = lastRotated ?? entry.CreatedDate?.getTime() ?? now;
  const interval = intervalMs(rules.AutomaticallyAfterDays, rules.ScheduleExpression);
  const due = interval !== undefined ? base + interval : entry.NextRotationDate?.getTime();
  const enabled = entry.RotationEnabled === true;
  const stages = entry.SecretVersionsToStages ?? {};
  const pendingVersion = Object.entries(stages).find(
    ([, labels]) => labels.includes('AWSPENDING') && !labels.includes('AWSCURRENT'),
  )?.[0];
  return {
    name: entry.Name ?? entry.ARN ?? '',
    arn: entry.ARN ?? '',
    rotationEnabled: enabled,
    ...(rules.AutomaticallyAfterDays ? { schedule: `every ${rules.AutomaticallyAfterDays} days` } : {}),
    ...(rules.ScheduleExpression ? { schedule: rules.ScheduleExpression } : {}),
    ...(lastRotated !== undefined ? { lastRotated: new Date(lastRotated).toISOString() } : {}),
    ageSeconds: Math.max(0, Math.round((now - base) / 1000)),
    ...(due !== undefined ? { due: new Date(due).toISOString() } : {}),
    overdue: enabled && due !== undefined && now > due + graceMs,
    stuck: false,
    ...(pendingVersion ? { pendingVersion } : {}),
  };
}

/** The interval of `AutomaticallyAfterDays` or of a `rate(...)` expression; cron schedules have none. */
export function intervalMs(days: number | undefined, expression: string | undefined): number | undefined {
  if (days) return days * DAY_MS;
  const rate = /^rate\(\s*(\d+)\s+(hours?|days?)\s*\)$/.exec(expression ?? '');
  if (!rate) return undefined;
  return Number(rate[1]) * (rate[2]?.startsWith('hour') ? HOUR_MS : DAY_MS);
}

async function pendingCreated(
  sm: SecretsManagerClient,
  secretId: string,
  versionId: string,
): Promise<number | undefined> {
  let nextToken: string | undefined;
  do {
    const page = await sm.send(
      new ListSecretVersionIdsCommand({ SecretId: secretId, MaxResults: 100, NextToken: nextToken }),
    );
    const version = page.Versions?.find((v) => v.VersionId === versionId);
    if (version) return version.CreatedDate?.getTime();
    nextToken = page.NextToken;
  } while (nextToken);
  return undefined;
}

/** A function ARN without a version or alias qualifier. */
export function unqualified(arn: string): string {
  const parts = arn.split(':');
  return parts.length > 7 ? parts.slice(0, 7).join(':') : arn;
}

/**
 * EMF metrics of one check: per secret (dimension SecretName) the age of its last
 * rotation and whether it is overdue or stuck; in all (dimension service only) the
 * counts that the alarms watch.
 */
export function publishRotationHealth(report: RotationHealthReport, metrics: Metrics): void {
  for (const secret of report.secrets) {
    // A single metric is published as soon as its value is added: one per metric.
    const perSecret = (name: string, unit: (typeof MetricUnit)[keyof typeof MetricUnit], value: number) => {
      const single = metrics.singleMetric();
      single.addDimension('SecretName', secret.name);
      single.addMetric(name, unit, value);
    };
    perSecret('SecretRotationAge', MetricUnit.Seconds, secret.ageSeconds);
    perSecret('SecretRotationOverdue', MetricUnit.Count, secret.overdue ? 1 : 0);
    perSecret('SecretRotationStuck', MetricUnit.Count, secret.stuck ? 1 : 0);
  }
  metrics.addMetric('RotatedSecrets', MetricUnit.Count, report.secrets.length);
  metrics.addMetric('OverdueSecrets', MetricUnit.Count, report.secrets.filter((s) => s.overdue).length);
  metrics.addMetric('StuckSecrets', MetricUnit.Count, report.secrets.filter((s) => s.stuck).length);
  metrics.publishStoredMetrics();
}
