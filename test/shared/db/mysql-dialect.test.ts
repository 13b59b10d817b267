import { describe, expect, it } from 'vitest';
import {
  accountName,
  assertUsernameFits,
  createLockedUserStatement,
  detectMysqlServer,
  type MysqlServer,
  quoteString,
  revokeStatements,
  rewriteGrant,
  setOwnPasswordStatement,
  setPasswordAndUnlockStatement,
  storedPasswordMatches,
} from '../../../shared/db/mysql-dialect';
import { mysqlNativePasswordHash } from '../../../shared/db/password-hash';
import { DatabaseError, SecretFormatError } from '../../../shared/errors';

const PASSWORD = 'Pa55-word';
const HASH = mysqlNativePasswordHash(PASSWORD);

// What each server answers to SELECT VERSION(), @@version_comment.
const SERVERS = {
  'MariaDB 10.11': detectMysqlServer('10.11.6-MariaDB-0+deb12u1-log', 'Debian 12'),
  'MySQL 5.7': detectMysqlServer('5.7.44-log', 'MySQL Community Server (GPL)'),
  'MySQL 8.0': detectMysqlServer('8.0.36', 'MySQL Community Server - GPL'),
  'MySQL 8.4': detectMysqlServer('8.4.0', 'MySQL Community Server - GPL'),
  'MySQL 9.1': detectMysqlServer('9.1.0', 'MySQL Community Server - GPL'),
};

describe('detectMysqlServer', () => {
  it.each([
    ['10.11.6-MariaDB', '', 'mariadb', 10, 11, 6],
    ['5.5.5-10.6.16-MariaDB', '', 'mariadb', 10, 6, 16],
    ['10.5.8', 'mariadb.org binary distribution', 'mariadb', 10, 5, 8],
    ['8.0.mysql_aurora.3.05.2', 'Source distribution', 'mysql', 8, 0, 0],
    ['5.7.mysql_aurora.2.11.2', 'MySQL Community Server (GPL)', 'mysql', 5, 7, 0],
    ['9.1.0', 'MySQL Community Server - GPL', 'mysql', 9, 1, 0],
    ['10.0.1', 'MySQL Community Server - GPL', 'mysql', 10, 0, 1],
  ])('reads %s / %s as %s %i.%i.%i', (version, comment, flavour, major, minor, patch) => {
    expect(detectMysqlServer(version, comment)).toMatchObject({ flavour, major, minor, patch });
  });

  it('throws DatabaseError for a version it cannot read', () => {
    expect(() => detectMysqlServer('unknown', '')).toThrow(DatabaseError);
  });
});

describe('password statements by flavour and version', () => {
  it.each([
    ['MariaDB 10.11', `SET PASSWORD = '${HASH}'`],
    ['MySQL 5.7', `SET PASSWORD = '${PASSWORD}'`],
    ['MySQL 8.0', `ALTER USER CURRENT_USER() IDENTIFIED BY '${PASSWORD}'`],
    ['MySQL 8.4', `ALTER USER CURRENT_USER() IDENTIFIED BY '${PASSWORD}'`],
    ['MySQL 9.1', `ALTER USER CURRENT_USER() IDENTIFIED BY '${PASSWORD}'`],
  ] as const)('%s: a user sets its own password with %s', (server, expected) => {
    expect(setOwnPasswordStatement(SERVERS[server], PASSWORD)).toBe(expected);
  });

  it.each([
    ['MariaDB 10.11', `IDENTIFIED BY PASSWORD '${HASH}'`],
    ['MySQL 5.7', `IDENTIFIED WITH mysql_native_password AS '${HASH}'`],
    ['MySQL 8.0', `IDENTIFIED WITH caching_sha2_password BY '${PASSWORD}'`],
    ['MySQL 8.4', `IDENTIFIED WITH caching_sha2_password BY '${PASSWORD}'`],
    ['MySQL 9.1', `IDENTIFIED WITH caching_sha2_password BY '${PASSWORD}'`],
  ] as const)(
    '%s: the master creates the clone locked, and sets the password and unlocks last, %s',
    (server, clause) => {
      const account = { name: 'app_clone', host: '10.0.%' };
      expect(createLockedUserStatement(SERVERS[server], account, PASSWORD)).toBe(
        `CREATE USER 'app_clone'@'10.0.%' ${clause} ACCOUNT LOCK`,
      );
      expect(setPasswordAndUnlockStatement(SERVERS[server], account, PASSWORD)).toBe(
        `ALTER USER 'app_clone'@'10.0.%' ${clause} ACCOUNT UNLOCK`,
      );
    },
  );

  it.each([
    ['10.3.39-MariaDB', ''],
    ['10.4.1-MariaDB', ''],
    ['5.7.5', 'MySQL Community Server (GPL)'],
  ])('refuses to provision alternating users on %s (no ACCOUNT LOCK)', (version, comment) => {
    const server = detectMysqlServer(version, comment);
    const account = { name: 'app_clone', host: '%' };
    expect(() => createLockedUserStatement(server, account, PASSWORD)).toThrow(/need ACCOUNT LOCK/);
    expect(() => setPasswordAndUnlockStatement(server, account, PASSWORD)).toThrow(/need ACCOUNT LOCK/);
  });

  it('recognises the pending password in an unsalted stored hash only (not MySQL 8 caching_sha2_password)', () => {
    expect(storedPasswordMatches(SERVERS['MariaDB 10.11'], HASH, PASSWORD)).toBe(true);
    expect(storedPasswordMatches(SERVERS['MySQL 5.7'], HASH, PASSWORD)).toBe(true);
    expect(storedPasswordMatches(SERVERS['MariaDB 10.11'], HASH, `${PASSWORD}x`)).toBe(false);
    expect(storedPasswordMatches(SERVERS['MySQL 8.0'], HASH, PASSWORD)).toBe(false);
  });

  it('refuses MySQL before 5.7', () => {
    expect(() => setOwnPasswordStatement(detectMysqlServer('5.6.51', 'MySQL'), PASSWORD)).toThrow(
      /5\.7 or later/,
    );
  });
});

describe('quoting', () => {
  const server = SERVERS['MariaDB 10.11'];
  const strict: MysqlServer = { ...server, noBackslashEscapes: true };

  it('escapes quotes and backslashes in names', () => {
    expect(accountName(server, { name: "o'Brien.App-1", host: '%' })).toBe("'o\\'Brien.App-1'@'%'");
    expect(quoteString(server, 'a\\b')).toBe("'a\\\\b'");
  });

  it('doubles quotes only when NO_BACKSLASH_ESCAPES is set', () => {
    expect(quoteString(strict, "o'B\\r")).toBe("'o''B\\r'");
  });

  it('checks the user name length against the server limit (80 MariaDB, 32 MySQL)', () => {
    expect(() => assertUsernameFits(server, 'x'.repeat(80))).not.toThrow();
    expect(() => assertUsernameFits(server, 'x'.repeat(81))).toThrow(SecretFormatError);
    expect(() => assertUsernameFits(SERVERS['MySQL 8.0'], 'x'.repeat(33))).toThrow(/32 characters/);
  });
});

describe('rewriteGrant', () => {
  const server = SERVERS['MariaDB 10.11'];
  const from = { name: 'app', host: '10.0.%' };
  const to = { name: 'app_clone', host: '10.0.%' };

  it('moves a privilege grant to the clone and drops the password hash', () => {
    expect(
      rewriteGrant(
        `GRANT USAGE ON *.* TO \`app\`@\`10.0.%\` IDENTIFIED BY PASSWORD '${HASH}'`,
        from,
        to,
        server,
      ),
    ).toBe("GRANT USAGE ON *.* TO 'app_clone'@'10.0.%'");
  });

  it('keeps WITH GRANT OPTION and database names that contain the grantee text', () => {
    const line = 'GRANT SELECT, INSERT ON `x TO y`.* TO `app`@`10.0.%` WITH GRANT OPTION';
    expect(rewriteGrant(line, from, to, server)).toBe(
      "GRANT SELECT, INSERT ON `x TO y`.* TO 'app_clone'@'10.0.%' WITH GRANT OPTION",
    );
  });

  it('handles MySQL 5.7 quoting, role grants, MySQL 8 partial revokes and MariaDB default roles', () => {
    expect(rewriteGrant("GRANT SELECT ON `db`.* TO 'app'@'10.0.%'", from, to, server)).toBe(
      "GRANT SELECT ON `db`.* TO 'app_clone'@'10.0.%'",
    );
    expect(rewriteGrant('GRANT `reader`@`%` TO `app`@`10.0.%`', from, to, server)).toBe(
      "GRANT `reader`@`%` TO 'app_clone'@'10.0.%'",
    );
    expect(rewriteGrant('REVOKE INSERT ON `mysql`.* FROM `app`@`10.0.%`', from, to, server)).toBe(
      "REVOKE INSERT ON `mysql`.* FROM 'app_clone'@'10.0.%'",
    );
    expect(rewriteGrant('SET DEFAULT ROLE `reader` FOR `app`@`10.0.%`', from, to, server)).toBe(
      "SET DEFAULT ROLE `reader` FOR 'app_clone'@'10.0.%'",
    );
  });

  it('matches names with quotes and backticks exactly, and ignores other accounts', () => {
    const odd = { name: "o'B`x", host: '%' };
    expect(rewriteGrant("GRANT USAGE ON *.* TO `o'B``x`@`%`", odd, to, server)).toBe(
      "GRANT USAGE ON *.* TO 'app_clone'@'10.0.%'",
    );
    expect(rewriteGrant('GRANT USAGE ON *.* TO `app`@`%`', from, to, server)).toBeUndefined();
  });
});

describe('revokeStatements', () => {
  const account = { name: "app's_clone", host: '10.0.%' };
  const server = Object.values(SERVERS)[0] as MysqlServer;
  const to = accountName(server, account);

  it('undoes a privilege line, and its grant option apart', () => {
    expect(revokeStatements(`GRANT SELECT, INSERT ON \`db\`.* TO ${to}`, account, server)).toEqual([
      `REVOKE SELECT, INSERT ON \`db\`.* FROM ${to}`,
    ]);
    expect(
      revokeStatements(
        `GRANT SELECT (\`a\`, \`b\`) ON \`db\`.\`t\` TO ${to} WITH GRANT OPTION`,
        account,
        server,
      ),
    ).toEqual([
      `REVOKE SELECT (\`a\`, \`b\`) ON \`db\`.\`t\` FROM ${to}`,
      `REVOKE GRANT OPTION ON \`db\`.\`t\` FROM ${to}`,
    ]);
  });

  it('leaves USAGE, PROXY, roles and default roles to the account shape', () => {
    for (const line of [
      `GRANT USAGE ON *.* TO ${to}`,
      `GRANT PROXY ON ''@'%' TO ${to}`,
      `GRANT \`reader\` TO ${to}`,
      `SET DEFAULT ROLE \`reader\` FOR ${to}`,
    ]) {
      expect(revokeStatements(line, account, server), line).toEqual([]);
    }
  });
});
