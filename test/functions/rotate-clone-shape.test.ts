import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RotationStateError, SecretFormatError } from '../../shared/errors';
import {
  alternatingSecret,
  invoker,
  mariadbUnderTest,
  postgresUnderTest,
  rotate,
  rotationDeps,
  secretValue,
  singleUserSecret,
  stagesOf,
} from '../shared/rotation/support';
import { createPgDatabase, mysqlAdmin, pgAdmin, stack, uniqueName } from '../stack/fixtures';
import { mariadbRoleCatalog, pgRoleCatalog } from '../support/role-catalog';

const ident = pg.escapeIdentifier;

async function pgLogin(credentials: Record<string, unknown>, database = 'postgres'): Promise<pg.Client> {
  const { host, port } = stack().postgres;
  const client = new pg.Client({
    host,
    port,
    database,
    user: credentials.username as string,
    password: credentials.password as string,
  });
  await client.connect();
  return client;
}

/** The first SecretFormatError in an error's cause chain. */
function secretFormatCause(error: unknown): SecretFormatError | undefined {
  for (let e = error; e; e = (e as { cause?: unknown }).cause) if (e instanceof SecretFormatError) return e;
  return undefined;
}

describe('PostgreSQL alternating rotation through the handler: the clone behaves like the original', () => {
  let admin: pg.Client;
  beforeAll(async () => {
    admin = await pgAdmin();
  });
  afterAll(async () => {
    await admin?.end();
  });

  it('gives the clone the catalog rows of the original, keeps following it, and both users share what they create', async () => {
    // prepare: an original with attributes, memberships, settings and an owner role set up by the administrator
    const owner = uniqueName('owner');
    const [group, later] = [uniqueName('grp'), uniqueName('grp')];
    const schema = uniqueName('s');
    const database = await createPgDatabase();
    const { arn, username: app } = await alternatingSecret(postgresUnderTest, { ownerRole: owner });
    const clone = `${app}_clone`;
    await admin.query(
      `CREATE ROLE ${owner} NOLOGIN; CREATE ROLE ${group} NOLOGIN; CREATE ROLE ${later} NOLOGIN`,
    );
    await admin.query(`GRANT ${owner} TO ${ident(app)}; GRANT ${group} TO ${ident(app)} WITH ADMIN OPTION`);
    await admin.query(
      `ALTER ROLE ${ident(app)} CREATEDB CONNECTION LIMIT 9 VALID UNTIL '2099-12-31 00:00:00+00'`,
    );
    await admin.query(`ALTER ROLE ${ident(app)} SET search_path TO ${schema}, public`);
    await admin.query(`ALTER ROLE ${ident(app)} IN DATABASE ${database} SET statement_timeout TO '7s'`);
    await admin.query(`CREATE SCHEMA ${schema}; GRANT USAGE, CREATE ON SCHEMA ${schema} TO ${owner}`);

    // act: rotate into the clone
    await rotate(arn);

    // assess: the same rows in pg_roles, pg_auth_members and pg_db_role_setting
    const current = await secretValue(arn);
    const previous = await secretValue(arn, 'AWSPREVIOUS');
    expect(current.username).toBe(clone);
    const want = await pgRoleCatalog(admin, app);
    expect(want.settings).toContainEqual({
      database: '*',
      setconfig: [`search_path=${schema}, public`, `role=${owner}`],
    });
    expect(await pgRoleCatalog(admin, clone, [app])).toEqual(want);

    // assess: each user reads and alters what the other created (both create as the owner role)
    const asClone = await pgLogin(current);
    const asOriginal = await pgLogin(previous);
    try {
      await asClone.query('CREATE TABLE by_clone (id int); INSERT INTO by_clone VALUES (1)');
      await asOriginal.query('CREATE TABLE by_original (id int); INSERT INTO by_original VALUES (2)');
      expect((await asOriginal.query('SELECT id FROM by_clone')).rows).toEqual([{ id: 1 }]);
      await asOriginal.query('ALTER TABLE by_clone ADD COLUMN note text');
      expect((await asClone.query('SELECT id FROM by_original')).rows).toEqual([{ id: 2 }]);
      await asClone.query('ALTER TABLE by_original ADD COLUMN note text');
    } finally {
      await asClone.end();
      await asOriginal.end();
    }
    const inDatabase = await pgLogin(current, database);
    try {
      expect((await inDatabase.query('SHOW statement_timeout')).rows[0].statement_timeout).toBe('7s');
    } finally {
      await inDatabase.end();
    }

    // act: the administrator changes the original; two more rotations come back to the clone
    await admin.query(`REVOKE ${group} FROM ${ident(app)}; GRANT ${later} TO ${ident(app)}`);
    await admin.query(`ALTER ROLE ${ident(app)} NOCREATEDB; ALTER ROLE ${ident(app)} SET work_mem TO '3MB'`);
    await rotate(arn);
    await rotate(arn);

    // assess: the clone followed
    expect((await secretValue(arn)).username).toBe(clone);
    expect(await pgRoleCatalog(admin, clone, [app])).toEqual(await pgRoleCatalog(admin, app));
  });

  it('an attempt that stops between two copy statements leaves no clone; the retry completes it', async () => {
    // prepare: an original with enough to copy for several statements
    const { arn, username: app } = await alternatingSecret(postgresUnderTest);
    const group = uniqueName('grp');
    await admin.query(`CREATE ROLE ${group} NOLOGIN; GRANT ${group} TO ${ident(app)}`);
    await admin.query(`ALTER ROLE ${ident(app)} CREATEDB; ALTER ROLE ${ident(app)} SET work_mem TO '2MB'`);
    let stopped = false;
    const stopping = rotationDeps({
      beforeProvisionStatement: async (statement) => {
        if (statement.kind === 'copy' && statement.index === 1 && !stopped) {
          stopped = true;
          throw new Error('simulated crash between two copy statements');
        }
      },
    });

    // act
    const error = await rotate(arn, { invoke: invoker(stopping) }).catch((e: unknown) => e);

    // assess: nothing of the clone exists, so its pending password cannot log in
    expect(error).toBeInstanceOf(RotationStateError);
    expect(stopped).toBe(true);
    const pendingToken = Object.entries(await stagesOf(arn)).find(([, s]) => s.includes('AWSPENDING'))?.[0];
    const pending = await secretValue(arn, 'AWSPENDING');
    expect(await postgresUnderTest.canLogin(pending.username as string, pending.password as string)).toBe(
      false,
    );
    const clone = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [`${app}_clone`]);
    expect(clone.rows).toEqual([]);

    // act: the retry
    await rotate(arn, { token: pendingToken as string });

    // assess
    expect((await secretValue(arn)).username).toBe(`${app}_clone`);
    expect(await pgRoleCatalog(admin, `${app}_clone`, [app])).toEqual(await pgRoleCatalog(admin, app));
  });

  it('rotates a single user whose sessions start as another role: its own password changes, not that role', async () => {
    // prepare
    const { arn, username, password } = await singleUserSecret(postgresUnderTest);
    const group = uniqueName('grp');
    await admin.query(`CREATE ROLE ${group} NOLOGIN; GRANT ${group} TO ${ident(username)}`);
    await admin.query(`ALTER ROLE ${ident(username)} SET role TO ${pg.escapeLiteral(group)}`);

    // act
    await rotate(arn);

    // assess
    const current = await secretValue(arn);
    expect(current.password).not.toBe(password);
    expect(await postgresUnderTest.canLogin(username, current.password as string)).toBe(true);
    const groupPassword = await admin.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [group]);
    expect(groupPassword.rows).toEqual([{ rolpassword: null }]);
  });

  it('fails the rotation on an ownerRole naming the master, and changes nothing', async () => {
    // prepare
    const {
      arn,
      username: app,
      password,
    } = await alternatingSecret(postgresUnderTest, {
      ownerRole: stack().postgres.adminUser,
    });
    const before = await pgRoleCatalog(admin, app);

    // act
    const error = await rotate(arn).catch((e: unknown) => e);

    // assess
    expect(secretFormatCause(error)?.message).toMatch(/ownerRole .* is refused: it has LOGIN, SUPERUSER/);
    expect(await pgRoleCatalog(admin, app)).toEqual(before);
    const clone = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [`${app}_clone`]);
    expect(clone.rows).toEqual([]);
    expect((await secretValue(arn)).password).toBe(password);
    expect(await postgresUnderTest.canLogin(app, password)).toBe(true);
  });
});

describe('MariaDB alternating rotation through the handler: roles and default roles', () => {
  let admin: mysql.Connection;
  beforeAll(async () => {
    admin = await mysqlAdmin();
  });
  afterAll(async () => {
    await admin?.end();
  });

  it('gives the clone the roles and default role of the original, and the clone reads through its default role', async () => {
    // prepare
    const { arn, username: app } = await alternatingSecret(mariadbUnderTest);
    const [reader, extra] = [uniqueName('role'), uniqueName('role')];
    const db = uniqueName('db');
    await admin.query(`CREATE ROLE ${reader}; CREATE ROLE ${extra}`);
    await admin.query(`CREATE DATABASE ${db}; CREATE TABLE ${db}.t (id int); INSERT INTO ${db}.t VALUES (1)`);
    await admin.query(`GRANT SELECT ON ${db}.* TO ${reader}`);
    await admin.query(`GRANT ${reader} TO ?@'%' WITH ADMIN OPTION; GRANT ${extra} TO ?@'%'`, [app, app]);
    await admin.query(`SET DEFAULT ROLE ${reader} FOR ?@'%'`, [app]);

    // act
    await rotate(arn);

    // assess
    const current = await secretValue(arn);
    expect(current.username).toBe(`${app}_clone`);
    const want = await mariadbRoleCatalog(admin, { name: app, host: '%' });
    expect(want.defaultRole).toBe(reader);
    expect(await mariadbRoleCatalog(admin, { name: `${app}_clone`, host: '%' })).toEqual(want);
    const { host, port } = stack().mariadb;
    const session = await mysql.createConnection({
      host,
      port,
      user: current.username as string,
      password: current.password as string,
    });
    try {
      const [rows] = await session.query(`SELECT CURRENT_ROLE() AS role, (SELECT id FROM ${db}.t) AS id`);
      expect(rows).toEqual([{ role: reader, id: 1 }]);
    } finally {
      await session.end();
    }

    // act: the administrator takes a role from the clone (the current user) and its default role
    await admin.query(`REVOKE ${extra} FROM ?@'%'; SET DEFAULT ROLE NONE FOR ?@'%'`, [
      `${app}_clone`,
      `${app}_clone`,
    ]);
    await rotate(arn);

    // assess: the original now matches the current shape (MySQL-family rotation copies from the current user)
    expect((await secretValue(arn)).username).toBe(app);
    const clone = await mariadbRoleCatalog(admin, { name: `${app}_clone`, host: '%' });
    expect(clone.defaultRole).toBe('');
    expect(await mariadbRoleCatalog(admin, { name: app, host: '%' })).toEqual(clone);
  });
});
