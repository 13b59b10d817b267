import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import {
  CreateSecretCommand,
  RotateSecretCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import { createWatermarkTable } from '../../shared/export/plan/watermark-store';
import { duration } from '../../shared/operations/status';
import { randomPassword, uniqueName } from '../stack/fixtures';
import { runScript } from '../support/cli';

const statusCli = (...args: string[]) => runScript('scripts/status.ts', args);

describe('npm run status', () => {
  it('prints every watermark with its lag, rows and live lease, and every rotated secret with its state', async () => {
    const dynamo = new DynamoDBClient({});
    const sm = new SecretsManagerClient({});
    const tableName = uniqueName('status');
    await createWatermarkTable(dynamo, tableName);
    const now = Date.now();
    const iso = (ms: number) => `${new Date(ms).toISOString().slice(0, 23)}000Z`;
    const put = (cluster: string, table: string, watermark: string, rows: number, lease?: [string, number]) =>
      dynamo.send(
        new PutItemCommand({
          TableName: tableName,
          Item: {
            cluster: { S: cluster },
            table: { S: table },
            watermark: { S: watermark },
            version: { N: '3' },
            rowsExported: { N: String(rows) },
            ...(lease ? { leaseOwner: { S: lease[0] }, leaseUntil: { N: String(lease[1]) } } : {}),
          },
        }),
      );
    await put('c1', 'general_log', iso(now - 7 * 60_000), 1234, ['run-live', now + 60_000]);
    await put('c2', 'postgres_log', iso(now - 3 * 3_600_000), 99, ['run-lapsed', now - 60_000]);

    const fn = `arn:aws:lambda:us-east-1:000000000000:function:${uniqueName('rotate')}`;
    const password = randomPassword();
    const name = `${uniqueName('status')}/app`;
    await sm.send(new CreateSecretCommand({ Name: name, SecretString: JSON.stringify({ password }) }));
    await sm
      .send(
        new RotateSecretCommand({
          SecretId: name,
          RotationLambdaARN: fn,
          RotationRules: { AutomaticallyAfterDays: 7 },
        }),
      )
      .catch(() => {});

    const { code, stdout } = await statusCli('--table', tableName, '--function-arn', fn);

    expect(code).toBe(0);
    const lines = stdout.split('\n');
    expect(lines.find((l) => l.startsWith('c1 '))).toMatch(
      /c1\s+general_log\s+\S+\s+7m \d+s\s+1234\s+run-live until /,
    );
    expect(lines.find((l) => l.startsWith('c2 '))).toMatch(/c2\s+postgres_log\s+\S+\s+3h( \d+m)?\s+99\s+-$/);
    expect(lines.find((l) => l.startsWith(name))).toMatch(/every 7 days\s+never\s+\S+( \S+)?\s+\S+\s+ok$/);
    expect(stdout).not.toContain(password);
  });

  it('exits 2 on an unknown option', async () => {
    const { code, stderr } = await statusCli('--tabel', 'x');
    expect(code).toBe(2);
    expect(stderr).toContain('usage: npm run status');
  });
});

describe('durations', () => {
  it('prints the two largest units', () => {
    expect(duration(0)).toBe('0s');
    expect(duration(59)).toBe('59s');
    expect(duration(427)).toBe('7m 7s');
    expect(duration(3 * 3600 + 5)).toBe('3h');
    expect(duration(90_061)).toBe('1d 1h');
  });
});
