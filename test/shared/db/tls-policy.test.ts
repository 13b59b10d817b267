import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPostgres } from '../../../shared/db/connect';
import { resetTrustedCertificates } from '../../../shared/db/tls';
import { AuthenticationError, DatabaseError } from '../../../shared/errors';
import { createLogger } from '../../../shared/log';
import { captureOutput } from '../../support/capture';

/**
 * A stand-in PostgreSQL server that accepts TLS with a self-signed certificate and
 * then refuses the login (28P01): enough to watch what the client does after a
 * certificate failure and after an authentication failure over TLS.
 */
function fakeTlsPostgres(key: string, cert: string): { server: Server; connections: () => number } {
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    socket.on('error', () => {});
    socket.once('data', () => {
      socket.write('S'); // yes to SSLRequest
      const tls = new TLSSocket(socket, { isServer: true, key, cert });
      tls.on('error', () => {});
      tls.once('data', () => {
        const fields = ['SFATAL', 'VFATAL', 'C28P01', 'Mpassword authentication failed for user "app"']
          .map((f) => `${f}\0`)
          .join('');
        const body = Buffer.from(`${fields}\0`);
        const header = Buffer.alloc(5);
        header.write('E', 0);
        header.writeInt32BE(body.length + 4, 1);
        tls.end(Buffer.concat([header, body]));
      });
    });
  });
  return { server, connections: () => connections };
}

describe('TLS policy against a server with a self-signed certificate', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tls-'));
  let fake: ReturnType<typeof fakeTlsPostgres>;
  let port = 0;

  beforeAll(async () => {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    fake = fakeTlsPostgres(
      readFileSync(join(dir, 'key.pem'), 'utf8'),
      readFileSync(join(dir, 'cert.pem'), 'utf8'),
    );
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    port = (fake.server.address() as { port: number }).port;
  });

  afterAll(async () => {
    delete process.env.DB_TLS_CA_FILE;
    resetTrustedCertificates();
    await new Promise((resolve) => fake.server.close(resolve));
  });

  const target = (tls: 'require' | 'prefer') => ({
    host: '127.0.0.1',
    port,
    user: 'app',
    password: 'Pw-not-logged-1',
    tls,
  });

  it.each(['require', 'prefer'] as const)(
    '%s: refuses an unverifiable certificate and never retries in plaintext',
    async (tls) => {
      const before = fake.connections();
      const output = captureOutput();
      const error = await connectPostgres(target(tls), {}, { logger: createLogger('test') }).catch(
        (e: unknown) => e,
      );
      output.stop();

      expect(error).toBeInstanceOf(DatabaseError);
      expect(error).not.toBeInstanceOf(AuthenticationError);
      expect((error as Error).message).toMatch(/self[- ]signed certificate/);
      expect(fake.connections() - before).toBe(1);
      expect(output.text()).not.toContain('plaintext');
    },
  );

  it('prefer: with the CA trusted (DB_TLS_CA_FILE), a refused login over TLS is not retried in plaintext', async () => {
    process.env.DB_TLS_CA_FILE = join(dir, 'cert.pem');
    resetTrustedCertificates();
    const before = fake.connections();

    const error = await connectPostgres(target('prefer')).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(AuthenticationError);
    expect(fake.connections() - before).toBe(1);
  });
});
