import { DescribeDBClustersCommand, DescribeDBInstancesCommand, type RDSClient } from '@aws-sdk/client-rds';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { RotationStateError, SecretFormatError } from '../errors';
import { describeSecret } from './versions';

export const RDS_INSTANCE_TAG = 'aws:rds:primarydbinstancearn';
export const RDS_CLUSTER_TAG = 'aws:rds:primarydbclusterarn';

/** Where a database lives according to the RDS API. */
export interface RdsEndpoint {
  host: string;
  port: number;
  engine: string;
}

/** Host, port and engine of the instance or cluster that an RDS-managed secret belongs to. */
export async function rdsEndpointOf(
  secretsManager: SecretsManagerClient,
  rds: RDSClient,
  secretArn: string,
): Promise<RdsEndpoint> {
  const { tags } = await describeSecret(secretsManager, secretArn);
  const tag = (key: string) => tags.find((t) => t.Key === key)?.Value;
  const instanceArn = tag(RDS_INSTANCE_TAG);
  const clusterArn = tag(RDS_CLUSTER_TAG);
  try {
    if (clusterArn) {
      const { DBClusters } = await rds.send(
        new DescribeDBClustersCommand({ DBClusterIdentifier: clusterArn }),
      );
      const cluster = DBClusters?.[0];
      if (cluster?.Endpoint && cluster.Port && cluster.Engine) {
        return { host: cluster.Endpoint, port: cluster.Port, engine: cluster.Engine };
      }
    } else if (instanceArn) {
      const { DBInstances } = await rds.send(
        new DescribeDBInstancesCommand({ DBInstanceIdentifier: instanceArn }),
      );
      const instance = DBInstances?.[0];
      if (instance?.Endpoint?.Address && instance.Endpoint.Port && instance.Engine) {
        return { host: instance.Endpoint.Address, port: instance.Endpoint.Port, engine: instance.Engine };
      }
    } else {
      throw new SecretFormatError(
        `Master secret ${secretArn} has no host and no ${RDS_INSTANCE_TAG} or ${RDS_CLUSTER_TAG} tag`,
      );
    }
  } catch (error) {
    if (error instanceof SecretFormatError) throw error;
    throw new RotationStateError(
      `Could not look up ${clusterArn ?? instanceArn} in RDS for master secret ${secretArn}: ${(error as Error).name}`,
      { cause: error },
    );
  }
  throw new RotationStateError(
    `RDS reports no endpoint for ${clusterArn ?? instanceArn} (master secret ${secretArn})`,
  );
}
