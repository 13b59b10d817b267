import { PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import { SecretFormatError } from '../../shared/errors';
import { ENGINES, rotate, secretValue, stagesOf } from '../shared/rotation/support';
import { createSecret, randomPassword, secretsManager } from '../stack/fixtures';

/**
 * Single user: when AWSCURRENT no longer logs in, setSecret may fall back to
 * AWSPREVIOUS (an earlier rotation stopped half-way), but only for the same
 * user on the same host. The session it opens changes its own password, so
 * any other AWSPREVIOUS would have setSecret change a password the secret does
 * not name.
 */

/** A secret whose AWSPREVIOUS is `previous` and whose AWSCURRENT is `current` on top of it. */
async function secretWithHistory(previous: Record<string, unknown>, current: Record<string, unknown>) {
  const arn = await createSecret(previous);
  await secretsManager().send(
    new PutSecretValueCommand({ SecretId: arn, SecretString: JSON.stringify(current) }),
  );
  const stages = await stagesOf(arn);
  return { arn, currentId: Object.entries(stages).find(([, s]) => s.includes('AWSCURRENT'))?.[0] };
}

describe.each(ENGINES)('$engine single user: the fallback to AWSPREVIOUS', (engine) => {
  it('refuses an AWSPREVIOUS for another user; that user keeps its password', async () => {
    const { host, port } = engine.server();
    const aPassword = randomPassword();
    const a = await engine.createUser(aPassword);
    const bPassword = randomPassword();
    const b = await engine.createUser(bPassword);
    const { arn, currentId } = await secretWithHistory(
      { engine: engine.engine, host, port, username: b, password: bPassword },
      { engine: engine.engine, host, port, username: a, password: 'Not-what-the-db-has-1' },
    );

    const error = await rotate(arn).catch((e: unknown) => e);

    expect(await engine.canLogin(b, bPassword)).toBe(true);
    const cause = (error as Error).cause;
    expect(cause).toBeInstanceOf(SecretFormatError);
    expect((cause as Error).message).toMatch(
      new RegExp(
        `AWSCURRENT of .* does not log in as "${a}", and AWSPREVIOUS \\S+ is for user "${b}": it cannot stand in`,
      ),
    );
    expect(await engine.canLogin(a, aPassword)).toBe(true);
    expect((await stagesOf(arn))[currentId as string]).toContain('AWSCURRENT');
    const pending = await secretValue(arn, 'AWSPENDING');
    expect(await engine.canLogin(b, pending.password as string)).toBe(false);
  });

  it('refuses an AWSPREVIOUS for the same user on another host, even one that reaches the same server', async () => {
    const { host, port } = engine.server();
    const password = randomPassword();
    const user = await engine.createUser(password);
    // "localhost" reaches the same test server as 127.0.0.1; in production another host is another database.
    const { arn, currentId } = await secretWithHistory(
      { engine: engine.engine, host: 'localhost', port, username: user, password },
      { engine: engine.engine, host, port, username: user, password: 'Not-what-the-db-has-1' },
    );
    expect(await engine.canLogin(user, password)).toBe(true);

    const error = await rotate(arn).catch((e: unknown) => e);

    expect(await engine.canLogin(user, password)).toBe(true);
    const cause = (error as Error).cause;
    expect(cause).toBeInstanceOf(SecretFormatError);
    expect((cause as Error).message).toMatch(
      /AWSPREVIOUS \S+ is for host localhost, AWSCURRENT for 127\.0\.0\.1/,
    );
    expect((await stagesOf(arn))[currentId as string]).toContain('AWSCURRENT');
  });
});
