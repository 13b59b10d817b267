import { readdir, readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { GetObjectCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { FileSink, S3Sink, type Sink } from '../../../../shared/export/sinks';
import { createBucket, exportDirectory, s3 } from '../support';

const options = (replace = false) => ({ replace, signal: new AbortController().signal });

/** A body that yields some bytes and then fails, like a row stream whose connection dropped. */
function failingBody(): Readable {
  return Readable.from(
    (async function* () {
      yield Buffer.alloc(6 * 1024 * 1024, 'a');
      throw new Error('connection lost mid-window');
    })(),
  );
}

async function read(sink: Sink, key: string, bucket?: string): Promise<string> {
  if (!bucket) return readFile(sink.describe(key), 'utf8');
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return (object.Body as { transformToString(): Promise<string> }).transformToString();
}

describe.each([
  ['file', async () => ({ sink: new FileSink(exportDirectory()) as Sink, bucket: undefined })],
  [
    'S3 (moto)',
    async () => {
      const bucket = await createBucket();
      return { sink: new S3Sink(s3, bucket, '') as Sink, bucket };
    },
  ],
])('%s sink', (_name, make) => {
  it('writes a key once: a second write finds it, even without asking first, and replace rewrites it', async () => {
    const { sink, bucket } = await make();

    expect(await sink.write('t/a.jsonl.gz', Readable.from(['first']), options())).toBe('written');
    expect(await sink.write('t/a.jsonl.gz', Readable.from(['second']), options())).toBe('exists');
    expect(await read(sink, 't/a.jsonl.gz', bucket)).toBe('first');
    expect(await sink.write('t/a.jsonl.gz', Readable.from(['third']), options(true))).toBe('written');

    expect(await read(sink, 't/a.jsonl.gz', bucket)).toBe('third');
    expect(await sink.exists('t/a.jsonl.gz')).toBe(true);
    expect(await sink.exists('t/b.jsonl.gz')).toBe(false);
  });

  it('leaves nothing visible when the body fails half-way', async () => {
    const { sink, bucket } = await make();
    const abort = new AbortController();
    const body = failingBody();
    body.on('error', (error) => abort.abort(error));

    await expect(
      sink.write('t/broken.jsonl.gz', body, { replace: false, signal: abort.signal }),
    ).rejects.toThrow();

    expect(await sink.exists('t/broken.jsonl.gz')).toBe(false);
    if (bucket) {
      // The multipart upload (one 5 MB part was sent) is aborted, not left to complete or linger.
      const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      expect(uploads.Uploads ?? []).toEqual([]);
    } else {
      const files = await readdir(sink.describe(''), { recursive: true });
      expect(files.filter((f) => f.endsWith('.tmp') || f.endsWith('.gz'))).toEqual([]);
    }
  });
});
