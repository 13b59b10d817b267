import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { RDSClient } from '@aws-sdk/client-rds';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient, type SecretsManagerClientConfig } from '@aws-sdk/client-secrets-manager';
import type { STSClient } from '@aws-sdk/client-sts';
import { lazy } from '../lazy';

/**
 * One factory per AWS client, each built once per container (the first call
 * creates it, later calls return the same instance). Adaptive retry backs off
 * on throttling, which matters for SSM's shared 40 TPS. The factories are marked
 * pure so that a function's bundle carries only the SDK clients it uses; a client
 * that only some invocations need is loaded with its SDK package on first use.
 * SSM's is in ssm.ts, beside the configuration loader that alone uses it.
 */
export const common = { retryMode: 'adaptive', maxAttempts: 6 } as const;

/**
 * Settings of every Secrets Manager client. `SECRETS_MANAGER_ENDPOINT` (the official rotation
 * functions honour it, for VPC endpoints) applies in the function's own region only, so not to a
 * client given another `region`; otherwise the SDK's own resolution applies, including
 * AWS_ENDPOINT_URL(_SECRETS_MANAGER).
 */
export function secretsManagerConfig(extra: SecretsManagerClientConfig = {}): SecretsManagerClientConfig {
  const endpoint = process.env.SECRETS_MANAGER_ENDPOINT;
  return { ...common, ...(endpoint && !extra.region ? { endpoint } : {}), ...extra };
}

export const secretsManagerClient = /* @__PURE__ */ lazy(
  () => new SecretsManagerClient(secretsManagerConfig()),
);

export const dynamoDbClient = /* @__PURE__ */ lazy(() => new DynamoDBClient(common));

// Path-style addressing works with every endpoint, including local emulators.
export const s3Client = /* @__PURE__ */ lazy(
  () => new S3Client({ ...common, forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL) }),
);

/** Only rotations with an RDS-managed master secret call RDS. */
export const rdsClient = /* @__PURE__ */ lazy(
  async (): Promise<RDSClient> => new (await import('./rds')).RDSClient(common),
);

/** Only a scheduled export run that fans out invokes Lambda. */
export const lambdaClient = /* @__PURE__ */ lazy(
  async (): Promise<LambdaClient> => new (await import('./lambda')).LambdaClient(common),
);

/** Loaded on first use: only clusters in other accounts need STS, other cold starts skip its client. */
export const stsClient = /* @__PURE__ */ lazy(
  async (): Promise<STSClient> => new (await import('@aws-sdk/client-sts')).STSClient(common),
);
