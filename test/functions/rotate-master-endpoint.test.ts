import { PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretFormatError } from '../../shared/errors';
import { postgresUnderTest as engine, rotate, stagesOf } from '../shared/rotation/support';
import { createSecret, pgAdmin, randomPassword, secretsManager, uniqueName } from '../stack/fixtures';
import { type PostgresHandle, startPostgres } from '../stack/postgres';

function causeOfType<T>(error: unknown, type: abstract new (...args: never[]) => T): T | undefined {
  for (let e = error; e instanceof Error; e = e.cause) if (e instanceof type) return e as T;
  return undefined;
}

/**
 * The secret's own logins prove which users it owns; the master then acts on the
 * master's server. Both must be the same server: a secret that points at another
 * server on the master's host (another port) proves nothing about the real one.
 */
describe('alternating users: the secret and its master address the same server (host and port)', () => {
  let other: PostgresHandle;
  const known = 'Known-to-the-writer-1';

  beforeAll(async () => {
    // A server the secret's writer controls, on the master's host at another port.
    other = await startPostgres(randomPassword());
  }, 120_000);
  afterAll(async () => {
    await other?.stop();
  });

  async function onOther(...roles: string[]): Promise<void> {
    const admin = new pg.Client({
      host: other.host,
      port: other.port,
      user: other.adminUser,
      password: other.adminPassword,
      database: 'postgres',
    });
    await admin.connect();
    try {
      for (const r of roles)
        await admin.query(`CREATE ROLE ${pg.escapeIdentifier(r)} LOGIN PASSWORD '${known}'`);
    } finally {
      await admin.end();
    }
  }

  const masterSecret = () => {
    const real = engine.server();
    return createSecret({
      engine: 'postgres',
      host: real.host,
      port: real.port,
      username: real.adminUser,
      password: real.adminPassword,
    });
  };

  it("refuses to take over another owner's x_clone proven on another server, and changes nothing", async () => {
    const victim = await engine.createUser(randomPassword(), uniqueName('billing'));
    const clonePassword = randomPassword();
    await engine.createUser(clonePassword, `${victim}_clone`);
    await onOther(victim, `${victim}_clone`);
    const common = {
      engine: 'postgres',
      host: engine.server().host,
      port: other.port,
      masterarn: await masterSecret(),
    };
    const arn = await createSecret({ ...common, username: `${victim}_clone`, password: known });
    await secretsManager().send(
      new PutSecretValueCommand({
        SecretId: arn,
        SecretString: JSON.stringify({ ...common, username: victim, password: known }),
      }),
    );
    const before = await stagesOf(arn);

    const error = await rotate(arn).catch((e: unknown) => e);

    expect(causeOfType(error, SecretFormatError)?.message).toMatch(
      /is for port \d+, not \d+ of the rotated secret/,
    );
    expect(await engine.canLogin(`${victim}_clone`, clonePassword)).toBe(true);
    const after = await stagesOf(arn);
    const current = (s: Record<string, string[]>) => Object.keys(s).find((v) => s[v]?.includes('AWSCURRENT'));
    expect(current(after)).toBe(current(before));
  });

  it('refuses to clone the master itself for a secret that logs in as a superuser elsewhere', async () => {
    const arn = await createSecret({
      engine: 'postgres',
      host: engine.server().host,
      port: other.port,
      masterarn: await masterSecret(),
      username: other.adminUser,
      password: other.adminPassword,
    });

    const error = await rotate(arn).catch((e: unknown) => e);

    expect(causeOfType(error, SecretFormatError)?.message).toMatch(/is for port/);
    const admin = await pgAdmin();
    try {
      const { rows } = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [
        `${other.adminUser}_clone`,
      ]);
      expect(rows).toEqual([]);
    } finally {
      await admin.end();
    }
  });
});
