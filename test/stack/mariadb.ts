import { chmodSync, existsSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import {
  execFileAsync,
  freePort,
  isRoot,
  StartFailure,
  startDaemon,
  tailOf,
  tempDirFor,
  waitFor,
} from './process';

export interface MariadbInfo {
  host: string;
  port: number;
  adminUser: string;
  adminPassword: string;
}

export interface MariadbHandle extends MariadbInfo {
  /** The server's process (tests that stop it with SIGSTOP start an instance of their own). */
  pid: number;
  stop(): Promise<void>;
}

/** A MariaDB/MySQL program: from MYSQL_BIN (a directory) when set, else the usual places. */
export function findMariadbBinary(names: string[]): string {
  const dirs = process.env.MYSQL_BIN
    ? [process.env.MYSQL_BIN]
    : ['/usr/sbin', '/usr/bin', '/usr/local/bin', '/usr/local/mysql/bin'];
  for (const name of names) {
    for (const dir of dirs) {
      if (existsSync(join(dir, name))) return join(dir, name);
    }
  }
  throw new Error(
    `None of ${names.join(', ')} is installed; install mariadb-server or set TEST_MYSQL_* to an existing server`,
  );
}

/** PEM files a server presents for TLS; a server given none offers no TLS. */
export interface ServerTlsFiles {
  cert: string;
  key: string;
}

/**
 * Starts a MariaDB (or MySQL) instance of the tests' own: its own datadir, the
 * general log in a table, no anonymous users, no name resolution; TLS only when
 * `options.ssl` names a certificate (`FLUSH SSL` re-reads the files).
 */
export interface MariadbOptions {
  /** A certificate to serve TLS with; none: the server offers no TLS. */
  ssl?: ServerTlsFiles;
  /** Extra server options, after the defaults (a later option wins): e.g. `--default-time-zone=+05:00`. */
  serverArgs?: readonly string[];
  /**
   * Temporary tables in the instance's own directory rather than /tmp, for the install and the server:
   * instances that share /tmp can delete each other's temporary tables when their pids coincide (seen as
   * "Error on delete of '/tmp/#sql-temptable-...'" where several sandboxes share one /tmp). Default true.
   */
  privateTmpdir?: boolean;
}

export async function startMariadb(
  adminPassword: string,
  options: MariadbOptions = {},
): Promise<MariadbHandle> {
  const server = findMariadbBinary(['mariadbd', 'mysqld']);
  const installDb = findMariadbBinary(['mariadb-install-db', 'mysql_install_db']);
  const dir = tempDirFor('mysql', 'mariadb-stack-');
  const dataDir = join(dir, 'data');
  const socket = join(dir, 'mysqld.sock');
  const port = await freePort();
  const userArgs = isRoot ? ['--user=mysql'] : [];
  const tmpArgs: string[] = [];
  if (options.privateTmpdir ?? true) {
    const tmp = join(dir, 'tmp');
    mkdirSync(tmp, { mode: 0o777 });
    chmodSync(tmp, 0o777);
    tmpArgs.push(`--tmpdir=${tmp}`);
  }
  await execFileAsync(installDb, [
    ...userArgs,
    ...tmpArgs,
    `--datadir=${dataDir}`,
    '--auth-root-authentication-method=normal',
    '--skip-test-db',
    '--skip-name-resolve',
  ]);
  const log = openSync(join(dir, 'server.out'), 'a');
  const child = startDaemon(
    server,
    [
      '--no-defaults',
      ...userArgs,
      `--datadir=${dataDir}`,
      `--socket=${socket}`,
      `--pid-file=${join(dir, 'mysqld.pid')}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      '--skip-name-resolve',
      '--log-output=TABLE',
      '--general-log=1',
      '--slow-query-log=1',
      '--innodb-buffer-pool-size=64M',
      '--innodb-flush-log-at-trx-commit=0',
      '--max-connections=300',
      ...(options.ssl ? [`--ssl-cert=${options.ssl.cert}`, `--ssl-key=${options.ssl.key}`] : []),
      `--log-error=${join(dir, 'error.log')}`,
      ...tmpArgs,
      ...(options.serverArgs ?? []),
    ],
    log,
  );
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  // Freshly installed, root has an empty password over the socket.
  await waitFor('mariadb', async () => {
    if (exited) {
      throw new StartFailure(
        `mariadbd exited at start; its error log ends with:\n${tailOf(join(dir, 'error.log'))}`,
      );
    }
    const conn = await mysql.createConnection({ socketPath: socket, user: 'root' });
    await conn.end();
    return true;
  });
  const conn = await mysql.createConnection({ socketPath: socket, user: 'root', multipleStatements: true });
  // Anonymous accounts shadow 'user'@'%' for TCP logins from 127.0.0.1.
  const [anonymous] = await conn.query<mysql.RowDataPacket[]>("SELECT host FROM mysql.user WHERE user = ''");
  for (const { host } of anonymous) await conn.query('DROP USER ?@?', ['', host]);
  await conn.query(
    `CREATE USER 'admin'@'%' IDENTIFIED BY ${conn.escape(adminPassword)};
     GRANT ALL PRIVILEGES ON *.* TO 'admin'@'%' WITH GRANT OPTION;
     FLUSH PRIVILEGES;`,
  );
  await conn.end();
  return {
    host: '127.0.0.1',
    port,
    adminUser: 'admin',
    adminPassword,
    pid: child.pid as number,
    async stop() {
      if (!exited) {
        // Referenced while it shuts down: waiting on an unreferenced child keeps no process alive.
        child.ref();
        // A stopped server would not see SIGTERM.
        child.kill('SIGCONT');
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
