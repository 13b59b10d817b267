import pg from 'pg';
import { DatabaseError, SecretFormatError } from '../errors';
import { registerSecret, scrubString } from '../log';
import {
  type AccountRef,
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

/** PostgreSQL and Aurora PostgreSQL. */
export const postgresAdapter: RotationAdapter = {
  family: 'postgres',
  defaultPort: 5432,
  defaultExcludeCharacters: ':/@"\'\\',
  async open(login, options) {
    const target = connectionTarget(login, 'postgres');
    const client = await connectPostgres(target, {}, options);
    try {
      const { rows } = await client.query(
        "SELECT current_setting('server_version_num')::int AS version, current_user AS account",
      );
      const row = rows[0] as { version: number; account: string };
      return new PostgresSession(client, row.version, row.account, login, options.purpose);
    } catch (error) {
      await client.end().catch(() => {});
      throw classify(error, target, options);
    }
  },
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
    await this.run(`ALTER ROLE ${pg.escapeIdentifier(this.self)} PASSWORD ${pg.escapeLiteral(verifier)}`, [
      password,
      verifier,
    ]);
  }

  async provisionAlternateUser(options: {
    original: string;
    pending: string;
    password: string;
    ownerRole?: string;
  }): Promise<void> {
    if (Buffer.byteLength(options.pending) > MAX_IDENTIFIER_BYTES) {
      throw new SecretFormatError(
        `Role name "${options.pending}" is longer than PostgreSQL's ${MAX_IDENTIFIER_BYTES} bytes`,
      );
    }
    const run: PostgresRunner = (sql) => this.run(sql) as Promise<Record<string, unknown>[]>;
    const names = { original: options.original, pending: options.pending };
    // First: a refused owner role leaves everything as it was.
    if (options.ownerRole)
      await prepareOwnerRole(run, this.serverVersion, { ...names, ownerRole: options.ownerRole });
    const verifier = postgresVerifier(this.serverVersion, options.password, options.pending);
    const role = pg.escapeIdentifier(options.pending);
    const exists = await this.run('SELECT 1 FROM pg_roles WHERE rolname = $1', [], [options.pending]);
    const verb = exists.length > 0 ? 'ALTER' : 'CREATE';
    await this.run(`${verb} ROLE ${role} WITH LOGIN PASSWORD ${pg.escapeLiteral(verifier)}`, [
      options.password,
      verifier,
    ]);
    // The clone holds its privileges through membership in the original role, and
    // gets the original's attributes, other memberships and settings.
    await copyRoleShape(run, this.serverVersion, names);
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
