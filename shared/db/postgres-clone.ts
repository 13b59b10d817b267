import pg from 'pg';
import { DatabaseError, SecretFormatError } from '../errors';

/**
 * Makes the pending user of an alternating pair behave like the original:
 * role attributes, memberships (with their options on PostgreSQL 16+) and
 * per-role settings (also per database), plus the opt-in owner role. Reading
 * and diffing are separate from the pure statement builders below, which the
 * unit tests check for server versions this machine does not run.
 */

/** Runs one statement as the master user and returns its rows. */
export type PostgresRunner = (sql: string) => Promise<Record<string, unknown>[]>;

/** The attributes of pg_roles that a clone copies (LOGIN and the password are the rotation's own). */
export interface RoleAttributes {
  superuser: boolean;
  inherit: boolean;
  createRole: boolean;
  createDb: boolean;
  replication: boolean;
  bypassRls: boolean;
  connectionLimit: number;
  /** As the server prints it in this session, or null when the role never expires. */
  validUntil: string | null;
}

/** One membership of a role in `role`, as the union of its grants (one per grantor on 16+). */
export interface Membership {
  role: string;
  admin: boolean;
  /** PostgreSQL 16+ only: the per-grant options. */
  inherit?: boolean;
  set?: boolean;
  /** Who granted each row (PostgreSQL 16+ keeps one row per grantor). */
  grantors: string[];
}

/** The `ALTER ROLE ... [IN DATABASE d] SET` entries of a role, `database` null for every database. */
export interface RoleSettings {
  database: string | null;
  config: string[];
}

export interface RoleShape {
  attributes: RoleAttributes;
  memberships: Membership[];
  settings: RoleSettings[];
}

/** Membership options exist per grant from PostgreSQL 16. */
export const MEMBERSHIP_OPTIONS_VERSION = 160000;

/** Reads what a role is: attributes, memberships and settings. Undefined when the role does not exist. */
export async function readRoleShape(
  run: PostgresRunner,
  serverVersion: number,
  role: string,
): Promise<RoleShape | undefined> {
  const name = pg.escapeLiteral(role);
  const [attributes] = await run(
    `SELECT rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolconnlimit,
            rolvaliduntil::text AS rolvaliduntil
       FROM pg_roles WHERE rolname = ${name}`,
  );
  if (!attributes) return undefined;
  const options = serverVersion >= MEMBERSHIP_OPTIONS_VERSION ? ', m.inherit_option, m.set_option' : '';
  const memberships = await run(
    `SELECT r.rolname AS role, m.admin_option${options}, coalesce(g.rolname, '') AS grantor
       FROM pg_auth_members m
       JOIN pg_roles r ON r.oid = m.roleid
       LEFT JOIN pg_roles g ON g.oid = m.grantor
      WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = ${name})
      ORDER BY r.rolname, grantor`,
  );
  const settings = await run(
    `SELECT d.datname AS database, s.setconfig
       FROM pg_db_role_setting s
       LEFT JOIN pg_database d ON d.oid = s.setdatabase -- none for 0: every database
      WHERE s.setrole = (SELECT oid FROM pg_roles WHERE rolname = ${name})
      ORDER BY d.datname NULLS FIRST`,
  );
  return {
    attributes: {
      superuser: attributes.rolsuper === true,
      inherit: attributes.rolinherit === true,
      createRole: attributes.rolcreaterole === true,
      createDb: attributes.rolcreatedb === true,
      replication: attributes.rolreplication === true,
      bypassRls: attributes.rolbypassrls === true,
      connectionLimit: Number(attributes.rolconnlimit),
      validUntil: (attributes.rolvaliduntil as string | null) ?? null,
    },
    memberships: mergeGrants(memberships),
    settings: settings.map((row) => ({
      database: (row.database as string | null) ?? null,
      config: (row.setconfig as string[] | null) ?? [],
    })),
  };
}

/** One entry per granted role; options are what the union of its grants gives. */
function mergeGrants(rows: Record<string, unknown>[]): Membership[] {
  const byRole = new Map<string, Membership>();
  for (const row of rows) {
    const role = row.role as string;
    const known = byRole.get(role);
    const next: Membership = {
      role,
      admin: row.admin_option === true || (known?.admin ?? false),
      grantors: [...(known?.grantors ?? []), row.grantor as string],
    };
    if ('inherit_option' in row) {
      next.inherit = row.inherit_option === true || (known?.inherit ?? false);
      next.set = row.set_option === true || (known?.set ?? false);
    }
    byRole.set(role, next);
  }
  return [...byRole.values()];
}

const ATTRIBUTE_KEYWORDS: Array<[keyof RoleAttributes, string, string]> = [
  ['superuser', 'SUPERUSER', 'NOSUPERUSER'],
  ['createDb', 'CREATEDB', 'NOCREATEDB'],
  ['createRole', 'CREATEROLE', 'NOCREATEROLE'],
  ['inherit', 'INHERIT', 'NOINHERIT'],
  ['replication', 'REPLICATION', 'NOREPLICATION'],
  ['bypassRls', 'BYPASSRLS', 'NOBYPASSRLS'],
];

/**
 * One `ALTER ROLE` per attribute that differs, so that a refusal (a master that
 * may not give BYPASSRLS, say) names the attribute. A VALID UNTIL that the
 * original lacks cannot be removed, only pushed to 'infinity'.
 */
export function attributeStatements(
  pending: string,
  original: RoleAttributes,
  clone: RoleAttributes,
): string[] {
  const role = pg.escapeIdentifier(pending);
  const statements: string[] = [];
  for (const [key, on, off] of ATTRIBUTE_KEYWORDS) {
    if (original[key] !== clone[key]) statements.push(`ALTER ROLE ${role} WITH ${original[key] ? on : off}`);
  }
  if (original.connectionLimit !== clone.connectionLimit) {
    statements.push(`ALTER ROLE ${role} WITH CONNECTION LIMIT ${Math.trunc(original.connectionLimit)}`);
  }
  if (original.validUntil !== clone.validUntil) {
    statements.push(`ALTER ROLE ${role} VALID UNTIL ${pg.escapeLiteral(original.validUntil ?? 'infinity')}`);
  }
  return statements;
}

/** `GRANT role TO member` with the options the server knows: ADMIN before 16, ADMIN/INHERIT/SET from 16. */
export function grantMembershipStatement(
  serverVersion: number,
  member: string,
  membership: Pick<Membership, 'role' | 'admin' | 'inherit' | 'set'>,
): string {
  const grant = `GRANT ${pg.escapeIdentifier(membership.role)} TO ${pg.escapeIdentifier(member)}`;
  if (serverVersion < MEMBERSHIP_OPTIONS_VERSION)
    return membership.admin ? `${grant} WITH ADMIN OPTION` : grant;
  const option = (value: boolean | undefined) => (value ? 'TRUE' : 'FALSE');
  return `${grant} WITH ADMIN ${option(membership.admin)}, INHERIT ${option(membership.inherit ?? true)}, SET ${option(membership.set ?? true)}`;
}

/** Removes every grant of `membership.role` to `member` (one per grantor on 16+). */
export function revokeMembershipStatements(
  serverVersion: number,
  member: string,
  membership: Pick<Membership, 'role' | 'grantors'>,
): string[] {
  const revoke = `REVOKE ${pg.escapeIdentifier(membership.role)} FROM ${pg.escapeIdentifier(member)}`;
  if (serverVersion < MEMBERSHIP_OPTIONS_VERSION) return [revoke];
  return membership.grantors.map((grantor) =>
    grantor ? `${revoke} GRANTED BY ${pg.escapeIdentifier(grantor)}` : revoke,
  );
}

/**
 * Memberships of `pending` made equal to the original's: missing ones granted,
 * differing options set (GRANT with explicit options changes them on 16+; before
 * 16 only ADMIN OPTION exists), extra ones revoked. `keep` lists roles the clone
 * belongs to by design (the original role itself): never revoked.
 */
export function membershipStatements(
  serverVersion: number,
  pending: string,
  original: Membership[],
  clone: Membership[],
  keep: string[] = [],
): string[] {
  const statements: string[] = [];
  const had = new Map(clone.map((m) => [m.role, m]));
  const wanted = new Set(original.map((m) => m.role));
  for (const membership of original) {
    if (membership.role === pending) continue;
    const current = had.get(membership.role);
    const same =
      current &&
      current.admin === membership.admin &&
      (serverVersion < MEMBERSHIP_OPTIONS_VERSION ||
        (current.inherit === membership.inherit && current.set === membership.set));
    if (same) continue;
    if (current?.admin && !membership.admin && serverVersion < MEMBERSHIP_OPTIONS_VERSION) {
      statements.push(
        `REVOKE ADMIN OPTION FOR ${pg.escapeIdentifier(membership.role)} FROM ${pg.escapeIdentifier(pending)}`,
      );
    } else {
      statements.push(grantMembershipStatement(serverVersion, pending, membership));
    }
  }
  for (const membership of clone) {
    if (wanted.has(membership.role) || keep.includes(membership.role)) continue;
    statements.push(...revokeMembershipStatements(serverVersion, pending, membership));
  }
  return statements;
}

/**
 * Settings whose values are lists that the server stores element by element
 * quoted (GUC_LIST_QUOTE): each element must be given as its own literal, or
 * `a, b` would become one schema named "a, b". The same list as pg_dumpall's.
 */
const LIST_QUOTED_SETTINGS = new Set([
  'local_preload_libraries',
  'search_path',
  'session_preload_libraries',
  'shared_preload_libraries',
  'temp_tablespaces',
  'unix_socket_directories',
]);

/** Splits a stored list value (`a, "$user", "My Schema"`) into its elements, as the server's SplitGUCList does. */
export function splitSettingList(value: string): string[] {
  const elements: string[] = [];
  let i = 0;
  const skipSpace = () => {
    while (i < value.length && /\s/.test(value[i] as string)) i++;
  };
  skipSpace();
  if (i >= value.length) return elements;
  for (;;) {
    let element = '';
    if (value[i] === '"') {
      i++;
      for (;;) {
        if (i >= value.length) throw new DatabaseError('Unterminated quoted element in a role setting');
        if (value[i] === '"') {
          if (value[i + 1] !== '"') break;
          i++;
        }
        element += value[i++];
      }
      i++;
    } else {
      while (i < value.length && value[i] !== ',' && !/\s/.test(value[i] as string)) element += value[i++];
    }
    elements.push(element);
    skipSpace();
    if (i >= value.length) return elements;
    if (value[i] !== ',') throw new DatabaseError('Malformed list value in a role setting');
    i++;
    skipSpace();
  }
}

/** `ALTER ROLE pending [IN DATABASE d] SET name TO value` for one stored `name=value` entry. */
export function setSettingStatement(pending: string, database: string | null, entry: string): string {
  const at = entry.indexOf('=');
  if (at <= 0) throw new DatabaseError('Malformed role setting (no "=")');
  const name = entry.slice(0, at);
  const value = entry.slice(at + 1);
  const values = LIST_QUOTED_SETTINGS.has(name.toLowerCase())
    ? splitSettingList(value).map((v) => pg.escapeLiteral(v))
    : [pg.escapeLiteral(value)];
  return `${alterRoleIn(pending, database)} SET ${pg.escapeIdentifier(name)} TO ${values.join(', ')}`;
}

function alterRoleIn(role: string, database: string | null): string {
  const inDatabase = database === null ? '' : ` IN DATABASE ${pg.escapeIdentifier(database)}`;
  return `ALTER ROLE ${pg.escapeIdentifier(role)}${inDatabase}`;
}

/**
 * Per database (and for all databases), the clone's settings made identical to
 * the original's, in the same order: when they differ at all, RESET ALL and
 * set each entry again.
 */
export function settingStatements(
  pending: string,
  original: RoleSettings[],
  clone: RoleSettings[],
): string[] {
  const statements: string[] = [];
  const key = (database: string | null) => database ?? '\u0000all';
  const had = new Map(clone.map((s) => [key(s.database), s.config]));
  const wanted = new Set(original.map((s) => key(s.database)));
  for (const { database, config } of original) {
    const current = had.get(key(database)) ?? [];
    if (current.length === config.length && current.every((entry, i) => entry === config[i])) continue;
    if (current.length > 0) statements.push(`${alterRoleIn(pending, database)} RESET ALL`);
    for (const entry of config) statements.push(setSettingStatement(pending, database, entry));
  }
  for (const { database } of clone) {
    if (!wanted.has(key(database))) statements.push(`${alterRoleIn(pending, database)} RESET ALL`);
  }
  return statements;
}

/** Names of the statements' targets in errors: never values. */
function describe(statement: string): string {
  return statement.replace(/\s+TO\s+'.*$/s, ' TO ...');
}

async function runAll(run: PostgresRunner, statements: string[], what: string): Promise<void> {
  for (const statement of statements) {
    try {
      await run(statement);
    } catch (error) {
      throw new DatabaseError(`Cannot give the clone ${what} of the original (${describe(statement)})`, {
        cause: error,
      });
    }
  }
}

/**
 * Makes `pending` (which exists) an exact copy of `original`'s attributes,
 * memberships and settings; the clone's own membership in `original` is granted
 * here too, and on 16+ with INHERIT TRUE so that a NOINHERIT clone still holds
 * the original's privileges. Before 16 NOINHERIT applies to every membership, so
 * a NOINHERIT original is refused: its clone could not use its privileges.
 */
export async function copyRoleShape(
  run: PostgresRunner,
  serverVersion: number,
  names: { original: string; pending: string },
): Promise<void> {
  if (names.original === names.pending) return;
  const original = await readRoleShape(run, serverVersion, names.original);
  const clone = await readRoleShape(run, serverVersion, names.pending);
  if (!original) throw new DatabaseError(`Role "${names.original}" does not exist`);
  if (!clone) throw new DatabaseError(`Role "${names.pending}" does not exist`);
  if (!original.attributes.inherit && serverVersion < MEMBERSHIP_OPTIONS_VERSION) {
    throw new DatabaseError(
      `Role "${names.original}" is NOINHERIT: before PostgreSQL 16 its clone could not use its privileges; make it INHERIT (ALTER ROLE ... INHERIT) to rotate with alternating users`,
    );
  }
  const own: Membership = { role: names.original, admin: false, inherit: true, set: true, grantors: [] };
  const current = clone.memberships.find((m) => m.role === names.original);
  const ownMissing =
    !current ||
    (serverVersion >= MEMBERSHIP_OPTIONS_VERSION && (current.inherit !== true || current.set !== true));
  await runAll(
    run,
    [
      ...(ownMissing ? [grantMembershipStatement(serverVersion, names.pending, own)] : []),
      ...membershipStatements(serverVersion, names.pending, original.memberships, clone.memberships, [
        names.original,
      ]),
    ],
    'a membership',
  );
  await runAll(
    run,
    attributeStatements(names.pending, original.attributes, clone.attributes),
    'an attribute',
  );
  await runAll(run, settingStatements(names.pending, original.settings, clone.settings), 'a setting');
}

/** What an owner role may not be: it would lend power the original does not already hold. */
const POWERFUL = {
  rolcanlogin: 'LOGIN',
  rolsuper: 'SUPERUSER',
  rolcreaterole: 'CREATEROLE',
  rolreplication: 'REPLICATION',
  rolbypassrls: 'BYPASSRLS',
} as const;

/**
 * Prepares the opt-in owner role on the original: both users of the pair belong
 * to it and their sessions start as it (`ALTER ROLE ... SET role`), so what one
 * creates, the other owns too. The secret names it, so it is treated as hostile
 * input: accepted only when the original is already a direct member of it (with
 * the SET option on 16+: no power the original lacks) and it is NOLOGIN without
 * SUPERUSER, CREATEROLE, REPLICATION or BYPASSRLS. A role that does not exist is
 * refused, not created. The clone gets membership and setting from the original
 * through copyRoleShape.
 */
export async function prepareOwnerRole(
  run: PostgresRunner,
  serverVersion: number,
  names: { original: string; pending: string; ownerRole: string },
): Promise<void> {
  const { original, ownerRole } = names;
  const alternate = names.pending === original ? undefined : names.pending;
  if (
    ownerRole === original ||
    ownerRole === alternate ||
    ownerRole.startsWith('pg_') ||
    Buffer.byteLength(ownerRole) > 63
  ) {
    throw new SecretFormatError(
      `ownerRole "${ownerRole}" cannot be used: it must be a separate role, not pg_*, at most 63 bytes`,
    );
  }
  const quoted = pg.escapeLiteral(ownerRole);
  const [role] = await run(
    `SELECT ${Object.keys(POWERFUL).join(', ')} FROM pg_roles WHERE rolname = ${quoted}`,
  );
  if (!role) {
    // Not created here: sessions that start as a new, empty role would lose every
    // privilege and object the original holds today, and testSecret would not notice.
    throw new SecretFormatError(
      `ownerRole "${ownerRole}" does not exist: create it NOLOGIN, grant it to "${original}", and give it the objects and privileges the application needs (REASSIGN OWNED BY, GRANT)`,
    );
  }
  const powers = Object.entries(POWERFUL).flatMap(([column, keyword]) =>
    role[column] === true ? [keyword] : [],
  );
  if (powers.length > 0) {
    throw new SecretFormatError(
      `ownerRole "${ownerRole}" is refused: it has ${powers.join(', ')}; an owner role must be NOLOGIN and hold none of SUPERUSER, CREATEROLE, REPLICATION, BYPASSRLS`,
    );
  }
  const setOption = serverVersion >= MEMBERSHIP_OPTIONS_VERSION ? ' AND m.set_option' : '';
  const member = await run(
    `SELECT 1 FROM pg_auth_members m
      WHERE m.roleid = (SELECT oid FROM pg_roles WHERE rolname = ${quoted})
        AND m.member = (SELECT oid FROM pg_roles WHERE rolname = ${pg.escapeLiteral(original)})${setOption}`,
  );
  if (member.length === 0) {
    throw new SecretFormatError(
      `ownerRole "${ownerRole}" is refused: "${original}" is not a direct member of it${setOption ? ' with the SET option' : ''}; an administrator grants it first`,
    );
  }
  const [setting] = await run(
    `SELECT 1 FROM pg_db_role_setting
      WHERE setdatabase = 0 AND setrole = (SELECT oid FROM pg_roles WHERE rolname = ${pg.escapeLiteral(original)})
        AND ${pg.escapeLiteral(`role=${ownerRole}`)} = ANY (setconfig)`,
  );
  if (!setting) {
    await runAll(
      run,
      [`ALTER ROLE ${pg.escapeIdentifier(original)} SET role TO ${pg.escapeLiteral(ownerRole)}`],
      'the owner role',
    );
  }
}
