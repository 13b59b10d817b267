import type { RDSClient } from '@aws-sdk/client-rds';
import {
  DescribeSecretCommand,
  type DescribeSecretResponse,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import type { DatabaseLogin, RotationAdapter } from '../db/adapter';
import { adapterFor } from '../db/adapters';
import { tlsModeFrom } from '../db/tls';
import { AuthenticationError, EventError, SecretFormatError } from '../errors';
import { type Logger, scrubString } from '../log';
import { type DatabaseSecret, parseDatabaseSecret } from '../secret';
import * as z from '../validation';
import { unqualified } from './health';
import { resolveMasterLogin } from './master';
import { fail, notRun, type PreflightCheck, pass, warn } from './preflight-check';
import type { PreflightEngine, PreflightSession } from './preflight-engine';
import { mysqlPreflight } from './preflight-mysql';
import { resolveHost, tcpProbe, tlsProbe } from './preflight-network';
import { checkPasswordPolicy } from './preflight-password';
import { postgresPreflight } from './preflight-postgres';
import type { PasswordPolicy } from './settings';
import { alternateUsername, loginOf, originalUsername } from './steps';
import { versionValue } from './versions';

export type { PreflightCheck } from './preflight-check';

/** `{ "action": "preflight", "SecretId": ... }`: checks a secret, changes nothing. */
export interface PreflightRequest {
  action: 'preflight';
  SecretId: string;
}

export interface PreflightReport {
  secretArn: string;
  /** True when no check failed (warnings allowed). */
  rotatable: boolean;
  checks: PreflightCheck[];
}

export interface PreflightDeps {
  secretsManager: SecretsManagerClient;
  /** Built on first use: only RDS-managed master secrets need it. */
  rds: () => Promise<RDSClient>;
  passwordPolicy: () => Promise<PasswordPolicy>;
  logger?: Logger;
  /** This rotation function's ARN (Lambda context) or name: the secret must be rotated by it. */
  functionArn?: string | undefined;
  functionName?: string | undefined;
}

/** Engine-family probes, by the adapter's family. */
const ENGINES: Readonly<Record<RotationAdapter['family'], PreflightEngine>> = {
  mysql: mysqlPreflight,
  postgres: postgresPreflight,
};

const requestSchema = z.strictObject({
  action: z.literal('preflight', { message: 'must be "preflight"' }),
  SecretId: z
    .string({ message: 'must be a string' })
    .check(
      z.minLength(1, 'must not be empty'),
      z.maxLength(2048, 'must be at most 2048 characters'),
      z.regex(/^[\x21-\x7e]*$/, 'must contain only printable characters without spaces'),
    ),
});

export function parsePreflightRequest(event: unknown): PreflightRequest {
  const result = requestSchema.safeParse(event);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      if (issue.code === 'unrecognized_keys') return `${issue.keys.join(', ')} not expected`;
      const field = issue.path.map(String).join('.') || '(event)';
      const missing = (event as Record<string, unknown> | null)?.[field] === undefined;
      return `${field} ${missing ? 'is missing' : issue.message}`;
    });
    throw new EventError(`Invalid preflight event: ${problems.join('; ')}`);
  }
  return result.data;
}

/**
 * Checks, without changing anything, that a secret can be rotated by this
 * function from where it runs: the secret's value and stages, the rotation
 * configuration, the password policy, the master secret, the network path, TLS,
 * the login and the privileges the strategy needs. Every check says what it
 * found and what to fix; no password appears in the report.
 */
export async function runPreflight(event: unknown, deps: PreflightDeps): Promise<PreflightReport> {
  const { SecretId } = parsePreflightRequest(event);
  const started = Date.now();
  const report = await new Preflight(SecretId, deps).run();
  // Belt and braces: every text passes the log guard, which knows every password read above.
  const checks = report.checks.map((c) => ({ ...c, detail: scrubString(c.detail), fix: scrubString(c.fix) }));
  const result = { ...report, checks };
  deps.logger?.info('Preflight finished', {
    secretArn: result.secretArn,
    rotatable: result.rotatable,
    failed: checks.filter((c) => c.status === 'fail').map((c) => c.name),
    durationMs: Date.now() - started,
  });
  return result;
}

class Preflight {
  readonly #checks: PreflightCheck[] = [];
  #arn: string;

  constructor(
    private readonly secretId: string,
    private readonly deps: PreflightDeps,
  ) {
    this.#arn = secretId;
  }

  async run(): Promise<PreflightReport> {
    let described: DescribeSecretResponse;
    try {
      described = await this.deps.secretsManager.send(new DescribeSecretCommand({ SecretId: this.secretId }));
    } catch (error) {
      this.add(
        fail(
          'secret',
          `Could not describe secret ${this.secretId}: ${(error as Error).name}`,
          'Check the secret id and region; the caller needs secretsmanager:DescribeSecret and GetSecretValue on it',
        ),
      );
      return this.report();
    }
    this.#arn = described.ARN ?? this.secretId;
    this.add(this.rotationCheck(described));
    this.add(this.stagesCheck(described));
    const secret = await this.secretCheck(described);
    if (!secret) {
      for (const name of ['password-policy', 'dns', 'tcp', 'tls', 'login']) this.add(notRun(name, 'secret'));
      return this.report();
    }
    const { value, adapter } = secret;
    const policy = await this.policyCheck(adapter, value.engine);
    const alternating = Boolean(value.masterarn);
    const masterLogin = alternating ? await this.masterSecretCheck(value, adapter) : undefined;

    const unreachable = await this.networkChecks(value, adapter);
    if (unreachable) {
      for (const name of ['login', alternating ? 'master-login' : 'password-change'])
        this.add(notRun(name, unreachable));
      return this.report();
    }
    const engine = ENGINES[adapter.family];
    const session = await this.login(engine, loginOf(value, adapter), 'login', 'AWSCURRENT');
    if (!session) {
      this.add(notRun(alternating ? 'master-privileges' : 'password-change', 'login'));
      return this.report();
    }
    try {
      if (!alternating) this.add(await guarded('password-change', () => session.ownPassword()));
      if (policy) {
        const rules = await guarded('server-password-rules', () => session.passwordRules(policy));
        if (rules) this.add(rules);
      }
      if (alternating) await this.masterChecks(engine, session, value, masterLogin);
    } finally {
      await session.close();
    }
    return this.report();
  }

  private add(check: PreflightCheck): void {
    this.#checks.push(check);
  }

  private report(): PreflightReport {
    return {
      secretArn: this.#arn,
      rotatable: !this.#checks.some((c) => c.status === 'fail'),
      checks: this.#checks,
    };
  }

  private rotationCheck(d: DescribeSecretResponse): PreflightCheck {
    const name = 'rotation';
    const configured = d.RotationLambdaARN;
    const expected = this.deps.functionArn ?? this.deps.functionName;
    const attach = `aws secretsmanager rotate-secret --secret-id ${this.#arn} --rotation-lambda-arn ${this.deps.functionArn ?? '<this function ARN>'} --rotation-rules AutomaticallyAfterDays=30`;
    if (!configured) {
      return warn(name, 'Rotation is not configured for this secret yet', `Attach the function: ${attach}`);
    }
    if (expected && !sameFunction(configured, expected)) {
      return fail(
        name,
        `The secret is rotated by ${configured}, not by this function (${expected})`,
        `Attach this function (${attach}), or run preflight through the configured one`,
      );
    }
    const rules = d.RotationRules;
    const schedule = rules?.ScheduleExpression
      ? `schedule ${rules.ScheduleExpression}`
      : rules?.AutomaticallyAfterDays
        ? `every ${rules.AutomaticallyAfterDays} days`
        : undefined;
    const by = expected ? 'this function' : configured;
    if (!d.RotationEnabled) {
      return warn(name, `Rotation by ${by} is configured but disabled`, `Enable it: ${attach}`);
    }
    if (!schedule) {
      return warn(
        name,
        `Rotation by ${by} is enabled without a schedule`,
        'Set --rotation-rules on rotate-secret',
      );
    }
    return pass(name, `Rotated by ${by}, ${schedule}${rules?.Duration ? ` within ${rules.Duration}` : ''}`);
  }

  private stagesCheck(d: DescribeSecretResponse): PreflightCheck {
    const name = 'stages';
    const stages = Object.entries(d.VersionIdsToStages ?? {});
    const current = stages.find(([, s]) => s.includes('AWSCURRENT'))?.[0];
    const pending = stages.find(([, s]) => s.includes('AWSPENDING'))?.[0];
    if (!current) {
      return fail(
        name,
        'No version is labelled AWSCURRENT',
        'Put the working credentials: aws secretsmanager put-secret-value',
      );
    }
    if (pending && pending !== current) {
      return fail(
        name,
        `AWSPENDING is on version ${pending}, not on AWSCURRENT ${current}: an earlier rotation did not finish (or one is running now), and Secrets Manager refuses to start another`,
        `Unless a rotation is running: finish it (npm run rotate -- ${this.#arn} --token ${pending}) or remove the label (aws secretsmanager update-secret-version-stage --secret-id ${this.#arn} --version-stage AWSPENDING --remove-from-version-id ${pending})`,
      );
    }
    return pass(name, `AWSCURRENT is ${current}; no AWSPENDING left on another version`);
  }

  private async secretCheck(
    d: DescribeSecretResponse,
  ): Promise<{ value: DatabaseSecret; adapter: RotationAdapter } | undefined> {
    const name = 'secret';
    const currentId = Object.entries(d.VersionIdsToStages ?? {}).find(([, s]) =>
      s.includes('AWSCURRENT'),
    )?.[0];
    if (!currentId) {
      this.add(
        fail(name, 'The secret has no AWSCURRENT version to read', 'Put the working credentials first'),
      );
      return undefined;
    }
    try {
      const text = await versionValue(this.deps.secretsManager, this.#arn, currentId);
      const value = parseDatabaseSecret(text, `AWSCURRENT (${currentId}) of ${this.#arn}`);
      const adapter = adapterFor(value.engine);
      const port = value.port ?? adapter.defaultPort;
      const strategy = value.masterarn ? 'alternating users' : 'single user';
      const where = `${value.engine} at ${value.host}:${port}${value.port === undefined ? ' (default port)' : ''}, user ${value.username}, ${strategy}`;
      const otherDefault = adapter.defaultPort === 3306 ? 5432 : 3306;
      if (port === otherDefault) {
        this.add(
          warn(
            name,
            `${where}: port ${port} is the usual port of the other engine family`,
            'Check that engine and port belong to the same database',
          ),
        );
      } else {
        this.add(pass(name, where));
      }
      return { value, adapter };
    } catch (error) {
      const formatProblem = error instanceof SecretFormatError;
      this.add(
        fail(
          name,
          (error as Error).message,
          formatProblem
            ? 'Put a corrected JSON value (engine, host, username, password; optional port, dbname, ssl, masterarn) as AWSCURRENT'
            : 'The caller needs secretsmanager:GetSecretValue on the secret (and kms:Decrypt on its key)',
        ),
      );
      return undefined;
    }
  }

  private async policyCheck(adapter: RotationAdapter, engine: string): Promise<PasswordPolicy | undefined> {
    try {
      const policy = await this.deps.passwordPolicy();
      this.add(checkPasswordPolicy(policy, adapter.defaultExcludeCharacters, engine));
      return policy;
    } catch (error) {
      this.add(
        fail(
          'password-policy',
          (error as Error).message,
          'Correct the rotation settings (SSM or environment)',
        ),
      );
      return undefined;
    }
  }

  private async masterSecretCheck(
    value: DatabaseSecret,
    adapter: RotationAdapter,
  ): Promise<DatabaseLogin | undefined> {
    const name = 'master-secret';
    try {
      const login = await resolveMasterLogin({
        secretsManager: this.deps.secretsManager,
        rds: this.deps.rds,
        current: value,
        adapter,
      });
      this.add(
        pass(
          name,
          `Master secret ${value.masterarn} is readable: ${login.username}@${login.host}:${login.port}`,
        ),
      );
      return login;
    } catch (error) {
      const message = (error as Error).message;
      const fix =
        error instanceof SecretFormatError
          ? 'Point masterarn at the master secret of the same database (same host and engine family)'
          : /in RDS|RDS reports/.test(message)
            ? 'The caller needs rds:DescribeDBInstances / rds:DescribeDBClusters, and the instance or cluster named by the master secret tag must exist'
            : 'Check masterarn; the caller needs secretsmanager:GetSecretValue on the master secret (and kms:Decrypt on its key)';
      this.add(fail(name, message, fix));
      return undefined;
    }
  }

  /** DNS, TCP and TLS; the name of the check that failed when the server cannot be reached at all. */
  private async networkChecks(
    value: DatabaseSecret,
    adapter: RotationAdapter,
  ): Promise<'dns' | 'tcp' | undefined> {
    const port = value.port ?? adapter.defaultPort;
    try {
      const addresses = await resolveHost(value.host);
      this.add(pass('dns', `${value.host} resolves to ${addresses.join(', ')}`));
    } catch (error) {
      this.add(
        fail(
          'dns',
          `${value.host} does not resolve: ${codeOf(error)}`,
          'Check host; inside a VPC the name must resolve there (VPC DNS resolution and hostnames on, private hosted zones associated)',
        ),
      );
      this.add(notRun('tcp', 'dns'));
      this.add(notRun('tls', 'dns'));
      return 'dns';
    }
    try {
      await tcpProbe(value.host, port);
      this.add(pass('tcp', `${value.host}:${port} accepts connections`));
    } catch (error) {
      const code = codeOf(error);
      const refused = code === 'ECONNREFUSED';
      this.add(
        fail(
          'tcp',
          refused
            ? `${value.host}:${port} refused the connection: nothing listens on that port`
            : `${value.host}:${port} did not answer (${code})`,
          refused
            ? "Check the secret's port against the database's"
            : "Allow the function's security group in the database's security group on this port, and check subnets, route tables and network ACLs",
        ),
      );
      this.add(notRun('tls', 'tcp'));
      return 'tcp';
    }
    this.add(await this.tlsCheck(value, adapter, port));
    return undefined;
  }

  private async tlsCheck(
    value: DatabaseSecret,
    adapter: RotationAdapter,
    port: number,
  ): Promise<PreflightCheck> {
    const name = 'tls';
    const mode = tlsModeFrom(value.ssl);
    if (mode === 'disable') {
      return warn(
        name,
        'ssl is false: the rotation logs in without TLS',
        'Set "ssl": true in the secret once the server offers TLS',
      );
    }
    const serverName =
      typeof value.tlsServerName === 'string' && value.tlsServerName ? value.tlsServerName : value.host;
    try {
      const probe = await tlsProbe({ family: adapter.family, host: value.host, port, serverName });
      if (!probe.offered) {
        return mode === 'require'
          ? fail(
              name,
              `${value.host}:${port} offers no TLS, but the secret sets ssl true`,
              'Enable TLS on the server, or set "ssl": false',
            )
          : warn(
              name,
              `${value.host}:${port} offers no TLS: without "ssl" in the secret the rotation falls back to plaintext`,
              'Enable TLS on the server and set "ssl": true',
            );
      }
      const what = `certificate${probe.subject ? ` CN=${probe.subject}` : ''} of ${value.host}:${port}`;
      if (probe.chainError) {
        return fail(
          name,
          `The ${what} is not trusted: ${probe.chainError}`,
          'Use a certificate from the Amazon RDS CAs or a public CA, or name a PEM bundle with its CA in DB_TLS_CA_FILE',
        );
      }
      if (probe.identityError) {
        return fail(
          name,
          `The ${what} does not name ${serverName}: ${probe.identityError}`,
          'Set host to a name the certificate carries (the RDS endpoint), or set "tlsServerName" in the secret to that name',
        );
      }
      if (probe.validTo) {
        const days = Math.floor((probe.validTo.getTime() - Date.now()) / 86_400_000);
        if (days < 30) {
          return warn(
            name,
            `The ${what} expires on ${probe.validTo.toISOString()} (in ${days} days)`,
            'Renew the server certificate (RDS: modify the instance to a current --ca-certificate-identifier)',
          );
        }
      }
      return pass(
        name,
        `The ${what} is trusted and names ${serverName}${probe.validTo ? `; valid until ${probe.validTo.toISOString().slice(0, 10)}` : ''}`,
      );
    } catch (error) {
      return fail(
        name,
        `TLS handshake with ${value.host}:${port} failed: ${(error as Error).message}`,
        'Check that host and port are the database server',
      );
    }
  }

  private async login(
    engine: PreflightEngine,
    login: DatabaseLogin,
    name: string,
    what: string,
  ): Promise<PreflightSession | undefined> {
    try {
      const session = await engine.open(login);
      this.add(pass(name, `${what} logs in as ${login.username} to ${session.serverLabel}`));
      return session;
    } catch (error) {
      const message = (error as Error).message;
      if (error instanceof AuthenticationError) {
        this.add(
          fail(
            name,
            `${what} does not log in: ${message}`,
            what === 'AWSCURRENT'
              ? "Make secret and database agree: put the user's working password into the secret (put-secret-value), or set the user's password to the secret's"
              : "Put the master user's working password into the master secret",
          ),
        );
      } else {
        this.add(
          fail(
            name,
            `${what} could not log in: ${message}`,
            /certificate|self[- ]signed|altnames|hostname/i.test(message)
              ? 'See the tls check'
              : "Check host, port and dbname, and that the server accepts this user from the function's address",
          ),
        );
      }
      return undefined;
    }
  }

  private async masterChecks(
    engine: PreflightEngine,
    session: PreflightSession,
    value: DatabaseSecret,
    masterLogin: DatabaseLogin | undefined,
  ): Promise<void> {
    if (!masterLogin) {
      this.add(notRun('master-login', 'master-secret'));
      return;
    }
    const master = await this.login(engine, masterLogin, 'master-login', 'The master secret');
    if (!master) {
      this.add(notRun('master-privileges', 'master-login'));
      return;
    }
    try {
      const original = originalUsername(value.username);
      const clone = alternateUsername(value.username);
      this.add(
        await guarded('master-privileges', () => master.alternation(session.account, clone, original)),
      );
    } finally {
      await master.close();
    }
  }
}

/** Compares a configured rotation Lambda ARN with this function's ARN (any qualifier) or name. */
export function sameFunction(configured: string, self: string): boolean {
  if (self.startsWith('arn:')) return unqualified(configured) === unqualified(self);
  return configured.split(':')[6] === self || configured === self;
}

/** A question the server refused to answer is a failed check, not a failed preflight. */
async function guarded<T extends PreflightCheck | undefined>(
  name: string,
  ask: () => Promise<T>,
): Promise<T | PreflightCheck> {
  try {
    return await ask();
  } catch (error) {
    const e = error as { sqlMessage?: string; message?: string };
    return fail(
      name,
      `The server refused a read-only question: ${e.sqlMessage ?? e.message}`,
      'Run preflight as a user that may read its own privileges, or check by hand',
    );
  }
}

function codeOf(error: unknown): string {
  return (error as { code?: string }).code ?? (error as Error).message;
}
