import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { STSClient } from '@aws-sdk/client-sts';
import { describe, expect, it } from 'vitest';
import {
  type AssumeRole,
  type MemberRole,
  RoleCredentials,
  regionOfSecret,
  roleSessionName,
  SecretsManagerClients,
  stsAssumeRole,
} from '../../../shared/aws/assume-role';
import { AssumeRoleError } from '../../../shared/errors';
import {
  countingAssumeRole,
  createMemberSecret,
  MEMBER_ACCOUNT,
  memberRole,
  recordSignatures,
  type SignedRequest,
  startDenyingSts,
  testClock,
} from '../../support/member-account';

/**
 * Reading a secret in another account through an assumed role, against moto's
 * STS and Secrets Manager. What the SDK signed shows whose credentials each
 * request carried; moto keeps each account's secrets apart, so the function's own
 * credentials could not have read them anyway.
 */

const READER = memberRole('log-export-reader');

function setUp(options: { assumeRole?: AssumeRole; now?: () => number } = {}) {
  const sts = countingAssumeRole(options.assumeRole ?? stsAssumeRole(async () => new STSClient({})));
  const signed: SignedRequest[] = [];
  const clients = new SecretsManagerClients({
    own: () => new SecretsManagerClient({}),
    roles: new RoleCredentials({ assumeRole: sts.assumeRole, now: options.now }),
    make: (config) => {
      const client = new SecretsManagerClient(config);
      recordSignatures(client, signed);
      return client;
    },
  });
  const read = async (secretId: string, role?: MemberRole) => {
    const client = await clients.forSecret(secretId, role);
    const { SecretString } = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
    return JSON.parse(SecretString as string);
  };
  return { clients, calls: sts.calls, signed, read };
}

describe('roleSessionName', () => {
  it('names the exporter and the cluster within STS limits', () => {
    expect(roleSessionName('orders-prod')).toBe('log-export.orders-prod');
    const long = `fleet.${'a'.repeat(80)}`;
    const name = roleSessionName(long);
    expect(name).toHaveLength(64);
    expect(name).toMatch(/^log-export\.fleet\.a+\.[0-9a-f]{8}$/);
    expect(name).toMatch(/^[\w+=,.@-]{2,64}$/);
    expect(roleSessionName(`${long}b`)).not.toBe(name);
  });
});

describe('regionOfSecret', () => {
  it('reads the region of a secret ARN, in any partition, and none of a name', () => {
    expect(regionOfSecret('arn:aws:secretsmanager:eu-west-1:111111111111:secret:db/x-AbCdEf')).toBe(
      'eu-west-1',
    );
    expect(regionOfSecret('arn:aws-cn:secretsmanager:cn-north-1:111111111111:secret:db/x')).toBe(
      'cn-north-1',
    );
    expect(regionOfSecret('db/x')).toBeUndefined();
  });
});

describe('SecretsManagerClients with a member role (moto)', () => {
  it("reads the cluster's secret in the role's account with the assumed credentials, not the function's", async () => {
    const secret = await createMemberSecret(MEMBER_ACCOUNT, { marker: 'member' });
    const { calls, signed, read } = setUp();

    const value = await read(secret.name, { roleArn: READER, externalId: 'fleet-7', cluster: 'orders' });

    expect(value).toEqual({ marker: 'member' });
    expect(calls).toHaveLength(1);
    expect(calls[0]?.request).toEqual({
      roleArn: READER,
      externalId: 'fleet-7',
      sessionName: 'log-export.orders',
      durationSeconds: 3600,
    });
    const assumedKey = calls[0]?.accessKeyId;
    expect(assumedKey).toMatch(/^ASIA/);
    expect(signed.map((s) => s.accessKeyId)).toEqual([assumedKey]);
    expect(signed.map((s) => s.accessKeyId)).not.toContain(process.env.AWS_ACCESS_KEY_ID);
    // The function's own credentials act in its own account, where the secret does not exist.
    await expect(
      new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: secret.name })),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });

  it("without a role, hands out the function's own client", async () => {
    const own = new SecretsManagerClient({});
    const clients = new SecretsManagerClients({ own: () => own });
    expect(await clients.forSecret('db/x')).toBe(own);
  });

  it('assumes a role once for many reads and clusters, and again per external id', async () => {
    const secrets = await Promise.all(
      [1, 2, 3].map((n) => createMemberSecret(MEMBER_ACCOUNT, { marker: `secret ${n}` })),
    );
    const { calls, signed, read } = setUp();

    for (let round = 0; round < 3; round++) {
      await Promise.all(
        secrets.map((s, i) => read(s.name, { roleArn: READER, externalId: 'fleet-7', cluster: `c${i}` })),
      );
    }
    expect(calls).toHaveLength(1);
    expect(calls[0]?.request.sessionName).toBe('log-export.c0');
    expect(new Set(signed.map((s) => s.accessKeyId))).toEqual(new Set([calls[0]?.accessKeyId]));
    expect(signed).toHaveLength(9);

    await read(secrets[0]?.name as string, { roleArn: READER, externalId: 'fleet-8', cluster: 'c9' });
    expect(calls).toHaveLength(2);
    expect(signed.at(-1)?.accessKeyId).toBe(calls[1]?.accessKeyId);
    expect(calls[1]?.accessKeyId).not.toBe(calls[0]?.accessKeyId);
  });

  it('renews the credentials once they are within 5 minutes of expiry, and signs with the new ones', async () => {
    const secret = await createMemberSecret(MEMBER_ACCOUNT, { marker: 'renewed' });
    const clock = testClock();
    const { calls, signed, read } = setUp({
      now: clock.now,
      assumeRole: clock.sts(stsAssumeRole(async () => new STSClient({}))),
    });
    const role = { roleArn: READER, cluster: 'orders' };

    await read(secret.name, role);
    clock.advance(54 * 60_000);
    await read(secret.name, role);
    expect(calls).toHaveLength(1);

    clock.advance(2 * 60_000);
    await read(secret.name, role);
    await read(secret.name, role);

    expect(calls).toHaveLength(2);
    const [first, second] = calls.map((c) => c.accessKeyId);
    expect(second).not.toBe(first);
    expect(signed.map((s) => s.accessKeyId)).toEqual([first, first, second, second]);
  });

  it('reads a secret in the region its ARN names, and a bare name in the function region', async () => {
    const abroad = await createMemberSecret(MEMBER_ACCOUNT, { marker: 'eu' }, 'eu-west-1');
    const home = await createMemberSecret(MEMBER_ACCOUNT, { marker: 'home' });
    const { signed, read, calls } = setUp();
    const role = { roleArn: READER, cluster: 'orders' };

    expect(abroad.arn).toContain(':eu-west-1:');
    expect(await read(abroad.arn, role)).toEqual({ marker: 'eu' });
    expect(await read(home.name, role)).toEqual({ marker: 'home' });

    expect(signed.map((s) => [s.region, s.service])).toEqual([
      ['eu-west-1', 'secretsmanager'],
      [process.env.AWS_REGION, 'secretsmanager'],
    ]);
    expect(calls).toHaveLength(1);
  });

  it('turns a refused AssumeRole into an error naming the cluster and the role, and tries again next time', async () => {
    const denied = memberRole('not-trusted');
    const front = await startDenyingSts([denied]);
    try {
      const { calls, read } = setUp({
        assumeRole: stsAssumeRole(async () => new STSClient({ endpoint: front.endpoint })),
      });
      const role = { roleArn: denied, externalId: 'Ext-Id-123', cluster: 'orders' };

      const error = await read('db/any', role).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(AssumeRoleError);
      expect((error as Error).message).toBe(
        `Could not assume role ${denied} for cluster orders: AccessDenied: User: ` +
          'arn:aws:sts::123456789012:assumed-role/exporter/log-export is not authorized to perform: ' +
          `sts:AssumeRole on resource: ${denied}`,
      );
      expect((error as Error).message).not.toContain('Ext-Id-123');
      await expect(read('db/any', role)).rejects.toBeInstanceOf(AssumeRoleError);
      expect(calls.map((c) => c.error)).toEqual(['AccessDenied', 'AccessDenied']);
      // The same endpoint lets a role that trusts the caller through (to moto).
      const secret = await createMemberSecret(MEMBER_ACCOUNT, { marker: 'trusted' });
      expect(await read(secret.name, { roleArn: READER, cluster: 'orders' })).toEqual({ marker: 'trusted' });
    } finally {
      await front.stop();
    }
  });

  it("by default, assumes through the container's STS client, loaded on first use", async () => {
    const credentials = await new RoleCredentials().get({ roleArn: READER, cluster: 'orders' });
    expect(credentials.accessKeyId).toMatch(/^ASIA/);
    expect(credentials.expiresAt - Date.now()).toBeGreaterThan(55 * 60_000);
  });

  it('shares one AssumeRole among concurrent requests', async () => {
    let calls = 0;
    const roles = new RoleCredentials({
      assumeRole: async () => {
        calls += 1;
        await new Promise((resolve) => setImmediate(resolve));
        return {
          accessKeyId: 'ASIAX',
          secretAccessKey: 's',
          sessionToken: 't',
          expiresAt: Date.now() + 3.6e6,
        };
      },
    });
    const got = await Promise.all(['a', 'b', 'c'].map((cluster) => roles.get({ roleArn: READER, cluster })));
    expect(calls).toBe(1);
    expect(new Set(got).size).toBe(1);
  });
});
