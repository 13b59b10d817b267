import { PassThrough, type TransformCallback } from 'node:stream';

/** Passes bytes on and counts them: the size of an object written without a compressor of its own. */
export class ByteCounter extends PassThrough {
  bytesOut = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytesOut += chunk.length;
    done(null, chunk);
  }
}
