import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/rotate';
import { resetTrustedCertificates } from '../../shared/db/tls';
import { DatabaseError } from '../../shared/errors';
import type { PreflightReport } from '../../shared/rotation/preflight';
import { rotate, rotationDeps, secretValue, stagesOf } from '../shared/rotation/support';
import { createSecret, randomPassword, uniqueName } from '../stack/fixtures';
import { startTlsServers, type TlsEngine, type TlsServers } from '../stack/tls-servers';
import { captureOutput } from '../support/capture';

/**
 * Rotations with `ssl: true` against servers that present chosen certificates from
 * the CA named by DB_TLS_CA_FILE: a certificate for another name stops the rotation
 * before any login (the master's included) and changes nothing.
 */
let servers: TlsServers;

beforeAll(async () => {
  servers = await startTlsServers();
  process.env.DB_TLS_CA_FILE = servers.caFile;
  resetTrustedCertificates();
});

afterAll(async () => {
  delete process.env.DB_TLS_CA_FILE;
  resetTrustedCertificates();
  await servers?.stop();
});

/** Logs in without TLS (the servers allow it): does this password work? */
async function canLogin(engine: TlsEngine, user: string, password: string): Promise<boolean> {
  const { host, port } = servers[engine];
  try {
    if (engine === 'mariadb') {
      const conn = await mysql.createConnection({ host, port, user, password });
      await conn.end();
    } else {
      const client = new pg.Client({ host, port, user, password, database: 'postgres' });
      await client.connect();
      await client.end();
    }
    return true;
  } catch {
    return false;
  }
}

async function userSecret(engine: TlsEngine, host: string, extra: Record<string, unknown> = {}) {
  const username = uniqueName('tls');
  const password = randomPassword();
  await servers.createUser(engine, username, password);
  const { port } = servers[engine];
  const arn = await createSecret({ engine, host, port, username, password, ssl: true, ...extra });
  return { arn, username, password };
}

/** A master secret (the server's admin, `ssl: true` unless `master` says otherwise) and a user secret naming it. */
async function alternatingUserSecret(
  engine: TlsEngine,
  host: string,
  extra: { master?: Record<string, unknown>; user?: Record<string, unknown> } = {},
) {
  const { port, adminUser, adminPassword } = servers[engine];
  const masterarn = await createSecret({
    engine,
    host,
    port,
    username: adminUser,
    password: adminPassword,
    ssl: true,
    ...extra.master,
  });
  return { ...(await userSecret(engine, host, { masterarn, ...extra.user })), adminPassword };
}

/** Every message along an error's cause chain. */
function messages(error: unknown): string {
  const parts: string[] = [];
  for (let e = error; e instanceof Error; e = e.cause) parts.push(e.message);
  return parts.join('\n');
}

function causeOfType<T>(error: unknown, type: abstract new (...args: never[]) => T): T | undefined {
  for (let e = error; e instanceof Error; e = e.cause) if (e instanceof type) return e as T;
  return undefined;
}

const ENGINES = ['mariadb', 'postgres'] as const;
const HOSTS = ['127.0.0.1', 'localhost'];

describe('the server presents a certificate from the trusted CA for db.other.example', () => {
  beforeAll(() => servers.present('other'));

  it.each(ENGINES.flatMap((engine) => HOSTS.map((host) => ({ engine, host }))))(
    '$engine at $host, single user: the rotation fails and changes nothing',
    async ({ engine, host }) => {
      const { arn, username, password } = await userSecret(engine, host);
      const stagesBefore = await stagesOf(arn);

      const output = captureOutput();
      const error = await rotate(arn).catch((e: unknown) => e);
      output.stop();

      expect(causeOfType(error, DatabaseError)?.message).toMatch(
        new RegExp(
          `@${host}:\\d+ .*does not match host ${host}: it names subjectAltName DNS:db\\.other\\.example`,
        ),
      );
      expect(messages(error)).not.toContain(password);
      expect(output.text()).not.toContain(password);
      expect((await secretValue(arn)).password).toBe(password);
      const current = (stages: Record<string, string[]>) =>
        Object.keys(stages).find((v) => stages[v]?.includes('AWSCURRENT'));
      expect(current(await stagesOf(arn))).toBe(current(stagesBefore));
      expect(await canLogin(engine, username, password)).toBe(true);
    },
  );

  it.each(ENGINES)('%s, alternating users: the master does not log in; no clone is made', async (engine) => {
    const { arn, username, password, adminPassword } = await alternatingUserSecret(engine, '127.0.0.1');

    const output = captureOutput();
    const error = await rotate(arn).catch((e: unknown) => e);
    output.stop();

    expect(causeOfType(error, DatabaseError)?.message).toContain('DNS:db.other.example');
    expect(output.text()).not.toContain(adminPassword);
    expect(messages(error)).not.toContain(adminPassword);
    expect((await secretValue(arn)).password).toBe(password);
    expect(await canLogin(engine, username, password)).toBe(true);
    expect(await canLogin(engine, `${username}_clone`, password)).toBe(false);
    expect(await userExists(engine, `${username}_clone`)).toBe(false);
  });

  it.each(ENGINES)(
    "%s, alternating users: the rotated secret's ssl false does not send the master's password in plaintext",
    async (engine) => {
      // JSON drops the undefined: the master secret has no ssl key.
      const { arn, username, password, adminPassword } = await alternatingUserSecret(engine, '127.0.0.1', {
        master: { ssl: undefined },
        user: { ssl: false },
      });

      const output = captureOutput();
      const error = await rotate(arn).catch((e: unknown) => e);
      output.stop();

      // The user logged in without TLS, as its secret says; the master tried verified TLS and stopped.
      expect(causeOfType(error, DatabaseError)?.message).toMatch(
        /@127\.0\.0\.1:\d+ \(setSecret: master\): .*DNS:db\.other\.example/,
      );
      expect(output.text()).not.toContain(adminPassword);
      expect((await secretValue(arn)).password).toBe(password);
      expect(await userExists(engine, `${username}_clone`)).toBe(false);
    },
  );
});

describe('the server presents a certificate that names it', () => {
  beforeAll(() => servers.present('local'));

  it.each(ENGINES.map((engine) => ({ engine, host: '127.0.0.1' })))(
    '$engine at $host, single user: rotates over verified TLS',
    async ({ engine, host }) => {
      const { arn, username, password } = await userSecret(engine, host);

      await rotate(arn);

      const current = await secretValue(arn);
      expect(current.password).not.toBe(password);
      expect(await canLogin(engine, username, current.password as string)).toBe(true);
      expect(await canLogin(engine, username, password)).toBe(false);
    },
  );
});

describe('tlsServerName: the certificate names only db.internal.example, the secret says host 127.0.0.1', () => {
  beforeAll(() => servers.present('internal'));

  it.each(ENGINES)('%s, single user: rotates with tlsServerName, fails without it', async (engine) => {
    const named = await userSecret(engine, '127.0.0.1', { tlsServerName: 'db.internal.example' });
    const unnamed = await userSecret(engine, '127.0.0.1');

    await rotate(named.arn);
    const error = await rotate(unnamed.arn).catch((e: unknown) => e);

    const current = await secretValue(named.arn);
    expect(current.tlsServerName).toBe('db.internal.example');
    expect(await canLogin(engine, named.username, current.password as string)).toBe(true);
    expect(causeOfType(error, DatabaseError)?.message).toContain('DNS:db.internal.example');
    expect((await secretValue(unnamed.arn)).password).toBe(unnamed.password);
  });

  it.each(ENGINES)('%s: preflight logs in with tlsServerName, as rotation does', async (engine) => {
    const named = await userSecret(engine, '127.0.0.1', { tlsServerName: 'db.internal.example' });
    const handler = makeHandler(rotationDeps());

    const report = (await handler({
      action: 'preflight',
      SecretId: named.arn,
    })) as unknown as PreflightReport;

    const status = Object.fromEntries(report.checks.map((c) => [c.name, c.status]));
    expect(status).toMatchObject({ login: 'pass', 'password-change': 'pass' });
    // The test certificates expire within days: a warning, not a failure.
    expect(status.tls).not.toBe('fail');
    expect(JSON.stringify(report)).not.toContain(named.password);
  });

  it.each(ENGINES)(
    "%s, alternating users: the rotated secret's tlsServerName does not apply to the master",
    async (engine) => {
      const { arn, username, password } = await alternatingUserSecret(engine, '127.0.0.1', {
        user: { tlsServerName: 'db.internal.example' },
      });

      const error = await rotate(arn).catch((e: unknown) => e);

      expect(causeOfType(error, DatabaseError)?.message).toMatch(
        /\(setSecret: master\): TLS certificate does not match host 127\.0\.0\.1: it names subjectAltName DNS:db\.internal\.example/,
      );
      expect((await secretValue(arn)).password).toBe(password);
      expect(await userExists(engine, `${username}_clone`)).toBe(false);
    },
  );

  it.each(ENGINES)('%s, alternating users: the master logs in with its own tlsServerName', async (engine) => {
    const name = { tlsServerName: 'db.internal.example' };
    const { arn, username } = await alternatingUserSecret(engine, '127.0.0.1', { master: name, user: name });

    await rotate(arn);

    const current = await secretValue(arn);
    expect(current.username).toBe(`${username}_clone`);
    expect(await canLogin(engine, `${username}_clone`, current.password as string)).toBe(true);
  });
});

async function userExists(engine: TlsEngine, user: string): Promise<boolean> {
  const { host, port, adminUser, adminPassword } = servers[engine];
  if (engine === 'mariadb') {
    const conn = await mysql.createConnection({ host, port, user: adminUser, password: adminPassword });
    try {
      const [rows] = await conn.query('SELECT 1 FROM mysql.user WHERE user = ?', [user]);
      return (rows as unknown[]).length > 0;
    } finally {
      await conn.end();
    }
  }
  const client = new pg.Client({
    host,
    port,
    user: adminUser,
    password: adminPassword,
    database: 'postgres',
  });
  await client.connect();
  try {
    const { rows } = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [user]);
    return rows.length > 0;
  } finally {
    await client.end();
  }
}
