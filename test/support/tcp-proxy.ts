import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy of a test's own on a free loopback port, in front of a database
 * server. `freeze()` stops forwarding in both directions while keeping every
 * connection open: for the client, a stalled path is a stalled server, without
 * touching the server that other test files share.
 */
export interface TcpProxy {
  host: string;
  port: number;
  freeze(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs: Array<[Socket, Socket]> = [];
  let frozen = false;
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    pairs.push([client, upstream]);
    // Forwarding by hand, so that a freeze can stop it mid-stream (frozen bytes are dropped, as on a dead
    // path), with backpressure, so that little is buffered here when it does.
    client.on('data', (chunk) => {
      if (!frozen && !upstream.write(chunk)) client.pause();
    });
    upstream.on('drain', () => client.resume());
    upstream.on('data', (chunk) => {
      if (frozen) return;
      if (!client.write(chunk)) upstream.pause();
    });
    client.on('drain', () => upstream.resume());
    const end = () => {
      if (frozen) return;
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', () => {});
    upstream.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('the proxy has no port');
  return {
    host: '127.0.0.1',
    port: address.port,
    freeze() {
      frozen = true;
    },
    async close() {
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
