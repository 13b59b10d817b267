import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ListSecretsCommand } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import {
  createMysqlUser,
  createPgUser,
  mysqlAdmin,
  mysqlCanLogin,
  pgAdmin,
  pgCanLogin,
  randomPassword,
  secretsManager,
  stack,
  uniqueName,
} from './stack/fixtures';

describe('the local test stack', () => {
  it('PostgreSQL accepts the right password and refuses a wrong one', async () => {
    const password = randomPassword();
    const user = await createPgUser({ password });

    expect(await pgCanLogin(user, password)).toBe(true);
    expect(await pgCanLogin(user, `${password}x`)).toBe(false);
  });

  it('PostgreSQL writes every statement to a log file the tests can read', async () => {
    const marker = uniqueName('marker');
    const admin = await pgAdmin();
    await admin.query(`SELECT '${marker}'`);
    await admin.end();

    const logDir = stack().postgres.logDir;
    const found = () =>
      readdirSync(logDir)
        .filter((f) => f.endsWith('.log'))
        .some((f) => readFileSync(join(logDir, f), 'utf8').includes(marker));
    await expect.poll(found, { timeout: 5000 }).toBe(true);
  });

  it('MariaDB accepts the right password, refuses a wrong one, and records statements in general_log', async () => {
    const password = randomPassword();
    const user = await createMysqlUser({ password });
    expect(await mysqlCanLogin(user, password)).toBe(true);
    expect(await mysqlCanLogin(user, `${password}x`)).toBe(false);

    const marker = uniqueName('marker');
    const admin = await mysqlAdmin();
    await admin.query(`SELECT '${marker}'`);
    const [rows] = await admin.query('SELECT argument FROM mysql.general_log WHERE argument LIKE ?', [
      `%${marker}%`,
    ]);
    await admin.end();
    expect((rows as unknown[]).length).toBeGreaterThanOrEqual(1);
  });

  it('moto answers Secrets Manager requests through AWS_ENDPOINT_URL', async () => {
    expect(process.env.AWS_ENDPOINT_URL).toBe(stack().awsEndpoint);
    const response = await secretsManager().send(new ListSecretsCommand({}));
    expect(Array.isArray(response.SecretList)).toBe(true);
  });
});
