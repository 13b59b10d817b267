import { isAbsolute, join } from 'node:path';
import type pg from 'pg';
import { csvlogColumns } from '../../shared/export/sources/postgres/catalog';
import { pgAdmin, stack } from '../stack/fixtures';

/**
 * The test PostgreSQL's csv log, as an operator would expose it: the documented
 * `pglog` foreign table (file_fdw) over the server's csv log file.
 */

/** Starts a new csv log file (so the tests read a small one) and returns its absolute path. */
export async function rotateCsvlog(): Promise<string> {
  const admin = await pgAdmin();
  try {
    const before = await currentCsvlog(admin);
    await admin.query('SELECT pg_rotate_logfile()');
    // The logger switches files asynchronously; pg_current_logfile tells once it has.
    for (let i = 0; i < 100; i++) {
      const now = await currentCsvlog(admin);
      if (now !== before) return now;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('the csv log did not rotate');
  } finally {
    await admin.end();
  }
}

async function currentCsvlog(admin: pg.Client): Promise<string> {
  const { rows } = await admin.query(
    "SELECT pg_current_logfile('csvlog') AS file, current_setting('data_directory') AS data",
  );
  const file = rows[0].file as string | null;
  if (!file) throw new Error('the test PostgreSQL writes no csv log');
  return isAbsolute(file) ? file : join(rows[0].data as string, file);
}

/** The documented pglog foreign table over `source`, as the superuser, in `database`. */
export async function createPglogTable(
  database: string,
  name: string,
  source: { filename: string } | { program: string },
): Promise<void> {
  const admin = await pgAdmin(database);
  try {
    const version = Number((await admin.query('SHOW server_version_num')).rows[0].server_version_num);
    const columns = csvlogColumns(version)
      .map((c) => `${c.name} ${c.type}`)
      .join(', ');
    const option =
      'filename' in source
        ? `filename '${source.filename.replaceAll("'", "''")}'`
        : `program '${source.program.replaceAll("'", "''")}'`;
    await admin.query('CREATE EXTENSION IF NOT EXISTS file_fdw');
    await admin.query('CREATE SERVER IF NOT EXISTS pglog FOREIGN DATA WRAPPER file_fdw');
    await admin.query(
      `CREATE FOREIGN TABLE ${name} (${columns}) SERVER pglog OPTIONS (${option}, format 'csv')`,
    );
  } finally {
    await admin.end();
  }
}

/** Cluster parameters: engine postgres (or redshift), logging in to `database` as the test superuser. */
export function postgresClusterParameters(
  cluster: string,
  database: string,
  engine: 'postgres' | 'redshift' = 'postgres',
): Record<string, string | { secure: string }> {
  const { host, port, adminUser, adminPassword } = stack().postgres;
  return {
    [`clusters/${cluster}/engine`]: engine,
    [`clusters/${cluster}/host`]: host,
    [`clusters/${cluster}/port`]: String(port),
    [`clusters/${cluster}/database`]: database,
    [`clusters/${cluster}/user`]: adminUser,
    [`clusters/${cluster}/password`]: { secure: adminPassword },
    [`clusters/${cluster}/ssl`]: 'false',
  };
}
