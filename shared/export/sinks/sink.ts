import type { Readable } from 'node:stream';

export interface WriteOptions {
  /** Rewrite an object that exists (backfill `replace`); otherwise keys are write-once. */
  replace: boolean;
  /** Aborted when the rows could not be read to the end: nothing may become visible then. */
  signal: AbortSignal;
  /** The object's media type (S3 Content-Type); JSON lines when not given. */
  contentType?: string;
}

/** Where objects go. A written object is complete or absent, never half-written. */
export interface Sink {
  /** Human-readable location of a key, for logs and summaries. */
  describe(key: string): string;
  exists(key: string): Promise<boolean>;
  /** Writes `body` under `key`; `exists` when write-once found the key already there (nothing written). */
  write(key: string, body: Readable, options: WriteOptions): Promise<'written' | 'exists'>;
  /** The keys of the objects directly under `directory` (a key prefix ending in `/`), in key order. */
  list(directory: string): Promise<string[]>;
  /** The bytes of an object that exists. */
  read(key: string): Promise<Readable>;
}
