import { randomUUID } from 'node:crypto';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../shared/errors';
import { passwordPolicySource } from '../../../shared/rotation/settings';

const ssm = new SSMClient({});

async function configPath(parameters: Record<string, string>): Promise<string> {
  const path = `/rotation-test-${randomUUID().slice(0, 8)}`;
  for (const [name, value] of Object.entries(parameters)) {
    await ssm.send(
      new PutParameterCommand({ Name: `${path}/rotation/${name}`, Value: value, Type: 'String' }),
    );
  }
  return path;
}

describe('passwordPolicySource', () => {
  it('defaults to the official functions: 32 characters, each type required, engine exclusions', async () => {
    expect(await passwordPolicySource({ env: {} })()).toEqual({
      length: 32,
      excludeNumbers: false,
      excludePunctuation: false,
      excludeUppercase: false,
      excludeLowercase: false,
      requireEachIncludedType: true,
    });
  });

  it('prefers SSM under CONFIG_PATH/rotation over the environment, and the environment over defaults', async () => {
    const path = await configPath({ PASSWORD_LENGTH: '40', EXCLUDE_CHARACTERS: '%&' });
    const env = { CONFIG_PATH: path, PASSWORD_LENGTH: '20', EXCLUDE_PUNCTUATION: 'true' };

    const policy = await passwordPolicySource({ env, ssm })();

    expect(policy).toMatchObject({ length: 40, excludeCharacters: '%&', excludePunctuation: true });
  });

  it('ignores SSM without CONFIG_PATH', async () => {
    expect(await passwordPolicySource({ env: { PASSWORD_LENGTH: '24' }, ssm })()).toMatchObject({
      length: 24,
    });
  });

  it('names every malformed setting at once', async () => {
    const path = await configPath({ PASSWORD_LENGTH: '4', EXCLUDE_NUMBERS: 'yes', PASSWORD_LENGHT: '30' });

    const error = await passwordPolicySource({ env: { CONFIG_PATH: path }, ssm })().catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain(`${path}/rotation/PASSWORD_LENGTH: must be at least 8`);
    expect(message).toContain(`${path}/rotation/EXCLUDE_NUMBERS: must be true or false`);
    expect(message).toContain('PASSWORD_LENGHT');
  });

  it('refuses a policy that excludes every character type', async () => {
    const env = {
      EXCLUDE_NUMBERS: 'true',
      EXCLUDE_PUNCTUATION: 'true',
      EXCLUDE_UPPERCASE: 'true',
      EXCLUDE_LOWERCASE: 'true',
    };
    await expect(passwordPolicySource({ env })()).rejects.toThrow(/excludes every character type/);
  });
});
