import pg from 'pg';
import { connectionTarget } from '../db/adapter';
import { connectPostgres } from '../db/connect';
import { fail, type PreflightCheck, pass } from './preflight-check';
import type { PreflightEngine, PreflightSession } from './preflight-engine';

/** PostgreSQL truncates identifiers to 63 bytes: a longer role name would silently name another role. */
const MAX_IDENTIFIER_BYTES = 63;

/** Read-only questions to a PostgreSQL-family server: what rotation will need, asked without changing anything. */
export const postgresPreflight: PreflightEngine = {
  async open(login) {
    const client = await connectPostgres(connectionTarget(login, 'postgres'));
    try {
      const { rows } = await client.query(
        "SELECT current_user AS account, current_setting('server_version_num')::int AS version, current_setting('server_version') AS label, pg_is_in_recovery() AS replica",
      );
      const row = rows[0] as { account: string; version: number; label: string; replica: boolean };
      return new PostgresPreflightSession(
        client,
        row.account,
        row.version,
        row.label,
        row.replica,
        login.host,
      );
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
  },
};

/** What one role may do, as the master sees it. */
export interface RoleFacts {
  version: number;
  masterSuper: boolean;
  masterCreateRole: boolean;
  originalExists: boolean;
  originalSuper: boolean;
  /** Whether the master holds ADMIN OPTION on the original role. */
  adminOnOriginal: boolean;
  cloneExists: boolean;
  cloneSuper: boolean;
  adminOnClone: boolean;
}

class PostgresPreflightSession implements PreflightSession {
  readonly account: { name: string };

  constructor(
    private readonly client: pg.Client,
    account: string,
    private readonly version: number,
    private readonly label: string,
    private readonly replica: boolean,
    private readonly host: string,
  ) {
    this.account = { name: account };
  }

  get serverLabel(): string {
    return `PostgreSQL ${this.label.split(' ')[0]}`;
  }

  async ownPassword(): Promise<PreflightCheck> {
    const name = 'password-change';
    if (this.replica) return replicaFailure(name, this.host);
    // Amazon RDS: with rds.restrict_password_commands on, only members of rds_password may set passwords.
    const { rows } = await this.client.query(
      "SELECT current_setting('rds.restrict_password_commands', true) AS restricted, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_password' AND pg_has_role(current_user, oid, 'MEMBER')) AS member",
    );
    const row = rows[0] as { restricted: string | null; member: boolean };
    const user = this.account.name;
    if (row.restricted === 'on' && !row.member) {
      return fail(
        name,
        `rds.restrict_password_commands is on and ${user} is not a member of rds_password, so it may not change its own password`,
        `As the master user: GRANT rds_password TO ${pg.escapeIdentifier(user)}; or use alternating users (masterarn)`,
      );
    }
    return pass(
      name,
      `${user} may change its own password (ALTER ROLE; ${row.restricted === 'on' ? 'member of rds_password' : 'rds.restrict_password_commands not on'})`,
    );
  }

  async passwordRules(): Promise<undefined> {
    // The server receives a SCRAM verifier, never the password: passwordcheck has nothing to judge.
    return undefined;
  }

  async alternation(_user: { name: string }, clone: string, original: string): Promise<PreflightCheck> {
    const name = 'master-privileges';
    if (Buffer.byteLength(clone) > MAX_IDENTIFIER_BYTES) {
      return fail(
        name,
        `The alternate role "${clone}" would be longer than PostgreSQL's ${MAX_IDENTIFIER_BYTES} bytes`,
        `Use a user name of at most ${MAX_IDENTIFIER_BYTES - 6} bytes`,
      );
    }
    if (this.replica) return replicaFailure(name, this.host);
    const { rows } = await this.client.query(
      `SELECT m.rolsuper AS "masterSuper", m.rolcreaterole AS "masterCreateRole",
              o.oid IS NOT NULL AS "originalExists", coalesce(o.rolsuper, false) AS "originalSuper",
              coalesce(pg_has_role(current_user, o.oid, 'MEMBER WITH ADMIN OPTION'), false) AS "adminOnOriginal",
              c.oid IS NOT NULL AS "cloneExists", coalesce(c.rolsuper, false) AS "cloneSuper",
              coalesce(pg_has_role(current_user, c.oid, 'MEMBER WITH ADMIN OPTION'), false) AS "adminOnClone"
         FROM pg_roles m
         LEFT JOIN pg_roles o ON o.rolname = $1
         LEFT JOIN pg_roles c ON c.rolname = $2
        WHERE m.rolname = current_user`,
      [original, clone],
    );
    const facts = { version: this.version, ...(rows[0] as Omit<RoleFacts, 'version'>) };
    return judgeAlternation(facts, this.account.name, original, clone);
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => {});
  }
}

/**
 * What the master needs for `CREATE/ALTER ROLE clone ... PASSWORD` and
 * `GRANT original TO clone`: superuser; or CREATEROLE, which before PostgreSQL 16
 * covers every non-superuser role and from 16 on only roles it holds ADMIN OPTION on.
 */
export function judgeAlternation(
  facts: RoleFacts,
  master: string,
  original: string,
  clone: string,
): PreflightCheck {
  const name = 'master-privileges';
  if (facts.masterSuper) return pass(name, `The master ${master} is a superuser`);
  const lacks: string[] = [];
  const fixes: string[] = [];
  const q = pg.escapeIdentifier;
  if (!facts.originalExists) {
    return fail(name, `Role ${original} does not exist`, "Correct the secret's username");
  }
  if (!facts.masterCreateRole) {
    lacks.push('CREATEROLE');
    fixes.push(`ALTER ROLE ${q(master)} CREATEROLE`);
  }
  const mayManage = (exists: boolean, isSuper: boolean, admin: boolean) =>
    !exists || admin || (facts.masterCreateRole && !isSuper && facts.version < 160000);
  if (!mayManage(facts.originalExists, facts.originalSuper, facts.adminOnOriginal)) {
    lacks.push(`ADMIN OPTION on ${original} (to grant it to ${clone})`);
    fixes.push(`GRANT ${q(original)} TO ${q(master)} WITH ADMIN OPTION`);
  }
  if (facts.cloneExists && !mayManage(true, facts.cloneSuper, facts.adminOnClone)) {
    lacks.push(`ADMIN OPTION on ${clone} (to set its password)`);
    fixes.push(`GRANT ${q(clone)} TO ${q(master)} WITH ADMIN OPTION`);
  }
  if (lacks.length > 0) {
    return fail(
      name,
      `The master ${master} lacks ${lacks.join('; ')}, needed to maintain ${clone} as a member of ${original}`,
      `As a superuser: ${fixes.join('; ')}`,
    );
  }
  return pass(
    name,
    `The master ${master} may create ${clone} and grant it ${original} (CREATEROLE${facts.adminOnOriginal ? ', ADMIN OPTION' : ''})`,
  );
}

function replicaFailure(name: string, host: string): PreflightCheck {
  return fail(
    name,
    `${host} is a standby in recovery (a replica or reader endpoint): passwords cannot be changed there`,
    "Point the secret's host at the writer (primary or cluster) endpoint",
  );
}
