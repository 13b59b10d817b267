import mysql from 'mysql2/promise';
import pg from 'pg';
import { AuthenticationError, DatabaseError } from '../errors';
import type { Logger } from '../log';
import { type TlsMode, trustedCertificates } from './tls';

/** Seconds a connection attempt may take before it fails. */
export const CONNECT_TIMEOUT_MS = 5_000;

export interface ConnectionTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  database?: string;
  tls: TlsMode;
}

export interface ConnectOptions {
  /** Where a permitted downgrade to plaintext is reported. */
  logger?: Logger;
  /** Names the caller's work in error messages, e.g. "setSecret" or "export c1". */
  purpose?: string;
}

/** Extra mysql2 options (e.g. dateStrings for the exporter); TLS, timeouts and credentials are set here. */
export type MysqlExtras = Omit<mysql.ConnectionOptions, 'host' | 'port' | 'user' | 'password' | 'ssl'>;
export type PostgresExtras = Omit<pg.ClientConfig, 'host' | 'port' | 'user' | 'password' | 'ssl'>;

const MYSQL_AUTH_ERRNOS = new Set([1045, 1044, 1698, 1862]);
const PG_AUTH_CODES = new Set(['28P01', '28000']);

/**
 * Connects to a MySQL-family server under the TLS policy: `require` verifies the
 * certificate and host name and never falls back; `prefer` falls back to
 * plaintext only when the server offers no TLS at all, and logs that.
 */
export async function connectMysql(
  target: ConnectionTarget,
  extras: MysqlExtras = {},
  options: ConnectOptions = {},
): Promise<mysql.Connection> {
  const base: mysql.ConnectionOptions = {
    ...extras,
    host: target.host,
    port: target.port,
    user: target.user,
    password: target.password,
    database: target.database,
    connectTimeout: CONNECT_TIMEOUT_MS,
  };
  const secure = { ...base, ssl: { ca: trustedCertificates(), rejectUnauthorized: true } };
  try {
    return await mysql.createConnection(target.tls === 'disable' ? base : secure);
  } catch (error) {
    if (target.tls === 'prefer' && mysqlHasNoTls(error)) {
      warnDowngrade(target, options);
      try {
        return await mysql.createConnection(base);
      } catch (plainError) {
        throw classify(plainError, target, options);
      }
    }
    throw classify(error, target, options);
  }
}

/** Connects to a PostgreSQL-family server (PostgreSQL, Aurora, Redshift) under the TLS policy. */
export async function connectPostgres(
  target: ConnectionTarget,
  extras: PostgresExtras = {},
  options: ConnectOptions = {},
): Promise<pg.Client> {
  const make = (ssl: pg.ClientConfig['ssl']) =>
    new pg.Client({
      ...extras,
      host: target.host,
      port: target.port,
      user: target.user,
      password: target.password,
      database: target.database ?? 'postgres',
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      ssl,
    });
  const attempt = async (ssl: pg.ClientConfig['ssl']) => {
    const client = make(ssl);
    // An idle client whose server goes away emits 'error'; without a listener it would crash the process.
    client.on('error', () => {});
    try {
      await client.connect();
      return client;
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
  };
  try {
    return await attempt(
      target.tls === 'disable'
        ? false
        : { ca: trustedCertificates(), rejectUnauthorized: true, servername: target.host },
    );
  } catch (error) {
    if (target.tls === 'prefer' && postgresHasNoTls(error)) {
      warnDowngrade(target, options);
      try {
        return await attempt(false);
      } catch (plainError) {
        throw classify(plainError, target, options);
      }
    }
    throw classify(error, target, options);
  }
}

/** True when the server answered that it does not do TLS at all (not a certificate or login failure). */
function mysqlHasNoTls(error: unknown): boolean {
  return (error as { code?: string }).code === 'HANDSHAKE_NO_SSL_SUPPORT';
}

function postgresHasNoTls(error: unknown): boolean {
  return /does not support SSL/i.test((error as Error).message ?? '');
}

function warnDowngrade(target: ConnectionTarget, options: ConnectOptions): void {
  options.logger?.warn('Server offers no TLS; connecting in plaintext as the secret does not set ssl', {
    host: target.host,
    port: target.port,
    user: target.user,
    purpose: options.purpose,
  });
}

/** Wraps a driver error: which server, which user, what for; never the password. */
export function classify(
  error: unknown,
  target: ConnectionTarget,
  options: ConnectOptions = {},
): DatabaseError {
  if (error instanceof DatabaseError) return error;
  const where = `${target.user}@${target.host}:${target.port}${options.purpose ? ` (${options.purpose})` : ''}`;
  const e = error as { errno?: number; code?: string; message?: string };
  const reason = scrub(e.message ?? String(error), target.password);
  if ((e.errno !== undefined && MYSQL_AUTH_ERRNOS.has(e.errno)) || (e.code && PG_AUTH_CODES.has(e.code))) {
    return new AuthenticationError(`Login refused for ${where}: ${reason}`, { cause: error });
  }
  return new DatabaseError(`Database error for ${where}: ${reason}`, { cause: error });
}

function scrub(message: string, password: string): string {
  return password ? message.split(password).join('<redacted>') : message;
}
