import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attributeStatements,
  copyRoleShape,
  grantMembershipStatement,
  membershipStatements,
  type PostgresRunner,
  prepareOwnerRole,
  type RoleAttributes,
  revokeMembershipStatements,
  setSettingStatement,
  settingStatements,
  splitSettingList,
} from '../../../shared/db/postgres-clone';
import { DatabaseError, SecretFormatError } from '../../../shared/errors';
import { createPgDatabase, pgAdmin, randomPassword, stack, uniqueName } from '../../stack/fixtures';
import { pgRoleCatalog } from '../../support/role-catalog';

const PG15 = 150004;
const PG16 = 160002;

const ident = pg.escapeIdentifier;

function runnerOf(client: pg.Client, log: string[] = []): PostgresRunner {
  return async (sql) => {
    log.push(sql);
    return (await client.query(sql)).rows;
  };
}

async function loginAs(user: string, password: string, database = 'postgres'): Promise<pg.Client> {
  const { host, port } = stack().postgres;
  const client = new pg.Client({ host, port, user, password, database });
  await client.connect();
  return client;
}

let admin: pg.Client;
let version: number;
beforeAll(async () => {
  admin = await pgAdmin();
  version = Number((await admin.query("SELECT current_setting('server_version_num') AS v")).rows[0].v);
});
afterAll(async () => {
  await admin?.end();
});

/** An original login role and its clone (a bare LOGIN role, as provisionAlternateUser creates it). */
async function pair(password = randomPassword()) {
  const original = uniqueName('app');
  const clone = `${original}_clone`;
  await admin.query(`CREATE ROLE ${ident(original)} LOGIN PASSWORD ${pg.escapeLiteral(password)}`);
  await admin.query(`CREATE ROLE ${ident(clone)} LOGIN PASSWORD ${pg.escapeLiteral(password)}`);
  return { original, clone, password };
}

describe('copyRoleShape against the real server', () => {
  it("makes the clone's pg_roles, pg_auth_members and pg_db_role_setting rows match the original's", async () => {
    // prepare
    const { original, clone, password } = await pair();
    const database = await createPgDatabase();
    const [r1, r2] = [uniqueName('grp'), uniqueName('grp')];
    await admin.query(`CREATE ROLE ${r1} NOLOGIN; CREATE ROLE ${r2} NOLOGIN`);
    await admin.query(`CREATE SCHEMA ${r1}`);
    await admin.query(
      `ALTER ROLE ${ident(original)} CREATEDB CREATEROLE BYPASSRLS CONNECTION LIMIT 7 VALID UNTIL '2099-01-02 03:04:05+00'`,
    );
    await admin.query(
      `GRANT ${r1} TO ${ident(original)} WITH ADMIN OPTION; GRANT ${r2} TO ${ident(original)}`,
    );
    await admin.query(`ALTER ROLE ${ident(original)} SET search_path TO ${r1}, '$user', 'My Schema'`);
    await admin.query(`ALTER ROLE ${ident(original)} SET statement_timeout TO '5s'`);
    await admin.query(`ALTER ROLE ${ident(original)} SET app.note TO 'it''s, "quoted"'`);
    await admin.query(`ALTER ROLE ${ident(original)} IN DATABASE ${database} SET work_mem TO '8MB'`);

    // act
    await copyRoleShape(runnerOf(admin), version, { original, pending: clone });

    // assess
    const want = await pgRoleCatalog(admin, original);
    expect(want.memberships).toHaveLength(2);
    expect(want.settings).toHaveLength(2);
    expect(await pgRoleCatalog(admin, clone, [original])).toEqual(want);
    const session = await loginAs(clone, password);
    try {
      const { rows } = await session.query(
        "SELECT current_setting('search_path') AS path, current_setting('app.note') AS note",
      );
      expect(rows[0]).toEqual({ path: `${r1}, "$user", "My Schema"`, note: `it's, "quoted"` });
      expect((await session.query(`SELECT pg_has_role('${r1}', 'USAGE') AS member`)).rows[0].member).toBe(
        true,
      );
    } finally {
      await session.end();
    }
    const inDatabase = await loginAs(clone, password, database);
    try {
      expect((await inDatabase.query('SHOW work_mem')).rows[0].work_mem).toBe('8MB');
    } finally {
      await inDatabase.end();
    }
  });

  it('brings a drifted clone back in line: extra memberships, options, attributes and settings go', async () => {
    // prepare
    const { original, clone } = await pair();
    const [kept, dropped] = [uniqueName('grp'), uniqueName('grp')];
    await admin.query(`CREATE ROLE ${kept} NOLOGIN; CREATE ROLE ${dropped} NOLOGIN`);
    await admin.query(`GRANT ${kept} TO ${ident(original)}`);
    await admin.query(`ALTER ROLE ${ident(original)} SET statement_timeout TO '1s'`);
    await admin.query(
      `GRANT ${kept} TO ${ident(clone)} WITH ADMIN OPTION; GRANT ${dropped} TO ${ident(clone)}`,
    );
    await admin.query(`ALTER ROLE ${ident(clone)} CREATEDB CONNECTION LIMIT 3`);
    await admin.query(`ALTER ROLE ${ident(clone)} SET work_mem TO '1MB'`);
    await admin.query(`ALTER ROLE ${ident(clone)} IN DATABASE postgres SET work_mem TO '2MB'`);

    // act
    await copyRoleShape(runnerOf(admin), version, { original, pending: clone });

    // assess
    expect(await pgRoleCatalog(admin, clone, [original])).toEqual(await pgRoleCatalog(admin, original));
  });

  it('keeps the clone a member of the original, and a second run changes nothing', async () => {
    // prepare
    const { original, clone, password } = await pair();
    const table = uniqueName('t');
    await admin.query(`CREATE TABLE ${table} (id int); INSERT INTO ${table} VALUES (1)`);
    await admin.query(`GRANT SELECT ON ${table} TO ${ident(original)}`);
    await admin.query(`ALTER ROLE ${ident(original)} CREATEDB`);
    await admin.query(`ALTER ROLE ${ident(original)} SET lock_timeout TO '3s'`);
    await copyRoleShape(runnerOf(admin), version, { original, pending: clone });
    const log: string[] = [];

    // act
    await copyRoleShape(runnerOf(admin, log), version, { original, pending: clone });

    // assess
    expect(log.filter((sql) => !/^\s*SELECT/.test(sql))).toEqual([]);
    const session = await loginAs(clone, password);
    try {
      expect((await session.query(`SELECT id FROM ${table}`)).rows).toEqual([{ id: 1 }]);
    } finally {
      await session.end();
    }
  });

  it('refuses a NOINHERIT original before PostgreSQL 16 and changes nothing', async () => {
    // prepare
    const { original, clone } = await pair();
    await admin.query(`ALTER ROLE ${ident(original)} NOINHERIT CREATEDB`);
    const before = await pgRoleCatalog(admin, clone);

    // act (the stack runs 15; the check depends only on the version)
    const attempt = copyRoleShape(runnerOf(admin), Math.min(version, 159999), { original, pending: clone });

    // assess
    await expect(attempt).rejects.toThrow(/NOINHERIT/);
    await expect(attempt).rejects.toBeInstanceOf(DatabaseError);
    expect(await pgRoleCatalog(admin, clone)).toEqual(before);
  });

  it('names the attribute that a master without superuser may not give', async () => {
    // prepare: a CREATEROLE master, as on Amazon RDS (no superuser there)
    const { original, clone } = await pair();
    const master = uniqueName('master');
    const masterPassword = randomPassword();
    await admin.query(`CREATE ROLE ${master} LOGIN CREATEROLE PASSWORD ${pg.escapeLiteral(masterPassword)}`);
    await admin.query(`ALTER ROLE ${ident(original)} BYPASSRLS`);
    const session = await loginAs(master, masterPassword);

    // act
    try {
      const attempt = copyRoleShape(runnerOf(session), version, { original, pending: clone });

      // assess
      await expect(attempt).rejects.toThrow(/attribute.*BYPASSRLS/);
    } finally {
      await session.end();
    }
  });
});

describe('prepareOwnerRole against the real server', () => {
  it('lets each user of the pair read and alter what the other created', async () => {
    // prepare: the administrator's part - a NOLOGIN owner role granted to the original, a schema it may create in
    const { original, clone, password } = await pair();
    const owner = uniqueName('owner');
    const schema = uniqueName('s');
    await admin.query(`CREATE ROLE ${owner} NOLOGIN; GRANT ${owner} TO ${ident(original)}`);
    await admin.query(`CREATE SCHEMA ${schema}; GRANT USAGE, CREATE ON SCHEMA ${schema} TO ${owner}`);

    // act: the rotation into the clone
    await prepareOwnerRole(runnerOf(admin), version, { original, pending: clone, ownerRole: owner });
    await copyRoleShape(runnerOf(admin), version, { original, pending: clone });

    // assess
    const asClone = await loginAs(clone, password);
    const asOriginal = await loginAs(original, password);
    try {
      await asClone.query(
        `CREATE TABLE ${schema}.by_clone (id int); INSERT INTO ${schema}.by_clone VALUES (1)`,
      );
      await asOriginal.query(
        `CREATE TABLE ${schema}.by_original (id int); INSERT INTO ${schema}.by_original VALUES (2)`,
      );
      expect((await asOriginal.query(`SELECT id FROM ${schema}.by_clone`)).rows).toEqual([{ id: 1 }]);
      await asOriginal.query(`ALTER TABLE ${schema}.by_clone ADD COLUMN note text`);
      expect((await asClone.query(`SELECT id FROM ${schema}.by_original`)).rows).toEqual([{ id: 2 }]);
      await asClone.query(`ALTER TABLE ${schema}.by_original ADD COLUMN note text`);
      const owners = await admin.query(
        `SELECT tablename, tableowner FROM pg_tables WHERE schemaname = $1 ORDER BY 1`,
        [schema],
      );
      expect(owners.rows).toEqual([
        { tablename: 'by_clone', tableowner: owner },
        { tablename: 'by_original', tableowner: owner },
      ]);
    } finally {
      await asClone.end();
      await asOriginal.end();
    }
  });

  it('is idempotent: a second run changes nothing', async () => {
    const { original, clone } = await pair();
    const owner = await createRole('NOLOGIN', original);
    await prepareOwnerRole(runnerOf(admin), version, { original, pending: clone, ownerRole: owner });
    const log: string[] = [];

    await prepareOwnerRole(runnerOf(admin, log), version, { original, pending: clone, ownerRole: owner });

    expect(log.filter((sql) => !/^\s*SELECT/.test(sql))).toEqual([]);
  });

  it('accepts an existing NOLOGIN role that the original already belongs to', async () => {
    const { original, clone } = await pair();
    const owner = uniqueName('owner');
    await admin.query(`CREATE ROLE ${owner} NOLOGIN; GRANT ${owner} TO ${ident(original)}`);

    await prepareOwnerRole(runnerOf(admin), version, { original, pending: clone, ownerRole: owner });

    const rows = await pgRoleCatalog(admin, original);
    expect(rows.settings).toEqual([{ database: '*', setconfig: [`role=${owner}`] }]);
  });

  it.each([
    ['the master superuser', () => stack().postgres.adminUser, /it has LOGIN, SUPERUSER/],
    [
      'a NOLOGIN superuser the original belongs to',
      async (o: string) => createRole('NOLOGIN SUPERUSER', o),
      /it has SUPERUSER/,
    ],
    ['a LOGIN role the original belongs to', async (o: string) => createRole('LOGIN', o), /it has LOGIN/],
    [
      'a NOLOGIN role the original does not belong to',
      async () => createRole('NOLOGIN'),
      /not a direct member/,
    ],
    [
      'a NOLOGIN CREATEROLE role the original belongs to',
      async (o: string) => createRole('NOLOGIN CREATEROLE', o),
      /it has CREATEROLE/,
    ],
    ['a predefined role', () => 'pg_read_all_data', /pg_/],
    ['a role that does not exist (it is not created)', () => uniqueName('owner'), /does not exist/],
    ['the clone itself', (o: string) => `${o}_clone`, /separate role/],
  ])('refuses %s and changes nothing', async (_, makeRole, problem) => {
    // prepare
    const { original, clone } = await pair();
    const owner = await makeRole(original);
    const before = await pgRoleCatalog(admin, original);

    // act
    const attempt = prepareOwnerRole(runnerOf(admin), version, {
      original,
      pending: clone,
      ownerRole: owner,
    });

    // assess
    await expect(attempt).rejects.toBeInstanceOf(SecretFormatError);
    await expect(attempt).rejects.toThrow(problem);
    expect(await pgRoleCatalog(admin, original)).toEqual(before);
  });
});

async function createRole(attributes: string, memberOfIt?: string): Promise<string> {
  const role = uniqueName('r');
  await admin.query(`CREATE ROLE ${role} ${attributes}`);
  if (memberOfIt) await admin.query(`GRANT ${role} TO ${ident(memberOfIt)}`);
  return role;
}

const PLAIN: RoleAttributes = {
  superuser: false,
  inherit: true,
  createRole: false,
  createDb: false,
  replication: false,
  bypassRls: false,
  connectionLimit: -1,
  validUntil: null,
};

describe('statement builders', () => {
  it('grants membership options by server version: ADMIN OPTION before 16, ADMIN/INHERIT/SET from 16', () => {
    const membership = { role: 'Readers', admin: true, inherit: false, set: true };
    expect(grantMembershipStatement(PG15, 'app_clone', membership)).toBe(
      'GRANT "Readers" TO "app_clone" WITH ADMIN OPTION',
    );
    expect(grantMembershipStatement(PG15, 'app_clone', { ...membership, admin: false })).toBe(
      'GRANT "Readers" TO "app_clone"',
    );
    expect(grantMembershipStatement(PG16, 'app_clone', membership)).toBe(
      'GRANT "Readers" TO "app_clone" WITH ADMIN TRUE, INHERIT FALSE, SET TRUE',
    );
  });

  it('on 16+ changes differing options with an explicit GRANT and revokes extra grants per grantor', () => {
    const original = [{ role: 'r1', admin: false, inherit: true, set: false, grantors: ['postgres'] }];
    const clone = [
      { role: 'r1', admin: false, inherit: true, set: true, grantors: ['master'] },
      { role: 'r2', admin: false, inherit: true, set: true, grantors: ['master', 'other'] },
      { role: 'app', admin: false, inherit: true, set: true, grantors: ['master'] },
    ];
    expect(membershipStatements(PG16, 'app_clone', original, clone, ['app'])).toEqual([
      'GRANT "r1" TO "app_clone" WITH ADMIN FALSE, INHERIT TRUE, SET FALSE',
      'REVOKE "r2" FROM "app_clone" GRANTED BY "master"',
      'REVOKE "r2" FROM "app_clone" GRANTED BY "other"',
    ]);
  });

  it('before 16 removes an ADMIN OPTION the original lacks with REVOKE ADMIN OPTION FOR', () => {
    const original = [{ role: 'r1', admin: false, grantors: [''] }];
    const clone = [{ role: 'r1', admin: true, grantors: [''] }];
    expect(membershipStatements(PG15, 'app_clone', original, clone)).toEqual([
      'REVOKE ADMIN OPTION FOR "r1" FROM "app_clone"',
    ]);
    expect(revokeMembershipStatements(PG15, 'c', { role: 'r', grantors: ['a', 'b'] })).toEqual([
      'REVOKE "r" FROM "c"',
    ]);
  });

  it('changes only the attributes that differ, one statement each', () => {
    const original = {
      ...PLAIN,
      createDb: true,
      inherit: false,
      connectionLimit: 5,
      validUntil: '2030-01-01 00:00:00+00',
    };
    expect(attributeStatements('app_clone', original, PLAIN)).toEqual([
      'ALTER ROLE "app_clone" WITH CREATEDB',
      'ALTER ROLE "app_clone" WITH NOINHERIT',
      'ALTER ROLE "app_clone" WITH CONNECTION LIMIT 5',
      `ALTER ROLE "app_clone" VALID UNTIL '2030-01-01 00:00:00+00'`,
    ]);
    expect(attributeStatements('app_clone', PLAIN, PLAIN)).toEqual([]);
  });

  it.each([
    ['a, "$user", public', ['a', '$user', 'public']],
    ['"My Schema","x""y"', ['My Schema', 'x"y']],
    ['""', ['']],
    ['', []],
  ])('splits the stored list %j as the server does', (value, elements) => {
    expect(splitSettingList(value)).toEqual(elements);
  });

  it('gives list settings element by element and other settings as one literal', () => {
    expect(setSettingStatement('c', null, 'search_path=a, "$user"')).toBe(
      `ALTER ROLE "c" SET "search_path" TO 'a', '$user'`,
    );
    expect(setSettingStatement('c', 'db 1', "app.note=it's, x")).toBe(
      `ALTER ROLE "c" IN DATABASE "db 1" SET "app.note" TO 'it''s, x'`,
    );
  });

  it('resets and re-sets a database whose settings differ, and resets one the original has none for', () => {
    const original = [{ database: null, config: ['work_mem=1MB', 'lock_timeout=1s'] }];
    const clone = [
      { database: null, config: ['lock_timeout=1s', 'work_mem=1MB'] },
      { database: 'db', config: ['work_mem=2MB'] },
    ];
    expect(settingStatements('c', original, clone)).toEqual([
      'ALTER ROLE "c" RESET ALL',
      `ALTER ROLE "c" SET "work_mem" TO '1MB'`,
      `ALTER ROLE "c" SET "lock_timeout" TO '1s'`,
      'ALTER ROLE "c" IN DATABASE "db" RESET ALL',
    ]);
  });
});
