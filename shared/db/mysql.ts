import type mysql from 'mysql2/promise';
import { DatabaseError, SecretFormatError } from '../errors';
import { registerSecret, scrubString } from '../log';
import {
  type AccountRef,
  connectionTarget,
  type DatabaseLogin,
  type DatabaseSession,
  type RotationAdapter,
} from './adapter';
import { classify, connectMysql } from './connect';
import { copyAccountShape, type MysqlRunner, pendingPasswordStatement } from './mysql-clone';
import {
  accountName,
  assertUsernameFits,
  createUserStatement,
  detectMysqlServer,
  type MysqlAccount,
  type MysqlServer,
  rewriteGrant,
  setOwnPasswordStatement,
  setPasswordStatement,
} from './mysql-dialect';
import { mysqlNativePasswordHash } from './password-hash';

/** MySQL, MariaDB and Aurora MySQL. */
export const mysqlAdapter: RotationAdapter = {
  family: 'mysql',
  defaultPort: 3306,
  defaultExcludeCharacters: '/@"\'\\',
  async open(login, options) {
    const target = connectionTarget(login);
    const connection = await connectMysql(target, {}, options);
    try {
      const [rows] = await connection.query(
        'SELECT VERSION() AS version, @@version_comment AS comment, @@sql_mode AS sqlMode, CURRENT_USER() AS account',
      );
      const row = (rows as Array<Record<string, string>>)[0] ?? {};
      const server = detectMysqlServer(row.version ?? '', row.comment ?? '', row.sqlMode ?? '');
      return new MysqlSession(connection, server, splitAccount(row.account ?? ''), login, options.purpose);
    } catch (error) {
      await connection.end().catch(() => {});
      throw classify(error, target, options);
    }
  },
};

class MysqlSession implements DatabaseSession {
  constructor(
    private readonly connection: mysql.Connection,
    private readonly server: MysqlServer,
    private readonly self: MysqlAccount,
    private readonly login: DatabaseLogin,
    private readonly purpose: string,
  ) {}

  async account(): Promise<AccountRef> {
    return { ...this.self };
  }

  async check(): Promise<void> {
    await this.run('SELECT 1');
  }

  async setOwnPassword(password: string): Promise<void> {
    await this.run(setOwnPasswordStatement(this.server, password), password);
  }

  async provisionAlternateUser(options: {
    current: AccountRef;
    pending: string;
    password: string;
    ownerRole?: string;
  }): Promise<void> {
    if (options.ownerRole) {
      throw new SecretFormatError(
        'ownerRole is for PostgreSQL secrets only; MySQL-family objects have no owner',
      );
    }
    const current: MysqlAccount = { name: options.current.name, host: options.current.host ?? '%' };
    // The pending account lives on the same host pattern as the one it alternates with.
    const pending: MysqlAccount = { name: options.pending, host: current.host };
    assertUsernameFits(this.server, pending.name);
    const grants = await this.run(`SHOW GRANTS FOR ${accountName(this.server, current)}`);
    await this.run(createUserStatement(this.server, pending, options.password), options.password);
    await this.run(setPasswordStatement(this.server, pending, options.password), options.password);
    for (const [index, row] of (grants as Array<Record<string, string>>).entries()) {
      const replayed = rewriteGrant(Object.values(row)[0] ?? '', current, pending, this.server);
      // A line that cannot be moved could be a revoke: skipping it would give the clone more.
      if (!replayed) {
        throw new DatabaseError(
          `Cannot copy line ${index + 1} of SHOW GRANTS FOR ${accountName(this.server, current)} to ${pending.name}`,
        );
      }
      await this.run(replayed);
    }
    // What SHOW GRANTS leaves out: roles it cannot revoke, MySQL 8 default roles and plugin.
    const run: MysqlRunner = (sql) => this.run(sql) as Promise<Record<string, unknown>[]>;
    const { plugin } = await copyAccountShape(run, this.server, current, pending);
    if (plugin) {
      await this.run(
        pendingPasswordStatement(this.server, pending, options.password, plugin),
        options.password,
      );
    }
  }

  async close(): Promise<void> {
    await this.connection.end().catch(() => {});
  }

  /**
   * Runs one statement. A failure is re-raised without the statement text or the
   * driver's message verbatim: both may hold the new password or its hash.
   */
  private async run(sql: string, password?: string): Promise<unknown> {
    const sensitive = password ? [password, mysqlNativePasswordHash(password)] : [];
    registerSecret(...sensitive);
    try {
      const [rows] = await this.connection.query(sql);
      return rows;
    } catch (error) {
      const e = error as { code?: string; errno?: number; sqlMessage?: string; message?: string };
      let reason = scrubString(e.sqlMessage ?? e.message ?? 'unknown error');
      for (const value of sensitive) reason = reason.split(value).join('<redacted>');
      const where = `${this.login.username}@${this.login.host}:${this.login.port} (${this.purpose})`;
      throw new DatabaseError(`Statement failed for ${where}: ${e.code ?? ''} ${reason}`.trim(), {
        cause: { code: e.code, errno: e.errno },
      });
    }
  }
}

/** CURRENT_USER() answers `name@host`; the host part never holds '@', the name may. */
function splitAccount(value: string): MysqlAccount {
  const at = value.lastIndexOf('@');
  return at < 0 ? { name: value, host: '%' } : { name: value.slice(0, at), host: value.slice(at + 1) };
}
