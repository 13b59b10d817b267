import type mysql from 'mysql2/promise';
import { AuthenticationError, DatabaseError, SecretFormatError } from '../errors';
import { registerSecret, scrubString } from '../log';
import {
  type AccountRef,
  type AlternateUserPlan,
  type AlternateUserState,
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
  createLockedUserStatement,
  detectMysqlServer,
  type MysqlAccount,
  type MysqlServer,
  quoteString,
  revokeStatements,
  rewriteGrant,
  setOwnPasswordStatement,
  storedPasswordMatches,
} from './mysql-dialect';
import { mysqlNativePasswordHash } from './password-hash';

/** Logs in to MySQL, MariaDB or Aurora MySQL for rotation (the mysql adapter's `open`). */
export const openMysqlSession: RotationAdapter['open'] = async (login, options) => {
  const target = connectionTarget(login);
  const connection = await connectMysql(target, {}, options).catch((error: unknown) => {
    throw lockedAsRefused(error);
  });
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
};

class MysqlSession implements DatabaseSession {
  constructor(
    private readonly connection: mysql.Connection,
    private readonly server: MysqlServer,
    private readonly self: MysqlAccount,
    private readonly login: DatabaseLogin,
    private readonly purpose: string,
  ) {
    // An idle connection that the server closes emits 'error'; without a listener it would crash the process.
    connection.on('error', () => {});
  }

  async account(): Promise<AccountRef> {
    return { ...this.self };
  }

  async check(): Promise<void> {
    await this.run('SELECT 1');
  }

  async setOwnPassword(password: string): Promise<void> {
    await this.run(setOwnPasswordStatement(this.server, password), password);
  }

  async inspectAlternateUser(options: {
    current: AccountRef;
    pending: string;
    password: string;
  }): Promise<AlternateUserState> {
    const host = options.current.host ?? '%';
    // Every account of that name counts (any host, or a role): creating one more beside it is not safe either.
    const rows = (await this.run(
      `SELECT Host AS host, authentication_string AS auth FROM mysql.user WHERE User = ${quoteString(this.server, options.pending)}`,
    )) as Array<{ host: string; auth: string | null }>;
    if (rows.length === 0) return 'absent';
    const exact = rows.length === 1 && rows[0]?.host === host ? rows[0] : undefined;
    return exact && storedPasswordMatches(this.server, exact.auth ?? '', options.password)
      ? 'holds-pending-password'
      : 'exists';
  }

  async provisionAlternateUser(plan: AlternateUserPlan): Promise<void> {
    if (plan.ownerRole) {
      throw new SecretFormatError(
        'ownerRole is for PostgreSQL secrets only; MySQL-family objects have no owner',
      );
    }
    const current: MysqlAccount = { name: plan.current.name, host: plan.current.host ?? '%' };
    // The pending account lives on the same host pattern as the one it alternates with.
    const pending: MysqlAccount = { name: plan.pending, host: current.host };
    const before = plan.beforeStatement ?? (async () => {});
    assertUsernameFits(this.server, pending.name);
    const grants = await this.grantsFor(current, pending);
    if (plan.create) {
      await before({ kind: 'create', index: 0 });
      await this.run(createLockedUserStatement(this.server, pending, plan.password), plan.password);
    } else {
      // The replay only adds: what the other account holds beyond the current one's
      // grants (revoked from it since the last rotation) is revoked first. Its
      // previous password stops working at the last statement anyway.
      const wanted = new Set(grants);
      const held = await this.grantsFor(pending, pending);
      const stale = held.filter((line) => !wanted.has(line));
      for (const [index, line] of stale.entries()) {
        for (const revoke of revokeStatements(line, pending, this.server)) {
          await before({ kind: 'revoke', index });
          try {
            await this.run(revoke);
          } catch (error) {
            throw new DatabaseError(
              `Cannot revoke from ${accountName(this.server, pending)} what ${accountName(this.server, current)} no longer holds: ${revoke}: ${(error as Error).message}`,
              { cause: error },
            );
          }
        }
      }
    }
    for (const [index, grant] of grants.entries()) {
      await before({ kind: 'grant', index });
      try {
        await this.run(grant);
      } catch (error) {
        throw new DatabaseError(
          `Cannot replay grant ${index + 1} of ${grants.length} to ${accountName(this.server, pending)}: ${grant}: ${(error as Error).message}`,
          { cause: error },
        );
      }
    }
    // What SHOW GRANTS leaves out: roles it cannot revoke, MySQL 8 default roles and plugin.
    let copies = 0;
    const run: MysqlRunner = async (sql) => {
      if (!/^\s*SELECT\b/i.test(sql)) await before({ kind: 'copy', index: copies++ });
      return (await this.run(sql)) as Record<string, unknown>[];
    };
    const { plugin } = await copyAccountShape(run, this.server, current, pending);
    // Last: until this statement the pending password does not log in (a new account is
    // locked; an existing one still has its previous password).
    await before({ kind: 'password', index: 0 });
    await this.run(pendingPasswordStatement(this.server, pending, plan.password, plugin), plan.password);
  }

  /** `SHOW GRANTS FOR from`, every line moved to `to` before anything is changed. */
  private async grantsFor(from: MysqlAccount, to: MysqlAccount): Promise<string[]> {
    const rows = (await this.run(`SHOW GRANTS FOR ${accountName(this.server, from)}`)) as Array<
      Record<string, string>
    >;
    return rows.map((row, index) => {
      const replayed = rewriteGrant(Object.values(row)[0] ?? '', from, to, this.server);
      // A line that cannot be moved could be a revoke: skipping it would give the clone more.
      if (!replayed) {
        throw new DatabaseError(
          `Cannot copy line ${index + 1} of SHOW GRANTS FOR ${accountName(this.server, from)} to ${to.name}`,
        );
      }
      return replayed;
    });
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

/** MariaDB 4151 and MySQL 3118: the account is locked. For rotation that is a refused login like any other. */
const ACCOUNT_LOCKED_ERRNOS = new Set([4151, 3118]);

function lockedAsRefused(error: unknown): unknown {
  const errno = (error as { cause?: { errno?: number } }).cause?.errno;
  const locked = errno !== undefined && ACCOUNT_LOCKED_ERRNOS.has(errno);
  if (locked && error instanceof DatabaseError && !(error instanceof AuthenticationError)) {
    return new AuthenticationError(error.message, { cause: error.cause });
  }
  return error;
}

/** CURRENT_USER() answers `name@host`; the host part never holds '@', the name may. */
function splitAccount(value: string): MysqlAccount {
  const at = value.lastIndexOf('@');
  return at < 0 ? { name: value, host: '%' } : { name: value.slice(0, at), host: value.slice(at + 1) };
}
