import { randomUUID } from 'node:crypto';
import { DescribeSecretCommand } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import {
  invoker,
  mariadbUnderTest,
  postgresUnderTest,
  secretValue,
  singleUserSecret,
  stagesOf,
  startRotation,
} from '../shared/rotation/support';
import { secretsManager } from '../stack/fixtures';
import { runScript } from '../support/cli';

const rotateCli = (...args: string[]) => runScript('scripts/rotate.ts', args);

describe('npm run rotate', () => {
  it('rotates a secret and prints the token', async () => {
    const { arn, username, password } = await singleUserSecret(mariadbUnderTest);

    const { code, stdout } = await rotateCli(arn);

    expect(code).toBe(0);
    const line = stdout.split('\n').find((l) => l.startsWith('{"rotated"'));
    expect(JSON.parse(line ?? '{}')).toMatchObject({ rotated: arn, token: expect.any(String), attempts: 1 });
    const current = await secretValue(arn);
    expect(await mariadbUnderTest.canLogin(username, current.password as string)).toBe(true);
    expect(await mariadbUnderTest.canLogin(username, password)).toBe(false);
  });

  it('resumes a rotation left with AWSPENDING with --token, the way the rotation-stuck alarm says', async () => {
    const { arn, username, password } = await singleUserSecret(postgresUnderTest);
    const token = randomUUID();
    await startRotation(arn, token);
    await invoker()({ Step: 'createSecret', SecretId: arn, ClientRequestToken: token });
    const pending = await secretValue(arn, 'AWSPENDING');

    const { code, stdout } = await rotateCli(arn, '--token', token);

    expect(code).toBe(0);
    expect(JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}')).toMatchObject({ rotated: arn, token });
    const stages = await stagesOf(arn);
    expect(stages[token]).toEqual(['AWSCURRENT']);
    expect(Object.values(stages).flat()).not.toContain('AWSPENDING');
    expect(await postgresUnderTest.canLogin(username, pending.password as string)).toBe(true);
    expect(await postgresUnderTest.canLogin(username, password)).toBe(false);
  });

  it('names the rotation Lambda given with --lambda-arn to RotateSecret', async () => {
    const { arn } = await singleUserSecret(mariadbUnderTest);
    const lambdaArn = `arn:aws:lambda:us-east-1:000000000000:function:rotate-${randomUUID().slice(0, 8)}`;

    const { code } = await rotateCli(arn, '--lambda-arn', lambdaArn);

    expect(code).toBe(0);
    const described = await secretsManager().send(new DescribeSecretCommand({ SecretId: arn }));
    expect(described.RotationLambdaARN).toBe(lambdaArn);
  });

  it('exits 1 with the reason after the last failed attempt, and 2 on bad usage', async () => {
    const { arn } = await singleUserSecret(mariadbUnderTest, { engine: 'oracle' });

    const failed = await rotateCli(arn, '--attempts', '2');
    const usage = await rotateCli();

    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(`Rotation of ${arn} failed after 2 attempts`);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('usage: npm run rotate');
  });
});
