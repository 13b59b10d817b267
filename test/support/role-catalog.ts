import type mysql from 'mysql2/promise';
import type pg from 'pg';

/**
 * What the catalogs say about one account, in a form two accounts can be
 * compared by: a clone "behaves like the original" when these rows are equal.
 */

/** pg_roles, pg_auth_members (memberships in `ignoreMembershipIn` left out) and pg_db_role_setting rows of `role`. */
export async function pgRoleCatalog(client: pg.Client, role: string, ignoreMembershipIn: string[] = []) {
  const attributes = await client.query(
    `SELECT rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls,
            rolconnlimit, rolvaliduntil::text
       FROM pg_roles WHERE rolname = $1`,
    [role],
  );
  const memberships = await client.query(
    `SELECT r.rolname AS role, m.admin_option FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
      WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = $1) AND NOT r.rolname = ANY ($2)
      ORDER BY 1`,
    [role, ignoreMembershipIn],
  );
  const settings = await client.query(
    `SELECT coalesce(d.datname, '*') AS database, s.setconfig FROM pg_db_role_setting s
       LEFT JOIN pg_database d ON d.oid = s.setdatabase
      WHERE s.setrole = (SELECT oid FROM pg_roles WHERE rolname = $1) ORDER BY 1`,
    [role],
  );
  return { attributes: attributes.rows, memberships: memberships.rows, settings: settings.rows };
}

/** MariaDB: mysql.roles_mapping rows and the default role of `name`@`host`. */
export async function mariadbRoleCatalog(
  connection: mysql.Connection,
  account: { name: string; host: string },
) {
  const [roles] = await connection.query(
    'SELECT Role, Admin_option FROM mysql.roles_mapping WHERE User = ? AND Host = ? ORDER BY Role',
    [account.name, account.host],
  );
  const [user] = await connection.query('SELECT default_role FROM mysql.user WHERE User = ? AND Host = ?', [
    account.name,
    account.host,
  ]);
  return { roles, defaultRole: (user as Array<{ default_role: string }>)[0]?.default_role };
}
