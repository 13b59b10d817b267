import type { Readable } from 'node:stream';

export interface WriteOptions {
  /** Rewrite an object that exists (backfill `replace`); otherwise keys are write-once. */
  replace: boolean;
  /** Aborted when the rows could not be read to the end: nothing may become visible then. */
  signal: AbortSignal;
}

/** Where objects go. A written object is complete or absent, never half-written. */
export interface Sink {
  /** Human-readable location of a key, for logs and summaries. */
  describe(key: string): string;
  exists(key: string): Promise<boolean>;
  /** Writes `body` under `key`; `exists` when write-once found the key already there (nothing written). */
  write(key: string, body: Readable, options: WriteOptions): Promise<'written' | 'exists'>;
}
