import { randomUUID } from 'node:crypto';
import { CreateDBInstanceCommand, RDSClient } from '@aws-sdk/client-rds';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/rotate';
import { EventError } from '../../shared/errors';
import { PLACEHOLDER_ROTATION_LAMBDA_ARN } from '../../shared/rotation/driver';
import type { PreflightCheck, PreflightReport } from '../../shared/rotation/preflight';
import { RDS_INSTANCE_TAG } from '../../shared/rotation/rds-endpoint';
import { passwordPolicySource } from '../../shared/rotation/settings';
import { clearVersionCache } from '../../shared/rotation/versions';
import {
  ENGINES,
  type EngineUnderTest,
  mariadbUnderTest,
  postgresUnderTest,
  rotationDeps,
  singleUserSecret,
  stagesOf,
  startRotation,
} from '../shared/rotation/support';
import {
  createMysqlDatabase,
  createMysqlUser,
  createPgUser,
  createSecret,
  mysqlAdmin,
  pgAdmin,
  randomPassword,
  stack,
  uniqueName,
} from '../stack/fixtures';
import { captureOutput } from '../support/capture';

/** Runs preflight through the real handler, capturing every line it writes. */
async function preflight(
  secretId: string,
  options: { context?: { invokedFunctionArn?: string }; deps?: Parameters<typeof rotationDeps>[0] } = {},
): Promise<{ report: PreflightReport; output: string }> {
  const handler = makeHandler(rotationDeps(options.deps));
  const capture = captureOutput();
  try {
    const report = await handler({ action: 'preflight', SecretId: secretId }, options.context);
    return { report, output: capture.text() };
  } finally {
    capture.stop();
  }
}

function check(report: PreflightReport, name: string): PreflightCheck {
  const found = report.checks.find((c) => c.name === name);
  if (!found) throw new Error(`no check ${name} in ${JSON.stringify(report.checks.map((c) => c.name))}`);
  return found;
}

/** The whole result and every line written: no password anywhere. */
function expectNoPassword(result: { report: PreflightReport; output: string }, ...passwords: string[]): void {
  const everything = `${JSON.stringify(result.report)}\n${result.output}`;
  for (const password of passwords) expect(everything).not.toContain(password);
}

const failed = (report: PreflightReport) =>
  report.checks.filter((c) => c.status === 'fail').map((c) => c.name);

describe.each(ENGINES)('preflight on $engine', (engine: EngineUnderTest) => {
  it('passes a single-user secret and changes nothing', async () => {
    const { arn, username, password } = await singleUserSecret(engine);
    const before = await stagesOf(arn);

    const result = await preflight(arn);

    expect(result.report).toMatchObject({ secretArn: arn, rotatable: true });
    expect(failed(result.report)).toEqual([]);
    const names = result.report.checks.map((c) => c.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'rotation',
        'stages',
        'secret',
        'password-policy',
        'dns',
        'tcp',
        'tls',
        'login',
        'password-change',
      ]),
    );
    expect(check(result.report, 'rotation')).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/not configured/),
    });
    // The stack's servers offer no TLS; without "ssl" the rotation would fall back to plaintext.
    expect(check(result.report, 'tls')).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/offers no TLS/),
    });
    expect(check(result.report, 'password-change').status).toBe('pass');
    for (const c of result.report.checks)
      expect(Object.keys(c).sort()).toEqual(['detail', 'fix', 'name', 'status']);
    expectNoPassword(result, password);
    expect(await stagesOf(arn)).toEqual(before);
    expect(await engine.canLogin(username, password)).toBe(true);
  });

  it('passes an alternating-users secret whose master holds everything', async () => {
    const { host, port, adminUser, adminPassword } = engine.server();
    const masterArn = await createSecret({
      engine: engine.engine,
      host,
      port,
      username: adminUser,
      password: adminPassword,
    });
    const password = randomPassword();
    const username = await engine.createUser(password);
    await engine.grantReadableTable(username);
    const arn = await createSecret({
      engine: engine.engine,
      host,
      port,
      username,
      password,
      masterarn: masterArn,
    });

    const result = await preflight(arn);

    expect(failed(result.report)).toEqual([]);
    expect(result.report.rotatable).toBe(true);
    expect(check(result.report, 'master-secret').status).toBe('pass');
    expect(check(result.report, 'master-login').status).toBe('pass');
    expect(check(result.report, 'master-privileges').status).toBe('pass');
    expectNoPassword(result, password, adminPassword);
  });

  it('fails on a wrong port and says to check it', async () => {
    const { arn, password } = await singleUserSecret(engine, { port: 1 });

    const result = await preflight(arn);

    expect(result.report.rotatable).toBe(false);
    expect(check(result.report, 'tcp')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/127\.0\.0\.1:1 refused the connection/),
      fix: expect.stringMatching(/port/),
    });
    expect(failed(result.report)).toEqual(['tcp']);
    expectNoPassword(result, password);
  });

  it('fails when AWSCURRENT does not log in, naming the user, never the password', async () => {
    const username = await engine.createUser(randomPassword());
    const wrong = randomPassword();
    const { host, port } = engine.server();
    const secret = await createSecret({ engine: engine.engine, host, port, username, password: wrong });

    const result = await preflight(secret);

    expect(check(result.report, 'login')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining(username),
      fix: expect.stringMatching(/put-secret-value/),
    });
    expect(check(result.report, 'password-change').status).toBe('warn');
    expect(failed(result.report)).toEqual(['login']);
    expectNoPassword(result, wrong);
  });
});

describe('preflight of the secret itself', () => {
  it('fails a malformed secret, naming the bad keys and never the password', async () => {
    const password = randomPassword();
    const arn = await createSecret({ engine: 'postgres', username: 'app', password, port: 'five' });

    const result = await preflight(arn);

    expect(check(result.report, 'secret')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/host is missing; port must be a port number/),
      fix: expect.stringMatching(/corrected JSON/),
    });
    expect(failed(result.report)).toEqual(['secret']);
    expect(result.report.rotatable).toBe(false);
    expectNoPassword(result, password);
  });

  it('fails an unsupported engine', async () => {
    const { arn, password } = await singleUserSecret(mariadbUnderTest, { engine: 'oracle' });

    const result = await preflight(arn);

    expect(check(result.report, 'secret')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/Unsupported engine "oracle"/),
    });
    expectNoPassword(result, password);
  });

  it('fails a secret that does not exist', async () => {
    const result = await preflight(uniqueName('missing'));

    expect(check(result.report, 'secret')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/ResourceNotFoundException/),
    });
    expect(result.report.rotatable).toBe(false);
  });

  it('fails on AWSPENDING left on another version, and says how to clear it', async () => {
    const { arn, password } = await singleUserSecret(postgresUnderTest);
    const token = randomUUID();
    await startRotation(arn, token);

    const result = await preflight(arn);

    expect(check(result.report, 'stages')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining(`AWSPENDING is on version ${token}`),
      fix: expect.stringContaining(`--remove-from-version-id ${token}`),
    });
    expect(failed(result.report)).toEqual(['stages']);
    expect((await stagesOf(arn))[token]).toEqual(['AWSPENDING']);
    expectNoPassword(result, password);
  });

  it('compares the configured rotation Lambda with the function it runs as, and reports the schedule', async () => {
    const { arn } = await singleUserSecret(postgresUnderTest);
    const token = randomUUID();
    await startRotation(arn, token);
    // Clear the stuck stage so that only the rotation check is in question.
    await rotationDeps().secretsManager.send(
      new (await import('@aws-sdk/client-secrets-manager')).UpdateSecretVersionStageCommand({
        SecretId: arn,
        VersionStage: 'AWSPENDING',
        RemoveFromVersionId: token,
      }),
    );
    const other = 'arn:aws:lambda:us-east-1:000000000000:function:someone-else';

    const mine = await preflight(arn, {
      context: { invokedFunctionArn: `${PLACEHOLDER_ROTATION_LAMBDA_ARN}:live` },
    });
    const theirs = await preflight(arn, { context: { invokedFunctionArn: other } });

    expect(check(mine.report, 'rotation')).toMatchObject({
      status: 'pass',
      detail: 'Rotated by this function, every 30 days',
    });
    expect(mine.report.rotatable).toBe(true);
    expect(check(theirs.report, 'rotation')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining(
        `rotated by ${PLACEHOLDER_ROTATION_LAMBDA_ARN}, not by this function (${other})`,
      ),
      fix: expect.stringContaining(`--rotation-lambda-arn ${other}`),
    });
  });

  it('judges the password policy: warns about risky characters, fails one GetRandomPassword cannot meet', async () => {
    const { arn, password } = await singleUserSecret(postgresUnderTest);
    const policy = (env: Record<string, string>) => ({
      deps: { passwordPolicy: passwordPolicySource({ env }) },
    });

    const risky = await preflight(arn, policy({ EXCLUDE_CHARACTERS: '' }));
    const impossible = await preflight(arn, policy({ EXCLUDE_CHARACTERS: 'abcdefghijklmnopqrstuvwxyz' }));

    expect(check(risky.report, 'password-policy')).toMatchObject({
      status: 'warn',
      fix: 'Add :/@"\'\\ to EXCLUDE_CHARACTERS unless every client escapes passwords',
    });
    expect(risky.report.rotatable).toBe(true);
    expect(check(impossible.report, 'password-policy')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('removes every lowercase character'),
    });
    expect(failed(impossible.report)).toEqual(['password-policy']);
    expectNoPassword(risky, password);
  });

  it('fails a host that does not resolve, and names it as the reason the rest did not run', async () => {
    const password = randomPassword();
    const arn = await createSecret({
      engine: 'postgres',
      host: 'db.no-such-host.invalid',
      username: 'app',
      password,
    });

    const result = await preflight(arn);

    expect(check(result.report, 'dns')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/^db\.no-such-host\.invalid does not resolve: /),
      fix: expect.stringMatching(/VPC DNS resolution/),
    });
    expect(check(result.report, 'login')).toMatchObject({
      status: 'warn',
      detail: 'Not checked: the check "dns" failed',
    });
    expect(failed(result.report)).toEqual(['dns']);
    expectNoPassword(result, password);
  });

  it('rejects a malformed preflight event and changes nothing', async () => {
    const handler = makeHandler(rotationDeps());

    const missing = await handler({ action: 'preflight' }).catch((e: unknown) => e);
    const unknown = await handler({ action: 'drop', SecretId: 'x' }).catch((e: unknown) => e);

    expect(missing).toBeInstanceOf(EventError);
    expect((missing as Error).message).toBe('Invalid preflight event: SecretId is missing');
    expect(unknown).toBeInstanceOf(EventError);
    expect((unknown as Error).message).toMatch(/action must be "preflight"/);
  });
});

describe('preflight of the master secret', () => {
  it('fails when the master secret cannot be read', async () => {
    const { arn, password } = await singleUserSecret(postgresUnderTest, {
      masterarn: `arn:aws:secretsmanager:us-east-1:123456789012:secret:${uniqueName('gone')}`,
    });

    const result = await preflight(arn);

    expect(check(result.report, 'master-secret')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/Could not read master secret .*ResourceNotFoundException/),
      fix: expect.stringMatching(/GetSecretValue on the master secret/),
    });
    expect(check(result.report, 'master-login').status).toBe('warn');
    expectNoPassword(result, password);
  });

  it('reads an RDS-managed master through the RDS API (and counts its AWS calls)', async () => {
    const rds = new RDSClient({});
    const { DBInstance } = await rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: uniqueName('db').replace(/_/g, '-'),
        DBInstanceClass: 'db.t3.micro',
        Engine: 'postgres',
        MasterUsername: 'postgres',
        MasterUserPassword: 'not-used-here-1',
        AllocatedStorage: 20,
      }),
    );
    const masterPassword = randomPassword();
    const sm = new SecretsManagerClient({});
    const master = await sm.send(
      new CreateSecretCommand({
        Name: `rds!db-${randomUUID()}`,
        SecretString: JSON.stringify({ username: 'postgres', password: masterPassword }),
        Tags: [{ Key: RDS_INSTANCE_TAG, Value: DBInstance?.DBInstanceArn as string }],
      }),
    );
    const endpoint = DBInstance?.Endpoint;
    const password = randomPassword();
    const arn = await createSecret({
      engine: 'postgres',
      host: endpoint?.Address,
      port: endpoint?.Port,
      username: 'app',
      password,
      masterarn: master.ARN,
    });
    const counts = new Map<string, number>();
    clearVersionCache();

    const result = await preflight(arn, {
      deps: { secretsManager: counted(sm, counts), rds: async () => counted(rds, counts) },
    });

    expect(check(result.report, 'master-secret')).toMatchObject({
      status: 'pass',
      detail: expect.stringContaining(`postgres@${endpoint?.Address}:${endpoint?.Port}`),
    });
    // moto's endpoints resolve nowhere: the path stops at DNS.
    expect(check(result.report, 'dns').status).toBe('fail');
    expect(Object.fromEntries(counts)).toEqual({
      DescribeSecretCommand: 2,
      GetSecretValueCommand: 2,
      DescribeDBInstancesCommand: 1,
    });
    expectNoPassword(result, password, masterPassword);
  });
});

describe('preflight of the rights the strategy needs', () => {
  it('PostgreSQL single user: fails under rds.restrict_password_commands without rds_password', async () => {
    const { arn, username, password } = await singleUserSecret(postgresUnderTest);
    const admin = await pgAdmin();
    try {
      // Amazon RDS's setting, emulated for this user only (a placeholder setting on a stock server).
      await admin.query(
        `ALTER ROLE ${pg.escapeIdentifier(username)} SET rds.restrict_password_commands = 'on'`,
      );
    } finally {
      await admin.end();
    }

    const result = await preflight(arn);

    expect(check(result.report, 'password-change')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining(`${username} is not a member of rds_password`),
      fix: expect.stringContaining(`GRANT rds_password TO "${username}"`),
    });
    expect(failed(result.report)).toEqual(['password-change']);
    expectNoPassword(result, password);
  });

  it('PostgreSQL alternating: fails a master without CREATEROLE, passes one with it', async () => {
    const { host, port } = stack().postgres;
    const weakPassword = randomPassword();
    const weak = await createPgUser({ password: weakPassword });
    const strongPassword = randomPassword();
    const strong = await createPgUser({ password: strongPassword });
    const admin = await pgAdmin();
    try {
      await admin.query(`ALTER ROLE ${pg.escapeIdentifier(strong)} CREATEROLE`);
    } finally {
      await admin.end();
    }
    const secretFor = async (masterUser: string, masterPassword: string) => {
      const masterArn = await createSecret({
        engine: 'postgres',
        host,
        port,
        username: masterUser,
        password: masterPassword,
      });
      const password = randomPassword();
      const username = await postgresUnderTest.createUser(password);
      return createSecret({ engine: 'postgres', host, port, username, password, masterarn: masterArn });
    };

    const weakResult = await preflight(await secretFor(weak, weakPassword));
    const strongResult = await preflight(await secretFor(strong, strongPassword));

    expect(check(weakResult.report, 'master-privileges')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(new RegExp(`The master ${weak} lacks CREATEROLE`)),
      fix: expect.stringContaining(`ALTER ROLE "${weak}" CREATEROLE`),
    });
    expect(weakResult.report.rotatable).toBe(false);
    expect(check(strongResult.report, 'master-privileges').status).toBe('pass');
    expectNoPassword(weakResult, weakPassword);
    expectNoPassword(strongResult, strongPassword);
  });

  it('MariaDB alternating: lists every grant the master lacks WITH GRANT OPTION', async () => {
    const { host, port } = stack().mariadb;
    const granted = await createMysqlDatabase();
    const other = await createMysqlDatabase();
    const setup = await mysqlAdmin();
    try {
      await setup.query(`CREATE TABLE ${granted}.t (id int)`);
    } finally {
      await setup.end();
    }
    const masterPassword = randomPassword();
    const master = await createMysqlUser({
      password: masterPassword,
      grants: ['CREATE USER ON *.*', 'SELECT ON mysql.*', `SELECT ON ${other}.*`],
    });
    const password = randomPassword();
    const user = await createMysqlUser({
      password,
      grants: [`SELECT, INSERT ON ${granted}.*`, `SELECT ON ${other}.*`, `DELETE ON ${granted}.t`],
    });
    const admin = await mysqlAdmin();
    try {
      await admin.query(`GRANT SELECT ON ${granted}.* TO ?@'%' WITH GRANT OPTION`, [master]);
    } finally {
      await admin.end();
    }
    const masterArn = await createSecret({
      engine: 'mariadb',
      host,
      port,
      username: master,
      password: masterPassword,
    });
    const arn = await createSecret({
      engine: 'mariadb',
      host,
      port,
      username: user,
      password,
      masterarn: masterArn,
    });

    const result = await preflight(arn);

    const privileges = check(result.report, 'master-privileges');
    expect(privileges.status).toBe('fail');
    expect(privileges.detail).toContain(
      `The master ${master}@% lacks INSERT ON \`${granted}\`.* WITH GRANT OPTION; SELECT ON \`${other}\`.* WITH GRANT OPTION; DELETE ON \`${granted}\`.\`t\` WITH GRANT OPTION, needed`,
    );
    expect(privileges.fix).toBe(
      `As an administrator: GRANT INSERT ON \`${granted}\`.* TO '${master}'@'%' WITH GRANT OPTION; GRANT SELECT ON \`${other}\`.* TO '${master}'@'%' WITH GRANT OPTION; GRANT DELETE ON \`${granted}\`.\`t\` TO '${master}'@'%' WITH GRANT OPTION`,
    );
    expect(failed(result.report)).toEqual(['master-privileges']);
    expectNoPassword(result, password, masterPassword);
  });

  it("MariaDB alternating: fails a master that may not read the user's grants", async () => {
    const { host, port } = stack().mariadb;
    const masterPassword = randomPassword();
    const master = await createMysqlUser({ password: masterPassword, grants: ['CREATE USER ON *.*'] });
    const password = randomPassword();
    const user = await createMysqlUser({ password });
    const masterArn = await createSecret({
      engine: 'mariadb',
      host,
      port,
      username: master,
      password: masterPassword,
    });
    const arn = await createSecret({
      engine: 'mariadb',
      host,
      port,
      username: user,
      password,
      masterarn: masterArn,
    });

    const result = await preflight(arn);

    expect(check(result.report, 'master-privileges')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining(`cannot read the grants of ${user}@%`),
      fix: expect.stringContaining('GRANT SELECT ON mysql.*'),
    });
    expectNoPassword(result, password, masterPassword);
  });
});

/** Counts SDK commands by name (an initialize-step middleware; nothing is mocked). */
function counted<T extends { middlewareStack: { add: (...args: never[]) => void } }>(
  client: T,
  counts: Map<string, number>,
): T {
  const middleware =
    (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) =>
    async (args: unknown) => {
      const name = context.commandName ?? 'unknown';
      counts.set(name, (counts.get(name) ?? 0) + 1);
      return next(args);
    };
  (client.middlewareStack.add as (m: unknown, o: unknown) => void)(middleware, {
    step: 'initialize',
    name: `countApiCalls-${randomUUID()}`,
  });
  return client;
}

describe('AWS calls per preflight', () => {
  it('single user: 1 DescribeSecret and 1 GetSecretValue; alternating: 1 more GetSecretValue', async () => {
    const single = await singleUserSecret(postgresUnderTest);
    const { host, port, adminUser, adminPassword } = postgresUnderTest.server();
    const masterArn = await createSecret({
      engine: 'postgres',
      host,
      port,
      username: adminUser,
      password: adminPassword,
    });
    const password = randomPassword();
    const username = await postgresUnderTest.createUser(password);
    const alternating = await createSecret({
      engine: 'postgres',
      host,
      port,
      username,
      password,
      masterarn: masterArn,
    });
    clearVersionCache();
    const singleCounts = new Map<string, number>();
    const alternatingCounts = new Map<string, number>();

    await preflight(single.arn, {
      deps: { secretsManager: counted(new SecretsManagerClient({}), singleCounts) },
    });
    await preflight(alternating, {
      deps: { secretsManager: counted(new SecretsManagerClient({}), alternatingCounts) },
    });

    expect(Object.fromEntries(singleCounts)).toEqual({ DescribeSecretCommand: 1, GetSecretValueCommand: 1 });
    expect(Object.fromEntries(alternatingCounts)).toEqual({
      DescribeSecretCommand: 1,
      GetSecretValueCommand: 2,
    });
  });
});
