import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import type { AssumeRole } from '../../shared/aws/assume-role';
import { uniqueName } from '../stack/fixtures';

/**
 * Another AWS account, as moto has it: credentials from AssumeRole act in the
 * account the role's ARN names (Secrets Manager keeps each account's secrets
 * apart), without any IAM or trust policy being checked.
 */

export const MEMBER_ACCOUNT = '111111111111';
export const memberRole = (name: string, account = MEMBER_ACCOUNT) => `arn:aws:iam::${account}:role/${name}`;

/** A Secrets Manager client acting in `account`, for setting up what the cluster keeps there. */
export async function memberSecretsManager(account: string, region?: string): Promise<SecretsManagerClient> {
  const { Credentials: c } = await new STSClient({}).send(
    new AssumeRoleCommand({ RoleArn: memberRole('test-setup', account), RoleSessionName: 'test-setup' }),
  );
  return new SecretsManagerClient({
    ...(region ? { region } : {}),
    credentials: {
      accessKeyId: c?.AccessKeyId as string,
      secretAccessKey: c?.SecretAccessKey as string,
      sessionToken: c?.SessionToken as string,
    },
  });
}

/** Creates a secret in `account` (and `region`, under `name`); returns its name and ARN. */
export async function createMemberSecret(
  account: string,
  value: Record<string, unknown>,
  region?: string,
  name = uniqueName('db/member'),
): Promise<{ name: string; arn: string }> {
  const client = await memberSecretsManager(account, region);
  const { ARN } = await client.send(
    new CreateSecretCommand({ Name: name, SecretString: JSON.stringify(value) }),
  );
  return { name, arn: ARN as string };
}

export interface SignedRequest {
  operation: string;
  accessKeyId: string;
  region: string;
  service: string;
}

/**
 * Records, for every request `client` sends, the access key id and the scope it
 * was signed with (from the SigV4 Authorization header, after signing).
 */
export function recordSignatures(
  client: { middlewareStack: SecretsManagerClient['middlewareStack'] },
  into: SignedRequest[],
): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const headers = (args.request as { headers?: Record<string, string> }).headers ?? {};
      const scope = /Credential=([^/]+)\/\d{8}\/([^/]+)\/([^/]+)\//.exec(headers.authorization ?? '');
      into.push({
        operation: String(context.commandName),
        accessKeyId: scope?.[1] ?? '(unsigned)',
        region: scope?.[2] ?? '',
        service: scope?.[3] ?? '',
      });
      return next(args);
    },
    // The deserialize step runs inside finalizeRequest, where the request was signed.
    { step: 'deserialize', name: 'recordSignature' },
  );
}

/** STS AssumeRole through `sts` (moto), recording each request and each answer. */
export function countingAssumeRole(real: AssumeRole) {
  const calls: Array<{ request: Parameters<AssumeRole>[0]; accessKeyId?: string; error?: string }> = [];
  const assumeRole: AssumeRole = async (request) => {
    const call: (typeof calls)[number] = { request };
    calls.push(call);
    try {
      const credentials = await real(request);
      call.accessKeyId = credentials.accessKeyId;
      return credentials;
    } catch (error) {
      call.error = (error as Error).name;
      throw error;
    }
  };
  return { assumeRole, calls };
}

/**
 * An STS endpoint in front of moto that refuses AssumeRole of the given roles the
 * way STS does when the trust policy does not name the caller (403 AccessDenied,
 * in STS's XML), and passes every other request on to moto.
 */
export async function startDenyingSts(
  denied: readonly string[],
): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const moto = process.env.AWS_ENDPOINT_URL as string;
  const server: Server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const form = new URLSearchParams(body.toString('utf8'));
    const roleArn = form.get('RoleArn') ?? '';
    if (form.get('Action') === 'AssumeRole' && denied.includes(roleArn)) {
      response.writeHead(403, { 'content-type': 'text/xml' });
      response.end(
        `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>` +
          `<Code>AccessDenied</Code><Message>User: arn:aws:sts::123456789012:assumed-role/exporter/log-export ` +
          `is not authorized to perform: sts:AssumeRole on resource: ${roleArn}</Message></Error>` +
          `<RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>`,
      );
      return;
    }
    const headers = new Headers();
    for (const [name, value] of Object.entries(request.headers)) {
      if (typeof value === 'string' && name !== 'host' && name !== 'content-length') headers.set(name, value);
    }
    const upstream = await fetch(`${moto}${request.url}`, {
      method: request.method,
      headers,
      body: body.length > 0 ? body : undefined,
    });
    response.writeHead(upstream.status, {
      'content-type': upstream.headers.get('content-type') ?? 'text/xml',
    });
    response.end(Buffer.from(await upstream.arrayBuffer()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * A clock of the test's own, real time plus what the test adds, standing for the
 * whole world's: `sts` turns moto's expiry times (real time) into this clock's.
 */
export function testClock() {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    advance: (ms: number) => (offset += ms),
    sts:
      (real: AssumeRole): AssumeRole =>
      async (request) => {
        const credentials = await real(request);
        return { ...credentials, expiresAt: credentials.expiresAt + offset };
      },
  };
}
