import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigLoader, integerString, stringList } from '../../../shared/config';
import { ConfigError } from '../../../shared/errors';
import { secretsManager, uniqueName } from '../../stack/fixtures';
import { captureOutput } from '../../support/capture';

/** An SSM client that counts the requests it sends. */
function countingSsm(): { ssm: SSMClient; calls: string[] } {
  const calls: string[] = [];
  const ssm = new SSMClient({});
  ssm.middlewareStack.add(
    (next, context) => (args) => {
      calls.push(String(context.commandName));
      return next(args);
    },
    { step: 'initialize', name: 'countRequests' },
  );
  return { ssm, calls };
}

async function put(
  ssm: SSMClient,
  Name: string,
  Value: string,
  Type: 'String' | 'SecureString' | 'StringList' = 'String',
) {
  await ssm.send(new PutParameterCommand({ Name, Value, Type, Overwrite: true }));
}

const schema = z.object({
  global: z.object({
    destination: z.string().regex(/^(s3|file):\/\//, 'must be an s3:// or file:// URL'),
    'window-minutes': integerString(1, 1440),
    'enabled-clusters': stringList,
  }),
  clusters: z.record(
    z.string(),
    z.object({
      engine: z.enum(['mysql', 'mariadb', 'postgres', 'redshift']),
      password: z.string().optional(),
      'secret-ref': z.string().optional(),
      custom: z
        .record(z.string(), z.object({ query: z.string(), 'watermark-column': z.string() }))
        .optional(),
    }),
  ),
});

describe('ConfigLoader against the SSM emulator', () => {
  const ssm = new SSMClient({});
  const path = `/${uniqueName('cfg')}`;
  const dbPassword = `db-${uniqueName('pw')}-secret`;
  const referencedSecret = `ref-${uniqueName('s')}-value`;

  beforeAll(async () => {
    const secretName = uniqueName('referenced');
    await secretsManager().send(
      new CreateSecretCommand({ Name: secretName, SecretString: referencedSecret }),
    );
    await put(ssm, `${path}/global/destination`, 's3://bucket/prefix');
    await put(ssm, `${path}/global/window-minutes`, '5');
    await put(ssm, `${path}/global/enabled-clusters`, 'c0,c1,c2', 'StringList');
    // 3 levels deep and more than 10 parameters in all, so GetParametersByPath pages.
    for (const c of ['c0', 'c1', 'c2', 'c3']) {
      await put(ssm, `${path}/clusters/${c}/engine`, 'mariadb');
      await put(ssm, `${path}/clusters/${c}/custom/logins/query`, 'SELECT * FROM logins');
      await put(ssm, `${path}/clusters/${c}/custom/logins/watermark-column`, 'at');
    }
    await put(ssm, `${path}/clusters/c1/password`, dbPassword, 'SecureString');
    await put(ssm, `${path}/clusters/c2/secret-ref`, `/aws/reference/secretsmanager/${secretName}`);
  });

  it('loads every page, decrypts SecureStrings, splits StringLists and resolves Secrets Manager references', async () => {
    const { ssm: counted, calls } = countingSsm();
    const loader = new ConfigLoader({ path, schema, ssm: counted, ttlSeconds: 60 });

    const config = await loader.get();

    expect(calls.filter((c) => c === 'GetParametersByPathCommand').length).toBeGreaterThan(1);
    expect(config.global['window-minutes']).toBe(5);
    expect(config.global['enabled-clusters']).toEqual(['c0', 'c1', 'c2']);
    expect(Object.keys(config.clusters).sort()).toEqual(['c0', 'c1', 'c2', 'c3']);
    expect(config.clusters.c3?.custom?.logins?.['watermark-column']).toBe('at');
    expect(config.clusters.c1?.password).toBe(dbPassword);
    expect(config.clusters.c2?.['secret-ref']).toBe(referencedSecret);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.clusters.c1)).toBe(true);
  });

  it('returns ciphertext without decryption and caches decrypted and raw reads apart', async () => {
    const { ssm: counted, calls } = countingSsm();
    const decrypted = new ConfigLoader({ path, schema, ssm: counted, ttlSeconds: 60 });
    const raw = new ConfigLoader({ path, schema, ssm: counted, ttlSeconds: 60, decrypt: false });

    const plain = await decrypted.refresh();
    const cipher = await raw.refresh();
    const callsAfterRefresh = calls.length;
    const plainAgain = await decrypted.get();
    const cipherAgain = await raw.get();

    expect(plain.clusters.c1?.password).toBe(dbPassword);
    expect(cipher.clusters.c1?.password).toBeTypeOf('string');
    expect(cipher.clusters.c1?.password).not.toBe(dbPassword);
    expect(plainAgain.clusters.c1?.password).toBe(dbPassword);
    expect(cipherAgain.clusters.c1?.password).toBe(cipher.clusters.c1?.password);
    expect(calls.length).toBe(callsAfterRefresh);
  });

  it('makes no SSM request within the TTL, and reads again after the TTL or a refresh', async () => {
    let now = 1_000_000;
    const { ssm: counted, calls } = countingSsm();
    const loader = new ConfigLoader({ path, schema, ssm: counted, ttlSeconds: 300, now: () => now });
    await loader.refresh();
    const afterFirst = calls.length;

    now += 299_000;
    await loader.get();
    expect(calls.length).toBe(afterFirst);

    now += 2_000;
    await loader.get();
    const afterExpiry = calls.length;
    expect(afterExpiry).toBeGreaterThan(afterFirst);

    await loader.refresh();
    expect(calls.length).toBeGreaterThan(afterExpiry);
  });

  it('shares one fetch among concurrent first calls', async () => {
    const { ssm: counted, calls } = countingSsm();
    const fresh = `/${uniqueName('concurrent')}`;
    await put(ssm, `${fresh}/only`, 'value');
    const loader = new ConfigLoader({ path: fresh, schema: z.object({ only: z.string() }), ssm: counted });

    const results = await Promise.all([loader.get(), loader.get(), loader.get(), loader.get()]);

    expect(results.every((r) => r.only === 'value')).toBe(true);
    expect(calls.filter((c) => c === 'GetParametersByPathCommand')).toHaveLength(1);
  });

  it('throws one ConfigError naming every missing and malformed parameter, without secret values', async () => {
    const bad = `/${uniqueName('bad')}`;
    const secretValue = `s3cr3t-${uniqueName('v')}`;
    await put(ssm, `${bad}/global/destination`, 'ftp://nowhere');
    await put(ssm, `${bad}/global/window-minutes`, 'five');
    await put(ssm, `${bad}/clusters/x/engine`, 'oracle');
    await put(ssm, `${bad}/clusters/x/password`, secretValue, 'SecureString');
    await put(ssm, `${bad}/clusters/x/custom/q/query`, 'SELECT 1');
    const loader = new ConfigLoader({ path: bad, schema });
    const output = captureOutput();

    const error = await loader.get().catch((e: unknown) => e);
    output.stop();

    expect(error).toBeInstanceOf(ConfigError);
    const names = (error as ConfigError).problems.map((p) => p.parameter).sort();
    expect(names).toEqual(
      [
        `${bad}/clusters/x/custom/q/watermark-column`,
        `${bad}/clusters/x/engine`,
        `${bad}/global/destination`,
        `${bad}/global/enabled-clusters`,
        `${bad}/global/window-minutes`,
      ].sort(),
    );
    expect(
      (error as ConfigError).problems.find((p) => p.parameter.endsWith('enabled-clusters'))?.problem,
    ).toBe('missing');
    expect((error as Error).message).toContain(`${bad}/global/window-minutes`);
    expect(JSON.stringify(error)).not.toContain(secretValue);
    expect((error as Error).message).not.toContain(secretValue);
    expect(output.text()).not.toContain(secretValue);
  });

  it('names a reference to a secret that does not exist', async () => {
    const dangling = `/${uniqueName('dangling')}`;
    await put(ssm, `${dangling}/pw`, '/aws/reference/secretsmanager/no-such-secret');
    const loader = new ConfigLoader({ path: dangling, schema: z.object({ pw: z.string() }) });

    await expect(loader.get()).rejects.toThrow(`${dangling}/pw`);
  });

  it('surfaces SDK failures as ConfigError with the cause attached', async () => {
    const broken = new SSMClient({ endpoint: 'http://127.0.0.1:9', maxAttempts: 1 });
    const loader = new ConfigLoader({ path: `/${uniqueName('x')}`, schema: z.object({}), ssm: broken });

    const error = await loader.get().catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).cause).toBeDefined();
  });
});
