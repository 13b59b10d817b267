import {
  DescribeSecretCommand,
  type DescribeSecretResponse,
  GetSecretValueCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { RotationStateError } from '../errors';
import { registerSecret } from '../log';

/** The secret's metadata as one step sees it (one DescribeSecret per step). */
export interface SecretState {
  arn: string;
  rotationEnabled: boolean;
  stagesOf(versionId: string): readonly string[] | undefined;
  /** The version labelled with `stage`, if any. */
  versionWith(stage: string): string | undefined;
  tags: ReadonlyArray<{ Key?: string; Value?: string }>;
}

/** Reads a secret's stages once per step. */
export async function describeSecret(sm: SecretsManagerClient, secretId: string): Promise<SecretState> {
  let response: DescribeSecretResponse;
  try {
    response = await sm.send(new DescribeSecretCommand({ SecretId: secretId }));
  } catch (error) {
    throw new RotationStateError(`Could not describe secret ${secretId}: ${(error as Error).name}`, {
      cause: error,
    });
  }
  const stages = response.VersionIdsToStages ?? {};
  return {
    arn: response.ARN ?? secretId,
    rotationEnabled: response.RotationEnabled === true,
    stagesOf: (versionId) => (Object.hasOwn(stages, versionId) ? (stages[versionId] ?? []) : undefined),
    versionWith: (stage) => Object.entries(stages).find(([, s]) => s.includes(stage))?.[0],
    tags: response.Tags ?? [],
  };
}

// Secret versions are immutable by VersionId, so a value read (or written) once stays
// valid for this container's lifetime. Only ids that DescribeSecret has just listed are
// looked up here, so a cached value never stands in for a version that is gone.
const MAX_CACHED_VERSIONS = 64;
const versionCache = new Map<string, string>();

/**
 * The SecretString of one version, read by VersionId (from the container's cache
 * when possible); undefined when the version has no value yet.
 */
export async function versionValue(
  sm: SecretsManagerClient,
  arn: string,
  versionId: string,
): Promise<string | undefined> {
  const key = `${arn}\u0000${versionId}`;
  const cached = versionCache.get(key);
  if (cached !== undefined) return cached;
  try {
    const response = await sm.send(new GetSecretValueCommand({ SecretId: arn, VersionId: versionId }));
    if (response.SecretString === undefined) return undefined;
    rememberVersionValue(arn, versionId, response.SecretString);
    return response.SecretString;
  } catch (error) {
    if ((error as Error).name === 'ResourceNotFoundException') return undefined;
    throw new RotationStateError(
      `Could not read version ${versionId} of secret ${arn}: ${(error as Error).name}`,
      { cause: error },
    );
  }
}

/** The value of a version if this container already holds it; never calls the API. */
export function cachedVersionValue(arn: string, versionId: string): string | undefined {
  return versionCache.get(`${arn}\u0000${versionId}`);
}

/** Records a value this container wrote (PutSecretValue), or read. */
export function rememberVersionValue(arn: string, versionId: string, value: string): void {
  registerSecret(value);
  try {
    const password = (JSON.parse(value) as { password?: unknown }).password;
    if (typeof password === 'string') registerSecret(password);
  } catch {
    // Not JSON: the parser reports that when the value is used.
  }
  if (versionCache.size >= MAX_CACHED_VERSIONS) {
    const oldest = versionCache.keys().next().value;
    if (oldest !== undefined) versionCache.delete(oldest);
  }
  versionCache.set(`${arn}\u0000${versionId}`, value);
}

/** Forgets cached versions (tests that count API calls of a cold container). */
export function clearVersionCache(): void {
  versionCache.clear();
}
