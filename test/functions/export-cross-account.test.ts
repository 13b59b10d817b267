import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/export';
import { RoleCredentials, SecretsManagerClients, stsAssumeRole } from '../../shared/aws/assume-role';
import { ConfigError } from '../../shared/errors';
import { CredentialSource } from '../../shared/export/credentials';
import { hours } from '../../shared/export/sources/time';
import {
  createBucket,
  createMysqlEvents,
  createWatermarkTable,
  mysqlNow,
  putParameters,
  readS3Objects,
  readWatermark,
  testRuntime,
} from '../shared/export/support';
import { createMysqlUser, randomPassword, stack, uniqueName } from '../stack/fixtures';
import { captureOutput } from '../support/capture';
import {
  countingAssumeRole,
  createMemberSecret,
  memberRole,
  recordSignatures,
  type SignedRequest,
  startDenyingSts,
  testClock,
} from '../support/member-account';

/**
 * Clusters in other accounts, through the exporter's entry point: the cluster's
 * secret lives in its own account (moto keeps accounts apart) and is read as the
 * role `clusters/<c>/role-arn` names there, with the credentials STS (moto) hands
 * out; objects and watermarks stay in the function's account. STS refusals come
 * from an endpoint in front of moto that answers AssumeRole of chosen roles with
 * STS's AccessDenied, since moto itself checks no trust policy.
 */

const READER = memberRole('log-export-reader');
const NOT_TRUSTED = memberRole('not-trusted');
const SCHEDULED = { 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} };

let sts: Awaited<ReturnType<typeof startDenyingSts>>;
beforeAll(async () => {
  sts = await startDenyingSts([NOT_TRUSTED]);
});
afterAll(() => sts?.stop());

/**
 * A MariaDB user that can read one row an hour old, and the cluster's parameters: with a role, the
 * user's secret in the member account (in `region`: named by ARN); without, host, user and password.
 */
async function memberCluster(
  name: string,
  options: { roleArn?: string; externalId?: string; region?: string; secretName?: string },
) {
  const { host, port } = stack().mariadb;
  const password = randomPassword();
  const { database, query } = await createMysqlEvents([{ id: 1, at: (await mysqlNow()) - hours(1) }]);
  const user = await createMysqlUser({ password, grants: [`SELECT ON \`${database}\`.*`] });
  const p = `clusters/${name}`;
  let login: Record<string, string | { secure: string }>;
  if (options.roleArn) {
    const value = { engine: 'mariadb', host, port, username: user, password, dbname: database, ssl: false };
    const account = /^arn:aws:iam::(\d{12}):/.exec(options.roleArn)?.[1] as string;
    const secret = await createMemberSecret(account, value, options.region, options.secretName);
    login = {
      [`${p}/secret-id`]: options.region ? secret.arn : secret.name,
      [`${p}/role-arn`]: options.roleArn,
      ...(options.externalId ? { [`${p}/external-id`]: options.externalId } : {}),
    };
  } else {
    login = {
      [`${p}/host`]: host,
      [`${p}/port`]: String(port),
      [`${p}/user`]: user,
      [`${p}/password`]: { secure: password },
      [`${p}/ssl`]: 'false',
    };
  }
  return {
    password,
    parameters: {
      [`${p}/engine`]: 'mariadb',
      ...login,
      [`${p}/tables`]: 'none',
      [`${p}/custom/events/query`]: query,
      [`${p}/custom/events/watermark-column`]: 'at',
    },
  };
}

type Parameters = Awaited<ReturnType<typeof memberCluster>>['parameters'];

/** A scheduled in-process run over `clusters`, with the STS calls and the signatures of Secrets Manager requests recorded. */
async function exporter(clusters: Record<string, Parameters>) {
  const path = `/${uniqueName('export')}`;
  const [watermarkTable, bucket] = await Promise.all([createWatermarkTable(), createBucket()]);
  await putParameters(path, {
    'global/destination': `s3://${bucket}/logs`,
    'global/window-minutes': '60',
    'global/initial-lookback-hours': '3',
    'global/fan-out': 'off',
    'global/enabled-clusters': Object.keys(clusters),
    ...Object.assign({}, ...Object.values(clusters)),
  });
  const clock = testClock();
  const { assumeRole, calls } = countingAssumeRole(
    stsAssumeRole(async () => new STSClient({ endpoint: sts.endpoint })),
  );
  const signed: SignedRequest[] = [];
  const secretsManager = new SecretsManagerClients({
    own: () => new SecretsManagerClient({}),
    roles: new RoleCredentials({ assumeRole: clock.sts(assumeRole), now: clock.now }),
    make: (config) => {
      const client = new SecretsManagerClient(config);
      recordSignatures(client, signed);
      return client;
    },
  });
  const credentials = new CredentialSource(secretsManager, clock.now);
  const handler = makeHandler(testRuntime({ path, watermarkTable, credentials }));
  return { handler, path, bucket, watermarkTable, clock, calls, signed };
}

describe('export handler: clusters in other accounts', () => {
  it("reads the cluster's secret as its role, signed with the assumed credentials, and writes centrally", async () => {
    const c1 = await memberCluster('c1', { roleArn: READER, externalId: 'fleet-7' });
    const run = await exporter({ c1: c1.parameters });

    const summary = await run.handler(SCHEDULED);

    expect(summary.clusters).toEqual([
      { cluster: 'c1', tables: [expect.objectContaining({ table: 'events', rows: 1, objectsWritten: 1 })] },
    ]);
    expect(run.calls.map((c) => c.request)).toEqual([
      { roleArn: READER, externalId: 'fleet-7', sessionName: 'log-export.c1', durationSeconds: 3600 },
    ]);
    const assumedKey = run.calls[0]?.accessKeyId;
    expect(assumedKey).toMatch(/^ASIA/);
    expect(run.signed.map((s) => [s.operation, s.accessKeyId])).toEqual([
      ['GetSecretValueCommand', assumedKey],
    ]);
    expect(run.signed.map((s) => s.accessKeyId)).not.toContain(process.env.AWS_ACCESS_KEY_ID);
    // Objects and watermarks: read back with the function's own credentials, in its own account.
    expect([...(await readS3Objects(run.bucket)).keys()]).toEqual([
      expect.stringMatching(/^logs\/events\/cluster=c1\//),
    ]);
    expect((await readWatermark(run.watermarkTable, 'c1', 'events'))?.rowsExported).toBe(1);
  });

  it('reads a secret in the region its ARN names', async () => {
    const c1 = await memberCluster('c1', { roleArn: READER, region: 'eu-west-1' });
    const run = await exporter({ c1: c1.parameters });

    const summary = await run.handler(SCHEDULED);

    expect(summary.clusters[0]?.error).toBeUndefined();
    expect(summary.clusters[0]?.tables[0]?.rows).toBe(1);
    expect(run.signed.map((s) => s.region)).toEqual(['eu-west-1']);
  });

  it('assumes the role once for the clusters that share it, for as long as its credentials last, then anew', async () => {
    const [c1, c2] = await Promise.all([
      memberCluster('c1', { roleArn: READER, externalId: 'fleet-7' }),
      memberCluster('c2', { roleArn: READER, externalId: 'fleet-7' }),
    ]);
    const run = await exporter({ c1: c1.parameters, c2: c2.parameters });

    const first = await run.handler(SCHEDULED);
    // Past the 5-minute cache of secret values, well within the role's hour: the secrets are read again.
    run.clock.advance(10 * 60_000);
    const second = await run.handler(SCHEDULED);
    // 60 minutes on: within 5 minutes of expiry, so the role is assumed again.
    run.clock.advance(50 * 60_000);
    const third = await run.handler(SCHEDULED);

    for (const summary of [first, second, third]) {
      expect(summary.clusters.map((c) => [c.cluster, c.error])).toEqual([
        ['c1', undefined],
        ['c2', undefined],
      ]);
    }
    expect(first.clusters.map((c) => c.tables[0]?.rows)).toEqual([1, 1]);
    expect(run.calls).toHaveLength(2);
    const [k1, k2] = run.calls.map((c) => c.accessKeyId);
    expect(k2).not.toBe(k1);
    expect(run.signed.map((s) => s.accessKeyId)).toEqual([k1, k1, k1, k1, k2, k2]);
  });

  it('keeps apart secrets of the same name in different accounts', async () => {
    const secretName = uniqueName('db/orders');
    const [c1, c2] = await Promise.all([
      memberCluster('c1', { roleArn: READER, secretName }),
      memberCluster('c2', { roleArn: memberRole('log-export-reader', '222222222222'), secretName }),
    ]);
    const run = await exporter({ c1: c1.parameters, c2: c2.parameters });

    // One after the other, so that c1's secret value is in the cache when c2 reads its own.
    const summaries = [await run.handler({ cluster: 'c1' }), await run.handler({ cluster: 'c2' })];

    expect(summaries.map((s) => s.clusters.map((c) => [c.cluster, c.error, c.tables[0]?.rows]))).toEqual([
      [['c1', undefined, 1]],
      [['c2', undefined, 1]],
    ]);
    expect(run.calls.map((c) => c.request.roleArn).sort()).toEqual([
      READER,
      memberRole('log-export-reader', '222222222222'),
    ]);
  });

  it('reports a role it may not assume as that cluster’s error, and exports the others', async () => {
    const [denied, trusted, own] = await Promise.all([
      memberCluster('c1', { roleArn: NOT_TRUSTED, externalId: 'fleet-7' }),
      memberCluster('c2', { roleArn: READER }),
      // No secret, no role: host, user and password parameters.
      memberCluster('c3', {}),
    ]);
    const run = await exporter({ c1: denied.parameters, c2: trusted.parameters, c3: own.parameters });
    const output = captureOutput();
    let summary: Awaited<ReturnType<typeof run.handler>>;
    try {
      summary = await run.handler(SCHEDULED);
    } finally {
      output.stop();
    }

    const [c1, c2, c3] = summary.clusters;
    expect(c1).toEqual({
      cluster: 'c1',
      tables: [],
      error:
        `Could not assume role ${NOT_TRUSTED} for cluster c1: AccessDenied: User: ` +
        'arn:aws:sts::123456789012:assumed-role/exporter/log-export is not authorized to perform: ' +
        `sts:AssumeRole on resource: ${NOT_TRUSTED}`,
    });
    expect(c2?.error).toBeUndefined();
    expect(c2?.tables[0]?.rows).toBe(1);
    expect(c3?.error).toBeUndefined();
    expect(c3?.tables[0]?.rows).toBe(1);
    const lines = output
      .text()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line));
    const errors = lines.filter((line) => line.level === 'ERROR');
    expect(errors).toEqual([
      expect.objectContaining({
        cluster: 'c1',
        error: expect.objectContaining({ name: 'AssumeRoleError', message: c1?.error }),
      }),
    ]);
    for (const password of [denied.password, trusted.password, own.password]) {
      expect(output.text()).not.toContain(password);
    }
    // The external id is no secret, but it is meant for the trust policy alone.
    expect(output.text()).not.toContain('fleet-7');
  });

  it('refuses a malformed role-arn before anything runs, naming the parameter', async () => {
    const c1 = await memberCluster('c1', { roleArn: READER });
    const run = await exporter({
      c1: { ...c1.parameters, 'clusters/c1/role-arn': 'arn:aws:iam::111:role/x' },
    });

    const error = await run.handler({ cluster: 'c1' }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      {
        parameter: `${run.path}/clusters/c1/role-arn`,
        problem: 'must be an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)',
      },
    ]);
    expect(run.calls).toHaveLength(0);
  });
});
