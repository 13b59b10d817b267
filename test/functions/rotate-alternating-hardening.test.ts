import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { ProvisionStatement } from '../../shared/db/adapter';
import { DatabaseError } from '../../shared/errors';
import type { RotationStep } from '../../shared/rotation/event';
import {
  type EngineUnderTest,
  invoker,
  mariadbUnderTest,
  postgresUnderTest,
  rotate,
  rotationDeps,
  secretValue,
  stagesOf,
  startRotation,
} from '../shared/rotation/support';
import { createSecret, mysqlAdmin, pgAdmin, randomPassword, uniqueName } from '../stack/fixtures';

/**
 * setSecret of alternating users, interrupted: a grant that cannot be replayed,
 * and the master's connection killed between two provisioning statements. The
 * pending password must never log in before every privilege is in place, and a
 * retry must complete what the interrupted attempt left.
 */

/** What these tests need beyond EngineUnderTest: a master of their own, and privileges to compare. */
interface Provisioned extends EngineUnderTest {
  /** A master user only this test uses, so that killing its sessions touches no other test. */
  createMaster(): Promise<{ username: string; password: string }>;
  /** Ends every session of `user` on the server (and waits until they are gone). */
  killSessionsOf(user: string): Promise<void>;
  /** Gives `user` privileges on two new tables. */
  grantTwoTables(user: string): Promise<void>;
  /** The user's privileges in a form that does not name the user (to compare the two of a pair). */
  privilegesOf(user: string): Promise<string[]>;
  /** Where the kill lands: after at least one grant, before another provisioning statement. */
  killBefore(statement: ProvisionStatement): boolean;
}

const mariadb: Provisioned = {
  ...mariadbUnderTest,
  async createMaster() {
    const username = uniqueName('master');
    const password = randomPassword();
    const admin = await mysqlAdmin();
    try {
      await admin.query("CREATE USER ?@'%' IDENTIFIED BY ?", [username, password]);
      await admin.query("GRANT ALL PRIVILEGES ON *.* TO ?@'%' WITH GRANT OPTION", [username]);
    } finally {
      await admin.end();
    }
    return { username, password };
  },
  async killSessionsOf(user) {
    const admin = await mysqlAdmin();
    try {
      const [rows] = await admin.query('SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = ?', [
        user,
      ]);
      for (const { id } of rows as Array<{ id: number }>) await admin.query(`KILL CONNECTION ${Number(id)}`);
    } finally {
      await admin.end();
    }
  },
  async grantTwoTables(user) {
    const db = uniqueName('db');
    const admin = await mysqlAdmin();
    try {
      await admin.query(
        `CREATE DATABASE ${db}; CREATE TABLE ${db}.a (id int); CREATE TABLE ${db}.b (id int)`,
      );
      await admin.query(`GRANT SELECT ON ${db}.a TO ?@'%'`, [user]);
      await admin.query(`GRANT INSERT, UPDATE ON ${db}.b TO ?@'%'`, [user]);
    } finally {
      await admin.end();
    }
  },
  privilegesOf: mysqlGrantsOf,
  // SHOW GRANTS has three lines here (USAGE and the two tables): stop before the second.
  killBefore: (statement) => statement.kind === 'grant' && statement.index === 1,
};

const postgres: Provisioned = {
  ...postgresUnderTest,
  async createMaster() {
    const username = uniqueName('master');
    const password = randomPassword();
    const admin = await pgAdmin();
    try {
      await admin.query(`CREATE ROLE ${username} LOGIN SUPERUSER PASSWORD ${pg.escapeLiteral(password)}`);
    } finally {
      await admin.end();
    }
    return { username, password };
  },
  async killSessionsOf(user) {
    const admin = await pgAdmin();
    try {
      await admin.query(
        'SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()',
        [user],
      );
    } finally {
      await admin.end();
    }
  },
  async grantTwoTables(user) {
    const admin = await pgAdmin();
    try {
      for (const table of ['a', 'b']) {
        await admin.query(`CREATE TABLE ${user}_${table} (id int)`);
      }
      await admin.query(`GRANT SELECT ON ${user}_a TO ${pg.escapeIdentifier(user)}`);
      await admin.query(`GRANT INSERT, UPDATE ON ${user}_b TO ${pg.escapeIdentifier(user)}`);
    } finally {
      await admin.end();
    }
  },
  privilegesOf: pgPrivilegesOf,
  // The clone's one grant is its membership in the original: stop after it, before the password.
  // Switching back to the original grants nothing, so there the kill lands before the password too.
  killBefore: (statement) => statement.kind === 'password',
};

/** SHOW GRANTS with the grantee and the password hash taken out, sorted. */
async function mysqlGrantsOf(user: string): Promise<string[]> {
  const admin = await mysqlAdmin();
  try {
    const [rows] = await admin.query("SHOW GRANTS FOR ?@'%'", [user]);
    const grantee = `\`${user}\`@\`%\``;
    return (rows as object[])
      .map((row) => String(Object.values(row)[0]))
      .map((line) =>
        line
          .split(grantee)
          .join('<grantee>')
          .replace(/ IDENTIFIED BY PASSWORD '[^']*'/, ''),
      )
      .sort();
  } finally {
    await admin.end();
  }
}

/** Every privilege `user` effectively has on the tables of the public schema, and whether it may log in. */
async function pgPrivilegesOf(user: string): Promise<string[]> {
  const admin = await pgAdmin();
  try {
    const { rows } = await admin.query(
      `SELECT t.table_name || ':' || p.privilege AS granted
         FROM information_schema.tables t
         CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p(privilege)
        WHERE t.table_schema = 'public' AND t.table_name LIKE $2
          AND has_table_privilege($1, quote_ident(t.table_name), p.privilege)
        UNION ALL
       SELECT 'login:' || rolcanlogin::text FROM pg_roles WHERE rolname = $1
        ORDER BY 1`,
      [user, `${user.replace(/_clone$/, '')}%`],
    );
    return rows.map((r: { granted: string }) => r.granted);
  } finally {
    await admin.end();
  }
}

async function pgRoleExists(role: string): Promise<boolean> {
  const admin = await pgAdmin();
  try {
    return (await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1;
  } finally {
    await admin.end();
  }
}

async function alternatingWithOwnMaster(engine: Provisioned) {
  const { host, port } = engine.server();
  const master = await engine.createMaster();
  const masterarn = await createSecret({ engine: engine.engine, host, port, ...master });
  const password = randomPassword();
  const username = await engine.createUser(password);
  const arn = await createSecret({ engine: engine.engine, host, port, username, password, masterarn });
  return { arn, username, password, master: master.username };
}

function step(arn: string, token: string, deps = rotationDeps()) {
  const invoke = invoker(deps);
  return (Step: RotationStep) => invoke({ Step, SecretId: arn, ClientRequestToken: token });
}

describe.each([mariadb, postgres])(
  '$engine alternating users: a master connection killed part-way',
  (engine) => {
    it('never lets the pending password log in half-provisioned; the retry completes and both users hold the same privileges', async () => {
      const { arn, username, master } = await alternatingWithOwnMaster(engine);
      await engine.grantTwoTables(username);
      const original = await engine.privilegesOf(username);
      expect(original.length).toBeGreaterThanOrEqual(3);

      // First rotation creates the clone; the second switches back to the original, which exists.
      for (const [round, into] of [`${username}_clone`, username].entries()) {
        const before = await secretValue(arn);
        const token = randomUUID();
        await startRotation(arn, token);
        let killed = 0;
        const deps = rotationDeps({
          beforeProvisionStatement: async (statement) => {
            if (killed === 0 && engine.killBefore(statement)) {
              killed++;
              await engine.killSessionsOf(master);
            }
          },
        });
        const run = step(arn, token, deps);
        await run('createSecret');
        const pending = await secretValue(arn, 'AWSPENDING');
        expect(pending.username).toBe(into);

        const error = await run('setSecret').catch((e: unknown) => e);

        expect(killed).toBe(1);
        expect(error).toBeInstanceOf(DatabaseError);
        expect(await engine.canLogin(into, pending.password as string)).toBe(false);
        expect(await engine.canLogin(before.username as string, before.password as string)).toBe(true);
        if (round === 1) {
          // The original keeps the password of AWSPREVIOUS until the last statement.
          const previous = await secretValue(arn, 'AWSPREVIOUS');
          expect(await engine.canLogin(into, previous.password as string)).toBe(true);
        }

        // Secrets Manager retries the rotation; this attempt is not interrupted.
        await rotate(arn, { token });

        expect((await stagesOf(arn))[token]).toContain('AWSCURRENT');
        expect(await engine.canLogin(into, pending.password as string)).toBe(true);
        expect(await engine.privilegesOf(into)).toEqual(original);
        expect(await engine.privilegesOf(username)).toEqual(original);
      }
    });
  },
);

describe('mariadb alternating users: a grant that cannot be replayed', () => {
  /** A table granted to `user` and then dropped: MariaDB keeps the grant, and cannot grant it again. */
  async function grantOnDroppedTable(user: string): Promise<string> {
    const db = uniqueName('db');
    const admin = await mysqlAdmin();
    try {
      await admin.query(
        `CREATE DATABASE ${db}; CREATE TABLE ${db}.kept (id int); CREATE TABLE ${db}.gone (id int)`,
      );
      await admin.query(`GRANT SELECT ON ${db}.kept TO ?@'%'`, [user]);
      await admin.query(`GRANT SELECT ON ${db}.gone TO ?@'%'`, [user]);
      await admin.query(`DROP TABLE ${db}.gone`);
    } finally {
      await admin.end();
    }
    return db;
  }

  /** Runs setSecret `times` times; each must fail naming the grant, and the pending password must not log in. */
  async function expectSetSecretFailsEveryTime(arn: string, token: string, into: string, db: string) {
    const run = step(arn, token);
    await run('createSecret');
    const pending = await secretValue(arn, 'AWSPENDING');
    for (let attempt = 0; attempt < 3; attempt++) {
      const error = (await run('setSecret').catch((e: unknown) => e)) as Error;
      expect(error).toBeInstanceOf(DatabaseError);
      expect(error.message).toMatch(
        new RegExp(
          `Cannot replay grant \\d of \\d to '${into}'@'%': GRANT SELECT ON \`${db}\`\\.\`gone\` TO .*doesn't exist`,
        ),
      );
      expect(error.message).not.toContain(pending.password as string);
      expect(await mariadb.canLogin(into, pending.password as string)).toBe(false);
    }
    // The whole sequence, retried as Secrets Manager would, fails at setSecret every time.
    await expect(rotate(arn, { token, attempts: 2 })).rejects.toThrow(/failed after 2 attempts/);
    expect(await mariadb.canLogin(into, pending.password as string)).toBe(false);
  }

  it('fails setSecret on every attempt while creating the clone, names the grant, and promotes nothing', async () => {
    const { arn, username, password } = await alternatingWithOwnMaster(mariadb);
    const db = await grantOnDroppedTable(username);
    const stagesBefore = await stagesOf(arn);
    const grantsBefore = await mysqlGrantsOf(username);
    const token = randomUUID();
    await startRotation(arn, token);

    await expectSetSecretFailsEveryTime(arn, token, `${username}_clone`, db);

    // The clone holds some of the grants and stays locked; the current user's grants are untouched.
    expect(await mysqlGrantsOf(username)).toEqual(grantsBefore);
    expect(await mysqlGrantsOf(`${username}_clone`)).not.toEqual(grantsBefore);

    expect(await secretValue(arn)).toMatchObject({ username, password });
    const current = Object.entries(stagesBefore).find(([, s]) => s.includes('AWSCURRENT'))?.[0] as string;
    expect((await stagesOf(arn))[current]).toContain('AWSCURRENT');
    expect(await mariadb.canLogin(username, password)).toBe(true);
  });

  it('fails setSecret on every attempt while switching back to the original, which keeps its previous password', async () => {
    const { arn, username } = await alternatingWithOwnMaster(mariadb);
    await rotate(arn);
    const clone = await secretValue(arn);
    const previous = await secretValue(arn, 'AWSPREVIOUS');
    const db = await grantOnDroppedTable(`${username}_clone`);
    const cloneGrants = await mysqlGrantsOf(`${username}_clone`);
    const token = randomUUID();
    await startRotation(arn, token);

    await expectSetSecretFailsEveryTime(arn, token, username, db);

    // The current user's grants are untouched (the original may hold some of them by now).
    expect(await mysqlGrantsOf(`${username}_clone`)).toEqual(cloneGrants);
    expect(await secretValue(arn)).toEqual(clone);
    expect(await mariadb.canLogin(clone.username as string, clone.password as string)).toBe(true);
    expect(await mariadb.canLogin(username, previous.password as string)).toBe(true);
  });
});

describe('mariadb alternating users: a repeated setSecret', () => {
  it('reapplies the grants even when the pending password already logs in (a grant added in between reaches the clone)', async () => {
    const { arn, username } = await alternatingWithOwnMaster(mariadb);
    const token = randomUUID();
    await startRotation(arn, token);
    const run = step(arn, token);
    await run('createSecret');
    await run('setSecret');
    const pending = await secretValue(arn, 'AWSPENDING');
    expect(await mariadb.canLogin(pending.username as string, pending.password as string)).toBe(true);
    const query = await mariadb.grantReadableTable(username);
    expect(await mariadb.canRead(pending.username as string, pending.password as string, query)).toBe(false);

    const outcome = await run('setSecret');

    expect(outcome).toMatchObject({ outcome: 'done' });
    expect(await mariadb.canRead(pending.username as string, pending.password as string, query)).toBe(true);
    expect(await mysqlGrantsOf(`${username}_clone`)).toEqual(await mysqlGrantsOf(username));
  });
});

describe('postgres alternating users: a membership the master cannot grant', () => {
  it('fails setSecret on every attempt, names the grant, and leaves no clone behind (one transaction)', async () => {
    const { host, port } = postgres.server();
    const masterPassword = randomPassword();
    const masterName = uniqueName('master');
    const password = randomPassword();
    const username = await postgres.createUser(password);
    const admin = await pgAdmin();
    try {
      // CREATEROLE may create roles, but not grant membership in a superuser role.
      await admin.query(
        `CREATE ROLE ${masterName} LOGIN CREATEROLE PASSWORD ${pg.escapeLiteral(masterPassword)}`,
      );
      await admin.query(`ALTER ROLE ${pg.escapeIdentifier(username)} SUPERUSER`);
    } finally {
      await admin.end();
    }
    const masterarn = await createSecret({
      engine: 'postgres',
      host,
      port,
      username: masterName,
      password: masterPassword,
    });
    const arn = await createSecret({ engine: 'postgres', host, port, username, password, masterarn });
    const token = randomUUID();
    await startRotation(arn, token);
    const run = step(arn, token);
    await run('createSecret');

    for (let attempt = 0; attempt < 3; attempt++) {
      const error = (await run('setSecret').catch((e: unknown) => e)) as Error;
      expect(error).toBeInstanceOf(DatabaseError);
      expect(error.message).toMatch(
        new RegExp(`Cannot grant to "${username}_clone": GRANT "${username}" TO "${username}_clone": `),
      );
      expect(await pgRoleExists(`${username}_clone`)).toBe(false);
    }

    expect(await secretValue(arn)).toMatchObject({ username, password });
    expect(await postgres.canLogin(username, password)).toBe(true);
  });
});
