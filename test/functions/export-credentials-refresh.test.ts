import { PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/export';
import { ConfigLoader } from '../../shared/config';
import { exportConfigSchema } from '../../shared/export/config';
import { hours } from '../../shared/export/sources/time';
import {
  createBucket,
  createMysqlEvents,
  createWatermarkTable,
  mysqlNow,
  putParameters,
  readS3Objects,
  testRuntime,
} from '../shared/export/support';
import {
  createMysqlUser,
  createPgDatabase,
  createPgUser,
  createSecret,
  mysqlAdmin,
  pgAdmin,
  randomPassword,
  secretsManager,
  stack,
  uniqueName,
} from '../stack/fixtures';

/**
 * A password changed between two runs of a warm container, whose
 * configuration is still cached (issue 12, item 3): the refused login reloads
 * the cluster's credentials once, past the cache, and the run goes on.
 */

type Engine = 'mariadb' | 'postgres';

interface Account {
  engine: Engine;
  user: string;
  database: string;
  /** The custom export's query over one row an hour old. */
  query: string;
  setPassword(password: string): Promise<void>;
}

async function account(engine: Engine, password: string): Promise<Account> {
  if (engine === 'mariadb') {
    const now = await mysqlNow();
    const { database, query } = await createMysqlEvents([{ id: 1, at: now - hours(1) }]);
    const user = await createMysqlUser({ password, grants: [`SELECT ON \`${database}\`.*`] });
    return {
      engine,
      user,
      database,
      query,
      async setPassword(next) {
        const admin = await mysqlAdmin();
        try {
          await admin.query('ALTER USER ?@? IDENTIFIED BY ?', [user, '%', next]);
        } finally {
          await admin.end();
        }
      },
    };
  }
  const database = await createPgDatabase();
  const user = await createPgUser({ password, database });
  const admin = await pgAdmin(database);
  try {
    await admin.query("CREATE TABLE events AS SELECT 1 AS id, now() - interval '1 hour' AS at");
    await admin.query(`GRANT SELECT ON events TO ${user}`);
  } finally {
    await admin.end();
  }
  return {
    engine,
    user,
    database,
    query: 'SELECT id, at FROM events',
    async setPassword(next) {
      const client = await pgAdmin();
      try {
        await client.query(`ALTER ROLE ${pg.escapeIdentifier(user)} PASSWORD ${pg.escapeLiteral(next)}`);
      } finally {
        await client.end();
      }
    },
  };
}

function server(engine: Engine) {
  const { host, port } = engine === 'mariadb' ? stack().mariadb : stack().postgres;
  return { host, port };
}

/** Two runs of one warm container: the configuration is cached for 5 minutes, as on Lambda. */
async function warmContainer(
  engine: Engine,
  credentials: (account: Account, password: string) => Promise<Record<string, string | { secure: string }>>,
) {
  const first = randomPassword();
  const db = await account(engine, first);
  const path = `/${uniqueName('export')}`;
  const [watermarkTable, bucket] = await Promise.all([createWatermarkTable(), createBucket()]);
  await putParameters(path, {
    'global/destination': `s3://${bucket}/x`,
    'global/window-minutes': '60',
    'global/initial-lookback-hours': '3',
    'clusters/c1/engine': engine,
    ...(await credentials(db, first)),
    'clusters/c1/tables': 'none',
    'clusters/c1/custom/events/query': db.query,
    'clusters/c1/custom/events/watermark-column': 'at',
  });
  const loader = new ConfigLoader({ path, schema: exportConfigSchema, ttlSeconds: 300 });
  const refreshes = { count: 0 };
  const runtime = {
    ...testRuntime({ path, watermarkTable }),
    loader: {
      path: loader.path,
      get: (scopes?: readonly string[]) => loader.get(scopes),
      refresh: (scopes?: readonly string[]) => {
        refreshes.count += 1;
        return loader.refresh(scopes);
      },
    },
  };
  const handler = makeHandler(runtime);
  const firstRun = await handler({ cluster: 'c1' });
  expect(firstRun.clusters[0]?.error).toBeUndefined();
  expect(firstRun.clusters[0]?.tables[0]).toMatchObject({ rows: 1, objectsWritten: 1 });
  expect(refreshes.count).toBe(0);
  return { db, path, bucket, handler, first, refreshes };
}

const hostParameters = (engine: Engine, db: Account) => ({
  'clusters/c1/host': server(engine).host,
  'clusters/c1/port': String(server(engine).port),
  'clusters/c1/database': db.database,
  'clusters/c1/user': db.user,
  'clusters/c1/ssl': 'false',
});

const secretValue = (engine: Engine, db: Account, password: string) => ({
  engine,
  ...server(engine),
  username: db.user,
  password,
  dbname: db.database,
  ssl: false,
});

describe('export handler: a password changed while the configuration is cached', () => {
  it.each(['mariadb', 'postgres'] as const)(
    '%s, SecureString password parameter: the refused login reloads it and the run goes on',
    async (engine) => {
      const { db, path, handler, first } = await warmContainer(engine, async (db, password) => ({
        ...hostParameters(engine, db),
        'clusters/c1/password': { secure: password },
      }));
      const second = randomPassword();
      await db.setPassword(second);
      await putParameters(path, { 'clusters/c1/password': { secure: second } });

      const secondRun = await handler({ cluster: 'c1' });

      expect(secondRun.clusters[0]?.error).toBeUndefined();
      expect(secondRun.clusters[0]?.tables[0]?.error).toBeUndefined();
      expect(JSON.stringify(secondRun)).not.toContain(first);
      expect(JSON.stringify(secondRun)).not.toContain(second);
    },
  );

  it('postgres, password parameter referencing a Secrets Manager secret: the reference is resolved again', async () => {
    const secretName = uniqueName('password');
    const { db, handler } = await warmContainer('postgres', async (db, password) => {
      await createSecret({ placeholder: true }, secretName);
      await secretsManager().send(
        new PutSecretValueCommand({ SecretId: secretName, SecretString: password }),
      );
      return {
        ...hostParameters('postgres', db),
        'clusters/c1/password': `/aws/reference/secretsmanager/${secretName}`,
      };
    });
    const second = randomPassword();
    await db.setPassword(second);
    await secretsManager().send(new PutSecretValueCommand({ SecretId: secretName, SecretString: second }));

    const secondRun = await handler({ cluster: 'c1' });

    expect(secondRun.clusters[0]?.error).toBeUndefined();
    expect(secondRun.clusters[0]?.tables[0]?.error).toBeUndefined();
  });

  it.each(['mariadb', 'postgres'] as const)(
    '%s, secret-id cluster whose secret changed value: AWSCURRENT is read again',
    async (engine) => {
      const secretName = uniqueName('db');
      const { db, handler } = await warmContainer(engine, async (db, password) => {
        await createSecret(secretValue(engine, db, password), secretName);
        return { 'clusters/c1/secret-id': secretName };
      });
      const second = randomPassword();
      await db.setPassword(second);
      await secretsManager().send(
        new PutSecretValueCommand({
          SecretId: secretName,
          SecretString: JSON.stringify(secretValue(engine, db, second)),
        }),
      );

      const secondRun = await handler({ cluster: 'c1' });

      expect(secondRun.clusters[0]?.error).toBeUndefined();
      expect(secondRun.clusters[0]?.tables[0]?.error).toBeUndefined();
    },
  );

  it.each(['mariadb', 'postgres'] as const)(
    '%s, secret-id parameter moved to another secret: the refused login reloads the configuration',
    async (engine) => {
      const { db, path, bucket, handler } = await warmContainer(engine, async (db, password) => {
        const secretId = await createSecret(secretValue(engine, db, password));
        return { 'clusters/c1/secret-id': secretId };
      });
      const second = randomPassword();
      await db.setPassword(second);
      // The old secret stays as it was (retired); the cluster now names a new one.
      const secretId = await createSecret(secretValue(engine, db, second));
      await putParameters(path, { 'clusters/c1/secret-id': secretId });

      const secondRun = await handler({ cluster: 'c1' });

      expect(secondRun.clusters[0]?.error).toBeUndefined();
      expect(secondRun.clusters[0]?.tables[0]?.error).toBeUndefined();
      expect((await readS3Objects(bucket)).size).toBe(1);
    },
  );

  it('mariadb, a password that is simply wrong: one reload, then the refusal is reported', async () => {
    const { db, handler, refreshes } = await warmContainer('mariadb', async (db, password) => ({
      ...hostParameters('mariadb', db),
      'clusters/c1/password': { secure: password },
    }));
    await db.setPassword(randomPassword());

    const secondRun = await handler({ cluster: 'c1' });

    expect(secondRun.clusters[0]?.error).toMatch(/Login refused for /);
    expect(refreshes.count).toBe(1);
  });
});
