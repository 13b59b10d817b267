import { Metrics } from '@aws-lambda-powertools/metrics';
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  RotateSecretCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/health';
import { createLogger } from '../../shared/log';
import { intervalMs } from '../../shared/rotation/health';
import { randomPassword, uniqueName } from '../stack/fixtures';
import { captureOutput } from '../support/capture';

const DAY = 86_400_000;
const HOUR = 3_600_000;

/** A client that counts the calls it really sends, by operation. */
function countingClient(): { client: SecretsManagerClient; calls: Record<string, number> } {
  const client = new SecretsManagerClient({});
  const calls: Record<string, number> = {};
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = String(context.commandName).replace(/Command$/, '');
      calls[name] = (calls[name] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: 'countCalls' },
  );
  return { client, calls };
}

describe('the rotation health check', () => {
  const sm = new SecretsManagerClient({});
  const fn = `arn:aws:lambda:us-east-1:000000000000:function:${uniqueName('rotate')}`;
  const other = `arn:aws:lambda:us-east-1:000000000000:function:${uniqueName('other')}`;
  const prefix = uniqueName('health');
  const passwords: string[] = [];
  let createdAt = 0;

  /** A secret whose rotation is configured with `lambda`; AWSPENDING stays where RotateSecret left it unless cleared. */
  async function rotatedSecret(name: string, lambda: string, keepPending: boolean): Promise<void> {
    const password = randomPassword();
    passwords.push(password);
    await sm.send(
      new CreateSecretCommand({
        Name: name,
        SecretString: JSON.stringify({ engine: 'postgres', host: 'h', username: 'u', password }),
      }),
    );
    // No Lambda is behind the ARN: the rotation is configured, its AWSPENDING version made, its invocation fails.
    await sm
      .send(
        new RotateSecretCommand({
          SecretId: name,
          RotationLambdaARN: lambda,
          RotationRules: { AutomaticallyAfterDays: 30 },
        }),
      )
      .catch(() => {});
    if (keepPending) return;
    const stages = (await sm.send(new DescribeSecretCommand({ SecretId: name }))).VersionIdsToStages ?? {};
    const pending = Object.entries(stages).find(([, s]) => s.includes('AWSPENDING'))?.[0];
    if (pending) {
      await sm.send(
        new UpdateSecretVersionStageCommand({
          SecretId: name,
          VersionStage: 'AWSPENDING',
          RemoveFromVersionId: pending,
        }),
      );
    }
  }

  beforeAll(async () => {
    createdAt = Date.now();
    const work: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) work.push(rotatedSecret(`${prefix}/app-${i}`, fn, i < 3));
    for (let i = 0; i < 5; i++) work.push(rotatedSecret(`${prefix}/other-${i}`, other, true));
    work.push(
      sm.send(new CreateSecretCommand({ Name: `${prefix}/plain`, SecretString: '{}' })).then(() => undefined),
    );
    await Promise.all(work);
  }, 120_000);

  const run = async (now: number) => {
    const { client, calls } = countingClient();
    const output = captureOutput();
    try {
      const handler = makeHandler({
        secretsManager: client,
        rotationFunctionArn: `${fn}:$LATEST`,
        now: () => now,
        metrics: new Metrics({ namespace: 'SecretRotation', serviceName: 'secret-rotation' }),
        logger: createLogger('health-test'),
      });
      const report = await handler();
      return { report, calls, text: output.text() };
    } finally {
      output.stop();
    }
  };

  it('lists only the secrets of this function, fresh, with none overdue or stuck', async () => {
    const { report } = await run(createdAt + HOUR);
    const names = report.secrets.map((s) => s.name);
    expect(names).toHaveLength(50);
    expect(names.every((n) => n.startsWith(`${prefix}/app-`))).toBe(true);
    expect(report.secrets.filter((s) => s.overdue || s.stuck)).toEqual([]);
    const first = report.secrets.find((s) => s.name === `${prefix}/app-10`);
    expect(first).toMatchObject({ rotationEnabled: true, schedule: 'every 30 days', overdue: false });
    expect(first?.ageSeconds).toBeGreaterThanOrEqual(3_500);
  });

  it('flags AWSPENDING left on another version for over two hours as stuck, and not before', async () => {
    const early = await run(createdAt + HOUR);
    expect(early.report.secrets.filter((s) => s.pendingVersion).map((s) => s.name)).toHaveLength(3);
    expect(early.report.secrets.filter((s) => s.stuck)).toEqual([]);

    const late = await run(createdAt + 3 * HOUR);
    expect(late.report.secrets.filter((s) => s.stuck).map((s) => s.name.replace(`${prefix}/`, ''))).toEqual([
      'app-0',
      'app-1',
      'app-2',
    ]);
  });

  it('flags a secret overdue once its 30 days plus a day of grace have passed', async () => {
    expect((await run(createdAt + 30 * DAY + 23 * HOUR)).report.secrets.some((s) => s.overdue)).toBe(false);
    const { report } = await run(createdAt + 31 * DAY + HOUR);
    expect(report.secrets.filter((s) => s.overdue)).toHaveLength(50);
  });

  it('emits per-secret and total metrics, counts its calls truthfully, and prints no secret value', async () => {
    const { report, calls, text } = await run(createdAt + 3 * HOUR);
    // One ListSecrets page per 100 secrets in the account (other tests share the emulator) and one
    // ListSecretVersionIds per secret whose AWSPENDING sits away from AWSCURRENT.
    expect(report.calls).toEqual(calls);
    expect(calls.ListSecretVersionIds).toBe(3);
    expect(calls.ListSecrets).toBeGreaterThanOrEqual(1);
    const emf = text
      .split('\n')
      .filter((line) => line.includes('"_aws"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const totals = emf.find((e) => 'StuckSecrets' in e);
    expect(totals).toMatchObject({ RotatedSecrets: 50, StuckSecrets: 3, OverdueSecrets: 0 });
    const perSecret = emf.filter((e) => 'SecretName' in e);
    expect(perSecret).toHaveLength(150);
    const of = (secret: string) =>
      Object.assign({}, ...perSecret.filter((e) => e.SecretName === `${prefix}/${secret}`));
    expect(of('app-1')).toMatchObject({ SecretRotationStuck: 1, SecretRotationOverdue: 0 });
    expect(of('app-9')).toMatchObject({ SecretRotationStuck: 0, SecretRotationOverdue: 0 });
    expect(of('app-9').SecretRotationAge).toBeGreaterThanOrEqual(3 * 3_600 - 60);
    for (const password of passwords) expect(text + JSON.stringify(report)).not.toContain(password);
  });
});

describe('schedule intervals', () => {
  it('reads days, rate() in hours and days, and gives cron schedules none', () => {
    expect(intervalMs(30, undefined)).toBe(30 * DAY);
    expect(intervalMs(undefined, 'rate(4 hours)')).toBe(4 * HOUR);
    expect(intervalMs(undefined, 'rate(1 day)')).toBe(DAY);
    expect(intervalMs(undefined, 'cron(0 16 1,15 * ? *)')).toBeUndefined();
    expect(intervalMs(undefined, undefined)).toBeUndefined();
  });
});
