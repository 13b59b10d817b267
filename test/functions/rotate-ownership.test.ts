import { randomUUID } from 'node:crypto';
import { PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import { DatabaseError, RotationStateError } from '../../shared/errors';
import {
  ENGINES,
  type EngineUnderTest,
  invoker,
  mariadbUnderTest,
  postgresUnderTest,
  rotate,
  secretValue,
  stagesOf,
  startRotation,
} from '../shared/rotation/support';
import { createSecret, mysqlAdmin, randomPassword, secretsManager, uniqueName } from '../stack/fixtures';

/**
 * The ownership rule of alternating users: the function rotates only into a
 * user that the secret's own history shows it owns (AWSPREVIOUS logs in as it,
 * or the pending password does), or into one that does not exist yet and that
 * it creates. Otherwise `_clone` naming would let a secret for `x_clone` take
 * over `x`.
 */

async function masterSecret(engine: EngineUnderTest): Promise<string> {
  const { host, port, adminUser, adminPassword } = engine.server();
  return createSecret({ engine: engine.engine, host, port, username: adminUser, password: adminPassword });
}

/** `billing` belongs to its owner; someone else owns `billing_clone` and knows its password. */
async function victimAndAttacker(engine: EngineUnderTest) {
  const victimPassword = randomPassword();
  const victim = await engine.createUser(victimPassword, uniqueName('billing'));
  const query = await engine.grantReadableTable(victim);
  const attackerPassword = randomPassword();
  await engine.createUser(attackerPassword, `${victim}_clone`);
  return { victim, victimPassword, query, attacker: `${victim}_clone`, attackerPassword };
}

/** The secret's AWSCURRENT version id and value, to show that nothing was promoted. */
async function currentVersion(arn: string) {
  const stages = await stagesOf(arn);
  const id = Object.entries(stages).find(([, s]) => s.includes('AWSCURRENT'))?.[0];
  return { id, value: await secretValue(arn) };
}

const REFUSED = (user: string) =>
  new RegExp(
    `Refusing to rotate .* into user "${user}"(@"%")?: it exists, and the secret's history does not show`,
  );

describe.each(ENGINES)(
  '$engine alternating users: the secret must own the user it rotates into',
  (engine) => {
    it('refuses a secret for x_clone, owned by someone else, to take over x; nothing changes', async () => {
      const { victim, victimPassword, query, attacker, attackerPassword } = await victimAndAttacker(engine);
      const { host, port } = engine.server();
      const masterarn = await masterSecret(engine);
      const arn = await createSecret({
        engine: engine.engine,
        host,
        port,
        username: attacker,
        password: attackerPassword,
        masterarn,
      });
      const before = await currentVersion(arn);

      const error = await rotate(arn, { attempts: 2 }).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(RotationStateError);
      expect(((error as Error).cause as Error).message).toMatch(REFUSED(victim));
      expect(await currentVersion(arn)).toEqual(before);
      expect(await engine.canLogin(victim, victimPassword)).toBe(true);
      expect(await engine.canRead(victim, victimPassword, query)).toBe(true);
      const pending = await secretValue(arn, 'AWSPENDING');
      expect(pending.username).toBe(victim);
      expect(await engine.canLogin(victim, pending.password as string)).toBe(false);
    });

    it('is not fooled by a forged history: an AWSPREVIOUS naming x with a password that does not log in', async () => {
      const { victim, victimPassword, attacker, attackerPassword } = await victimAndAttacker(engine);
      const { host, port } = engine.server();
      const masterarn = await masterSecret(engine);
      const common = { engine: engine.engine, host, port, masterarn };
      // Anyone who may write the secret may write any version: x first, then x_clone on top.
      const arn = await createSecret({ ...common, username: victim, password: 'Guessed-password-1' });
      await secretsManager().send(
        new PutSecretValueCommand({
          SecretId: arn,
          SecretString: JSON.stringify({ ...common, username: attacker, password: attackerPassword }),
        }),
      );
      expect((await secretValue(arn, 'AWSPREVIOUS')).username).toBe(victim);
      const before = await currentVersion(arn);

      const error = await rotate(arn).catch((e: unknown) => e);

      expect(((error as Error).cause as Error).message).toMatch(REFUSED(victim));
      expect(await currentVersion(arn)).toEqual(before);
      expect(await engine.canLogin(victim, victimPassword)).toBe(true);
    });

    it("rotates into x when AWSPREVIOUS holds x's working password, even with another host in it (the login goes where AWSCURRENT points)", async () => {
      const xPassword = randomPassword();
      const x = await engine.createUser(xPassword);
      const query = await engine.grantReadableTable(x);
      const clonePassword = randomPassword();
      await engine.createUser(clonePassword, `${x}_clone`);
      if (engine.engine === 'mariadb') {
        // The MySQL family gives x the grants of x_clone, the account AWSCURRENT logs in as.
        const admin = await mysqlAdmin();
        await admin.query(`GRANT SELECT ON ${/FROM (\S+)\.t/.exec(query)?.[1]}.* TO ?@'%'`, [`${x}_clone`]);
        await admin.end();
      }
      const { host, port } = engine.server();
      const masterarn = await masterSecret(engine);
      const common = { engine: engine.engine, port, masterarn };
      // x's version names a host that does not resolve: only its password, tried at AWSCURRENT's host, proves anything.
      const arn = await createSecret({
        ...common,
        host: 'renamed.example.invalid',
        username: x,
        password: xPassword,
      });
      await secretsManager().send(
        new PutSecretValueCommand({
          SecretId: arn,
          SecretString: JSON.stringify({ ...common, host, username: `${x}_clone`, password: clonePassword }),
        }),
      );

      await rotate(arn);

      const current = await secretValue(arn);
      expect(current.username).toBe(x);
      expect(await engine.canRead(x, current.password as string, query)).toBe(true);
      expect(await engine.canLogin(x, xPassword)).toBe(false);
    });

    it('completes a rotation into the original after an earlier attempt already set its password', async () => {
      const masterarn = await masterSecret(engine);
      const password = randomPassword();
      const username = await engine.createUser(password);
      const { host, port } = engine.server();
      const arn = await createSecret({ engine: engine.engine, host, port, username, password, masterarn });
      await rotate(arn);
      const token = randomUUID();
      await startRotation(arn, token);
      const invoke = invoker();
      for (const Step of ['createSecret', 'setSecret'] as const)
        await invoke({ Step, SecretId: arn, ClientRequestToken: token });
      // AWSPREVIOUS no longer logs in as the original (its password is the pending one now): the pending login proves it.
      expect(await engine.canLogin(username, password)).toBe(false);

      await rotate(arn, { token });

      const current = await secretValue(arn);
      expect(current.username).toBe(username);
      expect(await engine.canLogin(username, current.password as string)).toBe(true);
    });
  },
);

describe('mariadb: an existing account that is not this rotation’s', () => {
  it('refuses a locked account that holds another password (not one an earlier attempt created)', async () => {
    const { victim, victimPassword, attacker, attackerPassword } = await victimAndAttacker(mariadbUnderTest);
    const admin = await mysqlAdmin();
    await admin.query("ALTER USER ?@'%' ACCOUNT LOCK", [victim]);
    const { host, port } = mariadbUnderTest.server();
    const masterarn = await masterSecret(mariadbUnderTest);
    const arn = await createSecret({
      engine: 'mariadb',
      host,
      port,
      username: attacker,
      password: attackerPassword,
      masterarn,
    });

    const error = await rotate(arn).catch((e: unknown) => e);

    expect(((error as Error).cause as Error).message).toMatch(REFUSED(victim));
    await admin.query("ALTER USER ?@'%' ACCOUNT UNLOCK", [victim]);
    await admin.end();
    expect(await mariadbUnderTest.canLogin(victim, victimPassword)).toBe(true);
  });

  it('refuses an account of that name on another host, rather than creating one beside it', async () => {
    const password = randomPassword();
    const username = await mariadbUnderTest.createUser(password);
    const admin = await mysqlAdmin();
    await admin.query("CREATE USER ?@'10.9.8.7' IDENTIFIED BY 'Someone-else-1'", [`${username}_clone`]);
    await admin.end();
    const { host, port } = mariadbUnderTest.server();
    const masterarn = await masterSecret(mariadbUnderTest);
    const arn = await createSecret({ engine: 'mariadb', host, port, username, password, masterarn });

    const error = await rotate(arn).catch((e: unknown) => e);

    expect(((error as Error).cause as Error).message).toMatch(REFUSED(`${username}_clone`));
  });
});

describe('a legitimate user named x_clone whose x does not exist', () => {
  it('mariadb: creates x with the grants of x_clone, and switches back and forth', async () => {
    const password = randomPassword();
    const username = await mariadbUnderTest.createUser(password, `${uniqueName('x')}_clone`);
    const query = await mariadbUnderTest.grantReadableTable(username);
    const { host, port } = mariadbUnderTest.server();
    const masterarn = await masterSecret(mariadbUnderTest);
    const arn = await createSecret({ engine: 'mariadb', host, port, username, password, masterarn });
    const base = username.slice(0, -'_clone'.length);

    for (const into of [base, username]) {
      await rotate(arn);
      const current = await secretValue(arn);
      expect(current.username).toBe(into);
      expect(await mariadbUnderTest.canRead(into, current.password as string, query)).toBe(true);
    }
  });

  it('postgres: refuses, as x created now would hold none of the privileges of x_clone', async () => {
    const password = randomPassword();
    const username = await postgresUnderTest.createUser(password, `${uniqueName('x')}_clone`);
    const { host, port } = postgresUnderTest.server();
    const masterarn = await masterSecret(postgresUnderTest);
    const arn = await createSecret({ engine: 'postgres', host, port, username, password, masterarn });

    const error = await rotate(arn).catch((e: unknown) => e);

    const cause = (error as Error).cause as Error;
    expect(cause).toBeInstanceOf(DatabaseError);
    expect(cause.message).toMatch(/is named as the clone of "x_[0-9a-f]+", which does not exist/);
    expect((await secretValue(arn)).username).toBe(username);
    const pending = await secretValue(arn, 'AWSPENDING');
    expect(await postgresUnderTest.canLogin(pending.username as string, pending.password as string)).toBe(
      false,
    );
  });
});
