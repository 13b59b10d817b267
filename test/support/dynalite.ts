import type { AddressInfo } from 'node:net';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';

/**
 * dynalite, an in-memory DynamoDB stand-in that serialises the writes of one
 * item (a lock per key), as DynamoDB does. moto does not: two conditional
 * updates of one item that arrive together can both succeed there. Tests that
 * race conditional writes point their DynamoDB client here; everything else
 * stays on moto.
 */
export async function startDynalite(): Promise<{ dynamo: DynamoDBClient; stop: () => Promise<void> }> {
  const server = dynalite({ createTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const dynamo = new DynamoDBClient({
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    maxAttempts: 1,
  });
  const stop = async () => {
    dynamo.destroy();
    await new Promise<void>((resolve, reject) =>
      server.close((error) => (error ? reject(error) : resolve())),
    );
  };
  return { dynamo, stop };
}
