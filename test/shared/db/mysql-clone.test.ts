import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  copyAccountShape,
  defaultRoleStatement,
  type MysqlRunner,
  pendingPasswordStatement,
  readAccountShape,
  roleStatements,
} from '../../../shared/db/mysql-clone';
import { detectMysqlServer, type MysqlAccount, rewriteGrant } from '../../../shared/db/mysql-dialect';
import { DatabaseError } from '../../../shared/errors';
import { mysqlAdmin, randomPassword, uniqueName } from '../../stack/fixtures';
import { mariadbRoleCatalog } from '../../support/role-catalog';

const MARIADB = detectMysqlServer('10.11.6-MariaDB', '');
const MYSQL8 = detectMysqlServer('8.0.36', 'MySQL Community Server - GPL');
const MYSQL57 = detectMysqlServer('5.7.44', 'MySQL Community Server (GPL)');
const PASSWORD = 'Pa55-word';

let admin: mysql.Connection;
beforeAll(async () => {
  admin = await mysqlAdmin();
});
afterAll(async () => {
  await admin?.end();
});

function runnerOf(connection: mysql.Connection, log: string[] = []): MysqlRunner {
  return async (sql) => {
    log.push(sql);
    const [rows] = await connection.query(sql);
    return rows as Record<string, unknown>[];
  };
}

/** An original account and its clone on MariaDB, on a host pattern of their own. */
async function pair() {
  const original: MysqlAccount = { name: uniqueName('app'), host: '10.9.%' };
  const clone: MysqlAccount = { name: `${original.name}_clone`, host: original.host };
  for (const account of [original, clone]) {
    await admin.query('CREATE USER ?@? IDENTIFIED BY ?', [account.name, account.host, randomPassword()]);
  }
  return { original, clone };
}

async function roles(count: number): Promise<string[]> {
  const names = Array.from({ length: count }, () => uniqueName('role'));
  for (const name of names) await admin.query(`CREATE ROLE \`${name}\``);
  return names;
}

describe('copyAccountShape on MariaDB (real server)', () => {
  it('gives the clone the roles (with ADMIN OPTION) and the default role of the original', async () => {
    // prepare
    const { original, clone } = await pair();
    const [reader, writer] = await roles(2);
    await admin.query(`GRANT \`${reader}\` TO ?@?`, [original.name, original.host]);
    await admin.query(`GRANT \`${writer}\` TO ?@? WITH ADMIN OPTION`, [original.name, original.host]);
    await admin.query(`SET DEFAULT ROLE \`${writer}\` FOR ?@?`, [original.name, original.host]);

    // act
    await copyAccountShape(runnerOf(admin), MARIADB, original, clone);

    // assess
    const want = await mariadbRoleCatalog(admin, original);
    expect(want.defaultRole).toBe(writer);
    expect(await mariadbRoleCatalog(admin, clone)).toEqual(want);
  });

  it('takes away roles, an ADMIN OPTION and a default role that the original does not have', async () => {
    // prepare
    const { original, clone } = await pair();
    const [kept, dropped] = await roles(2);
    await admin.query(`GRANT \`${kept}\` TO ?@?`, [original.name, original.host]);
    await admin.query(`GRANT \`${kept}\` TO ?@? WITH ADMIN OPTION`, [clone.name, clone.host]);
    await admin.query(`GRANT \`${dropped}\` TO ?@?`, [clone.name, clone.host]);
    await admin.query(`SET DEFAULT ROLE \`${dropped}\` FOR ?@?`, [clone.name, clone.host]);

    // act
    await copyAccountShape(runnerOf(admin), MARIADB, original, clone);

    // assess
    const want = await mariadbRoleCatalog(admin, original);
    expect(want.defaultRole).toBe('');
    expect(await mariadbRoleCatalog(admin, clone)).toEqual(want);
  });

  it('changes nothing on a second run', async () => {
    const { original, clone } = await pair();
    const [role] = await roles(1);
    await admin.query(`GRANT \`${role}\` TO ?@?`, [original.name, original.host]);
    await admin.query(`SET DEFAULT ROLE \`${role}\` FOR ?@?`, [original.name, original.host]);
    await copyAccountShape(runnerOf(admin), MARIADB, original, clone);
    const log: string[] = [];

    await copyAccountShape(runnerOf(admin, log), MARIADB, original, clone);

    expect(log.filter((sql) => !/^\s*SELECT/.test(sql))).toEqual([]);
  });

  it("replays MariaDB's SHOW GRANTS, whose SET DEFAULT ROLE line comes after the role grants", async () => {
    // prepare
    const { original, clone } = await pair();
    const [role] = await roles(1);
    await admin.query(`GRANT \`${role}\` TO ?@?`, [original.name, original.host]);
    await admin.query(`SET DEFAULT ROLE \`${role}\` FOR ?@?`, [original.name, original.host]);
    const [lines] = await admin.query('SHOW GRANTS FOR ?@?', [original.name, original.host]);

    // act
    for (const row of lines as Array<Record<string, string>>) {
      const replayed = rewriteGrant(Object.values(row)[0] as string, original, clone, MARIADB);
      expect(replayed).toBeDefined();
      await admin.query(replayed as string);
    }

    // assess
    expect(await mariadbRoleCatalog(admin, clone)).toEqual(await mariadbRoleCatalog(admin, original));
  });
});

/** A stand-in for MySQL 8's catalog tables, answering the reader's three queries. */
function fakeMysql8(tables: {
  edges: Array<Record<string, string>>;
  defaults: Array<Record<string, string>>;
  plugin: string;
}): { run: MysqlRunner; statements: string[] } {
  const statements: string[] = [];
  const clone = (sql: string) => sql.includes("'app_clone'");
  return {
    statements,
    run: async (sql) => {
      if (sql.includes('mysql.role_edges')) return clone(sql) ? [] : tables.edges;
      if (sql.includes('mysql.default_roles')) return clone(sql) ? [] : tables.defaults;
      if (sql.includes('FROM mysql.user'))
        return [{ plugin: clone(sql) ? 'caching_sha2_password' : tables.plugin }];
      statements.push(sql);
      return [];
    },
  };
}

describe('MySQL 8 statements (no MySQL 8 server here: generated SQL only)', () => {
  const original: MysqlAccount = { name: 'app', host: '%' };
  const clone: MysqlAccount = { name: 'app_clone', host: '%' };

  it('replays role grants and the default roles that SHOW GRANTS omits, and returns the plugin', async () => {
    // prepare
    const mysql8 = fakeMysql8({
      edges: [
        { name: 'reader', host: '%', admin: 'N' },
        { name: 'writer', host: 'localhost', admin: 'Y' },
      ],
      defaults: [
        { name: 'reader', host: '%' },
        { name: 'writer', host: 'localhost' },
      ],
      plugin: 'mysql_native_password',
    });

    // act
    const result = await copyAccountShape(mysql8.run, MYSQL8, original, clone);

    // assess
    expect(mysql8.statements).toEqual([
      "GRANT 'reader'@'%' TO 'app_clone'@'%'",
      "GRANT 'writer'@'localhost' TO 'app_clone'@'%' WITH ADMIN OPTION",
      "SET DEFAULT ROLE 'reader'@'%', 'writer'@'localhost' TO 'app_clone'@'%'",
    ]);
    expect(result).toEqual({ plugin: 'mysql_native_password' });
  });

  it('reads role_edges, default_roles and the plugin for the exact account', async () => {
    const seen: string[] = [];
    await readAccountShape(
      async (sql) => {
        seen.push(sql.replace(/\s+/g, ' '));
        return [];
      },
      MYSQL8,
      { name: "o'brien", host: '10.0.%' },
    );
    expect(seen).toHaveLength(3);
    for (const sql of seen) expect(sql).toMatch(/= 'o\\'brien' AND (TO_)?HOST = '10\.0\.%'/i);
  });

  it('revokes extra roles, and re-grants a role to drop its ADMIN OPTION (MySQL has no REVOKE ADMIN OPTION FOR)', () => {
    const statements = roleStatements(
      MYSQL8,
      clone,
      [{ name: 'reader', host: '%', admin: false }],
      [
        { name: 'reader', host: '%', admin: true },
        { name: 'old', host: '%', admin: false },
      ],
    );
    expect(statements).toEqual([
      "REVOKE 'reader'@'%' FROM 'app_clone'@'%'",
      "REVOKE 'old'@'%' FROM 'app_clone'@'%'",
      "GRANT 'reader'@'%' TO 'app_clone'@'%'",
    ]);
  });

  it('sets default roles as a list TO the user on MySQL, one role FOR the user on MariaDB, NONE when empty', () => {
    expect(defaultRoleStatement(MYSQL8, clone, [])).toBe("SET DEFAULT ROLE NONE TO 'app_clone'@'%'");
    expect(defaultRoleStatement(MARIADB, clone, [{ name: 'r`1', host: '' }])).toBe(
      "SET DEFAULT ROLE `r``1` FOR 'app_clone'@'%'",
    );
    expect(defaultRoleStatement(MARIADB, clone, [])).toBe("SET DEFAULT ROLE NONE FOR 'app_clone'@'%'");
  });

  it.each([
    [
      'mysql_native_password',
      `ALTER USER 'app_clone'@'%' IDENTIFIED WITH mysql_native_password BY '${PASSWORD}' ACCOUNT UNLOCK`,
    ],
    [
      'sha256_password',
      `ALTER USER 'app_clone'@'%' IDENTIFIED WITH sha256_password BY '${PASSWORD}' ACCOUNT UNLOCK`,
    ],
    [
      'caching_sha2_password',
      `ALTER USER 'app_clone'@'%' IDENTIFIED WITH caching_sha2_password BY '${PASSWORD}' ACCOUNT UNLOCK`,
    ],
  ])('sets the password of the clone with the original plugin %s', (plugin, expected) => {
    expect(pendingPasswordStatement(MYSQL8, clone, PASSWORD, plugin)).toBe(expected);
  });

  it('refuses an original whose plugin takes no password, naming the plugin', () => {
    expect(() => pendingPasswordStatement(MYSQL8, clone, PASSWORD, 'AWSAuthenticationPlugin')).toThrow(
      DatabaseError,
    );
    expect(() => pendingPasswordStatement(MYSQL8, clone, PASSWORD, 'auth_socket')).toThrow(/auth_socket/);
  });

  it('keeps the product password statement on MariaDB and MySQL 5.7 (no plugin read there)', async () => {
    expect(pendingPasswordStatement(MARIADB, clone, PASSWORD, undefined)).toMatch(
      /IDENTIFIED BY PASSWORD '\*[0-9A-F]{40}' ACCOUNT UNLOCK$/,
    );
    expect(pendingPasswordStatement(MYSQL57, clone, PASSWORD, undefined)).toMatch(
      /mysql_native_password AS '\*[0-9A-F]{40}' ACCOUNT UNLOCK$/,
    );
    const seen: string[] = [];
    const record: MysqlRunner = async (sql) => {
      seen.push(sql);
      return [];
    };
    await copyAccountShape(record, MYSQL57, original, clone);
    expect(seen).toEqual([]);
  });
});
