import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex, PassThrough } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConnectionTarget, connectMysql, connectPostgres } from '../../../shared/db/connect';
import { resetTrustedCertificates } from '../../../shared/db/tls';
import { AuthenticationError, DatabaseError } from '../../../shared/errors';
import { createLogger } from '../../../shared/log';
import { captureOutput } from '../../support/capture';

/**
 * A stand-in PostgreSQL server that accepts TLS with a self-signed certificate and
 * then refuses the login (28P01): enough to watch what the client does after a
 * certificate failure and after an authentication failure over TLS.
 */
function fakeTlsPostgres(
  key: string,
  cert: string,
): { server: Server; connections: () => number; serverNames: string[] } {
  let connections = 0;
  const serverNames: string[] = [];
  const server = createServer((socket) => {
    connections++;
    socket.on('error', () => {});
    socket.once('data', () => {
      socket.write('S'); // yes to SSLRequest
      const tls = new TLSSocket(socket, { isServer: true, key, cert, SNICallback: recordSni(serverNames) });
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
  return { server, connections: () => connections, serverNames };
}

/** Notes the SNI name a client sends (the handshake goes on with the socket's own certificate). */
function recordSni(names: string[]) {
  return (name: string, done: (error: Error | null) => void) => {
    names.push(name);
    done(null);
  };
}

/**
 * A stand-in MySQL server: greets offering TLS, then takes the client's SSLRequest
 * and starts TLS; enough to see the SNI a client sends.
 */
function fakeTlsMysql(key: string, cert: string): { server: Server; serverNames: string[] } {
  const serverNames: string[] = [];
  const u16 = (n: number) => Buffer.from([n & 0xff, (n >> 8) & 0xff]);
  // CLIENT_LONG_PASSWORD, PROTOCOL_41, SSL, SECURE_CONNECTION, PLUGIN_AUTH
  const capabilities = 0x1 | 0x200 | 0x800 | 0x8000 | 0x80000;
  const greeting = Buffer.concat([
    Buffer.from([10]),
    Buffer.from('5.7.0-fake\0'),
    Buffer.from([1, 0, 0, 0]),
    Buffer.alloc(8, 0x61),
    Buffer.from([0]),
    u16(capabilities & 0xffff),
    Buffer.from([0x21]),
    u16(2),
    u16(capabilities >>> 16),
    Buffer.from([21]),
    Buffer.alloc(10),
    Buffer.alloc(12, 0x62),
    Buffer.from([0]),
    Buffer.from('mysql_native_password\0'),
  ]);
  const header = Buffer.from([greeting.length & 0xff, (greeting.length >> 8) & 0xff, 0, 0]);
  const server = createServer((socket) => {
    socket.on('error', () => {});
    socket.write(Buffer.concat([header, greeting]));
    socket.once('data', (data) => {
      // The client sends its TLS hello right behind the 36-byte SSLRequest: hand those bytes on.
      socket.pause();
      const incoming = new PassThrough();
      incoming.write(data.subarray(36));
      socket.pipe(incoming);
      socket.resume();
      const tls = new TLSSocket(Duplex.from({ readable: incoming, writable: socket }), {
        isServer: true,
        key,
        cert,
        SNICallback: recordSni(serverNames),
      });
      tls.on('error', () => {});
      tls.once('data', () => tls.destroy());
    });
  });
  return { server, serverNames };
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

describe('SNI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sni-'));
  let postgres: ReturnType<typeof fakeTlsPostgres>;
  let mysqlServer: ReturnType<typeof fakeTlsMysql>;

  beforeAll(async () => {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=db.internal.example',
        '-addext',
        'subjectAltName=DNS:db.internal.example',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const [key, cert] = ['key.pem', 'cert.pem'].map((f) => readFileSync(join(dir, f), 'utf8')) as [
      string,
      string,
    ];
    postgres = fakeTlsPostgres(key, cert);
    mysqlServer = fakeTlsMysql(key, cert);
    for (const { server } of [postgres, mysqlServer]) {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    }
  });

  afterAll(async () => {
    for (const { server } of [postgres, mysqlServer]) await new Promise((resolve) => server.close(resolve));
  });

  const engines = [
    { engine: 'postgres', connect: connectPostgres, fake: () => postgres },
    { engine: 'mysql', connect: connectMysql, fake: () => mysqlServer },
  ];

  it.each(engines)(
    '$engine: sends tlsServerName, else a DNS host, and nothing for an IP address',
    async ({ connect, fake }) => {
      const port = (fake().server.address() as { port: number }).port;
      const attempt = async (host: string, tlsServerName?: string) => {
        const before = fake().serverNames.length;
        const target: ConnectionTarget = { host, port, user: 'app', password: 'Pw-1', tls: 'require' };
        await connect(tlsServerName ? { ...target, tlsServerName } : target).catch(() => {});
        return fake().serverNames.slice(before);
      };

      expect(await attempt('localhost', 'db.internal.example')).toEqual(['db.internal.example']);
      expect(await attempt('127.0.0.1', 'db.internal.example')).toEqual(['db.internal.example']);
      expect(await attempt('localhost')).toEqual(['localhost']);
      expect(await attempt('127.0.0.1')).toEqual([]);
    },
  );
});
