import { describe, expect, it } from 'vitest';
import { exportConfigSchema, resolveConfig } from '../../../shared/export/config';

/** `clusters/<c>/role-arn` and `external-id`: validated like the other keys, every problem named. */

const parse = (cluster: Record<string, string>) =>
  exportConfigSchema.safeParse({
    global: { destination: 's3://bucket/prefix' },
    clusters: { c1: { engine: 'mysql', 'secret-id': 'db/orders', ...cluster } },
  });
const problems = (cluster: Record<string, string>) =>
  parse(cluster).error?.issues.map((i) => `${i.path.join('/')}: ${i.message}`) ?? [];

const ROLE = 'arn:aws:iam::111111111111:role/log-export-reader';

describe('clusters/<c>/role-arn and external-id', () => {
  it.each([
    ROLE,
    'arn:aws-us-gov:iam::111111111111:role/path/to/reader',
    'arn:aws-cn:iam::111111111111:role/reader+=,.@-_',
    'arn:aws-iso-b:iam::111111111111:role/r',
  ])('accept the role ARN %s', (roleArn) => {
    expect(problems({ 'role-arn': roleArn })).toEqual([]);
  });

  it.each([
    'log-export-reader',
    'arn:aws:iam::111111111111:user/reader',
    'arn:aws:iam::11111111111:role/reader',
    'arn:aws:iam::111111111111:role/',
    'arn:aws:iam::111111111111:role/path/',
    'arn:aws:iam::111111111111:role/*',
    'arn:aws:sts::111111111111:assumed-role/reader/session',
    'arn:Aws:iam::111111111111:role/reader',
    `arn:aws:iam::111111111111:role/${'r'.repeat(65)}`,
  ])('refuse %j, naming the key', (roleArn) => {
    expect(problems({ 'role-arn': roleArn })).toEqual([
      'clusters/c1/role-arn: must be an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)',
    ]);
  });

  it.each(['ab', 'fleet-7', 'a:b/c=d,e.f@g+h_i-j', 'x'.repeat(1224)])('accept the external id %j', (id) => {
    expect(problems({ 'role-arn': ROLE, 'external-id': id })).toEqual([]);
  });

  it.each(['x', 'x'.repeat(1225), 'fleet 7', 'fleet*', 'ünïcode'])('refuse the external id %j', (id) => {
    expect(problems({ 'role-arn': ROLE, 'external-id': id })).toEqual([
      'clusters/c1/external-id: must be 2 to 1224 characters of letters, digits and +=,.@:/-_',
    ]);
  });

  it('want a secret to read, and external-id wants a role', () => {
    const byHost = { 'secret-id': '', host: 'db', user: 'u', password: 'Pw-1' };
    expect(
      problems({ ...byHost, 'role-arn': ROLE }).filter((p) => p.startsWith('clusters/c1/role-arn')),
    ).toEqual([
      "clusters/c1/role-arn: goes with secret-id (the role reads the cluster's secret in its account)",
    ]);
    expect(problems({ 'external-id': 'fleet-7' })).toEqual(['clusters/c1/external-id: goes with role-arn']);
  });

  it('put the role, its external id and the cluster into the credentials', () => {
    const withRole = parse({ 'role-arn': ROLE, 'external-id': 'fleet-7' });
    expect(resolveConfig(withRole.data as never).clusters.get('c1')?.credentials).toEqual({
      secretId: 'db/orders',
      role: { roleArn: ROLE, externalId: 'fleet-7', cluster: 'c1' },
    });
    const own = parse({});
    expect(resolveConfig(own.data as never).clusters.get('c1')?.credentials).toEqual({
      secretId: 'db/orders',
    });
  });
});
