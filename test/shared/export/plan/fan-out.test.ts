import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lambdaInvoker } from '../../../../shared/export/plan/fan-out';

/**
 * The fan-out adapter through the real Lambda client, against a local HTTP
 * endpoint that records what arrives (moto cannot run a function here): the
 * request Lambda's Invoke API expects, and the answers it must treat as failures.
 */

interface Recorded {
  method?: string;
  url?: string;
  headers: IncomingHttpHeaders;
  body: string;
}

let server: Server;
let endpoint: string;
const recorded: Recorded[] = [];
let status = 202;

beforeAll(async () => {
  server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => {
      body += chunk.toString('utf8');
    });
    request.on('end', () => {
      recorded.push({ method: request.method, url: request.url, headers: request.headers, body });
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(status === 202 ? '' : JSON.stringify({ Type: 'Service', message: 'unavailable' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

const client = async () =>
  new LambdaClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    maxAttempts: 1,
  });

describe('lambdaInvoker', () => {
  it('invokes the function asynchronously with a catch-up event for the cluster', async () => {
    recorded.length = 0;
    status = 202;

    await lambdaInvoker(client)('log-export-prod-export', 'orders-db');

    expect(recorded).toHaveLength(1);
    const [request] = recorded as [Recorded];
    expect(request.method).toBe('POST');
    expect(request.url).toBe('/2015-03-31/functions/log-export-prod-export/invocations');
    expect(request.headers['x-amz-invocation-type']).toBe('Event');
    expect(JSON.parse(request.body)).toEqual({ cluster: 'orders-db' });
  });

  it('fails when Lambda does not accept the event', async () => {
    status = 200;

    await expect(lambdaInvoker(client)('f', 'c1')).rejects.toThrow(
      'Asynchronous invocation of f answered 200',
    );
  });

  it('fails when Lambda answers an error', async () => {
    status = 503;

    await expect(lambdaInvoker(client)('f', 'c1')).rejects.toThrow();
  });
});
