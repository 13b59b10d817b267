import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { GetSecretValueCommand, ListSecretVersionIdsCommand } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import {
  alternatingSecret,
  ENGINES,
  type Invoke,
  invoker,
  rotate,
  rotationDeps,
  singleUserSecret,
} from '../shared/rotation/support';
import { mysqlAdmin, secretsManager, stack } from '../stack/fixtures';
import { captureOutput } from '../support/capture';

/** Every password any version of the secret holds, except the one the test started with. */
async function generatedPasswords(arn: string, initial: string): Promise<string[]> {
  const sm = secretsManager();
  const { Versions } = await sm.send(
    new ListSecretVersionIdsCommand({ SecretId: arn, IncludeDeprecated: true }),
  );
  const passwords: string[] = [];
  for (const version of Versions ?? []) {
    const value = await sm
      .send(new GetSecretValueCommand({ SecretId: arn, VersionId: version.VersionId }))
      .catch(() => undefined);
    const password = value?.SecretString
      ? (JSON.parse(value.SecretString) as { password: string }).password
      : '';
    if (password && password !== initial) passwords.push(password);
  }
  return passwords;
}

function postgresLogText(): string {
  const dir = stack().postgres.logDir;
  return readdirSync(dir)
    .map((file) => readFileSync(join(dir, file), 'utf8'))
    .join('\n');
}

async function mariadbGeneralLog(since: Date): Promise<string> {
  const admin = await mysqlAdmin();
  try {
    const [rows] = await admin.query(
      'SELECT CONVERT(argument USING utf8mb4) AS a FROM mysql.general_log WHERE event_time >= ?',
      [since],
    );
    return (rows as Array<{ a: string }>).map((r) => r.a).join('\n');
  } finally {
    await admin.end();
  }
}

async function eventually(read: () => Promise<string> | string, pattern: RegExp): Promise<string> {
  for (let i = 0; i < 50; i++) {
    const text = await read();
    if (pattern.test(text)) return text;
    await new Promise((r) => setTimeout(r, 100));
  }
  return read();
}

describe('no generated password leaks', () => {
  it('appears neither in the function output nor in the PostgreSQL log nor in MariaDB general_log', async () => {
    const since = new Date(Date.now() - 1000);
    const metrics = new Metrics({ namespace: 'SecretRotationTest', serviceName: 'rotation-test' });
    const invoke = invoker(rotationDeps({ metrics }));
    const secrets: Array<{ arn: string; password: string; username: string; engine: string }> = [];
    const output = captureOutput();
    try {
      for (const engine of ENGINES) {
        for (const make of [singleUserSecret, alternatingSecret]) {
          const secret = await make(engine);
          secrets.push({ ...secret, engine: engine.engine });
          await rotate(secret.arn, { invoke });
          await rotate(secret.arn, { invoke });
        }
        // A failed testSecret logs an error built from a login with the pending password.
        const failing = await singleUserSecret(engine);
        secrets.push({ ...failing, engine: engine.engine });
        const resetting: Invoke = async (event) => {
          if (event.Step === 'testSecret') await engine.adminSetPassword(failing.username, failing.password);
          await invoke(event);
        };
        await expect(rotate(failing.arn, { invoke: resetting })).rejects.toThrow();
      }
    } finally {
      output.stop();
    }

    const generated = (await Promise.all(secrets.map((s) => generatedPasswords(s.arn, s.password)))).flat();
    expect(generated.length).toBeGreaterThanOrEqual(ENGINES.length * 5);
    const pgUser = secrets.find((s) => s.engine === 'postgres')?.username as string;
    const mariaUser = secrets.find((s) => s.engine === 'mariadb')?.username as string;
    // The logs are live: the hashed statements of these rotations are in them.
    const pgLog = await eventually(
      postgresLogText,
      new RegExp(`ALTER ROLE "${pgUser}" PASSWORD 'SCRAM-SHA-256\\$4096:`),
    );
    const generalLog = await mariadbGeneralLog(since);
    expect(pgLog).toMatch(new RegExp(`ALTER ROLE "${pgUser}" PASSWORD 'SCRAM-SHA-256\\$4096:`));
    expect(generalLog).toMatch(/SET PASSWORD = '\*[0-9A-F]{40}'/);
    expect(generalLog).toMatch(/IDENTIFIED BY PASSWORD '\*[0-9A-F]{40}'/);
    expect(generalLog).toContain(mariaUser);
    const text = output.text();
    expect(text).toContain('"step":"setSecret"');
    expect(text).toContain('Rotation step failed');
    expect(text).toMatch(/"RotationSucceeded":1/);
    expect(text).toMatch(/"RotationFailed":1/);
    expect(text).toMatch(/"Step":"testSecret","StepDuration":\d+/);
    const stepLine = text
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((line) => line.message === 'Rotation step finished' && line.strategy === 'alternating-users');
    expect(stepLine).toMatchObject({
      secretArn: expect.stringMatching(/^arn:aws:secretsmanager:/),
      token: expect.any(String),
      step: expect.any(String),
      engine: expect.any(String),
      outcome: 'done',
      durationMs: expect.any(Number),
    });

    for (const password of generated) {
      expect(text.includes(password), 'function output').toBe(false);
      expect(pgLog.includes(password), 'PostgreSQL log').toBe(false);
      expect(generalLog.includes(password), 'MariaDB general_log').toBe(false);
    }
  });
});
