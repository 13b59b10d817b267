import { PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/export';
import { SecretsManagerClients } from '../../shared/aws/assume-role';
import { ConfigLoader, createConfigCache } from '../../shared/config';
import type { ExportSummary } from '../../shared/export';
import { exportConfigSchema } from '../../shared/export/config';
import { CredentialSource } from '../../shared/export/credentials';
import { hours } from '../../shared/export/sources/time';
import {
  createBucket,
  createMysqlEvents,
  createWatermarkTable,
  mysqlNow,
  putParameters,
  testRuntime,
} from '../shared/export/support';
import {
  createMysqlUser,
  createSecret,
  mysqlAdmin,
  randomPassword,
  secretsManager,
  stack,
  uniqueName,
} from '../stack/fixtures';
import { RequestCounter } from '../support/request-counter';

/**
 * A warm container reuses the configuration and the secret it holds: a second
 * invocation within their lifetimes asks neither SSM nor Secrets Manager. Past
 * a lifetime (counted from the read, not from the last use), or when a login is
 * refused, it reads again. Every SSM and Secrets Manager request is counted by a
 * middleware on the clients the container is given (moto); the caches run on a
 * clock that the test moves.
 */

const TTL_SECONDS = 300;

type Login = 'secret' | 'parameter';

/** One container exporting cluster c1 (MariaDB, a user of its own) whose login is a secret or a parameter. */
async function container(login: Login) {
  const password = randomPassword();
  const now = await mysqlNow();
  const { database, query } = await createMysqlEvents([{ id: 1, at: now - hours(2) }]);
  const user = await createMysqlUser({ password, grants: [`SELECT ON \`${database}\`.*`] });
  const { host, port } = stack().mariadb;
  const secretValue = (pw: string) =>
    JSON.stringify({
      engine: 'mariadb',
      host,
      port,
      username: user,
      password: pw,
      dbname: database,
      ssl: false,
    });
  const secretId = login === 'secret' ? await createSecret(JSON.parse(secretValue(password))) : undefined;
  const path = `/${uniqueName('warm')}`;
  const [watermarkTable, bucket] = await Promise.all([createWatermarkTable(), createBucket()]);
  await putParameters(path, {
    'global/destination': `s3://${bucket}/logs`,
    'global/window-minutes': '60',
    'global/initial-lookback-hours': '3',
    'clusters/c1/engine': 'mariadb',
    ...(secretId
      ? { 'clusters/c1/secret-id': secretId }
      : {
          // No database parameter (the query names it): nine parameters fit one page of ten.
          'clusters/c1/host': host,
          'clusters/c1/port': String(port),
          'clusters/c1/user': user,
          'clusters/c1/password': { secure: password },
          'clusters/c1/ssl': 'false',
        }),
    'clusters/c1/tables': 'none',
    'clusters/c1/custom/events/query': query,
    'clusters/c1/custom/events/watermark-column': 'at',
  });
  const counter = new RequestCounter();
  const secrets = counter.count(new SecretsManagerClient({}), 'Secrets Manager');
  const clock = { now: Date.now() };
  const handler = makeHandler({
    ...testRuntime({ path, watermarkTable }),
    loader: new ConfigLoader({
      path,
      schema: exportConfigSchema,
      ttlSeconds: TTL_SECONDS,
      ssm: counter.count(new SSMClient({}), 'SSM'),
      now: () => clock.now,
      cache: createConfigCache(),
    }),
    credentials: new CredentialSource(
      new SecretsManagerClients({ own: () => secrets }),
      () => clock.now,
      TTL_SECONDS * 1000,
    ),
  });
  /** One invocation `afterSeconds` after the previous one; returns its SSM and Secrets Manager requests. */
  const invoke = async (afterSeconds: number) => {
    clock.now += afterSeconds * 1000;
    const { result, requests } = await counter.during(() => handler({ cluster: 'c1' }));
    expectExported(result);
    return requests;
  };
  /** Changes the user's password in the database, and where the login comes from. */
  const changePassword = async () => {
    const next = randomPassword();
    const admin = await mysqlAdmin();
    try {
      await admin.query('ALTER USER ?@? IDENTIFIED BY ?', [user, '%', next]);
    } finally {
      await admin.end();
    }
    if (secretId) {
      await secretsManager().send(
        new PutSecretValueCommand({ SecretId: secretId, SecretString: secretValue(next) }),
      );
    } else {
      await putParameters(path, { 'clusters/c1/password': { secure: next } });
    }
  };
  return { invoke, changePassword };
}

function expectExported(summary: ExportSummary) {
  expect(summary.clusters[0]?.error).toBeUndefined();
  expect(summary.clusters[0]?.tables[0]?.error).toBeUndefined();
}

const COLD = { 'SSM GetParametersByPath': 2, 'Secrets Manager GetSecretValue': 1 };

describe('export handler: a warm container and its configuration and secret caches', () => {
  it('asks neither SSM nor Secrets Manager again within their lifetimes', async () => {
    const { invoke } = await container('secret');

    expect(await invoke(0)).toEqual(COLD);
    const warm = await invoke(60);
    const warmAgain = await invoke(TTL_SECONDS - 61);

    expect(warm).toEqual({});
    expect(warmAgain).toEqual({});
  });

  it('reads both again once their lifetime from the read is over, though every login in between succeeded', async () => {
    const { invoke } = await container('secret');
    expect(await invoke(0)).toEqual(COLD);
    expect(await invoke(240)).toEqual({});

    // 480 s after the reads, 240 s after the last (successful) use.
    expect(await invoke(240)).toEqual(COLD);
  });

  it('reads the secret again at once when its login is refused, and keeps the cached configuration', async () => {
    const { invoke, changePassword } = await container('secret');
    expect(await invoke(0)).toEqual(COLD);
    await changePassword();

    expect(await invoke(60)).toEqual({ 'Secrets Manager GetSecretValue': 1 });
    expect(await invoke(60)).toEqual({});
  });

  it('reloads the cluster and global/ past the cache when a password parameter is refused', async () => {
    const { invoke, changePassword } = await container('parameter');
    expect(await invoke(0)).toEqual({ 'SSM GetParametersByPath': 2 });
    await changePassword();

    expect(await invoke(60)).toEqual({ 'SSM GetParametersByPath': 2 });
    // The reload refreshed the cache: the next invocation uses it.
    expect(await invoke(60)).toEqual({});
  });
});
