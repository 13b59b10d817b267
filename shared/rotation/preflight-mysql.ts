import type mysql from 'mysql2/promise';
import { type AccountRef, connectionTarget, type DatabaseLogin } from '../db/adapter';
import { connectMysql } from '../db/connect';
import {
  accountName,
  detectMysqlServer,
  type MysqlAccount,
  type MysqlServer,
  maxUsernameLength,
} from '../db/mysql-dialect';
import { fail, type PreflightCheck, pass, warn } from './preflight-check';
import type { PreflightEngine, PreflightSession } from './preflight-engine';
import type { PasswordPolicy } from './settings';

/** caching_sha2_password (MySQL 8 and later) refuses longer passwords. */
export const MYSQL8_MAX_PASSWORD_LENGTH = 256;

/** Read-only questions to a MySQL-family server: what rotation will need, asked without changing anything. */
export const mysqlPreflight: PreflightEngine = {
  async open(login) {
    const connection = await connectMysql(connectionTarget(login));
    try {
      const [rows] = await connection.query(
        'SELECT VERSION() AS version, @@version_comment AS comment, @@sql_mode AS sqlMode, CURRENT_USER() AS account, @@global.read_only AS readOnly',
      );
      const row = (rows as Array<Record<string, string | number>>)[0] ?? {};
      const server = detectMysqlServer(String(row.version), String(row.comment), String(row.sqlMode));
      return new MysqlPreflightSession(
        connection,
        server,
        splitAccount(String(row.account)),
        Number(row.readOnly) === 1,
        login,
      );
    } catch (error) {
      await connection.end().catch(() => {});
      throw error;
    }
  },
};

/** One privilege at one level, as information_schema lists it. */
interface Privilege {
  privilege: string;
  schema?: string;
  table?: string;
  column?: string;
  grantable: boolean;
}

class MysqlPreflightSession implements PreflightSession {
  constructor(
    private readonly connection: mysql.Connection,
    private readonly server: MysqlServer,
    readonly account: MysqlAccount,
    private readonly readOnly: boolean,
    private readonly login: DatabaseLogin,
  ) {}

  get serverLabel(): string {
    const { flavour, major, minor, patch } = this.server;
    return `${flavour === 'mariadb' ? 'MariaDB' : 'MySQL'} ${major}.${minor}.${patch}`;
  }

  async ownPassword(): Promise<PreflightCheck> {
    const name = 'password-change';
    const who = `${this.account.name}@${this.account.host}`;
    if (
      this.server.flavour === 'mysql' &&
      (this.server.major < 5 || (this.server.major === 5 && this.server.minor < 7))
    )
      return fail(name, `${this.serverLabel} is not supported for rotation`, 'Upgrade to MySQL 5.7 or later');
    if (this.readOnly) return readOnlyFailure(name, this.login.host, this.serverLabel);
    if (this.server.flavour === 'mysql' && this.server.major >= 8) {
      const requireCurrent = await this.variable('password_require_current');
      const privileged = (await this.privilegesOf(this.account)).some(
        (p) => p.privilege === 'CREATE USER' && p.schema === undefined,
      );
      if (requireCurrent === 'ON' && !privileged) {
        return fail(
          name,
          `password_require_current is ON: ${who} may not change its own password without the current one, which ALTER USER CURRENT_USER() does not send`,
          `ALTER USER ${accountName(this.server, this.account)} PASSWORD REQUIRE CURRENT OPTIONAL, or use alternating users`,
        );
      }
      return pass(
        name,
        `${who} may change its own password (ALTER USER CURRENT_USER(), no privilege needed)`,
      );
    }
    return pass(name, `${who} may change its own password (SET PASSWORD, no privilege needed)`);
  }

  async passwordRules(policy: PasswordPolicy): Promise<PreflightCheck | undefined> {
    if (this.server.flavour === 'mariadb') {
      const [plugins] = await this.connection.query(
        "SELECT PLUGIN_NAME AS name FROM information_schema.PLUGINS WHERE PLUGIN_TYPE = 'PASSWORD VALIDATION' AND PLUGIN_STATUS = 'ACTIVE'",
      );
      const active = (plugins as Array<{ name: string }>).map((p) => p.name);
      const strict = (await this.variable('strict_password_validation')) === 'ON';
      return mariadbPasswordRules(active, strict, this.serverLabel);
    }
    const [rows] = await this.connection.query("SHOW GLOBAL VARIABLES LIKE 'validate_password%'");
    const settings = Object.fromEntries(
      (rows as Array<{ Variable_name: string; Value: string }>).map((r) => [
        r.Variable_name.replace('validate_password_', 'validate_password.'),
        r.Value,
      ]),
    );
    return mysqlPasswordRules(settings, policy, this.server);
  }

  async alternation(user: AccountRef, clone: string): Promise<PreflightCheck> {
    const name = 'master-privileges';
    const master = `${this.account.name}@${this.account.host}`;
    const current: MysqlAccount = { name: user.name, host: user.host ?? '%' };
    const limit = maxUsernameLength(this.server);
    if ([...clone].length > limit) {
      return fail(
        name,
        `The alternate user "${clone}" would be longer than the ${limit} characters ${this.serverLabel} allows`,
        `Use a user name of at most ${limit - 6} characters`,
      );
    }
    if (this.readOnly) return readOnlyFailure(name, this.login.host, this.serverLabel);
    const problems: string[] = [];
    const fixes: string[] = [];
    const masterPrivileges = await this.privilegesOf(this.account);
    const grantOption = (p: Privilege) => p.grantable && p.schema === undefined;
    if (!masterPrivileges.some((p) => p.privilege === 'CREATE USER' && p.schema === undefined)) {
      problems.push('the CREATE USER privilege');
      fixes.push(`GRANT CREATE USER ON *.* TO ${accountName(this.server, this.account)}`);
    }
    let grantLines: string[];
    try {
      const [rows] = await this.connection.query(`SHOW GRANTS FOR ${accountName(this.server, current)}`);
      grantLines = (rows as Array<Record<string, string>>).map((r) => Object.values(r)[0] ?? '');
    } catch (error) {
      const reason = (error as { sqlMessage?: string }).sqlMessage ?? (error as Error).message;
      return fail(
        name,
        `The master ${master} cannot read the grants of ${current.name}@${current.host}: ${reason}`,
        `GRANT SELECT ON mysql.* TO ${accountName(this.server, this.account)}`,
      );
    }
    const userPrivileges = await this.privilegesOf(current);
    const lacking = userPrivileges.filter(
      (p) => p.privilege !== 'USAGE' && !masterPrivileges.some((m) => m.grantable && covers(m, p)),
    );
    for (const p of lacking) {
      const target = `${p.privilege}${p.column ? ` (${quoteIdentifier(p.column)})` : ''} ON ${objectName(p)}`;
      problems.push(`${target} WITH GRANT OPTION`);
      fixes.push(`GRANT ${target} TO ${accountName(this.server, this.account)} WITH GRANT OPTION`);
    }
    // Roles and proxy rights are replayed too, but information_schema does not show who may grant them.
    const unverified = grantLines.filter((line) => /^GRANT\s+PROXY\s/i.test(line) || !/\sON\s/i.test(line));
    if (problems.length > 0) {
      return fail(
        name,
        `The master ${master} lacks ${problems.join('; ')}, needed to create ${clone} with the grants of ${current.name}@${current.host}`,
        `As an administrator: ${fixes.join('; ')}`,
      );
    }
    const globalGrant = masterPrivileges.some(grantOption);
    const detail = `The master ${master} may create users and holds ${globalGrant ? 'global privileges' : 'every privilege'} of ${current.name}@${current.host} WITH GRANT OPTION (${userPrivileges.filter((p) => p.privilege !== 'USAGE').length} checked)`;
    if (unverified.length > 0) {
      return warn(
        name,
        `${detail}; not verified: ${unverified.length} role or proxy grant(s), which the master must be able to grant (WITH ADMIN OPTION)`,
        'Check that the master may grant the roles that SHOW GRANTS lists for the user',
      );
    }
    return pass(name, detail);
  }

  async close(): Promise<void> {
    await this.connection.end().catch(() => {});
  }

  private async variable(name: string): Promise<string | undefined> {
    const [rows] = await this.connection.query('SHOW GLOBAL VARIABLES LIKE ?', [name]);
    return (rows as Array<{ Value: string }>)[0]?.Value;
  }

  /** Every privilege of an account, at every level, from information_schema. */
  private async privilegesOf(account: MysqlAccount): Promise<Privilege[]> {
    const grantee = `'${account.name.replace(/'/g, "''")}'@'${account.host.replace(/'/g, "''")}'`;
    const query = async (sql: string) => {
      const [rows] = await this.connection.query(sql, [grantee]);
      return rows as Array<Record<string, string | null>>;
    };
    const make = (r: Record<string, string | null>): Privilege => {
      const p: Privilege = { privilege: String(r.p), grantable: r.g === 'YES' };
      if (r.s != null) p.schema = r.s;
      if (r.t != null) p.table = r.t;
      if (r.c != null) p.column = r.c;
      return p;
    };
    // Sorted, so that what the check lists comes in the same order every time.
    const rows = [
      ...(await query(
        'SELECT PRIVILEGE_TYPE AS p, IS_GRANTABLE AS g FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ? ORDER BY p',
      )),
      ...(await query(
        'SELECT PRIVILEGE_TYPE AS p, IS_GRANTABLE AS g, TABLE_SCHEMA AS s FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ? ORDER BY p, s',
      )),
      ...(await query(
        'SELECT PRIVILEGE_TYPE AS p, IS_GRANTABLE AS g, TABLE_SCHEMA AS s, TABLE_NAME AS t FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = ? ORDER BY p, s, t',
      )),
      ...(await query(
        'SELECT PRIVILEGE_TYPE AS p, IS_GRANTABLE AS g, TABLE_SCHEMA AS s, TABLE_NAME AS t, COLUMN_NAME AS c FROM information_schema.COLUMN_PRIVILEGES WHERE GRANTEE = ? ORDER BY p, s, t, c',
      )),
    ];
    return rows.map(make);
  }
}

/** Does the master's privilege `m` (with grant option) allow granting the user's privilege `p`? */
export function covers(m: Privilege, p: Privilege): boolean {
  if (m.privilege !== p.privilege) return false;
  if (m.schema === undefined) return true;
  if (p.schema === undefined || !schemaPatternMatches(m.schema, p.schema)) return false;
  if (m.table === undefined) return true;
  if (p.table === undefined || m.table !== p.table) return false;
  if (m.column === undefined) return true;
  return p.column !== undefined && m.column === p.column;
}

/** Database-level grants may name a LIKE pattern (`app\_%`); `\_` and `\%` are literal. */
export function schemaPatternMatches(pattern: string, schema: string): boolean {
  if (pattern === schema) return true;
  let regex = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '\\' && i + 1 < pattern.length) regex += escapeRegex(pattern[++i] as string);
    else if (c === '%') regex += '.*';
    else if (c === '_') regex += '.';
    else regex += escapeRegex(c);
  }
  return new RegExp(`^${regex}$`, 's').test(schema.replace(/\\([_%])/g, '$1'));
}

function escapeRegex(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function quoteIdentifier(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

function objectName(p: Privilege): string {
  if (p.schema === undefined) return '*.*';
  return `${quoteIdentifier(p.schema)}.${p.table === undefined ? '*' : quoteIdentifier(p.table)}`;
}

function readOnlyFailure(name: string, host: string, label: string): PreflightCheck {
  return fail(
    name,
    `${host} is read-only (${label} has read_only on): a replica or reader endpoint cannot change passwords`,
    "Point the secret's host at the writer (primary or cluster) endpoint",
  );
}

/** MariaDB refuses password hashes while a validation plugin is active and strict_password_validation is on. */
export function mariadbPasswordRules(plugins: string[], strict: boolean, label: string): PreflightCheck {
  const name = 'server-password-rules';
  if (plugins.length > 0 && strict) {
    return fail(
      name,
      `${label} has password validation (${plugins.join(', ')}) with strict_password_validation ON, so it refuses the password hash that rotation sets to keep the password out of the general log`,
      'Set strict_password_validation to OFF (parameter group or SET GLOBAL); the generated passwords come from the policy checked above',
    );
  }
  return pass(
    name,
    plugins.length > 0
      ? `${label}: password validation (${plugins.join(', ')}) does not apply to hashes (strict_password_validation OFF)`
      : `${label}: no password validation plugin active`,
  );
}

/** MySQL's validate_password component (or 5.7 plugin) against the policy, and caching_sha2_password's limit. */
export function mysqlPasswordRules(
  settings: Record<string, string>,
  policy: PasswordPolicy,
  server: MysqlServer,
): PreflightCheck {
  const name = 'server-password-rules';
  const problems: string[] = [];
  const number = (key: string) => Number(settings[`validate_password.${key}`] ?? 0);
  if (server.major >= 8 && policy.length > MYSQL8_MAX_PASSWORD_LENGTH) {
    problems.push(
      `PASSWORD_LENGTH ${policy.length} exceeds the ${MYSQL8_MAX_PASSWORD_LENGTH} characters caching_sha2_password accepts`,
    );
  }
  const policyLevel = (settings['validate_password.policy'] ?? 'MEDIUM').toUpperCase();
  const enforced =
    settings['validate_password.length'] !== undefined && policyLevel !== 'LOW' && policyLevel !== '0';
  if (settings['validate_password.length'] !== undefined && policy.length < number('length')) {
    problems.push(`PASSWORD_LENGTH ${policy.length} is below validate_password.length ${number('length')}`);
  }
  if (enforced) {
    const needs: Array<[string, boolean, number]> = [
      ['mixed_case_count', policy.excludeUppercase || policy.excludeLowercase, number('mixed_case_count')],
      ['number_count', policy.excludeNumbers, number('number_count')],
      ['special_char_count', policy.excludePunctuation, number('special_char_count')],
    ];
    for (const [key, excluded, count] of needs) {
      if (count > 0 && excluded)
        problems.push(`validate_password.${key} is ${count} but the policy excludes those characters`);
      else if (count > 1 || (count === 1 && !policy.requireEachIncludedType))
        problems.push(
          `validate_password.${key} is ${count}: GetRandomPassword guarantees ${policy.requireEachIncludedType ? 'only one' : 'none'} of each type`,
        );
    }
  }
  if (problems.length > 0) {
    return fail(
      name,
      problems.join('; '),
      'Align the rotation settings (PASSWORD_LENGTH, EXCLUDE_*, REQUIRE_EACH_INCLUDED_TYPE) with the server, or relax validate_password',
    );
  }
  return pass(
    name,
    settings['validate_password.length'] !== undefined
      ? `validate_password (policy ${policyLevel}, length ${number('length')}) accepts the generated passwords`
      : 'no validate_password component or plugin active',
  );
}

/** CURRENT_USER() answers `name@host`; the host part never holds '@', the name may. */
function splitAccount(value: string): MysqlAccount {
  const at = value.lastIndexOf('@');
  return at < 0 ? { name: value, host: '%' } : { name: value.slice(0, at), host: value.slice(at + 1) };
}
