import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex, PassThrough } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/rotate';
import { resetTrustedCertificates } from '../../shared/db/tls';
import type { PreflightReport } from '../../shared/rotation/preflight';
import { rotationDeps } from '../shared/rotation/support';
import { createSecret, randomPassword } from '../stack/fixtures';
import { captureOutput } from '../support/capture';

/**
 * Preflight's TLS check against stand-in servers that speak just enough
 * PostgreSQL or MySQL to reach the TLS handshake, with certificates made here:
 * untrusted, trusted but expiring, trusted but for another name.
 */

type Certificate = { key: string; cert: string };

function makeCertificate(dir: string, name: string, san: string, days: number): Certificate {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.pem`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      String(days),
      '-subj',
      `/CN=${name}`,
      '-addext',
      `subjectAltName=${san}`,
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
}

/** After TLS, whatever the client sends is answered with PostgreSQL's "password authentication failed". */
function fakePostgres({ key, cert }: Certificate): Server {
  return createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => {
      socket.write('S');
      const tls = new TLSSocket(socket, { isServer: true, key, cert });
      tls.on('error', () => {});
      tls.once('data', () => {
        const fields = ['SFATAL', 'C28P01', 'Mpassword authentication failed'].map((f) => `${f}\0`).join('');
        const body = Buffer.from(`${fields}\0`);
        const header = Buffer.alloc(5);
        header.write('E', 0);
        header.writeInt32BE(body.length + 4, 1);
        tls.end(Buffer.concat([header, body]));
      });
    });
  });
}

/** Greets like a MySQL 5.7 server that offers TLS, takes the SSL request, then does TLS and hangs up. */
function fakeMysql({ key, cert }: Certificate): Server {
  return createServer((socket) => {
    socket.on('error', () => {});
    const capsLow = 0x1 | 0x200 | 0x800 | 0x2000 | 0x8000;
    const payload = Buffer.concat([
      Buffer.from([10]),
      Buffer.from('5.7.99-fake\0'),
      Buffer.from([1, 0, 0, 0]),
      Buffer.from('abcdefgh'),
      Buffer.from([0, capsLow & 0xff, capsLow >> 8, 45, 2, 0, 0x08, 0, 21]),
      Buffer.alloc(10),
      Buffer.from('ijklmnopqrst\0'),
      Buffer.from('mysql_native_password\0'),
    ]);
    const header = Buffer.alloc(4);
    header.writeUIntLE(payload.length, 0, 3);
    socket.write(Buffer.concat([header, payload]));
    socket.once('data', (chunk: Buffer) => {
      // The client may send its TLS hello right behind the 36-byte SSL request: keep those bytes.
      socket.pause();
      const input = new PassThrough();
      input.write(chunk.subarray(36));
      socket.pipe(input);
      const tls = new TLSSocket(Duplex.from({ readable: input, writable: socket }), {
        isServer: true,
        key,
        cert,
      });
      tls.on('error', () => {});
      tls.once('data', () => tls.end());
    });
  });
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

async function preflight(
  value: Record<string, unknown>,
): Promise<{ report: PreflightReport; output: string }> {
  const arn = await createSecret(value);
  const capture = captureOutput();
  try {
    const report = await makeHandler(rotationDeps())({ action: 'preflight', SecretId: arn });
    return { report, output: capture.text() };
  } finally {
    capture.stop();
  }
}

const tlsCheck = (report: PreflightReport) => report.checks.find((c) => c.name === 'tls');

describe('preflight TLS check', () => {
  const dir = mkdtempSync(join(tmpdir(), 'preflight-tls-'));
  const servers: Server[] = [];
  const ports: Record<string, number> = {};

  beforeAll(async () => {
    const untrusted = makeCertificate(dir, 'untrusted', 'IP:127.0.0.1', 365);
    const expiring = makeCertificate(dir, 'expiring', 'IP:127.0.0.1', 10);
    const otherName = makeCertificate(dir, 'db.example.test', 'DNS:db.example.test', 365);
    writeFileSync(join(dir, 'trusted.pem'), expiring.cert + otherName.cert);
    process.env.DB_TLS_CA_FILE = join(dir, 'trusted.pem');
    resetTrustedCertificates();
    for (const [name, server] of [
      ['pgUntrusted', fakePostgres(untrusted)],
      ['pgExpiring', fakePostgres(expiring)],
      ['pgOtherName', fakePostgres(otherName)],
      ['mysqlUntrusted', fakeMysql(untrusted)],
    ] as const) {
      servers.push(server);
      ports[name] = await listen(server);
    }
  });

  afterAll(async () => {
    delete process.env.DB_TLS_CA_FILE;
    resetTrustedCertificates();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });

  const secret = (engine: string, port: number | undefined, extra: Record<string, unknown> = {}) => ({
    engine,
    host: '127.0.0.1',
    port,
    username: 'app',
    password: randomPassword(),
    ...extra,
  });

  it.each([
    ['postgres', 'pgUntrusted'],
    ['mariadb', 'mysqlUntrusted'],
  ])('%s: fails an untrusted certificate and says how to trust its CA', async (engine, server) => {
    const value = secret(engine, ports[server]);

    const result = await preflight(value);

    expect(tlsCheck(result.report)).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(
        /certificate CN=untrusted of 127\.0\.0\.1:\d+ is not trusted: .*self[- ]signed/i,
      ),
      fix: expect.stringContaining('DB_TLS_CA_FILE'),
    });
    expect(result.report.checks.find((c) => c.name === 'login')).toMatchObject({
      status: 'fail',
      fix: 'See the tls check',
    });
    expect(result.report.rotatable).toBe(false);
    expect(`${JSON.stringify(result.report)}${result.output}`).not.toContain(value.password);
  });

  it('fails a trusted certificate that names another host, and passes it with tlsServerName', async () => {
    const plain = secret('postgres', ports.pgOtherName, { ssl: true });
    const named = secret('postgres', ports.pgOtherName, { ssl: true, tlsServerName: 'db.example.test' });

    const mismatch = await preflight(plain);
    const matched = await preflight(named);

    expect(tlsCheck(mismatch.report)).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(
        /does not name 127\.0\.0\.1: .*IP: 127\.0\.0\.1 is not in the cert's list/,
      ),
      fix: expect.stringContaining('tlsServerName'),
    });
    expect(tlsCheck(matched.report)).toMatchObject({
      status: 'pass',
      detail: expect.stringMatching(/is trusted and names db\.example\.test; valid until \d{4}-/),
    });
    expect(`${JSON.stringify(mismatch.report)}${mismatch.output}`).not.toContain(plain.password);
  });

  it('warns about a certificate that expires within 30 days', async () => {
    const value = secret('postgres', ports.pgExpiring);

    const result = await preflight(value);

    expect(tlsCheck(result.report)).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/expires on .* \(in (9|10) days\)/),
      fix: expect.stringMatching(/Renew/),
    });
    // The stand-in refuses every login: the login check fails as an authentication failure.
    expect(result.report.checks.find((c) => c.name === 'login')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/AWSCURRENT does not log in: Login refused for app@127\.0\.0\.1/),
    });
    expect(`${JSON.stringify(result.report)}${result.output}`).not.toContain(value.password);
  });

  it('fails ssl true against a server without TLS, and warns without ssl', async () => {
    const plainServer = createServer((socket) => {
      socket.on('error', () => {});
      socket.once('data', () => socket.end('N'));
    });
    servers.push(plainServer);
    const port = await listen(plainServer);

    const required = await preflight(secret('postgres', port, { ssl: 'true' }));
    const preferred = await preflight(secret('postgres', port));

    expect(tlsCheck(required.report)).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('offers no TLS, but the secret sets ssl true'),
    });
    expect(tlsCheck(preferred.report)).toMatchObject({ status: 'warn' });
  });
});
