/**
 * Rotates one secret locally, the way Secrets Manager would, with the real handler:
 *
 *   npm run rotate -- <secret-id> [--attempts 3] [--token <token-to-resume>] [--lambda-arn <arn>]
 *
 * Against moto (AWS_ENDPOINT_URL set) or real AWS with the usual credentials.
 */
import { parseArgs } from 'node:util';
import { handler } from '../functions/rotate';
import { secretsManagerClient } from '../shared/aws/clients';
import { createLogger } from '../shared/log';
import { driveRotation } from '../shared/rotation/driver';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    attempts: { type: 'string', default: '3' },
    token: { type: 'string' },
    'lambda-arn': { type: 'string' },
  },
});
const secretId = positionals[0];
const attempts = Number(values.attempts);
if (!secretId || positionals.length > 1 || !Number.isInteger(attempts) || attempts < 1) {
  process.stderr.write(
    'usage: npm run rotate -- <secret-id> [--attempts N] [--token T] [--lambda-arn ARN]\n',
  );
  process.exit(2);
}

try {
  const result = await driveRotation({
    secretsManager: secretsManagerClient(),
    secretId,
    invoke: (event) => handler(event),
    attempts,
    ...(values.token ? { token: values.token } : {}),
    ...(values['lambda-arn'] ? { rotationLambdaArn: values['lambda-arn'] } : {}),
    logger: createLogger('rotation-driver'),
  });
  process.stdout.write(`${JSON.stringify({ rotated: secretId, ...result })}\n`);
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(1);
}
