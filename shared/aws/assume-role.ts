import { createHash } from 'node:crypto';
import { SecretsManagerClient, type SecretsManagerClientConfig } from '@aws-sdk/client-secrets-manager';
import type { STSClient } from '@aws-sdk/client-sts';
import { AssumeRoleError } from '../errors';
import { secretsManagerConfig, stsClient } from './clients';

/** A role in a cluster's own account, assumed to read what the cluster keeps there (its secret). */
export interface MemberRole {
  roleArn: string;
  /** Sent as `ExternalId` when set (the role's trust policy may ask for it). */
  externalId?: string;
  /** The cluster that needs the role: named in the STS session it opens and in errors. */
  cluster: string;
}

export interface TemporaryCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  /** Epoch milliseconds. */
  expiresAt: number;
}

export interface AssumeRoleRequest {
  roleArn: string;
  externalId?: string;
  sessionName: string;
  durationSeconds: number;
}

/** The one STS call this module makes; tests pass their own. */
export type AssumeRole = (request: AssumeRoleRequest) => Promise<TemporaryCredentials>;

/**
 * AssumeRole through STS. The client (and the STS module itself) is loaded on the
 * first call, so that a deployment without clusters in other accounts never loads it.
 */
export function stsAssumeRole(sts: () => Promise<STSClient> = stsClient): AssumeRole {
  return async ({ roleArn, externalId, sessionName, durationSeconds }) => {
    const [{ AssumeRoleCommand }, client] = await Promise.all([import('@aws-sdk/client-sts'), sts()]);
    const { Credentials: c } = await client.send(
      new AssumeRoleCommand({
        RoleArn: roleArn,
        RoleSessionName: sessionName,
        DurationSeconds: durationSeconds,
        ...(externalId ? { ExternalId: externalId } : {}),
      }),
    );
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken) {
      throw new Error('STS answered without credentials');
    }
    return {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      sessionToken: c.SessionToken,
      expiresAt: c.Expiration?.getTime() ?? Date.now() + durationSeconds * 1000,
    };
  };
}

const SESSION_NAME_MAX = 64;

/**
 * `<prefix>.<cluster>` as an STS session name (`[\w+=,.@-]{2,64}`), which CloudTrail in
 * the cluster's account records. A name too long keeps its start and a digest of the whole.
 */
export function roleSessionName(cluster: string, prefix = 'log-export'): string {
  const name = `${prefix}.${cluster}`.replace(/[^\w+=,.@-]/g, '-');
  if (name.length <= SESSION_NAME_MAX) return name;
  const digest = createHash('sha256').update(cluster).digest('hex').slice(0, 8);
  return `${name.slice(0, SESSION_NAME_MAX - digest.length - 1)}.${digest}`;
}

export interface RoleCredentialsOptions {
  assumeRole?: AssumeRole;
  now?: () => number;
  /** Session length asked of STS: 3600 s, the most a role chained from a Lambda role may have. */
  durationSeconds?: number;
  /** Credentials this close to expiry are renewed before use (default 5 minutes). */
  refreshMarginMs?: number;
}

interface Session {
  pending: Promise<TemporaryCredentials>;
  credentials?: TemporaryCredentials;
}

/**
 * Temporary credentials per (role, external id), cached until shortly before they
 * expire and shared by every cluster that names the same role: one AssumeRole per
 * role and container for most of an hour. Concurrent requests share one call, and
 * a failure is not remembered, so the next request asks STS again.
 */
export class RoleCredentials {
  readonly #sessions = new Map<string, Session>();
  readonly #assumeRole: AssumeRole;
  readonly #now: () => number;
  readonly #durationSeconds: number;
  readonly #refreshMarginMs: number;

  constructor(options: RoleCredentialsOptions = {}) {
    this.#assumeRole = options.assumeRole ?? stsAssumeRole();
    this.#now = options.now ?? Date.now;
    this.#durationSeconds = options.durationSeconds ?? 3600;
    this.#refreshMarginMs = options.refreshMarginMs ?? 5 * 60_000;
  }

  /** Credentials of `role`, from the cache while fresh; throws AssumeRoleError naming the cluster and role. */
  async get(role: MemberRole): Promise<TemporaryCredentials> {
    const key = roleKey(role);
    let session = this.#sessions.get(key);
    if (!session || (session.credentials && !this.#fresh(session.credentials))) {
      session = this.#open(key, role);
    }
    try {
      return await session.pending;
    } catch (error) {
      // The session name and the external id are left out: neither helps, and the id is for the trust policy only.
      throw new AssumeRoleError(
        `Could not assume role ${role.roleArn} for cluster ${role.cluster}: ${describe(error)}`,
        { cause: error },
      );
    }
  }

  #open(key: string, role: MemberRole): Session {
    const session: Session = {
      pending: this.#assumeRole({
        roleArn: role.roleArn,
        externalId: role.externalId,
        sessionName: roleSessionName(role.cluster),
        durationSeconds: this.#durationSeconds,
      }),
    };
    session.pending.then(
      (credentials) => {
        session.credentials = credentials;
      },
      () => {
        if (this.#sessions.get(key) === session) this.#sessions.delete(key);
      },
    );
    this.#sessions.set(key, session);
    return session;
  }

  #fresh(credentials: TemporaryCredentials): boolean {
    return credentials.expiresAt - this.#refreshMarginMs > this.#now();
  }
}

function roleKey(role: MemberRole): string {
  return `${role.roleArn}\n${role.externalId ?? ''}`;
}

function describe(error: unknown): string {
  const { name, message } = error as Error;
  return name && name !== 'Error' ? `${name}: ${message}` : String(message);
}

/** `us-west-2` of `arn:aws:secretsmanager:us-west-2:111122223333:secret:db/x`; undefined for a name. */
export function regionOfSecret(secretId: string): string | undefined {
  return /^arn:aws[-a-z]*:secretsmanager:([a-z0-9-]+):/.exec(secretId)?.[1];
}

export interface SecretsManagerClientsOptions {
  /** The function's own client, for secrets in its account. */
  own: () => SecretsManagerClient;
  roles?: RoleCredentials;
  /** Builds a client from its settings; tests add middleware here. */
  make?: (config: SecretsManagerClientConfig) => SecretsManagerClient;
}

/**
 * The Secrets Manager client that reads a cluster's secret: the function's own, or,
 * for a cluster in another account, one signed with that role's credentials, in the
 * region the secret's ARN names (a bare name: the function's region). One client
 * per role, external id and region, replaced when the role's credentials are renewed.
 */
export class SecretsManagerClients {
  readonly #clients = new Map<string, { credentials: TemporaryCredentials; client: SecretsManagerClient }>();
  readonly #own: () => SecretsManagerClient;
  readonly #roles: RoleCredentials;
  readonly #make: (config: SecretsManagerClientConfig) => SecretsManagerClient;

  constructor(options: SecretsManagerClientsOptions) {
    this.#own = options.own;
    this.#roles = options.roles ?? new RoleCredentials();
    this.#make = options.make ?? ((config) => new SecretsManagerClient(config));
  }

  async forSecret(secretId: string, role?: MemberRole): Promise<SecretsManagerClient> {
    if (!role) return this.#own();
    const credentials = await this.#roles.get(role);
    const region = regionOfSecret(secretId);
    const key = `${roleKey(role)}\n${region ?? ''}`;
    const cached = this.#clients.get(key);
    if (cached?.credentials === credentials) return cached.client;
    // The replaced client is dropped, not destroyed: another cluster's read may still be using it.
    const { accessKeyId, secretAccessKey, sessionToken } = credentials;
    const client = this.#make(
      secretsManagerConfig({
        ...(region ? { region } : {}),
        credentials: { accessKeyId, secretAccessKey, sessionToken },
      }),
    );
    this.#clients.set(key, { credentials, client });
    return client;
  }
}
