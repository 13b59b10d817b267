import { RDSClient } from '@aws-sdk/client-rds';
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  RotateSecretCommand,
} from '@aws-sdk/client-secrets-manager';
import pg from 'pg';
import { makeHandler } from '../../../functions/rotate';
import { createLogger } from '../../../shared/log';
import { driveRotation, PLACEHOLDER_ROTATION_LAMBDA_ARN } from '../../../shared/rotation/driver';
import type { RotationEvent } from '../../../shared/rotation/event';
import { passwordPolicySource } from '../../../shared/rotation/settings';
import type { RotationDeps } from '../../../shared/rotation/steps';
import {
  createMysqlUser,
  createPgUser,
  createSecret,
  mysqlAdmin,
  mysqlCanLogin,
  pgAdmin,
  pgCanLogin,
  randomPassword,
  secretsManager,
  stack,
  uniqueName,
} from '../../stack/fixtures';

/** Real clients against moto, a real logger; no metrics unless asked. */
export function rotationDeps(overrides: Partial<RotationDeps> = {}): RotationDeps {
  return {
    secretsManager: secretsManager(),
    rds: async () => new RDSClient({}),
    passwordPolicy: passwordPolicySource({ env: {} }),
    logger: createLogger('rotation-test'),
    ...overrides,
  };
}

export type Invoke = (event: RotationEvent) => Promise<unknown>;

export function invoker(deps: RotationDeps = rotationDeps()): Invoke {
  const handler = makeHandler(deps);
  return (event) => handler(event);
}

/** One full rotation through the local driver, like Secrets Manager would run it. */
export function rotate(
  secretId: string,
  options: { invoke?: Invoke; attempts?: number; token?: string } = {},
) {
  return driveRotation({
    secretsManager: secretsManager(),
    secretId,
    invoke: options.invoke ?? invoker(),
    attempts: options.attempts ?? 1,
    ...(options.token ? { token: options.token } : {}),
  });
}

/** Sets up AWSPENDING for a new token as RotateSecret does, without running any step. */
export async function startRotation(secretId: string, token: string): Promise<void> {
  await secretsManager()
    .send(
      new RotateSecretCommand({
        SecretId: secretId,
        ClientRequestToken: token,
        RotationLambdaARN: PLACEHOLDER_ROTATION_LAMBDA_ARN,
        RotationRules: { AutomaticallyAfterDays: 30 },
      }),
    )
    .catch(() => {});
}

export async function secretValue(secretId: string, stage = 'AWSCURRENT'): Promise<Record<string, unknown>> {
  const response = await secretsManager().send(
    new GetSecretValueCommand({ SecretId: secretId, VersionStage: stage }),
  );
  return JSON.parse(response.SecretString ?? '{}') as Record<string, unknown>;
}

export async function stagesOf(secretId: string): Promise<Record<string, string[]>> {
  const response = await secretsManager().send(new DescribeSecretCommand({ SecretId: secretId }));
  return response.VersionIdsToStages ?? {};
}

export async function putPending(
  secretId: string,
  token: string,
  value: Record<string, unknown>,
): Promise<void> {
  await secretsManager().send(
    new PutSecretValueCommand({
      SecretId: secretId,
      ClientRequestToken: token,
      SecretString: JSON.stringify(value),
      VersionStages: ['AWSPENDING'],
    }),
  );
}

/** One engine of the test stack, seen the way the rotation tests need it. */
export interface EngineUnderTest {
  engine: string;
  server(): { host: string; port: number; adminUser: string; adminPassword: string };
  createUser(password: string, name?: string): Promise<string>;
  canLogin(user: string, password: string): Promise<boolean>;
  /** Sets a password as an administrator would (plaintext is fine here: test passwords are not the rotated ones). */
  adminSetPassword(user: string, password: string): Promise<void>;
  /** A table only `user` (and whoever shares its privileges) can read; returns a query reading it. */
  grantReadableTable(user: string): Promise<string>;
  canRead(user: string, password: string, query: string): Promise<boolean>;
  dropUser(user: string): Promise<void>;
}

export const postgresUnderTest: EngineUnderTest = {
  engine: 'postgres',
  server: () => stack().postgres,
  createUser: (password, name) => createPgUser({ password, ...(name ? { name } : {}) }),
  canLogin: (user, password) => pgCanLogin(user, password),
  async adminSetPassword(user, password) {
    const admin = await pgAdmin();
    try {
      await admin.query(`ALTER ROLE ${pg.escapeIdentifier(user)} PASSWORD ${pg.escapeLiteral(password)}`);
    } finally {
      await admin.end();
    }
  },
  async grantReadableTable(user) {
    const table = uniqueName('t');
    const admin = await pgAdmin();
    try {
      await admin.query(`CREATE TABLE ${table} (id int); INSERT INTO ${table} VALUES (1)`);
      await admin.query(`GRANT SELECT ON ${table} TO ${pg.escapeIdentifier(user)}`);
    } finally {
      await admin.end();
    }
    return `SELECT id FROM ${table}`;
  },
  async canRead(user, password, query) {
    const { host, port } = stack().postgres;
    const client = new pg.Client({ host, port, user, password, database: 'postgres' });
    try {
      await client.connect();
      const { rows } = await client.query(query);
      return rows.length === 1;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => {});
    }
  },
  async dropUser(user) {
    const admin = await pgAdmin();
    try {
      await admin.query(`DROP OWNED BY ${pg.escapeIdentifier(user)}; DROP ROLE ${pg.escapeIdentifier(user)}`);
    } finally {
      await admin.end();
    }
  },
};

export const mariadbUnderTest: EngineUnderTest = {
  engine: 'mariadb',
  server: () => stack().mariadb,
  createUser: (password, name) => createMysqlUser({ password, ...(name ? { name } : {}) }),
  canLogin: (user, password) => mysqlCanLogin(user, password),
  async adminSetPassword(user, password) {
    const admin = await mysqlAdmin();
    try {
      await admin.query("ALTER USER ?@'%' IDENTIFIED BY ?", [user, password]);
    } finally {
      await admin.end();
    }
  },
  async grantReadableTable(user) {
    const db = uniqueName('db');
    const admin = await mysqlAdmin();
    try {
      await admin.query(
        `CREATE DATABASE ${db}; CREATE TABLE ${db}.t (id int); INSERT INTO ${db}.t VALUES (1)`,
      );
      await admin.query(`GRANT SELECT ON ${db}.* TO ?@'%'`, [user]);
    } finally {
      await admin.end();
    }
    return `SELECT id FROM ${db}.t`;
  },
  async canRead(user, password, query) {
    const mysql = await import('mysql2/promise');
    const { host, port } = stack().mariadb;
    try {
      const conn = await mysql.createConnection({ host, port, user, password });
      try {
        const [rows] = await conn.query(query);
        return (rows as unknown[]).length === 1;
      } finally {
        await conn.end();
      }
    } catch {
      return false;
    }
  },
  async dropUser(user) {
    const admin = await mysqlAdmin();
    try {
      await admin.query("DROP USER IF EXISTS ?@'%'", [user]);
    } finally {
      await admin.end();
    }
  },
};

export const ENGINES = [postgresUnderTest, mariadbUnderTest];

/** A single-user secret for a fresh user; returns the secret ARN, user and password. */
export async function singleUserSecret(engine: EngineUnderTest, extra: Record<string, unknown> = {}) {
  const password = randomPassword();
  const username = await engine.createUser(password);
  const { host, port } = engine.server();
  const arn = await createSecret({ engine: engine.engine, host, port, username, password, ...extra });
  return { arn, username, password };
}

/** A master secret (the stack's admin) and an alternating-users secret for a fresh user. */
export async function alternatingSecret(engine: EngineUnderTest, extra: Record<string, unknown> = {}) {
  const { host, port, adminUser, adminPassword } = engine.server();
  const masterArn = await createSecret({
    engine: engine.engine,
    host,
    port,
    username: adminUser,
    password: adminPassword,
  });
  const password = randomPassword();
  const username = await engine.createUser(password);
  const arn = await createSecret({
    engine: engine.engine,
    host,
    port,
    username,
    password,
    masterarn: masterArn,
    ...extra,
  });
  return { arn, username, password, masterArn };
}
