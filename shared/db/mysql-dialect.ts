import { DatabaseError, SecretFormatError } from '../errors';
import { mysqlNativePasswordHash } from './password-hash';

/**
 * SQL for MySQL-family servers, chosen by flavour and version. Pure functions:
 * the adapter (mysql.ts) runs what they return.
 */

/** What `SELECT VERSION(), @@version_comment, @@sql_mode` says about a server. */
export interface MysqlServer {
  flavour: 'mariadb' | 'mysql';
  major: number;
  minor: number;
  patch: number;
  /** With NO_BACKSLASH_ESCAPES a backslash is an ordinary character inside literals. */
  noBackslashEscapes: boolean;
}

/** A MySQL account: user name and host pattern, exactly as in mysql.user. */
export interface MysqlAccount {
  name: string;
  host: string;
}

/**
 * Reads flavour and version from the server's own answers. MariaDB says so in
 * VERSION() ("10.11.6-MariaDB", or "5.5.5-10.11.6-MariaDB" behind some proxies)
 * or in @@version_comment; Aurora MySQL reports "8.0.mysql_aurora.3.05.2".
 */
export function detectMysqlServer(version: string, comment: string, sqlMode = ''): MysqlServer {
  const mariadb = /mariadb/i.test(version) || /mariadb/i.test(comment);
  const numbers = mariadb ? version.replace(/^5\.5\.5-/, '') : version;
  const match = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(numbers);
  if (!match) throw new DatabaseError(`Unrecognised MySQL-family server version "${version}"`);
  return {
    flavour: mariadb ? 'mariadb' : 'mysql',
    major: Number(match[1]),
    minor: Number(match[2]),
    patch: Number(match[3] ?? 0),
    noBackslashEscapes: /NO_BACKSLASH_ESCAPES/i.test(sqlMode),
  };
}

/** Longest user name the server accepts, in characters. */
export function maxUsernameLength(server: MysqlServer): number {
  return server.flavour === 'mariadb' ? 80 : 32;
}

/** A string literal that is safe under the session's sql_mode. */
export function quoteString(server: MysqlServer, value: string): string {
  const escaped = server.noBackslashEscapes
    ? value.replace(/'/g, "''")
    : // biome-ignore lint/suspicious/noControlCharactersInRegex: NUL and Ctrl-Z are what MySQL escapes
      value.replace(/[\0\n\r\x1a\\']/g, (c) => MYSQL_ESCAPES[c] ?? c);
  return `'${escaped}'`;
}

const MYSQL_ESCAPES: Record<string, string> = {
  '\0': '\\0',
  '\n': '\\n',
  '\r': '\\r',
  '\x1a': '\\Z',
  '\\': '\\\\',
  "'": "\\'",
};

/** `'name'@'host'`, both parts escaped. */
export function accountName(server: MysqlServer, account: MysqlAccount): string {
  return `${quoteString(server, account.name)}@${quoteString(server, account.host)}`;
}

type Generation = 'mariadb' | 'mysql57' | 'mysql8';

function generation(server: MysqlServer): Generation {
  if (server.flavour === 'mariadb') return 'mariadb';
  if (server.major > 5 || (server.major === 5 && server.minor >= 7)) {
    return server.major >= 8 ? 'mysql8' : 'mysql57';
  }
  throw new DatabaseError(
    `MySQL ${server.major}.${server.minor} is not supported for rotation (5.7 or later required)`,
  );
}

/**
 * The statement with which a logged-in user changes its own password; it needs
 * no CREATE USER privilege. MariaDB gets the mysql_native_password hash, so the
 * password never reaches its general log; MySQL 5.7 and 8+ rewrite the literal
 * in their own logs (MySQL 8+ hashes it with the account's plugin,
 * caching_sha2_password by default).
 */
export function setOwnPasswordStatement(server: MysqlServer, password: string): string {
  switch (generation(server)) {
    case 'mariadb':
      return `SET PASSWORD = ${quoteString(server, mysqlNativePasswordHash(password))}`;
    case 'mysql57':
      return `SET PASSWORD = ${quoteString(server, password)}`;
    case 'mysql8':
      return `ALTER USER CURRENT_USER() IDENTIFIED BY ${quoteString(server, password)}`;
  }
}

/**
 * Creates the clone of an alternating pair locked (ACCOUNT LOCK): it holds the
 * pending password from the start, so that a retry can recognise it as this
 * rotation's (`storedPasswordMatches`), but it cannot log in until
 * `setPasswordAndUnlockStatement` has run after every grant. No IF NOT EXISTS:
 * an account that appeared since it was found missing is not taken over.
 */
export function createLockedUserStatement(
  server: MysqlServer,
  account: MysqlAccount,
  password: string,
): string {
  assertAccountLocking(server);
  return `CREATE USER ${accountName(server, account)} ${identifiedBy(server, password)} ACCOUNT LOCK`;
}

/** The last statement of provisioning: the password, and the account unlocked (run by the master user). */
export function setPasswordAndUnlockStatement(
  server: MysqlServer,
  account: MysqlAccount,
  password: string,
): string {
  assertAccountLocking(server);
  return `ALTER USER ${accountName(server, account)} ${identifiedBy(server, password)} ACCOUNT UNLOCK`;
}

/** ACCOUNT LOCK exists from MariaDB 10.4.2 and MySQL 5.7.6. */
function assertAccountLocking(server: MysqlServer): void {
  const v = server.major * 10_000 + server.minor * 100 + server.patch;
  const needed = server.flavour === 'mariadb' ? 100402 : 50706;
  if (v < needed) {
    throw new DatabaseError(
      `Alternating users need ACCOUNT LOCK (MariaDB 10.4.2 or MySQL 5.7.6 and later); this server is ${server.flavour} ${server.major}.${server.minor}.${server.patch}`,
    );
  }
}

/**
 * Whether an account's stored `authentication_string` is `password`, where the
 * server stores a hash without salt (mysql_native_password: MariaDB, MySQL 5.7).
 * MySQL 8's caching_sha2_password salts it, so there the answer is always false.
 */
export function storedPasswordMatches(server: MysqlServer, stored: string, password: string): boolean {
  return generation(server) !== 'mysql8' && stored === mysqlNativePasswordHash(password);
}

function identifiedBy(server: MysqlServer, password: string): string {
  switch (generation(server)) {
    case 'mariadb':
      return `IDENTIFIED BY PASSWORD ${quoteString(server, mysqlNativePasswordHash(password))}`;
    case 'mysql57':
      return `IDENTIFIED WITH mysql_native_password AS ${quoteString(server, mysqlNativePasswordHash(password))}`;
    case 'mysql8':
      return `IDENTIFIED WITH caching_sha2_password BY ${quoteString(server, password)}`;
  }
}

/** Checks that `<name>` fits the server's user name limit before anything is created. */
export function assertUsernameFits(server: MysqlServer, name: string): void {
  const limit = maxUsernameLength(server);
  if ([...name].length > limit) {
    throw new SecretFormatError(
      `User name "${name}" is longer than the ${limit} characters this server allows`,
    );
  }
}

/**
 * Rewrites one line of `SHOW GRANTS FOR from` so that it grants the same to `to`.
 * The grantee is found by parsing the quoted account after the last ` TO ` (or
 * ` FOR ` in MariaDB's `SET DEFAULT ROLE`, ` FROM ` in the partial revokes of MySQL
 * 8, which must reach the clone too), not by splitting on spaces, so names
 * with quotes, dots and spaces survive. An `IDENTIFIED ...` clause (MariaDB and
 * MySQL 5.7 print the password hash there) is dropped: the password is set apart.
 * Returns undefined for a line that does not name `from` as its grantee.
 */
export function rewriteGrant(
  line: string,
  from: MysqlAccount,
  to: MysqlAccount,
  server: MysqlServer,
): string | undefined {
  for (const keyword of [' TO ', ' FOR ', ' FROM ']) {
    let at = line.lastIndexOf(keyword);
    while (at >= 0) {
      const parsed = parseAccountAt(line, at + keyword.length);
      if (parsed && parsed.account.name === from.name && parsed.account.host === from.host) {
        const rest = line.slice(parsed.end).replace(IDENTIFIED_CLAUSE, '');
        return `${line.slice(0, at)}${keyword}${accountName(server, to)}${rest}`;
      }
      at = line.lastIndexOf(keyword, at - 1);
    }
  }
  return undefined;
}

const IDENTIFIED_CLAUSE =
  /^\s+IDENTIFIED\s+(?:BY\s+PASSWORD|VIA\s+\S+(?:\s+(?:USING|AS))?|WITH\s+\S+(?:\s+(?:AS|BY|USING))?)\s+'(?:[^'\\]|\\.|'')*'/i;

/** Parses `` `name`@`host` `` or `'name'@'host'` starting at `start`. */
function parseAccountAt(text: string, start: number): { account: MysqlAccount; end: number } | undefined {
  const name = parseQuoted(text, start);
  if (!name || text[name.end] !== '@') return undefined;
  const host = parseQuoted(text, name.end + 1);
  if (!host) return undefined;
  return { account: { name: name.value, host: host.value }, end: host.end };
}

function parseQuoted(text: string, start: number): { value: string; end: number } | undefined {
  const quote = text[start];
  if (quote !== '`' && quote !== "'" && quote !== '"') return undefined;
  let value = '';
  for (let i = start + 1; i < text.length; i++) {
    const c = text[i] as string;
    if (c === '\\' && quote !== '`' && i + 1 < text.length) {
      value += text[++i];
    } else if (c === quote) {
      if (text[i + 1] === quote) {
        value += quote;
        i++;
      } else {
        return { value, end: i + 1 };
      }
    } else {
      value += c;
    }
  }
  return undefined;
}

/**
 * The REVOKE statements that undo one `SHOW GRANTS` line of `account` (already in
 * the form `rewriteGrant` gives it): `GRANT privs ON object TO account [WITH GRANT
 * OPTION]` becomes `REVOKE privs ON object FROM account` (and `REVOKE GRANT OPTION`).
 * Lines that hold no privilege on an object (USAGE, roles, default roles, PROXY)
 * give none: the account's shape is synced apart.
 */
export function revokeStatements(line: string, account: MysqlAccount, server: MysqlServer): string[] {
  const grantee = ` TO ${accountName(server, account)}`;
  const at = line.lastIndexOf(grantee);
  const head = /^GRANT\s+(.+?)\s+ON\s+(.+)$/is.exec(at < 0 ? '' : line.slice(0, at));
  if (!head) return [];
  const [, privileges = '', object = ''] = head;
  if (/^USAGE$/i.test(privileges.trim()) || /^PROXY$/i.test(privileges.trim())) return [];
  const from = ` FROM ${accountName(server, account)}`;
  const statements = [`REVOKE ${privileges} ON ${object}${from}`];
  if (/\bWITH\s+GRANT\s+OPTION\b/i.test(line.slice(at + grantee.length))) {
    statements.push(`REVOKE GRANT OPTION ON ${object}${from}`);
  }
  return statements;
}
