import { DatabaseError } from '../errors';
import {
  accountName,
  type MysqlAccount,
  type MysqlServer,
  quoteString,
  setPasswordAndUnlockStatement,
} from './mysql-dialect';

/**
 * What `SHOW GRANTS` does not carry over from the original account of an
 * alternating pair to its clone: on MySQL 8 the default roles (kept in
 * mysql.default_roles, never printed by SHOW GRANTS) and the authentication
 * plugin; on every flavour with roles, roles and ADMIN OPTIONs the original no
 * longer has (a replay only adds). The readers run queries; the builders are
 * pure, so the MySQL 8 forms are unit-tested without a MySQL 8 server.
 */

/** Runs one statement as the master user and returns its rows. */
export type MysqlRunner = (sql: string) => Promise<Record<string, unknown>[]>;

/** A role: MariaDB roles have no host (empty); MySQL 8 roles are accounts. */
export interface MysqlRole {
  name: string;
  host: string;
}

export interface RoleGrant extends MysqlRole {
  admin: boolean;
}

export interface MysqlAccountShape {
  roles: RoleGrant[];
  defaultRoles: MysqlRole[];
  /** The authentication plugin, read on MySQL 8 only (MariaDB and 5.7 keep the product's choice). */
  plugin?: string;
}

/** Plugins that MySQL 8+ hashes from `IDENTIFIED WITH <plugin> BY '<password>'`. */
export const MYSQL_PASSWORD_PLUGINS = ['caching_sha2_password', 'mysql_native_password', 'sha256_password'];

function hasRoles(server: MysqlServer): boolean {
  return server.flavour === 'mariadb' || server.major >= 8;
}

/** Reads roles, default roles and (MySQL 8) plugin of an account. */
export async function readAccountShape(
  run: MysqlRunner,
  server: MysqlServer,
  account: MysqlAccount,
): Promise<MysqlAccountShape> {
  if (!hasRoles(server)) return { roles: [], defaultRoles: [] };
  const user = quoteString(server, account.name);
  const host = quoteString(server, account.host);
  const yes = (value: unknown) => String(value).toUpperCase() === 'Y';
  if (server.flavour === 'mariadb') {
    const roles = await run(
      `SELECT Role AS name, Admin_option AS admin FROM mysql.roles_mapping WHERE User = ${user} AND Host = ${host} ORDER BY Role`,
    );
    const [row] = await run(`SELECT default_role FROM mysql.user WHERE User = ${user} AND Host = ${host}`);
    const defaultRole = String(row?.default_role ?? '');
    return {
      roles: roles.map((r) => ({ name: String(r.name), host: '', admin: yes(r.admin) })),
      defaultRoles: defaultRole ? [{ name: defaultRole, host: '' }] : [],
    };
  }
  const roles = await run(
    `SELECT FROM_USER AS name, FROM_HOST AS host, WITH_ADMIN_OPTION AS admin FROM mysql.role_edges
      WHERE TO_USER = ${user} AND TO_HOST = ${host} ORDER BY FROM_USER, FROM_HOST`,
  );
  const defaults = await run(
    `SELECT DEFAULT_ROLE_USER AS name, DEFAULT_ROLE_HOST AS host FROM mysql.default_roles
      WHERE USER = ${user} AND HOST = ${host} ORDER BY DEFAULT_ROLE_USER, DEFAULT_ROLE_HOST`,
  );
  const [row] = await run(`SELECT plugin FROM mysql.user WHERE User = ${user} AND Host = ${host}`);
  return {
    roles: roles.map((r) => ({ name: String(r.name), host: String(r.host), admin: yes(r.admin) })),
    defaultRoles: defaults.map((r) => ({ name: String(r.name), host: String(r.host) })),
    ...(row?.plugin ? { plugin: String(row.plugin) } : {}),
  };
}

/** A role as the server's grammar names it: `` `r` `` on MariaDB, `'r'@'h'` on MySQL. */
export function roleName(server: MysqlServer, role: MysqlRole): string {
  return server.flavour === 'mariadb' ? `\`${role.name.replace(/`/g, '``')}\`` : accountName(server, role);
}

const sameRole = (a: MysqlRole, b: MysqlRole) => a.name === b.name && a.host === b.host;

/**
 * Role grants of `to` made equal to `original`'s: missing ones granted, extra
 * ones revoked, an ADMIN OPTION the original lacks taken away (MariaDB has
 * REVOKE ADMIN OPTION FOR; MySQL re-grants the role without it).
 */
export function roleStatements(
  server: MysqlServer,
  to: MysqlAccount,
  original: RoleGrant[],
  clone: RoleGrant[],
): string[] {
  const grantee = accountName(server, to);
  const statements: string[] = [];
  const regrant: RoleGrant[] = [];
  for (const role of clone) {
    const wanted = original.find((r) => sameRole(r, role));
    if (!wanted) {
      statements.push(`REVOKE ${roleName(server, role)} FROM ${grantee}`);
    } else if (role.admin && !wanted.admin) {
      if (server.flavour === 'mariadb') {
        statements.push(`REVOKE ADMIN OPTION FOR ${roleName(server, role)} FROM ${grantee}`);
      } else {
        statements.push(`REVOKE ${roleName(server, role)} FROM ${grantee}`);
        regrant.push(wanted);
      }
    }
  }
  for (const role of original) {
    const had = clone.find((r) => sameRole(r, role));
    if (had && (had.admin || !role.admin) && !regrant.includes(role)) continue;
    statements.push(`GRANT ${roleName(server, role)} TO ${grantee}${role.admin ? ' WITH ADMIN OPTION' : ''}`);
  }
  return statements;
}

/** The default roles of `to` set to exactly `roles` (NONE when there are none). */
export function defaultRoleStatement(server: MysqlServer, to: MysqlAccount, roles: MysqlRole[]): string {
  const list = roles.length === 0 ? 'NONE' : roles.map((r) => roleName(server, r)).join(', ');
  // MariaDB names one default role, FOR the user; MySQL a list, TO the user.
  return server.flavour === 'mariadb'
    ? `SET DEFAULT ROLE ${list} FOR ${accountName(server, to)}`
    : `SET DEFAULT ROLE ${list} TO ${accountName(server, to)}`;
}

/**
 * The last statement of provisioning: `account`'s password, with `plugin` (the
 * original's) on MySQL 8+ so that the clone authenticates the way the original
 * does, and the account unlocked; elsewhere, and for the default plugin, the
 * product's own statement. A plugin that does not take a password (IAM, socket,
 * LDAP) cannot be rotated: refused.
 */
export function pendingPasswordStatement(
  server: MysqlServer,
  account: MysqlAccount,
  password: string,
  plugin: string | undefined,
): string {
  if (server.flavour === 'mariadb' || server.major < 8 || !plugin || plugin === 'caching_sha2_password') {
    return setPasswordAndUnlockStatement(server, account, password);
  }
  if (!MYSQL_PASSWORD_PLUGINS.includes(plugin)) {
    throw new DatabaseError(
      `The original account authenticates with ${plugin}, which takes no password: alternating-users rotation needs one of ${MYSQL_PASSWORD_PLUGINS.join(', ')}`,
    );
  }
  return `ALTER USER ${accountName(server, account)} IDENTIFIED WITH ${plugin} BY ${quoteString(server, password)} ACCOUNT UNLOCK`;
}

/**
 * After the grants of SHOW GRANTS are replayed: roles and default roles of
 * `to` made equal to `from`'s. Returns the original's plugin (MySQL 8) for the
 * password statement, which comes last.
 */
export async function copyAccountShape(
  run: MysqlRunner,
  server: MysqlServer,
  from: MysqlAccount,
  to: MysqlAccount,
): Promise<{ plugin?: string }> {
  if (from.name === to.name && from.host === to.host) return {};
  if (!hasRoles(server)) return {};
  const original = await readAccountShape(run, server, from);
  const clone = await readAccountShape(run, server, to);
  const statements = roleStatements(server, to, original.roles, clone.roles);
  const sameDefaults =
    original.defaultRoles.length === clone.defaultRoles.length &&
    original.defaultRoles.every((r) => clone.defaultRoles.some((c) => sameRole(r, c)));
  if (!sameDefaults) statements.push(defaultRoleStatement(server, to, original.defaultRoles));
  for (const statement of statements) {
    try {
      await run(statement);
    } catch (error) {
      throw new DatabaseError(`Cannot give ${to.name} the roles of ${from.name} (${statement})`, {
        cause: error,
      });
    }
  }
  return original.plugin ? { plugin: original.plugin } : {};
}
