import { lookup } from 'node:dns/promises';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { checkServerIdentity, type PeerCertificate, connect as tlsConnect } from 'node:tls';
import { trustedCertificates } from '../db/tls';

/**
 * Network probes for preflight: name resolution, a TCP connection and the
 * server's TLS certificate. They send no credentials; the TLS probe speaks just
 * enough of each protocol (PostgreSQL's SSLRequest, MySQL's SSL request packet)
 * to reach the TLS handshake, and reads the certificate without trusting it, so
 * that it can say what is wrong with it instead of only failing.
 */

/** Short on purpose: a probe that hangs is the symptom of a missing network path. */
export const PROBE_TIMEOUT_MS = 3_000;

export async function resolveHost(host: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<string[]> {
  if (isIP(host)) return [host];
  const addresses = await withTimeout(lookup(host, { all: true }), timeoutMs, `resolving ${host}`);
  return addresses.map((a) => a.address);
}

/** Opens and closes a TCP connection; rejects with the socket error (ECONNREFUSED, ETIMEDOUT, ...). */
export function tcpProbe(host: string, port: number, timeoutMs = PROBE_TIMEOUT_MS): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host, port });
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      reject(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    });
    socket.once('error', (error) => {
      socket.destroy();
      reject(error);
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
  });
}

export interface TlsProbeResult {
  /** False: the server does not do TLS at all. */
  offered: boolean;
  /** Why the chain is not trusted (OpenSSL's code, e.g. SELF_SIGNED_CERT_IN_CHAIN); undefined when trusted. */
  chainError?: string;
  /** Why the certificate does not name the host; undefined when it does. */
  identityError?: string;
  validTo?: Date;
  subject?: string;
}

/** Reaches the TLS handshake of a PostgreSQL or MySQL-family server and reports on its certificate. */
export async function tlsProbe(options: {
  family: 'mysql' | 'postgres';
  host: string;
  port: number;
  /** The name the certificate must carry (the host, or the secret's tlsServerName). */
  serverName: string;
  timeoutMs?: number;
}): Promise<TlsProbeResult> {
  const timeoutMs = options.timeoutMs ?? PROBE_TIMEOUT_MS;
  const socket = netConnect({ host: options.host, port: options.port });
  const reader = new SocketReader(socket);
  try {
    const work = (async () => {
      await reader.connected();
      const offered =
        options.family === 'postgres' ? await startPostgresTls(reader) : await startMysqlTls(reader);
      if (!offered) return { offered: false };
      reader.release();
      return await handshake(socket, options.serverName);
    })();
    return await withTimeout(work, timeoutMs, `TLS handshake with ${options.host}:${options.port}`);
  } finally {
    socket.destroy();
  }
}

async function startPostgresTls(reader: SocketReader): Promise<boolean> {
  const request = Buffer.alloc(8);
  request.writeInt32BE(8, 0);
  request.writeInt32BE(80877103, 4); // SSLRequest
  reader.socket.write(request);
  const answer = (await reader.read(1)).toString('latin1');
  if (answer === 'S') return true;
  if (answer === 'N') return false;
  throw new Error(
    `unexpected answer to SSLRequest (${JSON.stringify(answer)}): is this a PostgreSQL server?`,
  );
}

const CLIENT_LONG_PASSWORD = 0x1;
const CLIENT_PROTOCOL_41 = 0x200;
const CLIENT_SSL = 0x800;
const CLIENT_SECURE_CONNECTION = 0x8000;

async function startMysqlTls(reader: SocketReader): Promise<boolean> {
  const header = await reader.read(4);
  const payload = await reader.read(header.readUIntLE(0, 3));
  if (payload[0] === 0xff) {
    // The server refused the connection before any login (too many connections, host blocked, ...).
    throw new Error(`server refused the connection: ${payload.subarray(3).toString('utf8')}`);
  }
  if (payload[0] !== 10) throw new Error('unexpected greeting: is this a MySQL-family server?');
  const versionEnd = payload.indexOf(0, 1);
  // protocol version, server version, connection id (4), auth data part 1 (8), filler (1), capabilities.
  const capabilities = payload.readUInt16LE(versionEnd + 1 + 4 + 8 + 1);
  if (!(capabilities & CLIENT_SSL)) return false;
  const request = Buffer.alloc(4 + 32);
  request.writeUIntLE(32, 0, 3);
  request[3] = 1; // sequence id
  request.writeUInt32LE(CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SSL | CLIENT_SECURE_CONNECTION, 4);
  request.writeUInt32LE(16 * 1024 * 1024, 8);
  request[12] = 45; // utf8mb4_general_ci
  reader.socket.write(request);
  return true;
}

/** OpenSSL's verification codes that operators meet, in words. */
const CHAIN_ERRORS: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate',
  SELF_SIGNED_CERT_IN_CHAIN: 'self-signed certificate in the chain',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'issuer is not among the trusted CAs',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'issuer is not among the trusted CAs',
  UNABLE_TO_GET_ISSUER_CERT: 'issuer is not among the trusted CAs',
  CERT_HAS_EXPIRED: 'certificate has expired',
  CERT_NOT_YET_VALID: 'certificate is not yet valid',
};

async function handshake(socket: Socket, serverName: string): Promise<TlsProbeResult> {
  const ca = await trustedCertificates();
  return new Promise((resolve, reject) => {
    const secure = tlsConnect({
      socket,
      ca,
      // Chain and name are judged below, apart, so that the probe can say which one is wrong.
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
      ...(isIP(serverName) ? {} : { servername: serverName }),
    });
    secure.once('error', reject);
    secure.once('secureConnect', () => {
      const peer = secure.getPeerCertificate();
      const result: TlsProbeResult = { offered: true };
      if (!secure.authorized) {
        const code = String(secure.authorizationError ?? 'UNKNOWN');
        result.chainError = CHAIN_ERRORS[code] ? `${CHAIN_ERRORS[code]} (${code})` : code;
      }
      const identity = checkServerIdentity(serverName, peer as PeerCertificate);
      if (identity) result.identityError = identity.message;
      if (peer?.valid_to) result.validTo = new Date(peer.valid_to);
      if (peer?.subject?.CN) result.subject = String(peer.subject.CN);
      secure.destroy();
      resolve(result);
    });
  });
}

/** Buffers a socket's bytes so that a protocol exchange can read exact lengths. */
class SocketReader {
  #buffer = Buffer.alloc(0);
  #waiting?: () => void;
  #error?: Error;
  #ended = false;
  readonly #onData = (chunk: Buffer) => {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    this.#wake();
  };

  constructor(readonly socket: Socket) {
    socket.on('data', this.#onData);
    socket.on('error', (error) => {
      this.#error = error;
      this.#wake();
    });
    socket.on('end', () => {
      this.#ended = true;
      this.#wake();
    });
  }

  connected(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
  }

  async read(length: number): Promise<Buffer> {
    while (this.#buffer.length < length) {
      if (this.#error) throw this.#error;
      if (this.#ended) throw new Error('the server closed the connection');
      await new Promise<void>((resolve) => {
        this.#waiting = resolve;
      });
    }
    const out = this.#buffer.subarray(0, length);
    this.#buffer = this.#buffer.subarray(length);
    return out;
  }

  /** Hands the socket over (to TLS): no more reads here. */
  release(): void {
    this.socket.off('data', this.#onData);
  }

  #wake(): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.();
  }
}

async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error(`${what}: no answer within ${ms} ms`), { code: 'ETIMEDOUT' })),
      ms,
    );
  });
  // The loser of the race must not surface later as an unhandled rejection.
  work.catch(() => {});
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
