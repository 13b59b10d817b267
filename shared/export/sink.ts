import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { link, mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ConfigError } from '../errors';

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

/** Multipart parts: S3's minimum part size keeps memory per upload at partSize x queueSize. */
const PART_SIZE = 5 * 1024 * 1024;
const QUEUE_SIZE = 2;

/**
 * S3 through lib-storage's multipart upload. Write-once is S3's conditional put
 * (`If-None-Match: *`, on PutObject and CompleteMultipartUpload alike): a key
 * written meanwhile by another run answers 412 and nothing is replaced.
 */
export class S3Sink implements Sink {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly prefix: string,
    private readonly kmsKeyId?: string,
  ) {}

  describe(key: string): string {
    return `s3://${this.bucket}/${this.#key(key)}`;
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.#key(key) }));
      return true;
    } catch (error) {
      if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404)
        return false;
      throw error;
    }
  }

  async write(key: string, body: Readable, options: WriteOptions): Promise<'written' | 'exists'> {
    const upload = new Upload({
      client: this.s3,
      partSize: PART_SIZE,
      queueSize: QUEUE_SIZE,
      leavePartsOnError: false,
      params: {
        Bucket: this.bucket,
        Key: this.#key(key),
        Body: body,
        ContentType: 'application/x-ndjson',
        ...(options.replace ? {} : { IfNoneMatch: '*' }),
        ...(this.kmsKeyId ? { ServerSideEncryption: 'aws:kms' as const, SSEKMSKeyId: this.kmsKeyId } : {}),
      },
    });
    // Failing the body (rather than Upload.abort(), whose promise settles before the multipart upload is
    // aborted) makes lib-storage abort the multipart upload before done() rejects.
    const abort = () => body.destroy(errorOf(options.signal.reason));
    options.signal.addEventListener('abort', abort, { once: true });
    try {
      await upload.done();
      return 'written';
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (!options.replace && (status === 412 || (error as Error).name === 'PreconditionFailed'))
        return 'exists';
      throw error;
    } finally {
      options.signal.removeEventListener('abort', abort);
    }
  }

  #key(key: string): string {
    return this.prefix ? `${this.prefix}/${key}` : key;
  }
}

/** A temporary file of this sink: `<object name>.<random UUID>.tmp`. */
const TEMPORARY = /^.+\.[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.tmp$/;

/**
 * Files under a directory, for local runs. An object is written to a temporary
 * file created exclusively, flushed, then linked to its name (fails if the name
 * exists: write-once) or renamed over it (replace). The temporary file goes
 * when the write fails; one that a crashed run left behind goes when a later
 * run first looks into its directory (the table's lease keeps other runs out).
 */
export class FileSink implements Sink {
  /** Directories already cleared of stale temporary files by this run. */
  readonly #swept = new Set<string>();

  constructor(private readonly root: string) {}

  describe(key: string): string {
    return join(this.root, key);
  }

  async exists(key: string): Promise<boolean> {
    await this.#sweep(dirname(join(this.root, key)));
    try {
      await stat(join(this.root, key));
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
  }

  async write(key: string, body: Readable, options: WriteOptions): Promise<'written' | 'exists'> {
    const target = join(this.root, key);
    await mkdir(dirname(target), { recursive: true });
    await this.#sweep(dirname(target));
    const temporary = `${target}.${randomUUID()}.tmp`;
    try {
      await pipeline(body, createWriteStream(temporary, { flags: 'wx' }), { signal: options.signal });
      // Flush the data to disk before the name appears (fsync works on the file, through any descriptor).
      const file = await open(temporary, 'r');
      try {
        await file.sync();
      } finally {
        await file.close();
      }
      if (options.replace) {
        await rename(temporary, target);
        return 'written';
      }
      try {
        await link(temporary, target);
        return 'written';
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') return 'exists';
        throw error;
      }
    } finally {
      await unlink(temporary).catch(() => {});
    }
  }

  /** Removes the temporary files of this sink's layout in `directory`, once per run. */
  async #sweep(directory: string): Promise<void> {
    if (this.#swept.has(directory)) return;
    this.#swept.add(directory);
    let names: string[];
    try {
      names = await readdir(directory);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    await Promise.all(
      names
        .filter((name) => TEMPORARY.test(name))
        .map((name) => unlink(join(directory, name)).catch(() => {})),
    );
  }
}

function errorOf(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error('write aborted');
}

/** The sink for `global/destination`: `s3://bucket/prefix` or `file:///absolute/dir`. */
export function sinkFor(destination: string, s3: () => S3Client, kmsKeyId?: string): Sink {
  const s3Match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(destination);
  if (s3Match)
    return new S3Sink(s3(), s3Match[1] as string, (s3Match[2] ?? '').replace(/\/+$/, ''), kmsKeyId);
  if (destination.startsWith('file:///'))
    return new FileSink(decodeURIComponent(destination.slice('file://'.length)));
  throw new ConfigError('Invalid destination', [
    { parameter: 'global/destination', problem: 'must be s3://bucket/prefix or file:///absolute/dir' },
  ]);
}
