import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { RDSClient } from '@aws-sdk/client-rds';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';

/**
 * One factory per AWS client, each built once per container (the first call
 * creates it, later calls return the same instance). Adaptive retry backs off
 * on throttling, which matters for SSM's shared 40 TPS. The factories are marked
 * pure so that a function's bundle carries only the SDK clients it uses.
 */
const common = { retryMode: 'adaptive', maxAttempts: 6 } as const;

function once<T>(make: () => T): () => T {
  let instance: T | undefined;
  return () => {
    instance ??= make();
    return instance;
  };
}

export const ssmClient = /* @__PURE__ */ once(() => new SSMClient(common));

export const secretsManagerClient = /* @__PURE__ */ once(
  () =>
    new SecretsManagerClient({
      ...common,
      // The official rotation functions honour this variable (VPC endpoints); otherwise
      // the SDK's own resolution applies, including AWS_ENDPOINT_URL(_SECRETS_MANAGER).
      ...(process.env.SECRETS_MANAGER_ENDPOINT ? { endpoint: process.env.SECRETS_MANAGER_ENDPOINT } : {}),
    }),
);

export const dynamoDbClient = /* @__PURE__ */ once(() => new DynamoDBClient(common));

// Path-style addressing works with every endpoint, including local emulators.
export const s3Client = /* @__PURE__ */ once(
  () => new S3Client({ ...common, forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL) }),
);

export const rdsClient = /* @__PURE__ */ once(() => new RDSClient(common));

export const lambdaClient = /* @__PURE__ */ once(() => new LambdaClient(common));
