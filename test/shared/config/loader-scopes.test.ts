import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigLoader, integerString } from '../../../shared/config';
import { ConfigError } from '../../../shared/errors';
import { uniqueName } from '../../stack/fixtures';

/** An SSM client that records the path of every GetParametersByPath request it sends to moto. */
function recordingSsm(): { ssm: SSMClient; paths: string[] } {
  const paths: string[] = [];
  const ssm = new SSMClient({});
  ssm.middlewareStack.add(
    (next, context) => (args) => {
      if (context.commandName === 'GetParametersByPathCommand')
        paths.push(String((args.input as { Path?: string }).Path));
      return next(args);
    },
    { step: 'initialize', name: 'recordPaths' },
  );
  return { ssm, paths };
}

const schema = z.object({
  global: z.object({ destination: z.string() }).optional(),
  clusters: z
    .record(z.string(), z.object({ engine: z.string(), port: z.optional(integerString(1, 65535)) }))
    .optional(),
});

describe('ConfigLoader with scopes', () => {
  const path = `/${uniqueName('scoped')}`;
  const ssm = new SSMClient({});

  beforeAll(async () => {
    const parameters: Record<string, string> = {
      'global/destination': 's3://bucket/prefix',
      'clusters/c1/engine': 'mariadb',
      // A name that starts like c1's: a read of clusters/c1 must not include it.
      'clusters/c10/engine': 'postgres',
      'clusters/c2/engine': 'mysql',
      'clusters/c2/port': 'not-a-port',
    };
    for (const [name, Value] of Object.entries(parameters)) {
      await ssm.send(
        new PutParameterCommand({ Name: `${path}/${name}`, Value, Type: 'String', Overwrite: true }),
      );
    }
  });

  it('reads only the named subtrees and validates them together', async () => {
    const { ssm: recording, paths } = recordingSsm();
    const loader = new ConfigLoader({ path, schema, ssm: recording, ttlSeconds: 60 });

    const config = await loader.refresh(['global', 'clusters/c1']);

    expect(paths.sort()).toEqual([`${path}/clusters/c1`, `${path}/global`]);
    expect(config).toEqual({
      global: { destination: 's3://bucket/prefix' },
      clusters: { c1: { engine: 'mariadb' } },
    });
    expect(Object.isFrozen(config.clusters)).toBe(true);
  });

  it('caches each subtree on its own, so a new set of scopes reads only the subtrees not yet cached', async () => {
    const { ssm: recording, paths } = recordingSsm();
    const loader = new ConfigLoader({ path, schema, ssm: recording, ttlSeconds: 60 });
    await loader.refresh(['global']);

    const config = await loader.get(['global', 'clusters/c10']);
    await loader.get(['clusters/c10', 'global']);

    expect(paths).toEqual([`${path}/global`, `${path}/clusters/c10`]);
    expect(Object.keys(config.clusters ?? {})).toEqual(['c10']);
  });

  it('refresh(scopes) reads those subtrees again; refresh() without scopes reads the whole path', async () => {
    const { ssm: recording, paths } = recordingSsm();
    const loader = new ConfigLoader({ path, schema, ssm: recording, ttlSeconds: 60 });
    await loader.get(['global', 'clusters/c1']);
    paths.length = 0;

    await loader.refresh(['clusters/c1']);
    expect(paths).toEqual([`${path}/clusters/c1`]);

    paths.length = 0;
    const whole = await loader.refresh().catch((e: unknown) => e);
    expect(paths).toEqual([path]);
    // The whole tree holds c2's bad port, which no scoped read above looked at.
    expect(whole).toBeInstanceOf(ConfigError);
    expect((whole as ConfigError).problems).toEqual([
      { parameter: `${path}/clusters/c2/port`, problem: 'must be an integer' },
    ]);
  });

  it('names a bad parameter of a scope by its full name', async () => {
    const loader = new ConfigLoader({ path, schema, ttlSeconds: 0 });

    await expect(loader.get(['clusters/c2'])).rejects.toThrow(`${path}/clusters/c2/port: must be an integer`);
  });

  it('reads at most four subtrees at once', async () => {
    let inFlight = 0;
    let most = 0;
    const counted = new SSMClient({});
    counted.middlewareStack.add(
      (next) => async (args) => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        try {
          return await next(args);
        } finally {
          inFlight -= 1;
        }
      },
      { step: 'deserialize', name: 'countInFlight' },
    );
    const loader = new ConfigLoader({ path, schema, ssm: counted, ttlSeconds: 0 });
    const scopes = [
      'global',
      'clusters/c1',
      'clusters/c10',
      ...Array.from({ length: 9 }, (_, i) => `clusters/x${i}`),
    ];

    const config = await loader.get(scopes);

    expect(Object.keys(config.clusters ?? {}).sort()).toEqual(['c1', 'c10']);
    // In parallel, but never more than four.
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(4);
  });

  it('refuses a scope that is not a sub-path', async () => {
    const { ssm: recording, paths } = recordingSsm();
    const loader = new ConfigLoader({ path, schema, ssm: recording });

    for (const scope of ['', '/', '../other', 'clusters/../../x']) {
      await expect(loader.get([scope])).rejects.toThrow(
        /Invalid configuration scope: .*must name a sub-path/,
      );
    }
    expect(paths).toEqual([]);
  });
});
