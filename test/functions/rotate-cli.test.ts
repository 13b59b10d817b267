import { describe, expect, it } from 'vitest';
import { mariadbUnderTest, secretValue, singleUserSecret } from '../shared/rotation/support';
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
