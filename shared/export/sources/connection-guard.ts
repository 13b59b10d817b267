import type { Socket } from 'node:net';

/** How long a server may stay silent while it owes an answer, unless configured (`global/read-timeout-seconds`). */
export const DEFAULT_READ_TIMEOUT_MS = 300_000;

/** What a session needs to know about its connection beyond the target. */
export interface SessionOptions {
  /** Milliseconds without a byte from the server, while a query is running, before the connection is dropped. */
  readTimeoutMs?: number;
}

/**
 * Bounds every read of one database connection. The drivers leave two gaps:
 * a server that stops sending (stopped, frozen, or behind a path that drops
 * packets) is waited for as long as TCP keeps the connection, which is many
 * minutes; and mysql2 tells a streaming query nothing when its connection
 * drops (the error goes to the connection). The guard watches the socket:
 * while a query is outstanding and the socket is not paused by its reader,
 * `readTimeoutMs` without a byte destroys the socket with a clear error; and
 * a socket that closes or fails fails every watcher at once.
 */
export class ConnectionGuard {
  #failure: Error | undefined;
  #outstanding = 0;
  readonly #watchers = new Set<(error: Error) => void>();

  constructor(
    private readonly socket: Socket,
    private readonly readTimeoutMs: number,
  ) {
    socket.on('timeout', this.#onTimeout);
    // A pause is the reader's own doing: the silence counts from the resume.
    socket.on('resume', () => {
      if (this.#outstanding > 0) socket.setTimeout(this.readTimeoutMs);
    });
    socket.on('error', (error: Error) => this.fail(connectionLost(error)));
    socket.on('close', () => this.fail(new Error('Connection lost: the server closed the connection')));
  }

  /** Whether the connection has failed (it cannot run another query). */
  get failed(): boolean {
    return this.#failure !== undefined;
  }

  /**
   * Arms the read timeout until the returned function is called, and calls
   * `onLost` if the connection fails meanwhile (at once if it has already).
   */
  watch(onLost: (error: Error) => void): () => void {
    let active = true;
    const watcher = (error: Error) => {
      if (active) onLost(error);
    };
    if (this.#failure) {
      const failure = this.#failure;
      queueMicrotask(() => watcher(failure));
    } else {
      this.#watchers.add(watcher);
    }
    this.#outstanding += 1;
    if (this.#outstanding === 1) this.socket.setTimeout(this.readTimeoutMs);
    return () => {
      if (!active) return;
      active = false;
      this.#watchers.delete(watcher);
      this.#outstanding -= 1;
      if (this.#outstanding === 0) this.socket.setTimeout(0);
    };
  }

  /** `work`, with the read timeout armed until it settles; rejects as soon as the connection fails. */
  during<T>(work: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const done = this.watch(reject);
      work.then(
        (value) => {
          done();
          resolve(value);
        },
        (error) => {
          done();
          reject(error);
        },
      );
    });
  }

  /** Fails every watcher with `error` (the first failure wins: it names the cause). */
  fail(error: Error): void {
    if (this.#failure) return;
    this.#failure = error;
    for (const watcher of [...this.#watchers]) watcher(error);
    this.#watchers.clear();
  }

  readonly #onTimeout = (): void => {
    if (this.#outstanding === 0) return;
    if (this.socket.isPaused()) {
      // The reader is behind (gzip, the upload): the server is not the one waiting to be heard.
      this.socket.setTimeout(this.readTimeoutMs);
      return;
    }
    const seconds = this.readTimeoutMs / 1000;
    const error = new Error(
      `No data from the server for ${seconds} s while a query was running (global/read-timeout-seconds); the connection was dropped`,
    );
    this.fail(error);
    this.socket.destroy(error);
  };
}

/** A socket's own error (ECONNRESET, EPIPE, ...) said as what it means for the query; others as they are. */
export function connectionLost(error: Error): Error {
  const code = (error as NodeJS.ErrnoException).code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code)
    ? new Error(`Connection lost: ${error.message}`, { cause: error })
    : error;
}
