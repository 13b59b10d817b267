import { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Sink, WriteOptions } from './sink';

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
        ContentType: options.contentType ?? 'application/x-ndjson',
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

  async list(directory: string): Promise<string[]> {
    const prefix = this.#key(directory);
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.s3.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: prefix,
          Delimiter: '/',
          ContinuationToken: token,
        }),
      );
      for (const object of page.Contents ?? [])
        if (object.Key) keys.push(directory + object.Key.slice(prefix.length));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }

  async read(key: string): Promise<Readable> {
    const object = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.#key(key) }));
    if (!(object.Body instanceof Readable)) throw new Error(`No body for ${this.describe(key)}`);
    return object.Body;
  }

  #key(key: string): string {
    return this.prefix ? `${this.prefix}/${key}` : key;
  }
}

function errorOf(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error('write aborted');
}
