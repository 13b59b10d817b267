import { existsSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, isRoot, startDaemon, tempDirFor, waitFor } from '../stack/process';

export interface PgBouncerHandle {
  host: string;
  port: number;
  stop(): Promise<void>;
}

/** PgBouncer's program: PGBOUNCER when set, else where Debian and others install it. */
export function pgBouncerBinary(): string | undefined {
  const candidates = process.env.PGBOUNCER
    ? [process.env.PGBOUNCER]
    : ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer'];
  return candidates.find((path) => existsSync(path));
}

/**
 * A PgBouncer of a test's own on a free port, in session pooling, in front of
 * `server`: clients log in with SCRAM against a userlist holding the plain
 * passwords, which PgBouncer also uses to log in to the server.
 */
export async function startPgBouncer(
  server: { host: string; port: number },
  users: Array<{ user: string; password: string }>,
): Promise<PgBouncerHandle> {
  const binary = pgBouncerBinary();
  if (!binary) throw new Error('PgBouncer is not installed (Debian: apt-get install pgbouncer)');
  const dir = tempDirFor('postgres', 'pgbouncer-');
  const port = await freePort();
  const quote = (value: string) => `"${value.replaceAll('"', '""')}"`;
  writeFileSync(
    join(dir, 'userlist.txt'),
    users.map((u) => `${quote(u.user)} ${quote(u.password)}\n`).join(''),
    {
      mode: 0o644,
    },
  );
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    `[databases]
* = host=${server.host} port=${server.port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = ${join(dir, 'userlist.txt')}
pool_mode = session
logfile = ${join(dir, 'pgbouncer.log')}
`,
    { mode: 0o644 },
  );
  const log = openSync(join(dir, 'server.out'), 'a');
  // PgBouncer refuses to run as root; -u drops to the postgres user (the process stays our child).
  const child = startDaemon(binary, [...(isRoot ? ['-u', 'postgres'] : []), join(dir, 'pgbouncer.ini')], log);
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  const first = users[0] as { user: string; password: string };
  await waitFor('pgbouncer', async () => {
    if (exited) throw new Error(`pgbouncer exited; see ${join(dir, 'pgbouncer.log')}`);
    const client = new pg.Client({
      host: '127.0.0.1',
      port,
      user: first.user,
      password: first.password,
      database: 'postgres',
    });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } finally {
      await client.end().catch(() => {});
    }
  });
  return {
    host: '127.0.0.1',
    port,
    async stop() {
      if (!exited) {
        // Referenced while it shuts down: waiting on an unreferenced child keeps no process alive.
        child.ref();
        const gone = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
