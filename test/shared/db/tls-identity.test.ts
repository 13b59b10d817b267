import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretsManagerClients } from '../../../shared/aws/assume-role';
import { type ConnectionTarget, connectMysql, connectPostgres } from '../../../shared/db/connect';
import { resetTrustedCertificates } from '../../../shared/db/tls';
import { AuthenticationError, DatabaseError, SecretFormatError } from '../../../shared/errors';
import { exportConfigSchema, resolveConfig } from '../../../shared/export/config';
import { CredentialSource } from '../../../shared/export/credentials';
import { createLogger } from '../../../shared/log';
import { createSecret, randomPassword, secretsManager, uniqueName } from '../../stack/fixtures';
import { startTlsServers, type TlsEngine, type TlsServers } from '../../stack/tls-servers';
import { captureOutput } from '../../support/capture';

/**
 * Verified TLS against real servers that present chosen certificates: the chain
 * and the server's identity (IP address or DNS name, or tlsServerName) on both
 * engines, and no plaintext retry after any certificate failure.
 */
let servers: TlsServers;
const users = {} as Record<TlsEngine, { user: string; password: string }>;

beforeAll(async () => {
  servers = await startTlsServers();
  process.env.DB_TLS_CA_FILE = servers.caFile;
  resetTrustedCertificates();
  for (const engine of ['mariadb', 'postgres'] as const) {
    users[engine] = { user: uniqueName('tls'), password: randomPassword() };
    await servers.createUser(engine, users[engine].user, users[engine].password);
  }
});

afterAll(async () => {
  delete process.env.DB_TLS_CA_FILE;
  resetTrustedCertificates();
  await servers?.stop();
});

function target(engine: TlsEngine, host: string, overrides: Partial<ConnectionTarget>): ConnectionTarget {
  return { host, port: servers[engine].port, ...users[engine], tls: 'require', ...overrides };
}

/** Connects under the product's policy and returns the session's TLS cipher as the server reports it ('' for none). */
async function cipherOf(engine: TlsEngine, t: ConnectionTarget): Promise<string> {
  const options = { logger: createLogger('test'), purpose: 'test' };
  if (engine === 'mariadb') {
    const conn = await connectMysql(t, {}, options);
    try {
      const [rows] = await conn.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'");
      return (rows as Array<{ Value: string }>)[0]?.Value ?? '';
    } finally {
      await conn.end();
    }
  }
  const client = await connectPostgres(t, {}, options);
  try {
    const { rows } = await client.query('SELECT ssl, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    return rows[0]?.ssl ? (rows[0].cipher as string) : '';
  } finally {
    await client.end();
  }
}

/** The error of a connection attempt that must fail, and what was logged meanwhile. */
async function refusal(engine: TlsEngine, t: ConnectionTarget): Promise<{ error: Error; log: string }> {
  const output = captureOutput();
  try {
    const error = await cipherOf(engine, t).then(
      (cipher) => new Error(`connected (cipher "${cipher}")`),
      (e: Error) => e,
    );
    return { error, log: output.text() };
  } finally {
    output.stop();
  }
}

const ENGINES = ['mariadb', 'postgres'] as const;
const HOSTS = ['127.0.0.1', 'localhost'];
const MODES = ['require', 'prefer'] as const;
const cases = ENGINES.flatMap((engine) =>
  HOSTS.flatMap((host) => MODES.map((tls) => ({ engine, host, tls }))),
);

describe('a certificate from the trusted CA that names the host', () => {
  beforeAll(() => servers.present('local'));

  it.each(cases)('$engine at $host ($tls): connects over TLS', async ({ engine, host, tls }) => {
    expect(await cipherOf(engine, target(engine, host, { tls }))).not.toBe('');
  });
});

describe('a certificate from the trusted CA for another name', () => {
  beforeAll(() => servers.present('other'));

  it.each(cases)(
    '$engine at $host ($tls): refused, naming the host and the certificate, never retried in plaintext',
    async ({ engine, host, tls }) => {
      const t = target(engine, host, { tls });

      const { error, log } = await refusal(engine, t);

      expect(error).toBeInstanceOf(DatabaseError);
      expect(error).not.toBeInstanceOf(AuthenticationError);
      expect(error.message).toContain(`${t.user}@${host}:${t.port}`);
      expect(error.message).toContain(`does not match host ${host}`);
      expect(error.message).toContain('DNS:db.other.example');
      expect(error.message).not.toContain(t.password);
      // A plaintext retry would have logged the downgrade and, with the right password, connected.
      expect(log).not.toContain('plaintext');
    },
  );
});

describe('a certificate from the trusted CA for the name localhost only', () => {
  beforeAll(() => servers.present('localhostOnly'));

  it.each(ENGINES.flatMap((engine) => MODES.map((tls) => ({ engine, tls }))))(
    '$engine at 127.0.0.1 ($tls): refused, as the certificate does not name the address',
    async ({ engine, tls }) => {
      const t = target(engine, '127.0.0.1', { tls });

      const { error, log } = await refusal(engine, t);

      expect(error).toBeInstanceOf(DatabaseError);
      expect(error.message).toContain('does not match host 127.0.0.1: it names subjectAltName DNS:localhost');
      expect(log).not.toContain('plaintext');
    },
  );

  it.each(ENGINES)('%s at localhost: connects over TLS', async (engine) => {
    expect(await cipherOf(engine, target(engine, 'localhost', {}))).not.toBe('');
  });
});

describe('a certificate that names the host, from a CA nobody trusts', () => {
  beforeAll(() => servers.present('untrusted'));

  it.each(cases)(
    '$engine at $host ($tls): refused, never retried in plaintext',
    async ({ engine, host, tls }) => {
      const t = target(engine, host, { tls });

      const { error, log } = await refusal(engine, t);

      expect(error).toBeInstanceOf(DatabaseError);
      expect(error.message).toMatch(/unable to (get local issuer|verify)/);
      expect(error.message).not.toContain(t.password);
      expect(log).not.toContain('plaintext');
    },
  );
});

describe('tlsServerName: the certificate names only db.internal.example', () => {
  beforeAll(() => servers.present('internal'));

  it.each(ENGINES.flatMap((engine) => HOSTS.map((host) => ({ engine, host }))))(
    '$engine at $host: connects over TLS with tlsServerName db.internal.example, is refused without it',
    async ({ engine, host }) => {
      const withName = target(engine, host, { tlsServerName: 'db.internal.example' });
      expect(await cipherOf(engine, withName)).not.toBe('');

      const { error } = await refusal(engine, target(engine, host, {}));
      expect(error).toBeInstanceOf(DatabaseError);
      expect(error.message).toContain('DNS:db.internal.example');
    },
  );

  it.each(ENGINES)(
    '%s: refused when tlsServerName is another name than the certificate has',
    async (engine) => {
      const t = target(engine, '127.0.0.1', { tlsServerName: 'db.other.example', tls: 'prefer' });

      const { error, log } = await refusal(engine, t);

      expect(error).toBeInstanceOf(DatabaseError);
      expect(error.message).toContain('does not match tlsServerName db.other.example');
      expect(error.message).toContain('DNS:db.internal.example');
      expect(log).not.toContain('plaintext');
    },
  );

  it.each([
    ['mariadb', 'mysql'],
    ['postgres', 'postgres'],
  ] as const)('%s: the exporter takes tlsServerName from the cluster secret', async (engine, family) => {
    const { user, password } = users[engine];
    const secret = {
      engine,
      host: '127.0.0.1',
      port: servers[engine].port,
      username: user,
      password,
      ssl: 'true',
    };
    const named = await createSecret({ ...secret, tlsServerName: 'db.internal.example' });
    const malformed = await createSecret({ ...secret, tlsServerName: '127.0.0.1' });
    const source = new CredentialSource(new SecretsManagerClients({ own: secretsManager }));
    const logger = createLogger('test');

    const cipher = await source.open({ secretId: named }, family, (t) => cipherOf(engine, t), logger);
    const error = await source
      .open({ secretId: malformed }, family, (t) => cipherOf(engine, t), logger)
      .catch((e: unknown) => e);

    expect(cipher).not.toBe('');
    expect(error).toBeInstanceOf(SecretFormatError);
    expect((error as Error).message).toContain('tlsServerName must be a DNS name');
  });

  it.each([
    ['mariadb', 'mysql'],
    ['postgres', 'postgres'],
  ] as const)(
    '%s: the exporter takes clusters/<c>/tls-server-name with host parameters',
    async (engine, family) => {
      const { user, password } = users[engine];
      const cluster = {
        engine,
        host: '127.0.0.1',
        port: String(servers[engine].port),
        user,
        password,
        ssl: 'true',
      };
      const credentialsWith = (extra: Record<string, string>) =>
        resolveConfig(
          exportConfigSchema.parse({
            global: { destination: 'file:///tmp/x' },
            clusters: { c: { ...cluster, ...extra } },
          }),
        ).clusters.get('c')?.credentials as Parameters<CredentialSource['open']>[0];
      const source = new CredentialSource(new SecretsManagerClients({ own: secretsManager }));
      const open = (extra: Record<string, string>) =>
        source.open(credentialsWith(extra), family, (t) => cipherOf(engine, t), createLogger('test'));

      expect(await open({ 'tls-server-name': 'db.internal.example' })).not.toBe('');
      await expect(open({})).rejects.toThrow(/does not match host 127\.0\.0\.1/);
      expect(
        exportConfigSchema.safeParse({
          global: {},
          clusters: { c: { ...cluster, 'tls-server-name': '10.0.0.1' } },
        }).error?.message,
      ).toContain('must be a DNS name');
    },
  );
});
