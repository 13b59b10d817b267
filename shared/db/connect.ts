import { connect as netConnect, Socket } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import type mysql from 'mysql2/promise';
import type pg from 'pg';
import { AuthenticationError, DatabaseError } from '../errors';
import { lazy } from '../lazy';
import type { Logger } from '../log';
import { type TlsMode, trustedCertificates, trustedContext } from './tls';

// A function loads the driver of the engine it connects to, and only that one (mysql2 is most of a bundle).
const mysqlDriver = lazy(async () => (await import('mysql2/promise')).default);
const postgresDriver = lazy(async () => (await import('pg')).default);

/** Seconds a connection attempt may take before it fails. */
export const CONNECT_TIMEOUT_MS = 5_000;

export interface ConnectionTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  database?: string;
  tls: TlsMode;
  /**
   * The name the server's certificate must carry, also sent as SNI, when `host`
   * is another name for the server (a CNAME of the endpoint the certificate
   * names). A DNS name; without it the certificate must name `host` itself.
   */
  tlsServerName?: string;
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
 * certificate chain and the server's identity (DNS name or IP address, or
 * `tlsServerName`) and never falls back; `prefer` falls back to plaintext only
 * when the server offers no TLS at all, and logs that.
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
  const mysql = await mysqlDriver();
  try {
    return await mysql.createConnection(target.tls === 'disable' ? base : await mysqlSecure(base, target));
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

const mysqlSslByCa = new WeakMap<string[], mysql.SslOptions>();

/**
 * mysql2 verifies the identity only with `verifyIdentity`, against its `host`
 * when that is a DNS name (also sent as SNI). For an IP address Node checks the
 * name its socket looked up, and without one checks "localhost": so mysql2 is
 * given the name to verify as host, and a socket of ours that connects to the
 * real host and carries that name.
 */
async function mysqlSecure(
  base: mysql.ConnectionOptions,
  target: ConnectionTarget,
): Promise<mysql.ConnectionOptions> {
  const ca = await trustedCertificates();
  let ssl = mysqlSslByCa.get(ca);
  if (!ssl) {
    // One object per CA list: mysql2 caches its TLS context (and sessions) per ssl object.
    ssl = { ca, rejectUnauthorized: true, verifyIdentity: true };
    mysqlSslByCa.set(ca, ssl);
  }
  const expected = target.tlsServerName ?? target.host;
  return {
    ...base,
    ssl,
    host: expected,
    stream: () => {
      const socket = netConnect({
        host: target.host,
        port: target.port,
        noDelay: true,
        keepAlive: base.enableKeepAlive !== false,
        keepAliveInitialDelay: base.keepAliveInitialDelay,
      });
      // What tls.connect verifies when it has no servername (SNI is never an IP address).
      (socket as Socket & { _host: string | null })._host = expected;
      return socket;
    },
  };
}

/** Connects to a PostgreSQL-family server (PostgreSQL, Aurora, Redshift) under the same TLS policy. */
export async function connectPostgres(
  target: ConnectionTarget,
  extras: PostgresExtras = {},
  options: ConnectOptions = {},
): Promise<pg.Client> {
  const pg = await postgresDriver();
  const make = (ssl: pg.ClientConfig['ssl']) => {
    const serverName = ssl ? target.tlsServerName : undefined;
    return new pg.Client({
      ...extras,
      // pg sends its host as SNI (for a DNS name); with tlsServerName it gets that name and a socket to the host.
      host: serverName ?? target.host,
      ...(serverName ? { stream: () => socketPinnedTo(target.host) } : {}),
      port: target.port,
      user: target.user,
      password: target.password,
      database: target.database ?? 'postgres',
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      ssl,
    });
  };
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
  const expected = target.tlsServerName ?? target.host;
  try {
    return await attempt(
      target.tls === 'disable'
        ? false
        : {
            secureContext: await trustedContext(),
            rejectUnauthorized: true,
            checkServerIdentity: (_name: string, cert: PeerCertificate) =>
              checkServerIdentity(expected, cert),
          },
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

/** A socket that connects to `host` whatever host pg asks for (pg was given the TLS server name). */
function socketPinnedTo(host: string): Socket {
  const socket = new Socket();
  const connect = socket.connect.bind(socket) as (port: number, host: string) => Socket;
  socket.connect = ((port: number) => connect(port, host)) as Socket['connect'];
  return socket;
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
  const reason = identityMismatch(error, target) ?? scrub(e.message ?? String(error), target.password);
  if ((e.errno !== undefined && MYSQL_AUTH_ERRNOS.has(e.errno)) || (e.code && PG_AUTH_CODES.has(e.code))) {
    return new AuthenticationError(`Login refused for ${where}: ${reason}`, { cause: error });
  }
  return new DatabaseError(`Database error for ${where}: ${reason}`, { cause: error });
}

/**
 * Node's identity error (ERR_TLS_CERT_ALTNAME_INVALID; mysql2 replaces its code)
 * names only the IP addresses when checking an IP: say which names the certificate has.
 */
function identityMismatch(error: unknown, target: ConnectionTarget): string | undefined {
  const e = error as { reason?: unknown; host?: unknown; cert?: Partial<PeerCertificate> };
  if (typeof e.reason !== 'string' || typeof e.host !== 'string' || !e.cert || typeof e.cert !== 'object') {
    return undefined;
  }
  const names = [
    e.cert.subjectaltname ? `subjectAltName ${e.cert.subjectaltname}` : 'no subjectAltName',
    ...(typeof e.cert.subject?.CN === 'string' ? [`CN ${e.cert.subject.CN}`] : []),
  ].join(', ');
  const expected = target.tlsServerName ? `tlsServerName ${e.host}` : `host ${e.host}`;
  // The error stays the cause; without the certificate (kilobytes of raw bytes) that every log line would carry.
  delete e.cert;
  // The names come from whoever answered: keep them short in a log line.
  return `TLS certificate does not match ${expected}: it names ${names.slice(0, 400)}`;
}

function scrub(message: string, password: string): string {
  return password ? message.split(password).join('<redacted>') : message;
}
