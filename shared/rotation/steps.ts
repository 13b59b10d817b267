import type { Metrics } from '@aws-lambda-powertools/metrics';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { RDSClient } from '@aws-sdk/client-rds';
import {
  GetRandomPasswordCommand,
  PutSecretValueCommand,
  type SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import type {
  AccountRef,
  DatabaseLogin,
  DatabaseSession,
  ProvisionStatement,
  RotationAdapter,
} from '../db/adapter';
import { adapterFor } from '../db/adapters';
import { tlsModeFrom } from '../db/tls';
import { AuthenticationError, RotationStateError, SecretFormatError } from '../errors';
import { type Logger, registerSecret } from '../log';
import { type DatabaseSecret, parseDatabaseSecret } from '../secret';
import { parseRotationEvent, ROTATION_STEPS, type RotationEvent, type RotationStep } from './event';
import { resolveMasterLogin } from './master';
import type { PasswordPolicy } from './settings';
import {
  cachedVersionValue,
  describeSecret,
  rememberVersionValue,
  type SecretState,
  versionValue,
} from './versions';

export interface RotationDeps {
  secretsManager: SecretsManagerClient;
  /** Built on first use: only RDS-managed master secrets need it. */
  rds: () => Promise<RDSClient>;
  passwordPolicy: () => Promise<PasswordPolicy>;
  logger: Logger;
  metrics?: Metrics;
  /** Called before each statement that provisions an alternating user (a test seam); absent in production. */
  beforeProvisionStatement?: (statement: ProvisionStatement) => Promise<void>;
}

export type Strategy = 'single-user' | 'alternating-users';

/** What one step did: `done`, or why it had nothing to do. */
export type StepOutcome = 'done' | 'already-current' | 'already-created' | 'already-set';

export interface StepReport {
  secretArn: string;
  token: string;
  step: RotationStep;
  outcome: StepOutcome;
  engine?: string;
  strategy?: Strategy;
  durationMs: number;
}

const CLONE_SUFFIX = '_clone';

/** The other user of an alternating pair: `app` ↔ `app_clone`. */
export function alternateUsername(username: string): string {
  return username.endsWith(CLONE_SUFFIX)
    ? username.slice(0, -CLONE_SUFFIX.length)
    : `${username}${CLONE_SUFFIX}`;
}

/** The base user of an alternating pair, whichever of the two is given. */
export function originalUsername(username: string): string {
  return username.endsWith(CLONE_SUFFIX) ? alternateUsername(username) : username;
}

/**
 * Runs one step of the Secrets Manager rotation protocol. Every step first checks
 * the secret's stages (one DescribeSecret); every step is idempotent, so Secrets
 * Manager may repeat any of them, or the whole sequence, after a failure.
 */
export async function runRotationStep(rawEvent: unknown, deps: RotationDeps): Promise<StepReport> {
  const started = Date.now();
  let context: StepContext | undefined;
  try {
    const event = parseRotationEvent(rawEvent);
    context = new StepContext(event, deps);
    const outcome = await context.run();
    const report = context.report(outcome, Date.now() - started);
    deps.logger.info('Rotation step finished', { ...report });
    const succeeded = outcome === 'done' && event.Step === 'finishSecret';
    record(deps.metrics, report, succeeded ? 'RotationSucceeded' : undefined);
    return report;
  } catch (error) {
    const durationMs = Date.now() - started;
    const fields = context?.fields() ?? { step: stepNameOf(rawEvent) };
    deps.logger.error('Rotation step failed', { ...fields, outcome: 'failed', durationMs, error });
    record(deps.metrics, { step: fields.step, durationMs }, 'RotationFailed');
    throw error;
  }
}

/** The step a rejected event asked for, for logs and metrics only. */
function stepNameOf(rawEvent: unknown): string {
  const step = (rawEvent as { Step?: unknown } | null)?.Step;
  return typeof step === 'string' && (ROTATION_STEPS as readonly string[]).includes(step) ? step : 'invalid';
}

function record(
  metrics: Metrics | undefined,
  report: { step: string; durationMs: number },
  count?: string,
): void {
  if (!metrics) return;
  const single = metrics.singleMetric();
  single.addDimension('Step', report.step);
  single.addMetric('StepDuration', MetricUnit.Milliseconds, report.durationMs);
  if (count) {
    metrics.addMetric(count, MetricUnit.Count, 1);
    metrics.publishStoredMetrics();
  }
}

class StepContext {
  #state?: SecretState;
  #current?: DatabaseSecret;
  #currentText?: string;

  constructor(
    private readonly event: RotationEvent,
    private readonly deps: RotationDeps,
  ) {}

  fields() {
    return {
      secretArn: this.#state?.arn ?? this.event.SecretId,
      token: this.event.ClientRequestToken,
      step: this.event.Step,
      engine: this.#current?.engine,
      strategy: this.#current ? strategyOf(this.#current) : undefined,
    };
  }

  report(outcome: StepOutcome, durationMs: number): StepReport {
    return { ...this.fields(), outcome, durationMs };
  }

  async run(): Promise<StepOutcome> {
    const state = await describeSecret(this.deps.secretsManager, this.event.SecretId);
    this.#state = state;
    const token = this.event.ClientRequestToken;
    if (!state.rotationEnabled)
      throw new RotationStateError(`Secret ${state.arn} is not enabled for rotation`);
    const stages = state.stagesOf(token);
    if (!stages)
      throw new RotationStateError(
        `Secret version ${token} has no stage for rotation of secret ${state.arn}`,
      );
    if (stages.includes('AWSCURRENT')) return 'already-current';
    if (!stages.includes('AWSPENDING')) {
      throw new RotationStateError(
        `Secret version ${token} not set as AWSPENDING for rotation of secret ${state.arn}`,
      );
    }
    switch (this.event.Step) {
      case 'createSecret':
        return this.createSecret();
      case 'setSecret':
        return this.setSecret();
      case 'testSecret':
        return this.testSecret();
      case 'finishSecret':
        return this.finishSecret();
    }
  }

  async createSecret(): Promise<StepOutcome> {
    const current = await this.current();
    const adapter = adapterFor(current.engine);
    if ((await versionValue(this.deps.secretsManager, this.arn, this.token)) !== undefined)
      return 'already-created';
    const password = await this.generatePassword(adapter);
    // Every key the rotation does not own is carried over exactly as the user wrote it.
    const next: Record<string, unknown> = {
      ...(JSON.parse(this.#currentText as string) as object),
      password,
    };
    if (strategyOf(current) === 'alternating-users') next.username = alternateUsername(current.username);
    const value = JSON.stringify(next);
    await this.deps.secretsManager.send(
      new PutSecretValueCommand({
        SecretId: this.arn,
        ClientRequestToken: this.token,
        SecretString: value,
        VersionStages: ['AWSPENDING'],
        // Identifies this rotation to Secrets Manager (cross-account and assumed-role rotation).
        ...(this.event.RotationToken ? { RotationToken: this.event.RotationToken } : {}),
      }),
    );
    rememberVersionValue(this.arn, this.token, value);
    return 'done';
  }

  async setSecret(): Promise<StepOutcome> {
    const current = await this.current();
    const pending = await this.pending();
    const adapter = adapterFor(current.engine);
    assertSameDatabase(current, pending, adapter, `AWSPENDING ${this.token}`);
    const expectedUser =
      strategyOf(current) === 'alternating-users' ? alternateUsername(current.username) : current.username;
    if (pending.username !== expectedUser) {
      throw new SecretFormatError(
        `AWSPENDING ${this.token} of ${this.arn} is for user "${pending.username}", expected "${expectedUser}"`,
      );
    }
    if (strategyOf(current) === 'alternating-users') return this.setAlternateUser(adapter, current, pending);
    if (await this.canLogin(adapter, loginOf(pending, adapter), 'setSecret: AWSPENDING'))
      return 'already-set';
    await this.withSession(await this.openCurrentOrPrevious(adapter, current), (session) =>
      session.setOwnPassword(pending.password),
    );
    return 'done';
  }

  /**
   * Alternating users. Never `already-set`: a pending login proves the password,
   * not the grants, so every attempt reapplies them (the password comes last).
   */
  private async setAlternateUser(
    adapter: RotationAdapter,
    current: DatabaseSecret,
    pending: DatabaseSecret,
  ): Promise<StepOutcome> {
    // Prove the current credentials before lending the master's power to them.
    const account = await this.withSession(
      await adapter.open(loginOf(current, adapter), this.purpose('setSecret: AWSCURRENT')),
      (session) => session.account(),
    );
    const target: AccountRef = { ...account, name: pending.username };
    const proven = await this.provesOwnership(adapter, current, pending, target);
    const masterLogin = await resolveMasterLogin({
      secretsManager: this.deps.secretsManager,
      rds: this.deps.rds,
      current,
      adapter,
    });
    await this.withSession(
      await adapter.open(masterLogin, this.purpose('setSecret: master')),
      async (master) => {
        let create = false;
        if (!proven) {
          const found = await master.inspectAlternateUser({
            current: account,
            pending: pending.username,
            password: pending.password,
          });
          if (found === 'exists') {
            throw new RotationStateError(
              `Refusing to rotate ${this.arn} into user ${describeAccount(target)}: it exists, and the secret's history does not show that the secret owns it (neither AWSPREVIOUS nor AWSPENDING logs in as it)`,
            );
          }
          create = found === 'absent';
        }
        const hook = this.deps.beforeProvisionStatement;
        await master.provisionAlternateUser({
          original: originalUsername(current.username),
          current: account,
          pending: pending.username,
          password: pending.password,
          create,
          ...(current.ownerRole ? { ownerRole: current.ownerRole } : {}),
          ...(hook ? { beforeStatement: hook } : {}),
        });
      },
    );
    return 'done';
  }

  /**
   * Whether the secret's own history shows that it owns `target`, the user it
   * rotates into: the AWSPREVIOUS version names it and still logs in as exactly
   * that account, or the pending password already does (an earlier attempt of
   * this rotation set it). Both logins go where AWSCURRENT points: only a login
   * proves anything, as anyone who may write the secret may write any version.
   * Without a proof the user must not exist yet (or, MySQL family, be the locked
   * account an earlier attempt of this rotation created); the master checks that.
   */
  private async provesOwnership(
    adapter: RotationAdapter,
    current: DatabaseSecret,
    pending: DatabaseSecret,
    target: AccountRef,
  ): Promise<boolean> {
    const previous = await this.previous();
    if (previous?.username === target.name) {
      const login = {
        ...loginOf(current, adapter),
        password: previous.password,
        username: previous.username,
      };
      if (await this.logsInAs(adapter, login, target, 'setSecret: AWSPREVIOUS')) return true;
    }
    const login = { ...loginOf(current, adapter), password: pending.password, username: pending.username };
    return this.logsInAs(adapter, login, target, 'setSecret: AWSPENDING');
  }

  /** Logs in and checks that the server authenticated exactly `account` (MySQL: name and host pattern). */
  private async logsInAs(
    adapter: RotationAdapter,
    login: DatabaseLogin,
    account: AccountRef,
    purpose: string,
  ): Promise<boolean> {
    try {
      const seen = await this.withSession(await adapter.open(login, this.purpose(purpose)), (s) =>
        s.account(),
      );
      return seen.name === account.name && seen.host === account.host;
    } catch (error) {
      if (error instanceof AuthenticationError) return false;
      throw error;
    }
  }

  /** The AWSPREVIOUS version, or undefined when there is none or it is not a database secret. */
  private async previous(): Promise<DatabaseSecret | undefined> {
    const previousId = this.#state?.versionWith('AWSPREVIOUS');
    if (!previousId) return undefined;
    const text = await versionValue(this.deps.secretsManager, this.arn, previousId);
    try {
      return parseDatabaseSecret(text, `AWSPREVIOUS (${previousId}) of ${this.arn}`);
    } catch (error) {
      if (error instanceof SecretFormatError) return undefined;
      throw error;
    }
  }

  async testSecret(): Promise<StepOutcome> {
    const pending = await this.pending();
    const adapter = adapterFor(pending.engine);
    // Engine and strategy for the log line: the pending version has the same ones.
    this.#current ??= pending;
    await this.withSession(
      await adapter.open(loginOf(pending, adapter), this.purpose('testSecret: AWSPENDING')),
      (s) => s.check(),
    );
    return 'done';
  }

  async finishSecret(): Promise<StepOutcome> {
    const currentId = this.#state?.versionWith('AWSCURRENT');
    // For the log line only, and only when this container already holds the value: no extra call.
    const known = cachedVersionValue(this.arn, this.token);
    if (known) this.#current = JSON.parse(known) as DatabaseSecret;
    await this.deps.secretsManager.send(
      new UpdateSecretVersionStageCommand({
        SecretId: this.arn,
        VersionStage: 'AWSCURRENT',
        MoveToVersionId: this.token,
        ...(currentId ? { RemoveFromVersionId: currentId } : {}),
      }),
    );
    return 'done';
  }

  private get arn(): string {
    return (this.#state as SecretState).arn;
  }

  private get token(): string {
    return this.event.ClientRequestToken;
  }

  private purpose(purpose: string) {
    return { logger: this.deps.logger, purpose };
  }

  private async current(): Promise<DatabaseSecret> {
    const versionId = this.#state?.versionWith('AWSCURRENT');
    if (!versionId) throw new RotationStateError(`Secret ${this.arn} has no AWSCURRENT version`);
    const text = await versionValue(this.deps.secretsManager, this.arn, versionId);
    this.#current = parseDatabaseSecret(text, `AWSCURRENT (${versionId}) of ${this.arn}`);
    this.#currentText = text;
    return this.#current;
  }

  private async pending(): Promise<DatabaseSecret> {
    const text = await versionValue(this.deps.secretsManager, this.arn, this.token);
    if (text === undefined) {
      throw new RotationStateError(
        `AWSPENDING ${this.token} of ${this.arn} has no value: run createSecret first`,
      );
    }
    return parseDatabaseSecret(text, `AWSPENDING (${this.token}) of ${this.arn}`);
  }

  private async generatePassword(adapter: RotationAdapter): Promise<string> {
    const policy = await this.deps.passwordPolicy();
    const response = await this.deps.secretsManager.send(
      new GetRandomPasswordCommand({
        PasswordLength: policy.length,
        ExcludeCharacters: policy.excludeCharacters ?? adapter.defaultExcludeCharacters,
        ExcludeNumbers: policy.excludeNumbers,
        ExcludePunctuation: policy.excludePunctuation,
        ExcludeUppercase: policy.excludeUppercase,
        ExcludeLowercase: policy.excludeLowercase,
        RequireEachIncludedType: policy.requireEachIncludedType,
      }),
    );
    const password = response.RandomPassword;
    if (!password) throw new RotationStateError('GetRandomPassword returned no password');
    registerSecret(password);
    return password;
  }

  private async canLogin(adapter: RotationAdapter, login: DatabaseLogin, purpose: string): Promise<boolean> {
    try {
      await this.withSession(await adapter.open(login, this.purpose(purpose)), (s) => s.check());
      return true;
    } catch (error) {
      if (error instanceof AuthenticationError) return false;
      throw error;
    }
  }

  /** Single user: log in with AWSCURRENT, or with AWSPREVIOUS when an earlier rotation stopped half-way. */
  private async openCurrentOrPrevious(
    adapter: RotationAdapter,
    current: DatabaseSecret,
  ): Promise<DatabaseSession> {
    try {
      return await adapter.open(loginOf(current, adapter), this.purpose('setSecret: AWSCURRENT'));
    } catch (error) {
      const previousId = this.#state?.versionWith('AWSPREVIOUS');
      if (!(error instanceof AuthenticationError) || !previousId) throw error;
      const previous = parseDatabaseSecret(
        await versionValue(this.deps.secretsManager, this.arn, previousId),
        `AWSPREVIOUS (${previousId}) of ${this.arn}`,
      );
      assertSameDatabase(current, previous, adapter, `AWSPREVIOUS ${previousId}`);
      // Only the same user may stand in: the session below changes its own password.
      if (previous.username !== current.username) {
        throw new SecretFormatError(
          `AWSCURRENT of ${this.arn} does not log in as "${current.username}", and AWSPREVIOUS ${previousId} is for user "${previous.username}": it cannot stand in`,
          { cause: error },
        );
      }
      try {
        return await adapter.open(loginOf(previous, adapter), this.purpose('setSecret: AWSPREVIOUS'));
      } catch (previousError) {
        if (!(previousError instanceof AuthenticationError)) throw previousError;
        throw new AuthenticationError(
          `Neither AWSPENDING, AWSCURRENT nor AWSPREVIOUS of ${this.arn} can log in as ${current.username}@${current.host}`,
          { cause: previousError },
        );
      }
    }
  }

  private async withSession<T>(
    session: DatabaseSession,
    work: (session: DatabaseSession) => Promise<T>,
  ): Promise<T> {
    try {
      return await work(session);
    } finally {
      await session.close();
    }
  }
}

/** `"app"`, or `"app"@"10.0.%"` for a MySQL account. */
function describeAccount(account: AccountRef): string {
  return account.host === undefined ? `"${account.name}"` : `"${account.name}"@"${account.host}"`;
}

function strategyOf(secret: DatabaseSecret): Strategy {
  return secret.masterarn ? 'alternating-users' : 'single-user';
}

/** How a secret's credentials log in: its host, port, user, password, database and TLS settings. */
export function loginOf(secret: DatabaseSecret, adapter: RotationAdapter): DatabaseLogin {
  const login: DatabaseLogin = {
    host: secret.host,
    port: secret.port ?? adapter.defaultPort,
    username: secret.username,
    password: secret.password,
    tls: tlsModeFrom(secret.ssl),
  };
  if (secret.dbname) login.dbname = secret.dbname;
  if (secret.tlsServerName) login.tlsServerName = secret.tlsServerName;
  return login;
}

/** Two versions of one secret must address the same server through the same engine family. */
function assertSameDatabase(
  current: DatabaseSecret,
  other: DatabaseSecret,
  adapter: RotationAdapter,
  what: string,
): void {
  if (adapterFor(other.engine) !== adapter) {
    throw new SecretFormatError(
      `${what} is for engine "${other.engine}", AWSCURRENT for "${current.engine}"`,
    );
  }
  if (other.host !== current.host) {
    throw new SecretFormatError(`${what} is for host ${other.host}, AWSCURRENT for ${current.host}`);
  }
  const [port, currentPort] = [other.port ?? adapter.defaultPort, current.port ?? adapter.defaultPort];
  if (port !== currentPort) {
    throw new SecretFormatError(`${what} is for port ${port}, AWSCURRENT for ${currentPort}`);
  }
}
