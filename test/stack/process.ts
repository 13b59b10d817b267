import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const execFileAsync = promisify(execFile);

/** A free TCP port on the loopback interface. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

export const isRoot = process.getuid?.() === 0;

/** Runs a command as an OS user when we are root (database servers refuse to run as root). */
export function asUser(user: string, command: string, args: string[]): [string, string[]] {
  return isRoot ? ['runuser', ['-u', user, '--', command, ...args]] : [command, args];
}

/** A temporary directory that the given OS user owns (mkdtemp makes 0700 dirs others cannot enter). */
export function tempDirFor(user: string, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  if (isRoot) {
    const { uid, gid } = osUser(user);
    chownSync(dir, uid, gid);
  }
  return dir;
}

/** Hands a file to an OS user when we are root (PostgreSQL wants its TLS key owned by itself, mode 0600). */
export function ownBy(user: string, path: string): void {
  if (!isRoot) return;
  const { uid, gid } = osUser(user);
  chownSync(path, uid, gid);
}

function osUser(name: string): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (!line) throw new Error(`OS user ${name} does not exist`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** Thrown by a readiness check when waiting longer cannot help (the process exited). */
export class StartFailure extends Error {
  override name = 'StartFailure';
}

/** Polls `check` until it resolves true or the deadline passes; a StartFailure ends the wait at once. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      if (error instanceof StartFailure) throw error;
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not become ready within ${timeoutMs} ms`, { cause: lastError });
}

/** Starts a long-running process whose output goes to the given log file descriptor. */
export function startDaemon(command: string, args: string[], logFd: number): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', logFd, logFd], detached: false });
  child.unref();
  return child;
}

/** The last lines of a log file, for a service that stopped before it became ready. */
export function tailOf(path: string, lines = 15): string {
  try {
    const text = readFileSync(path, 'utf8').trimEnd();
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return `(no log at ${path})`;
  }
}
