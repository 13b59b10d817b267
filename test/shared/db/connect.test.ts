import { describe, expect, it } from 'vitest';
import { type ConnectionTarget, connectMysql, connectPostgres } from '../../../shared/db/connect';
import { AuthenticationError, DatabaseError } from '../../../shared/errors';
import { createLogger } from '../../../shared/log';
import { createMysqlUser, createPgUser, randomPassword, stack } from '../../stack/fixtures';
import { freePort } from '../../stack/process';
import { captureOutput } from '../../support/capture';

const connectors = {
  postgres: { connect: connectPostgres, server: () => stack().postgres, createUser: createPgUser },
  mariadb: { connect: connectMysql, server: () => stack().mariadb, createUser: createMysqlUser },
};

describe.each(Object.entries(connectors))('%s connections', (_engine, { connect, server, createUser }) => {
  async function target(overrides: Partial<ConnectionTarget> = {}): Promise<ConnectionTarget> {
    const password = randomPassword();
    const user = await createUser({ password });
    return { host: server().host, port: server().port, user, password, tls: 'prefer', ...overrides };
  }

  async function close(connection: { end(): Promise<unknown> }) {
    await connection.end();
  }

  it('falls back to plaintext when TLS is preferred and the server offers none, and logs the downgrade', async () => {
    const t = await target();
    const output = captureOutput();
    const connection = await connect(t, {}, { logger: createLogger('test'), purpose: 'test' });
    output.stop();
    await close(connection);

    expect(output.text()).toContain('connecting in plaintext');
    expect(output.text()).not.toContain(t.password);
  });

  it('refuses to connect without TLS when the secret requires it', async () => {
    const t = await target({ tls: 'require' });
    await expect(connect(t)).rejects.toBeInstanceOf(DatabaseError);
  });

  it('connects in plaintext without trying TLS when the secret disables it', async () => {
    const t = await target({ tls: 'disable' });
    const output = captureOutput();
    const connection = await connect(t, {}, { logger: createLogger('test') });
    output.stop();
    await close(connection);
    expect(output.text()).not.toContain('plaintext');
  });

  it('raises AuthenticationError naming user, host and port but not the password', async () => {
    const t = await target();
    const wrong = `${t.password}-wrong`;
    const error = await connect({ ...t, password: wrong }, {}, { purpose: 'setSecret' }).catch(
      (e: unknown) => e,
    );

    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as Error).message).toContain(`${t.user}@${t.host}:${t.port} (setSecret)`);
    expect((error as Error).message).not.toContain(wrong);
  });

  it('raises DatabaseError (not AuthenticationError) when nothing listens', async () => {
    const port = await freePort();
    const error = await connect({
      host: '127.0.0.1',
      port,
      user: 'u',
      password: 'p4ssw0rd',
      tls: 'prefer',
    }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(DatabaseError);
    expect(error).not.toBeInstanceOf(AuthenticationError);
    expect((error as Error).message).toContain(`u@127.0.0.1:${port}`);
  });
});
