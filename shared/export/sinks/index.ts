import type { S3Client } from '@aws-sdk/client-s3';
import { ConfigError } from '../../errors';
import { FileSink } from './file';
import { S3Sink } from './s3';
import type { Sink } from './sink';

export { FileSink } from './file';
export { S3Sink } from './s3';
export type { Sink, WriteOptions } from './sink';
export { type ObjectStage, writeStreamed } from './streamed';

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
