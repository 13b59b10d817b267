/**
 * `npm run status`: every (cluster, table) watermark with its lag, rows and lease
 * holder, and every rotated secret with its last and next rotation and any stuck
 * stage. Reads DynamoDB and Secrets Manager (moto through AWS_ENDPOINT_URL, or AWS
 * with the usual credentials); prints no secret value.
 *
 *   npm run status -- [--table <watermark table>] [--function-arn <rotation function ARN>]
 */
import { parseArgs } from 'node:util';
import { dynamoDbClient, secretsManagerClient } from '../shared/aws/clients';
import { formatStatus, readStatus } from '../shared/operations/status';

let values: { table?: string; 'function-arn'?: string };
try {
  ({ values } = parseArgs({
    options: { table: { type: 'string' }, 'function-arn': { type: 'string' } },
  }));
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`);
  process.stderr.write('usage: npm run status -- [--table <watermark table>] [--function-arn <arn>]\n');
  process.exit(2);
}

try {
  const report = await readStatus({
    dynamo: dynamoDbClient(),
    secretsManager: secretsManagerClient(),
    watermarkTable: values.table ?? process.env.WATERMARK_TABLE,
    rotationFunctionArn: values['function-arn'] ?? process.env.ROTATION_FUNCTION_ARN,
  });
  process.stdout.write(formatStatus(report));
} catch (error) {
  process.stderr.write(`status failed: ${(error as Error).message}\n`);
  process.exit(1);
}
