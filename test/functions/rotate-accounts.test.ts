import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  ENGINES,
  mariadbUnderTest,
  postgresUnderTest,
  rotate,
  secretValue,
} from '../shared/rotation/support';
import {
  createMysqlUser,
  createSecret,
  mysqlAdmin,
  mysqlCanLogin,
  randomPassword,
  stack,
} from '../stack/fixtures';

/** A user name with a dot, a dash, capitals and both quote characters. */
const oddName = () => `App.User-${randomBytes(3).toString('hex')}'Q"x`;

describe.each(ENGINES)('$engine user names that need escaping', (engine) => {
  it('rotates a single user whose name has dots, dashes, capitals and quotes', async () => {
    const password = randomPassword();
    const username = await engine.createUser(password, oddName());
    const { host, port } = engine.server();
    const arn = await createSecret({ engine: engine.engine, host, port, username, password });

    await rotate(arn);
    await rotate(arn);

    const current = await secretValue(arn);
    expect(await engine.canLogin(username, current.password as string)).toBe(true);
    expect(await engine.canLogin(username, password)).toBe(false);
  });

  it('clones such a user with the alternating strategy', async () => {
    const { host, port, adminUser, adminPassword } = engine.server();
    const masterarn = await createSecret({
      engine: engine.engine,
      host,
      port,
      username: adminUser,
      password: adminPassword,
    });
    const password = randomPassword();
    const username = await engine.createUser(password, oddName());
    const query = await engine.grantReadableTable(username);
    const arn = await createSecret({ engine: engine.engine, host, port, username, password, masterarn });

    await rotate(arn);

    const current = await secretValue(arn);
    expect(current.username).toBe(`${username}_clone`);
    expect(await engine.canRead(`${username}_clone`, current.password as string, query)).toBe(true);
  });
});

describe('engine names of the AWS convention', () => {
  it.each([
    ['aurora-postgresql', postgresUnderTest],
    ['mysql', mariadbUnderTest],
    ['aurora-mysql', mariadbUnderTest],
  ] as const)(
    'rotates a secret with engine "%s" (SQL follows the server, not the name)',
    async (name, engine) => {
      const password = randomPassword();
      const username = await engine.createUser(password);
      const { host, port } = engine.server();
      const arn = await createSecret({ engine: name, host, port, username, password });

      await rotate(arn);

      const current = await secretValue(arn);
      expect(current.engine).toBe(name);
      expect(await engine.canLogin(username, current.password as string)).toBe(true);
    },
  );
});

describe('mariadb accounts', () => {
  it('rotates a user without the CREATE USER privilege itself (SET PASSWORD with the hash)', async () => {
    const password = randomPassword();
    const username = await createMysqlUser({ password });
    const { host, port } = stack().mariadb;
    const admin = await mysqlAdmin();
    const [grants] = await admin.query("SHOW GRANTS FOR ?@'%'", [username]);
    expect((grants as object[]).map((g) => Object.values(g)[0])).toEqual([
      expect.stringMatching(/^GRANT USAGE ON \*\.\* TO/),
    ]);
    const arn = await createSecret({ engine: 'mariadb', host, port, username, password });

    await rotate(arn);

    const current = await secretValue(arn);
    expect(await mysqlCanLogin(username, current.password as string)).toBe(true);
    const [statements] = await admin.query(
      "SELECT CONVERT(argument USING utf8mb4) AS sql_text FROM mysql.general_log WHERE user_host LIKE CONCAT(?, '%') AND argument LIKE 'SET PASSWORD%'",
      [`${username}[`],
    );
    await admin.end();
    expect((statements as Array<{ sql_text: string }>).map((s) => s.sql_text)).toEqual([
      expect.stringMatching(/^SET PASSWORD = '\*[0-9A-F]{40}'$/),
    ]);
  });

  it("keeps the account's host for the clone instead of assuming '%'", async () => {
    const { host, port, adminUser, adminPassword } = stack().mariadb;
    const masterarn = await createSecret({
      engine: 'mariadb',
      host,
      port,
      username: adminUser,
      password: adminPassword,
    });
    const password = randomPassword();
    const username = await createMysqlUser({ password, host: '127.0.0.1', grants: ['PROCESS ON *.*'] });
    const arn = await createSecret({ engine: 'mariadb', host, port, username, password, masterarn });

    await rotate(arn);

    const admin = await mysqlAdmin();
    const [accounts] = await admin.query('SELECT Host AS host FROM mysql.user WHERE User = ?', [
      `${username}_clone`,
    ]);
    const [grants] = await admin.query("SHOW GRANTS FOR ?@'127.0.0.1'", [`${username}_clone`]);
    await admin.end();
    expect(accounts).toEqual([{ host: '127.0.0.1' }]);
    expect((grants as object[]).map((g) => Object.values(g)[0])).toContainEqual(
      expect.stringMatching(/^GRANT PROCESS ON \*\.\* TO `.*_clone`@`127\.0\.0\.1`/),
    );
    const current = await secretValue(arn);
    expect(await mysqlCanLogin(`${username}_clone`, current.password as string)).toBe(true);
  });
});
