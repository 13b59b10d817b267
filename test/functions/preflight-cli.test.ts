import { describe, expect, it } from 'vitest';
import { mariadbUnderTest, postgresUnderTest, singleUserSecret } from '../shared/rotation/support';
import { createSecret, randomPassword } from '../stack/fixtures';
import { runScript } from '../support/cli';

const preflightCli = (...args: string[]) => runScript('scripts/preflight.ts', args);

describe('npm run preflight', { timeout: 180_000 }, () => {
  it('prints one line per check and exits 0 for a rotatable secret', async () => {
    const { arn, password } = await singleUserSecret(mariadbUnderTest);

    const { code, stdout, stderr } = await preflightCli(arn);

    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines.at(-1)).toBe(`${arn}: rotatable`);
    for (const name of [
      'rotation',
      'stages',
      'secret',
      'password-policy',
      'dns',
      'tcp',
      'tls',
      'login',
      'password-change',
    ])
      expect(lines.some((l) => new RegExp(`^(PASS|WARN) +${name} `).test(l))).toBe(true);
    expect(lines.find((l) => /^WARN +tls /.test(l))).toMatch(/offers no TLS: .* -> Enable TLS/);
    expect(stdout + stderr).not.toContain(password);
  });

  it('exits 1 when a check fails, with the reason and the fix, and no password', async () => {
    const username = await postgresUnderTest.createUser(randomPassword());
    const wrong = randomPassword();
    const { host, port } = postgresUnderTest.server();
    const arn = await createSecret({ engine: 'postgres', host, port, username, password: wrong });

    const { code, stdout, stderr } = await preflightCli(arn, '--json');
    const text = await preflightCli(arn);

    expect(code).toBe(1);
    const report = JSON.parse(stdout) as {
      rotatable: boolean;
      checks: Array<{ name: string; status: string }>;
    };
    expect(report.rotatable).toBe(false);
    expect(report.checks.find((c) => c.name === 'login')?.status).toBe('fail');
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(
      new RegExp(`^FAIL +login +AWSCURRENT does not log in: .*${username}.* -> `, 'm'),
    );
    expect(text.stdout.trim().split('\n').at(-1)).toBe(`${arn}: NOT rotatable`);
    expect(stdout + stderr + text.stdout + text.stderr).not.toContain(wrong);
  });

  it('compares with --function-arn', async () => {
    const { arn } = await singleUserSecret(postgresUnderTest);

    const { code, stdout } = await preflightCli(
      arn,
      '--function-arn',
      'arn:aws:lambda:us-east-1:000000000000:function:rotator',
    );

    // Not attached yet: a warning that names the command to attach exactly this function.
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /^WARN +rotation +Rotation is not configured .*--rotation-lambda-arn arn:aws:lambda:us-east-1:000000000000:function:rotator/m,
    );
  });

  it('exits 2 on bad usage', async () => {
    const unknownOption = await preflightCli('a', '--bogus');
    const badId = await preflightCli('has space');

    for (const result of [unknownOption, badId]) {
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('usage: npm run preflight');
    }
  });
});
