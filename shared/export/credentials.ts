import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import type { MemberRole, SecretsManagerClients } from '../aws/assume-role';
import type { ConnectionTarget } from '../db/connect';
import { TLS_SERVER_NAME_PROBLEM, tlsModeFrom, tlsServerNameFrom } from '../db/tls';
import { AuthenticationError, ConfigError, SecretFormatError } from '../errors';
import { type Logger, registerSecret } from '../log';
import type { Credentials } from './config';

const DEFAULT_PORT = { mysql: 3306, postgres: 5432, redshift: 5439 } as const;
/** How long a secret value read is reused, unless a login with it is refused first. */
export const DEFAULT_SECRET_CACHE_MS = 5 * 60_000;

/** `EXPORT_SECRET_CACHE_TTL_SECONDS` in milliseconds: the default unless set; anything but a non-negative number is refused. */
export function secretCacheTtlMs(value: string | undefined): number {
  if (value === undefined) return DEFAULT_SECRET_CACHE_MS;
  const seconds = value.trim() === '' ? Number.NaN : Number(value);
  if (!Number.isFinite(seconds) || seconds < 0) {
    throw new ConfigError('Invalid secret cache TTL', [
      { parameter: 'EXPORT_SECRET_CACHE_TTL_SECONDS', problem: 'must be a non-negative number of seconds' },
    ]);
  }
  return seconds * 1000;
}

interface CachedTarget {
  target: ConnectionTarget;
  expiresAt: number;
}

/** A cluster's secret, and the role that reads it when it lives in another account. */
interface SecretRef {
  secretId: string;
  role?: MemberRole;
}

/**
 * Database credentials for the exporter: from the cluster's parameters, or from
 * the Secrets Manager secret that the rotation function rotates. Secret values are
 * cached per container for `ttlMs` from the read (logins do not extend it, so a
 * secret pointed elsewhere is followed in time even while the old login works);
 * a refused login with the cached AWSCURRENT (a rotation in progress) re-reads
 * AWSCURRENT, then tries AWSPENDING, before giving up. A secret in
 * another account is read with the client `secretsManager` gives for the cluster's role.
 */
export class CredentialSource {
  readonly #cache = new Map<string, CachedTarget>();

  constructor(
    private readonly secretsManager: SecretsManagerClients,
    private readonly now: () => number = Date.now,
    private readonly ttlMs: number = DEFAULT_SECRET_CACHE_MS,
  ) {}

  /** Opens a session with the cluster's credentials, retrying through the secret's stages on a refused login. */
  async open<T>(
    credentials: Credentials,
    family: keyof typeof DEFAULT_PORT,
    connect: (target: ConnectionTarget) => Promise<T>,
    logger: Logger,
  ): Promise<T> {
    if ('target' in credentials) {
      const { ssl, ...rest } = credentials.target;
      registerSecret(rest.password);
      return connect({ ...rest, tls: tlsModeFrom(ssl) });
    }
    const secret: SecretRef = credentials;
    const { secretId } = secret;
    const cached = this.#cache.get(cacheKey(secret));
    const first =
      cached && cached.expiresAt > this.now()
        ? cached
        : { target: await this.#read(secret, 'AWSCURRENT', family), expiresAt: this.now() + this.ttlMs };
    const tried = [first.target.password];
    try {
      return await this.#connectAndRemember(secret, first, connect);
    } catch (error) {
      if (!(error instanceof AuthenticationError)) throw error;
      let lastError: AuthenticationError = error;
      for (const stage of ['AWSCURRENT', 'AWSPENDING'] as const) {
        const target = await this.#read(secret, stage, family, true);
        if (!target || tried.includes(target.password)) continue;
        tried.push(target.password);
        logger.warn('Login refused; retrying with another version of the secret', { secretId, stage });
        try {
          return await this.#connectAndRemember(
            secret,
            { target, expiresAt: this.now() + this.ttlMs },
            connect,
          );
        } catch (retryError) {
          if (!(retryError instanceof AuthenticationError)) throw retryError;
          lastError = retryError;
        }
      }
      this.#cache.delete(cacheKey(secret));
      throw lastError;
    }
  }

  async #connectAndRemember<T>(
    secret: SecretRef,
    entry: CachedTarget,
    connect: (target: ConnectionTarget) => Promise<T>,
  ): Promise<T> {
    const session = await connect(entry.target);
    this.#cache.set(cacheKey(secret), entry);
    return session;
  }

  async #read(
    secret: SecretRef,
    stage: 'AWSCURRENT' | 'AWSPENDING',
    family: keyof typeof DEFAULT_PORT,
  ): Promise<ConnectionTarget>;
  async #read(
    secret: SecretRef,
    stage: 'AWSCURRENT' | 'AWSPENDING',
    family: keyof typeof DEFAULT_PORT,
    optional: true,
  ): Promise<ConnectionTarget | undefined>;
  async #read(
    { secretId, role }: SecretRef,
    stage: 'AWSCURRENT' | 'AWSPENDING',
    family: keyof typeof DEFAULT_PORT,
    optional = false,
  ): Promise<ConnectionTarget | undefined> {
    // Outside the try: a role that cannot be assumed is its own error (AssumeRoleError), not a secret's.
    const client = await this.secretsManager.forSecret(secretId, role);
    let text: string | undefined;
    try {
      const response = await client.send(
        new GetSecretValueCommand({ SecretId: secretId, VersionStage: stage }),
      );
      text = response.SecretString;
    } catch (error) {
      if (optional && (error as Error).name === 'ResourceNotFoundException') return undefined;
      const as = role ? ` as role ${role.roleArn}` : '';
      throw new SecretFormatError(`Could not read ${stage} of secret ${secretId}${as}`, { cause: error });
    }
    return parseSecret(secretId, stage, text, family);
  }
}

/** The same secret name may exist in several accounts: the role is part of the key. */
function cacheKey({ secretId, role }: SecretRef): string {
  return role ? `${role.roleArn}\n${role.externalId ?? ''}\n${secretId}` : secretId;
}

function parseSecret(
  secretId: string,
  stage: string,
  text: string | undefined,
  family: keyof typeof DEFAULT_PORT,
): ConnectionTarget {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(text ?? '');
  } catch {
    throw new SecretFormatError(`${stage} of secret ${secretId} is not JSON`);
  }
  if (typeof value.password === 'string') registerSecret(value.password);
  const missing = ['host', 'username', 'password'].filter((k) => typeof value[k] !== 'string' || !value[k]);
  if (missing.length > 0) {
    throw new SecretFormatError(`${stage} of secret ${secretId} lacks ${missing.join(', ')}`);
  }
  const port = value.port === undefined ? DEFAULT_PORT[family] : Number(value.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new SecretFormatError(`${stage} of secret ${secretId} has an invalid port`);
  }
  let tlsServerName: string | undefined;
  try {
    tlsServerName = tlsServerNameFrom(value.tlsServerName);
  } catch {
    throw new SecretFormatError(
      `${stage} of secret ${secretId} is malformed: tlsServerName ${TLS_SERVER_NAME_PROBLEM}`,
    );
  }
  return {
    host: value.host as string,
    port,
    user: value.username as string,
    password: value.password as string,
    database: typeof value.dbname === 'string' ? value.dbname : undefined,
    tls: tlsModeFrom(value.ssl),
    ...(tlsServerName ? { tlsServerName } : {}),
  };
}
