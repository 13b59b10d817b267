import type { RDSClient } from '@aws-sdk/client-rds';
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { DatabaseLogin, RotationAdapter } from '../db/adapter';
import { adapterFor } from '../db/adapters';
import { type TlsMode, tlsModeFrom } from '../db/tls';
import { RotationStateError, SecretFormatError } from '../errors';
import { lazy } from '../lazy';
import { type DatabaseSecret, parseMasterSecret } from '../secret';
import type { RdsEndpoint } from './rds-endpoint';

// The RDS API (and its SDK client) serves RDS-managed master secrets only: loaded when one is met.
const rdsLookup = lazy(() => import('./rds-endpoint'));

/**
 * The master user's login for an alternating-users rotation. A master secret that
 * holds only username and password (RDS-managed) gets host, port and engine from
 * the RDS API through its primary-instance or primary-cluster tag. The master must
 * serve the same host and engine family as the secret being rotated: a secret
 * pointing its `masterarn` at another database must not borrow that master.
 */
export async function resolveMasterLogin(options: {
  secretsManager: SecretsManagerClient;
  /** The RDS client, built on first use. */
  rds: () => Promise<RDSClient>;
  current: DatabaseSecret;
  adapter: RotationAdapter;
}): Promise<DatabaseLogin> {
  const { current, adapter } = options;
  const masterArn = current.masterarn as string;
  let text: string | undefined;
  try {
    // The stage is named although it is the default: the master secret may itself be rotated, and
    // an emulator that answers an unnamed read with a stale version must not hand out an old password.
    const response = await options.secretsManager.send(
      new GetSecretValueCommand({ SecretId: masterArn, VersionStage: 'AWSCURRENT' }),
    );
    text = response.SecretString;
  } catch (error) {
    throw new RotationStateError(`Could not read master secret ${masterArn}: ${(error as Error).name}`, {
      cause: error,
    });
  }
  const master = parseMasterSecret(text, `master ${masterArn}`);
  const where: RdsEndpoint = master.host
    ? {
        host: master.host,
        port: master.port ?? adapter.defaultPort,
        engine: master.engine ?? current.engine,
      }
    : await (await rdsLookup()).rdsEndpointOf(options.secretsManager, await options.rds(), masterArn);
  if (adapterFor(where.engine) !== adapter) {
    throw new SecretFormatError(
      `Master secret ${masterArn} is for engine "${where.engine}", not the family of "${current.engine}"`,
    );
  }
  if (where.host.toLowerCase() !== current.host.toLowerCase()) {
    throw new SecretFormatError(
      `Master secret ${masterArn} is for host ${where.host}, not ${current.host} of the rotated secret`,
    );
  }
  // The secret's logins prove who owns which user; they prove it on the master's server only at its port.
  const currentPort = current.port ?? adapter.defaultPort;
  if (where.port !== currentPort) {
    throw new SecretFormatError(
      `Master secret ${masterArn} is for port ${where.port}, not ${currentPort} of the rotated secret: both must address the same server`,
    );
  }
  const login: DatabaseLogin = {
    host: where.host,
    port: where.port,
    username: master.username,
    password: master.password,
    tls: masterTlsMode(master.ssl, current.ssl, !master.host),
  };
  const dbname = master.dbname ?? current.dbname;
  if (dbname) login.dbname = dbname;
  // Only the master's own: a name from the rotated secret would let its writer choose what the master trusts.
  if (master.tlsServerName) login.tlsServerName = master.tlsServerName;
  return login;
}

/**
 * The master's own `ssl`, else `require` for an RDS-managed master (RDS always
 * offers TLS, and a downgrade would expose the master password to whoever answers
 * "no TLS"), else the rotated secret's when that requires TLS, else `prefer`: the
 * rotated secret may tighten the master's TLS, never switch it off.
 */
function masterTlsMode(masterSsl: unknown, currentSsl: unknown, rdsManaged: boolean): TlsMode {
  if (masterSsl !== undefined) return tlsModeFrom(masterSsl);
  if (rdsManaged) return 'require';
  return tlsModeFrom(currentSsl) === 'require' ? 'require' : 'prefer';
}
