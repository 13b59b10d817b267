import { randomBytes, X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { type MariadbHandle, type ServerTlsFiles, startMariadb } from './mariadb';
import { type PostgresHandle, startPostgres } from './postgres';
import { execFileAsync, ownBy, tempDirFor, waitFor } from './process';

/**
 * Certificates the TLS servers can present. All but `untrusted` are signed by the
 * test CA (`caFile`, for DB_TLS_CA_FILE); `untrusted` by a CA nobody trusts.
 */
export const CERTIFICATES = {
  /** The right one: IP 127.0.0.1 and DNS localhost. */
  local: 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  /** Another server's certificate from the same CA. */
  other: 'subjectAltName=DNS:db.other.example',
  /** The name localhost only: not a certificate for the address 127.0.0.1. */
  localhostOnly: 'subjectAltName=DNS:localhost',
  /** The endpoint's name only, as when `host` is a CNAME of it. */
  internal: 'subjectAltName=DNS:db.internal.example',
  /** Right names, unknown issuer. */
  untrusted: 'subjectAltName=IP:127.0.0.1,DNS:localhost',
} as const;

export type CertificateName = keyof typeof CERTIFICATES;

export type TlsEngine = 'mariadb' | 'postgres';

export interface TlsServers {
  /** PEM of the CA that signed every certificate but `untrusted`. */
  caFile: string;
  mariadb: Omit<MariadbHandle, 'stop'>;
  postgres: Omit<PostgresHandle, 'stop'>;
  /** Makes both servers present this certificate to new connections. */
  present(name: CertificateName): Promise<void>;
  /** Creates a login user with a password (no privileges beyond logging in). */
  createUser(engine: TlsEngine, name: string, password: string): Promise<void>;
  stop(): Promise<void>;
}

async function openssl(args: string[]): Promise<void> {
  await execFileAsync('openssl', args);
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function makeCa(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  await openssl([
    'req',
    '-x509',
    ...EC_KEY,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  return { cert, key };
}

async function makeLeaf(
  dir: string,
  name: CertificateName,
  ca: { cert: string; key: string },
): Promise<ServerTlsFiles> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, `${CERTIFICATES[name]}\nextendedKeyUsage=serverAuth\n`);
  await openssl(['req', ...EC_KEY, '-subj', `/CN=test-${name}`, '-keyout', key, '-out', csr]);
  await openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-set_serial',
    `0x${randomBytes(8).toString('hex')}`,
    '-days',
    '2',
    '-extfile',
    ext,
    '-out',
    cert,
  ]);
  return { cert, key };
}

/** The fingerprint of the certificate a server presents to a new TLS connection (verification off). */
async function presented(engine: TlsEngine, servers: TlsServers): Promise<string> {
  if (engine === 'mariadb') {
    const { host, port, adminUser, adminPassword } = servers.mariadb;
    const conn = await mysql.createConnection({
      host,
      port,
      user: adminUser,
      password: adminPassword,
      ssl: { rejectUnauthorized: false },
    });
    try {
      const socket = (conn as unknown as { connection: { stream: TLSSocket } }).connection.stream;
      return socket.getPeerCertificate().fingerprint256;
    } finally {
      await conn.end();
    }
  }
  const { host, port, adminUser, adminPassword } = servers.postgres;
  const client = new pg.Client({
    host,
    port,
    user: adminUser,
    password: adminPassword,
    database: 'postgres',
    ssl: { rejectUnauthorized: false },
  });
  await client.connect();
  try {
    const socket = (client as unknown as { connection: { stream: TLSSocket } }).connection.stream;
    return socket.getPeerCertificate().fingerprint256;
  } finally {
    await client.end();
  }
}

/**
 * Starts a MariaDB and a PostgreSQL of their own that serve TLS (the shared stack
 * servers offer none, and other tests rely on that). Certificates are made with
 * openssl in a temporary directory and swapped in place: `FLUSH SSL` for MariaDB,
 * `pg_reload_conf()` for PostgreSQL.
 */
export async function startTlsServers(): Promise<TlsServers> {
  const dir = mkdtempSync(join(tmpdir(), 'tls-certs-'));
  const [ca, rogue] = await Promise.all([makeCa(dir, 'test-ca'), makeCa(dir, 'rogue-ca')]);
  const leaves = Object.fromEntries(
    await Promise.all(
      (Object.keys(CERTIFICATES) as CertificateName[]).map(
        async (name) => [name, await makeLeaf(dir, name, name === 'untrusted' ? rogue : ca)] as const,
      ),
    ),
  ) as Record<CertificateName, ServerTlsFiles>;

  // Each server reads its own copy: PostgreSQL insists on owning its key.
  const serverFiles = (user: string): ServerTlsFiles => {
    const own = tempDirFor(user, `tls-${user}-`);
    const files = { cert: join(own, 'server.pem'), key: join(own, 'server.key') };
    for (const kind of ['cert', 'key'] as const) {
      copyFileSync(leaves.local[kind], files[kind]);
      ownBy(user, files[kind]);
    }
    return files;
  };
  const mariadbFiles = serverFiles('mysql');
  const postgresFiles = serverFiles('postgres');
  const password = () => randomBytes(12).toString('base64url');
  const started = await Promise.allSettled([
    startMariadb(password(), { ssl: mariadbFiles }),
    startPostgres(password(), { ssl: postgresFiles }),
  ]);
  const stops = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value.stop] : []));
  const stop = async () => {
    await Promise.allSettled(stops.map((s) => s()));
    for (const d of [dir, ...[mariadbFiles, postgresFiles].map((f) => join(f.cert, '..'))]) {
      rmSync(d, { recursive: true, force: true });
    }
  };
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await stop();
    throw failed.reason;
  }
  const [mariadb, postgres] = started.map((s) => (s as PromiseFulfilledResult<MariadbHandle>).value) as [
    MariadbHandle,
    PostgresHandle,
  ];

  const servers: TlsServers = {
    caFile: ca.cert,
    mariadb,
    postgres,
    async present(name) {
      const expected = new X509Certificate(readFileSync(leaves[name].cert)).fingerprint256;
      // writeFileSync keeps the files' owner and mode.
      for (const files of [mariadbFiles, postgresFiles]) {
        writeFileSync(files.cert, readFileSync(leaves[name].cert));
        writeFileSync(files.key, readFileSync(leaves[name].key));
      }
      const conn = await mysql.createConnection(admin('mariadb'));
      try {
        await conn.query('FLUSH SSL');
      } finally {
        await conn.end();
      }
      const client = new pg.Client(admin('postgres'));
      await client.connect();
      try {
        await client.query('SELECT pg_reload_conf()');
      } finally {
        await client.end();
      }
      // The postmaster reloads on its own time; new connections must see the new certificate.
      for (const engine of ['mariadb', 'postgres'] as const) {
        await waitFor(
          `${engine} presenting ${name}`,
          async () => (await presented(engine, servers)) === expected,
          10_000,
        );
      }
    },
    async createUser(engine, name, userPassword) {
      if (engine === 'mariadb') {
        const conn = await mysql.createConnection(admin('mariadb'));
        try {
          await conn.query("CREATE USER ?@'%' IDENTIFIED BY ?", [name, userPassword]);
        } finally {
          await conn.end();
        }
        return;
      }
      const client = new pg.Client(admin('postgres'));
      await client.connect();
      try {
        await client.query(
          `CREATE ROLE ${pg.escapeIdentifier(name)} LOGIN PASSWORD ${pg.escapeLiteral(userPassword)}`,
        );
      } finally {
        await client.end();
      }
    },
    stop,
  };

  function admin(engine: 'mariadb'): mysql.ConnectionOptions;
  function admin(engine: 'postgres'): pg.ClientConfig;
  function admin(engine: TlsEngine): mysql.ConnectionOptions | pg.ClientConfig {
    const { host, port, adminUser, adminPassword } = engine === 'mariadb' ? mariadb : postgres;
    return engine === 'mariadb'
      ? { host, port, user: adminUser, password: adminPassword }
      : { host, port, user: adminUser, password: adminPassword, database: 'postgres' };
  }

  return servers;
}
