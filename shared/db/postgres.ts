import pg from 'pg';
import { DatabaseError, SecretFormatError } from '../errors';
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
import { classify, connectPostgres } from './connect';
import { postgresMd5Verifier, scramSha256Verifier } from './password-hash';
import { copyRoleShape, type PostgresRunner, prepareOwnerRole } from './postgres-clone';

/** PostgreSQL truncates identifiers to 63 bytes: a longer role name would silently name another role. */
const MAX_IDENTIFIER_BYTES = 63;

/** Logs in to PostgreSQL or Aurora PostgreSQL for rotation (the postgres adapter's `open`). */
export const openPostgresSession: RotationAdapter['open'] = async (login, options) => {
  const target = connectionTarget(login, 'postgres');
  const client = await connectPostgres(target, {}, options);
  try {
    // session_user: the login, even when its sessions start as another role (ownerRole).
    const { rows } = await client.query(
      "SELECT current_setting('server_version_num')::int AS version, session_user AS account",
    );
    const row = rows[0] as { version: number; account: string };
    return new PostgresSession(client, row.version, row.account, login, options.purpose);
  } catch (error) {
    await client.end().catch(() => {});
    throw classify(error, target, options);
  }
};

/**
 * The password as the server will store it: a SCRAM-SHA-256 verifier (PostgreSQL 10
 * and later) or the md5 form before that. Only this ever reaches the server.
 */
export function postgresVerifier(serverVersionNum: number, password: string, username: string): string {
  return serverVersionNum >= 100000 ? scramSha256Verifier(password) : postgresMd5Verifier(password, username);
}

class PostgresSession implements DatabaseSession {
  constructor(
    private readonly client: pg.Client,
    private readonly serverVersion: number,
    private readonly self: string,
    private readonly login: DatabaseLogin,
    private readonly purpose: string,
  ) {}

  async account(): Promise<AccountRef> {
    return { name: this.self };
  }

  async check(): Promise<void> {
    await this.run('SELECT 1');
  }

  async setOwnPassword(password: string): Promise<void> {
    const verifier = postgresVerifier(this.serverVersion, password, this.self);
    // A role may change only its own password: back from a role its sessions start as (ALTER ROLE ... SET role).
    await this.run('SET ROLE NONE');
    await this.run(`ALTER ROLE ${pg.escapeIdentifier(this.self)} PASSWORD ${pg.escapeLiteral(verifier)}`, [
      password,
      verifier,
    ]);
  }

  /**
   * PostgreSQL never leaves a half-made pending role (provisioning is one
   * transaction), so an earlier attempt's role is recognised by logging in with
   * the pending password, never here: `holds-pending-password` is not answered.
   */
  async inspectAlternateUser(options: { pending: string }): Promise<AlternateUserState> {
    const rows = await this.run('SELECT 1 FROM pg_roles WHERE rolname = $1', [], [options.pending]);
    return rows.length > 0 ? 'exists' : 'absent';
  }

  async provisionAlternateUser(plan: AlternateUserPlan): Promise<void> {
    if (Buffer.byteLength(plan.pending) > MAX_IDENTIFIER_BYTES) {
      throw new SecretFormatError(
        `Role name "${plan.pending}" is longer than PostgreSQL's ${MAX_IDENTIFIER_BYTES} bytes`,
      );
    }
    if (plan.create && plan.pending === plan.original) {
      // "x_clone" whose "x" does not exist: a new "x" would be a member of nothing.
      throw new DatabaseError(
        `Role "${plan.current.name}" is named as the clone of "${plan.pending}", which does not exist: created now, "${plan.pending}" would hold none of its privileges`,
      );
    }
    const before = plan.beforeStatement ?? (async () => {});
    const verifier = postgresVerifier(this.serverVersion, plan.password, plan.pending);
    const role = pg.escapeIdentifier(plan.pending);
    // Statements that change something are announced as `copy`; the readers' SELECTs are not.
    let copies = 0;
    const run: PostgresRunner = async (sql) => {
      if (!/^\s*SELECT\b/i.test(sql)) await before({ kind: 'copy', index: copies++ });
      return (await this.run(sql)) as Record<string, unknown>[];
    };
    const names = { original: plan.original, pending: plan.pending };
    // One transaction: nothing of it, least of all the login, is visible before COMMIT.
    await this.run('BEGIN');
    try {
      // First: a refused owner role fails before anything else is attempted.
      if (plan.ownerRole) {
        await prepareOwnerRole(run, this.serverVersion, { ...names, ownerRole: plan.ownerRole });
      }
      if (plan.create) {
        await before({ kind: 'create', index: 0 });
        await this.run(`CREATE ROLE ${role} NOLOGIN`);
      }
      // The clone holds its privileges through membership in the original role.
      if (plan.pending !== plan.original) {
        const grant = `GRANT ${pg.escapeIdentifier(plan.original)} TO ${role}`;
        await before({ kind: 'grant', index: 0 });
        await this.run(grant).catch((error: Error) => {
          throw new DatabaseError(`Cannot grant to "${plan.pending}": ${grant}: ${error.message}`, {
            cause: error,
          });
        });
      }
      // Everything else about the original (attributes, memberships, settings), before the password.
      await copyRoleShape(run, this.serverVersion, names);
      await before({ kind: 'password', index: 0 });
      await this.run(`ALTER ROLE ${role} WITH LOGIN PASSWORD ${pg.escapeLiteral(verifier)}`, [
        plan.password,
        verifier,
      ]);
      await this.run('COMMIT');
    } catch (error) {
      await this.client.query('ROLLBACK').catch(() => {});
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => {});
  }

  /** Runs one statement; a failure is re-raised without the statement and with sensitive values masked. */
  private async run(sql: string, sensitive: string[] = [], values: unknown[] = []): Promise<unknown[]> {
    registerSecret(...sensitive);
    try {
      const result = await this.client.query(sql, values);
      return result.rows;
    } catch (error) {
      const e = error as { code?: string; message?: string };
      let reason = scrubString(e.message ?? 'unknown error');
      for (const value of sensitive) reason = reason.split(value).join('<redacted>');
      const where = `${this.login.username}@${this.login.host}:${this.login.port} (${this.purpose})`;
      throw new DatabaseError(`Statement failed for ${where}: ${e.code ?? ''} ${reason}`.trim(), {
        cause: { code: e.code },
      });
    }
  }
}
