import { randomBytes } from 'node:crypto';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { inject } from 'vitest';

/**
 * Helpers that create throwaway databases, users and secrets, each with a
 * unique name, so that tests stay independent and run in any order.
 */

export const stack = () => inject('stack');

/** A unique lowercase identifier with the given prefix. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

/** A random password of printable characters that need escaping neither in SQL nor in URLs. */
export function randomPassword(): string {
  return `Pw${randomBytes(15).toString('base64url')}`;
}

export async function pgAdmin(database = 'postgres'): Promise<pg.Client> {
  const { host, port, adminUser, adminPassword } = stack().postgres;
  const client = new pg.Client({ host, port, user: adminUser, password: adminPassword, database });
  await client.connect();
  return client;
}

export async function mysqlAdmin(): Promise<mysql.Connection> {
  const { host, port, adminUser, adminPassword } = stack().mariadb;
  return mysql.createConnection({
    host,
    port,
    user: adminUser,
    password: adminPassword,
    multipleStatements: true,
  });
}

export async function createPgDatabase(): Promise<string> {
  const name = uniqueName('db');
  const admin = await pgAdmin();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return name;
}

/** Creates a login role with a password and CONNECT on `database`. */
export async function createPgUser(options: {
  password: string;
  name?: string;
  database?: string;
}): Promise<string> {
  const name = options.name ?? uniqueName('u');
  const admin = await pgAdmin();
  try {
    await admin.query(
      `CREATE ROLE ${pg.escapeIdentifier(name)} LOGIN PASSWORD ${pg.escapeLiteral(options.password)}`,
    );
    if (options.database) {
      await admin.query(
        `GRANT CONNECT ON DATABASE ${pg.escapeIdentifier(options.database)} TO ${pg.escapeIdentifier(name)}`,
      );
    }
  } finally {
    await admin.end();
  }
  return name;
}

export async function createMysqlDatabase(): Promise<string> {
  const name = uniqueName('db');
  const admin = await mysqlAdmin();
  try {
    await admin.query(`CREATE DATABASE \`${name}\``);
  } finally {
    await admin.end();
  }
  return name;
}

export async function createMysqlUser(options: {
  password: string;
  name?: string;
  host?: string;
  grants?: string[];
}): Promise<string> {
  const name = options.name ?? uniqueName('u');
  const host = options.host ?? '%';
  const admin = await mysqlAdmin();
  try {
    await admin.query('CREATE USER ?@? IDENTIFIED BY ?', [name, host, options.password]);
    for (const grant of options.grants ?? []) await admin.query(`GRANT ${grant} TO ?@?`, [name, host]);
  } finally {
    await admin.end();
  }
  return name;
}

export function secretsManager(): SecretsManagerClient {
  return new SecretsManagerClient({});
}

/** Creates a secret with a JSON value and returns its ARN. */
export async function createSecret(
  value: Record<string, unknown>,
  name = uniqueName('secret'),
): Promise<string> {
  const response = await secretsManager().send(
    new CreateSecretCommand({ Name: name, SecretString: JSON.stringify(value) }),
  );
  return response.ARN ?? name;
}

/** Can these credentials log in to the test PostgreSQL? */
export async function pgCanLogin(user: string, password: string, database = 'postgres'): Promise<boolean> {
  const { host, port } = stack().postgres;
  const client = new pg.Client({ host, port, user, password, database, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Can these credentials log in to the test MariaDB? */
export async function mysqlCanLogin(user: string, password: string): Promise<boolean> {
  const { host, port } = stack().mariadb;
  try {
    const conn = await mysql.createConnection({ host, port, user, password, connectTimeout: 5000 });
    await conn.query('SELECT 1');
    await conn.end();
    return true;
  } catch {
    return false;
  }
}
