import { describe, expect, it } from 'vitest';
import { passwordPolicySource } from '../../shared/rotation/settings';
import {
  ENGINES,
  invoker,
  rotate,
  rotationDeps,
  secretValue,
  singleUserSecret,
} from '../shared/rotation/support';

describe.each(ENGINES)('$engine generated passwords', (engine) => {
  it('follow PASSWORD_LENGTH and the EXCLUDE_* settings', async () => {
    const { arn, username } = await singleUserSecret(engine);
    const env = {
      PASSWORD_LENGTH: '40',
      EXCLUDE_NUMBERS: 'true',
      EXCLUDE_PUNCTUATION: 'true',
      EXCLUDE_UPPERCASE: 'true',
    };

    await rotate(arn, { invoke: invoker(rotationDeps({ passwordPolicy: passwordPolicySource({ env }) })) });

    const { password } = await secretValue(arn);
    expect(password).toMatch(/^[a-z]{40}$/);
    expect(await engine.canLogin(username, password as string)).toBe(true);
  });

  it("leave out the engine's default characters (':' only for PostgreSQL)", async () => {
    const { arn, username } = await singleUserSecret(engine);
    // Punctuation only, long enough that any character not excluded would almost surely appear.
    const env = {
      PASSWORD_LENGTH: '400',
      EXCLUDE_NUMBERS: 'true',
      EXCLUDE_UPPERCASE: 'true',
      EXCLUDE_LOWERCASE: 'true',
    };

    await rotate(arn, { invoke: invoker(rotationDeps({ passwordPolicy: passwordPolicySource({ env }) })) });

    const { password } = (await secretValue(arn)) as { password: string };
    const excluded = engine.engine === 'postgres' ? ':/@"\'\\' : '/@"\'\\';
    expect(password).toHaveLength(400);
    for (const c of excluded) expect(password).not.toContain(c);
    expect(password).toMatch(engine.engine === 'postgres' ? /^[^:]+$/ : /:/);
    expect(await engine.canLogin(username, password)).toBe(true);
  });

  it('exclude exactly EXCLUDE_CHARACTERS when it is set', async () => {
    const { arn, username } = await singleUserSecret(engine);
    const env = {
      PASSWORD_LENGTH: '400',
      EXCLUDE_CHARACTERS: '!#',
      EXCLUDE_NUMBERS: 'true',
      EXCLUDE_UPPERCASE: 'true',
      EXCLUDE_LOWERCASE: 'true',
    };

    await rotate(arn, { invoke: invoker(rotationDeps({ passwordPolicy: passwordPolicySource({ env }) })) });

    const { password } = (await secretValue(arn)) as { password: string };
    expect(password).not.toMatch(/[!#]/);
    expect(password).toMatch(/@/);
    expect(await engine.canLogin(username, password)).toBe(true);
  });
});
