import { randomUUID } from 'node:crypto';
import { CreateSecretCommand, PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/rotate';
import {
  AuthenticationError,
  ConfigError,
  DatabaseError,
  EventError,
  RotationStateError,
  SecretFormatError,
} from '../../shared/errors';
import { passwordPolicySource } from '../../shared/rotation/settings';
import {
  type EngineUnderTest,
  invoker,
  mariadbUnderTest,
  postgresUnderTest,
  putPending,
  rotate,
  rotationDeps,
  secretValue,
  singleUserSecret,
  startRotation,
} from '../shared/rotation/support';
import { createSecret, randomPassword, secretsManager } from '../stack/fixtures';
import { freePort } from '../stack/process';

/**
 * Each case arranges a secret (whose user logs in with `password`), starts a
 * rotation, and runs something that must fail with a specific error. Afterwards
 * the secret's current value and the database password must be unchanged.
 */
interface Arranged {
  arn: string;
  username: string;
  password: string;
  engine: EngineUnderTest;
  act: () => Promise<unknown>;
}

interface BadInput {
  name: string;
  error: new (...args: never[]) => Error;
  message: RegExp;
  arrange: () => Promise<Arranged>;
}

const STEPS = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const;

/** A real secret and user, a started rotation, and `act` running steps against it. */
async function rotating(
  engine: EngineUnderTest,
  act: (ctx: { arn: string; token: string; username: string; password: string }) => Promise<unknown>,
  extra: Record<string, unknown> = {},
): Promise<Arranged> {
  const { arn, username, password } = await singleUserSecret(engine, extra);
  const token = randomUUID();
  await startRotation(arn, token);
  return { arn, username, password, engine, act: () => act({ arn, token, username, password }) };
}

function run(arn: string, token: string, steps: readonly (typeof STEPS)[number][] = STEPS) {
  const invoke = invoker();
  return (async () => {
    for (const Step of steps) await invoke({ Step, SecretId: arn, ClientRequestToken: token });
  })();
}

/** A user whose secret value is replaced by `value` (a new AWSCURRENT written behind the rotation's back). */
async function withRawSecret(
  engine: EngineUnderTest,
  value: string | Record<string, unknown>,
): Promise<Arranged> {
  const password = randomPassword();
  const username = await engine.createUser(password);
  const created = await secretsManager().send(
    new CreateSecretCommand({
      Name: `bad_${randomUUID()}`,
      SecretString: typeof value === 'string' ? value : JSON.stringify({ ...value, username, password }),
    }),
  );
  const arn = created.ARN as string;
  const token = randomUUID();
  await startRotation(arn, token);
  return { arn, username, password, engine, act: () => run(arn, token, ['createSecret']) };
}

const pgServer = () => postgresUnderTest.server();

const CASES: BadInput[] = [
  {
    name: 'an event that is not an object',
    error: EventError,
    message: /must be a JSON object/,
    arrange: async () => {
      const s = await singleUserSecret(postgresUnderTest);
      return { ...s, engine: postgresUnderTest, act: () => makeHandler(rotationDeps())(null) };
    },
  },
  {
    name: 'an unknown step',
    error: EventError,
    message: /Step must be one of createSecret, setSecret, testSecret, finishSecret/,
    arrange: async () => {
      const s = await singleUserSecret(postgresUnderTest);
      const event = { Step: 'rotateSecret', SecretId: s.arn, ClientRequestToken: randomUUID() };
      return { ...s, engine: postgresUnderTest, act: () => makeHandler(rotationDeps())(event) };
    },
  },
  {
    name: 'a missing SecretId',
    error: EventError,
    message: /SecretId is missing/,
    arrange: async () => {
      const s = await singleUserSecret(postgresUnderTest);
      const event = { Step: 'createSecret', ClientRequestToken: randomUUID() };
      return { ...s, engine: postgresUnderTest, act: () => makeHandler(rotationDeps())(event) };
    },
  },
  {
    name: 'a missing ClientRequestToken',
    error: EventError,
    message: /ClientRequestToken is missing/,
    arrange: async () => {
      const s = await singleUserSecret(mariadbUnderTest);
      const event = { Step: 'setSecret', SecretId: s.arn };
      return { ...s, engine: mariadbUnderTest, act: () => makeHandler(rotationDeps())(event) };
    },
  },
  {
    name: 'non-printable characters in the SecretId',
    error: EventError,
    message: /SecretId must contain only printable characters/,
    arrange: async () => {
      const s = await singleUserSecret(mariadbUnderTest);
      const event = { Step: 'createSecret', SecretId: `${s.arn}\u0000\n`, ClientRequestToken: randomUUID() };
      return { ...s, engine: mariadbUnderTest, act: () => makeHandler(rotationDeps())(event) };
    },
  },
  {
    name: 'a token that is not a version of the secret',
    error: RotationStateError,
    message: /has no stage for rotation/,
    arrange: () => rotating(postgresUnderTest, ({ arn }) => run(arn, randomUUID())),
  },
  {
    name: 'a token that is not AWSPENDING (the previous version)',
    error: RotationStateError,
    message: /not set as AWSPENDING/,
    arrange: async () => {
      const s = await singleUserSecret(postgresUnderTest);
      const first = await rotate(s.arn);
      await rotate(s.arn);
      // After two rotations the first token is AWSPREVIOUS; the DB now has the newest password.
      const latest = await secretValue(s.arn);
      return {
        arn: s.arn,
        username: s.username,
        password: latest.password as string,
        engine: postgresUnderTest,
        act: () => run(s.arn, first.token, ['setSecret']),
      };
    },
  },
  {
    name: 'a secret that is not enabled for rotation',
    error: RotationStateError,
    message: /is not enabled for rotation/,
    arrange: async () => {
      const s = await singleUserSecret(mariadbUnderTest);
      return { ...s, engine: mariadbUnderTest, act: () => run(s.arn, randomUUID(), ['createSecret']) };
    },
  },
  {
    name: 'a secret that does not exist',
    error: RotationStateError,
    message: /Could not describe secret no-such-secret-[0-9a-f]+: ResourceNotFoundException/,
    arrange: async () => {
      const s = await singleUserSecret(mariadbUnderTest);
      const id = `no-such-secret-${randomUUID().slice(0, 8)}`;
      return { ...s, engine: mariadbUnderTest, act: () => run(id, randomUUID(), ['createSecret']) };
    },
  },
  {
    name: 'a secret value that is not JSON',
    error: SecretFormatError,
    message: /is not valid JSON/,
    arrange: () => withRawSecret(postgresUnderTest, 'user=app password=hunter2hunter2'),
  },
  {
    name: 'a secret without a password key',
    error: SecretFormatError,
    message: /malformed: password is missing/,
    arrange: async () => {
      const a = await withRawSecret(postgresUnderTest, {});
      const { host, port } = pgServer();
      // Replace AWSCURRENT with a value lacking the password (moto keeps the started rotation).
      await secretsManager().send(
        new PutSecretValueCommand({
          SecretId: a.arn,
          SecretString: JSON.stringify({ engine: 'postgres', host, port, username: a.username }),
        }),
      );
      return a;
    },
  },
  {
    name: 'an unsupported engine',
    error: SecretFormatError,
    message: /Unsupported engine "oracle"/,
    arrange: () => rotating(postgresUnderTest, ({ arn, token }) => run(arn, token), { engine: 'oracle' }),
  },
  {
    name: 'a port that is not a number',
    error: SecretFormatError,
    message: /port must be a port number/,
    arrange: () => rotating(mariadbUnderTest, ({ arn, token }) => run(arn, token), { port: 'mysql' }),
  },
  {
    name: 'an ssl value other than true or false',
    error: SecretFormatError,
    message: /ssl must be true, false or absent/,
    arrange: () => rotating(mariadbUnderTest, ({ arn, token }) => run(arn, token), { ssl: 'maybe' }),
  },
  {
    name: 'a pending version for another user',
    error: SecretFormatError,
    message: /is for user "someone_else", expected "u_[0-9a-f]+"/,
    arrange: () =>
      rotating(postgresUnderTest, async ({ arn, token }) => {
        const current = await secretValue(arn);
        await putPending(arn, token, { ...current, username: 'someone_else', password: 'Other-password-1' });
        return run(arn, token, ['setSecret']);
      }),
  },
  {
    name: 'a pending version for another host',
    error: SecretFormatError,
    message: /is for host db\.example\.invalid, AWSCURRENT for 127\.0\.0\.1/,
    arrange: () =>
      rotating(mariadbUnderTest, async ({ arn, token }) => {
        const current = await secretValue(arn);
        await putPending(arn, token, {
          ...current,
          host: 'db.example.invalid',
          password: 'Other-password-1',
        });
        return run(arn, token, ['setSecret']);
      }),
  },
  {
    name: 'setSecret before createSecret',
    error: RotationStateError,
    message: /has no value: run createSecret first/,
    arrange: () => rotating(postgresUnderTest, ({ arn, token }) => run(arn, token, ['setSecret'])),
  },
  {
    name: 'an unreachable database',
    error: DatabaseError,
    message: /Database error for u_[0-9a-f]+@127\.0\.0\.1:\d+ \(setSecret: AWSPENDING\)/,
    arrange: async () => {
      const port = await freePort();
      const a = await rotating(postgresUnderTest, ({ arn, token }) => run(arn, token), { port });
      return a;
    },
  },
  {
    name: 'ssl: true against a server that offers no TLS',
    error: DatabaseError,
    message: /u_[0-9a-f]+@127\.0\.0\.1:\d+ \(setSecret: AWSPENDING\)/,
    arrange: () => rotating(postgresUnderTest, ({ arn, token }) => run(arn, token), { ssl: true }),
  },
  {
    name: 'a wrong master password',
    error: AuthenticationError,
    message: /Login refused for postgres@127\.0\.0\.1:\d+ \(setSecret: master\)/,
    arrange: async () => {
      const { host, port, adminUser } = pgServer();
      const masterarn = await createSecret({
        engine: 'postgres',
        host,
        port,
        username: adminUser,
        password: 'not-the-master-password',
      });
      return rotating(postgresUnderTest, ({ arn, token }) => run(arn, token), { masterarn });
    },
  },
  {
    name: 'current credentials that do not log in (confused-deputy guard, master never used)',
    error: AuthenticationError,
    message: /Login refused for u_[0-9a-f]+@127\.0\.0\.1:\d+ \(setSecret: AWSCURRENT\)/,
    arrange: async () => {
      const { host, port, adminUser, adminPassword } = mariadbUnderTest.server();
      const masterarn = await createSecret({
        engine: 'mariadb',
        host,
        port,
        username: adminUser,
        password: adminPassword,
      });
      const a = await rotating(mariadbUnderTest, ({ arn, token }) => run(arn, token), { masterarn });
      // The secret says one password, the database has another.
      await mariadbUnderTest.adminSetPassword(a.username, 'Db-has-another-1');
      return { ...a, password: 'Db-has-another-1' };
    },
  },
  {
    name: 'a master secret for another host',
    error: SecretFormatError,
    message: /Master secret .* is for host localhost, not 127\.0\.0\.1/,
    arrange: async () => {
      const { port, adminUser, adminPassword } = mariadbUnderTest.server();
      const masterarn = await createSecret({
        engine: 'mariadb',
        host: 'localhost',
        port,
        username: adminUser,
        password: adminPassword,
      });
      return rotating(mariadbUnderTest, ({ arn, token }) => run(arn, token), { masterarn });
    },
  },
  {
    name: 'a clone name longer than the server allows',
    error: SecretFormatError,
    message: /is longer than the 80 characters this server allows/,
    arrange: async () => {
      const { host, port, adminUser, adminPassword } = mariadbUnderTest.server();
      const masterarn = await createSecret({
        engine: 'mariadb',
        host,
        port,
        username: adminUser,
        password: adminPassword,
      });
      const password = randomPassword();
      const username = await mariadbUnderTest.createUser(
        password,
        `u${randomUUID().replace(/-/g, '')}`.padEnd(78, 'x'),
      );
      const arn = await createSecret({ engine: 'mariadb', host, port, username, password, masterarn });
      const token = randomUUID();
      await startRotation(arn, token);
      return { arn, username, password, engine: mariadbUnderTest, act: () => run(arn, token) };
    },
  },
  {
    name: 'a malformed password policy',
    error: ConfigError,
    message: /PASSWORD_LENGTH: must be an integer/,
    arrange: () =>
      rotating(mariadbUnderTest, ({ arn, token }) => {
        const deps = rotationDeps({
          passwordPolicy: passwordPolicySource({ env: { PASSWORD_LENGTH: '32chars' } }),
        });
        return makeHandler(deps)({ Step: 'createSecret', SecretId: arn, ClientRequestToken: token });
      }),
  },
];

describe('rotation refuses bad input', () => {
  it('has at least 15 cases', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(15);
  });

  it.each(CASES)(
    'fails on $name with a specific error and changes nothing',
    async ({ arrange, error, message }) => {
      const { arn, username, password, engine, act } = await arrange();
      const before = await secretValue(arn).catch(() => undefined);

      const thrown = await act().then(
        () => undefined,
        (e: unknown) => e,
      );

      expect(thrown).toBeInstanceOf(error);
      expect((thrown as Error).message).toMatch(message);
      expect((thrown as Error).message).not.toContain(password);
      expect(await secretValue(arn).catch(() => undefined)).toEqual(before);
      expect(await engine.canLogin(username, password)).toBe(true);
    },
  );
});
