import { randomUUID } from 'node:crypto';
import { CreateDBClusterCommand, CreateDBInstanceCommand, RDSClient } from '@aws-sdk/client-rds';
import { TagResourceCommand } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import { adapterFor } from '../../../shared/db/adapters';
import { RotationStateError, SecretFormatError } from '../../../shared/errors';
import { resolveMasterLogin } from '../../../shared/rotation/master';
import { RDS_CLUSTER_TAG, RDS_INSTANCE_TAG } from '../../../shared/rotation/rds-endpoint';
import type { DatabaseSecret } from '../../../shared/secret';
import { createSecret, secretsManager } from '../../stack/fixtures';

// moto's RDS gives every instance an endpoint under *.rds.amazonaws.com that nothing serves,
// so these tests stop at the lookup; connecting as the master is covered with full master secrets.
const rds = new RDSClient({});

async function rdsManagedMaster(tag: string, arn: string): Promise<string> {
  const masterArn = await createSecret({ username: 'admin', password: 'Master-password-1' });
  await secretsManager().send(
    new TagResourceCommand({ SecretId: masterArn, Tags: [{ Key: tag, Value: arn }] }),
  );
  return masterArn;
}

function current(overrides: Partial<DatabaseSecret>): DatabaseSecret {
  return { engine: 'mariadb', host: 'x', username: 'app', password: 'App-password-1', ...overrides };
}

describe('resolveMasterLogin', () => {
  it('takes host, port and engine of an RDS-managed master secret from its DB instance, and requires TLS', async () => {
    const id = `db-${randomUUID().slice(0, 8)}`;
    const { DBInstance } = await rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: id,
        DBInstanceClass: 'db.t3.micro',
        Engine: 'mariadb',
        EngineVersion: '10.11.6',
        MasterUsername: 'admin',
        MasterUserPassword: 'Master-password-1',
        Port: 13306,
        AllocatedStorage: 20,
      }),
    );
    const masterArn = await rdsManagedMaster(RDS_INSTANCE_TAG, DBInstance?.DBInstanceArn as string);
    const host = DBInstance?.Endpoint?.Address as string;

    const login = await resolveMasterLogin({
      secretsManager: secretsManager(),
      rds: async () => rds,
      current: current({ host, port: 13306, masterarn: masterArn, dbname: 'app' }),
      adapter: adapterFor('mysql'),
    });

    expect(login).toEqual({
      host,
      port: 13306,
      username: 'admin',
      password: 'Master-password-1',
      dbname: 'app',
      // The rotated secret has no ssl key; RDS always offers TLS, so the master never falls back.
      tls: 'require',
    });
  });

  it('takes them from the DB cluster for an Aurora master secret', async () => {
    const id = `cl-${randomUUID().slice(0, 8)}`;
    const { DBCluster } = await rds.send(
      new CreateDBClusterCommand({
        DBClusterIdentifier: id,
        Engine: 'aurora-postgresql',
        MasterUsername: 'admin',
        MasterUserPassword: 'Master-password-1',
        Port: 15432,
      }),
    );
    const masterArn = await rdsManagedMaster(RDS_CLUSTER_TAG, DBCluster?.DBClusterArn as string);

    const login = await resolveMasterLogin({
      secretsManager: secretsManager(),
      rds: async () => rds,
      current: current({
        engine: 'postgres',
        host: DBCluster?.Endpoint as string,
        port: 15432,
        masterarn: masterArn,
        ssl: true,
      }),
      adapter: adapterFor('postgres'),
    });

    expect(login).toMatchObject({
      host: DBCluster?.Endpoint,
      port: 15432,
      username: 'admin',
      tls: 'require',
    });
  });

  it('refuses an RDS master of another engine family', async () => {
    const { DBCluster } = await rds.send(
      new CreateDBClusterCommand({
        DBClusterIdentifier: `cl-${randomUUID().slice(0, 8)}`,
        Engine: 'aurora-postgresql',
        MasterUsername: 'admin',
        MasterUserPassword: 'Master-password-1',
      }),
    );
    const masterArn = await rdsManagedMaster(RDS_CLUSTER_TAG, DBCluster?.DBClusterArn as string);

    const error = await resolveMasterLogin({
      secretsManager: secretsManager(),
      rds: async () => rds,
      current: current({ host: DBCluster?.Endpoint as string, masterarn: masterArn }),
      adapter: adapterFor('mysql'),
    }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(SecretFormatError);
    expect((error as Error).message).toMatch(/is for engine "aurora-postgresql"/);
  });

  it('names the missing tag when an RDS-style master secret has neither host nor tag', async () => {
    const masterArn = await createSecret({ username: 'admin', password: 'Master-password-1' });

    const error = await resolveMasterLogin({
      secretsManager: secretsManager(),
      rds: async () => rds,
      current: current({ masterarn: masterArn }),
      adapter: adapterFor('mysql'),
    }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(SecretFormatError);
    expect((error as Error).message).toContain(RDS_INSTANCE_TAG);
  });

  it('reports an instance that RDS does not know', async () => {
    const masterArn = await rdsManagedMaster(RDS_INSTANCE_TAG, 'arn:aws:rds:us-east-1:123456789012:db:gone');

    const error = await resolveMasterLogin({
      secretsManager: secretsManager(),
      rds: async () => rds,
      current: current({ masterarn: masterArn }),
      adapter: adapterFor('mysql'),
    }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(RotationStateError);
    expect((error as Error).message).toMatch(/Could not look up arn:aws:rds:.*:db:gone in RDS/);
    expect((error as Error).message).not.toContain('Master-password-1');
  });
});
