import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { constants, crc32, deflateRaw, type ZlibOptions } from 'node:zlib';

/**
 * Gzip on several threads, in the way of pigz: the input is cut into blocks,
 * each block is deflated on libuv's thread pool with the 32 KiB before it as
 * its dictionary and ends in a sync flush, and the blocks are written in order
 * between one gzip header and one trailer (CRC-32 and length of the whole
 * input). The result is one ordinary gzip member, as large as a single-threaded
 * deflate would make it within a fraction of a percent; any gunzip reads it.
 * One thread compresses JSON lines more slowly than the exporter makes them:
 * this is what lets the export keep up with the database.
 */

/** Input per deflate call, at least: large enough that each call's set-up cost vanishes. */
const BLOCK_BYTES = 1024 * 1024;
/** Deflate's window: the history each block may refer back to. */
const DICTIONARY_BYTES = 32 * 1024;
/** RFC 1952 header: deflate, no flags, no modification time, no extra flags, OS Unix. */
const HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03]);

export interface ParallelGzipOptions {
  level?: number;
  /** Blocks deflated at once; by default the number of CPUs, at most 4 (libuv's default pool size). */
  parallelism?: number;
  blockBytes?: number;
}

function deflateBlock(block: Buffer, options: ZlibOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    deflateRaw(block, options, (error, result) => (error ? reject(error) : resolve(result))),
  );
}

export class ParallelGzip extends Transform {
  private readonly level: number;
  private readonly parallelism: number;
  private readonly blockBytes: number;
  /** Input not yet handed to deflate. */
  private parts: Buffer[] = [];
  private size = 0;
  /** The end of the previous block: the next block's dictionary. */
  private history: Buffer | undefined;
  private crc = 0;
  private length = 0;
  private headerSent = false;
  /** Deflates under way, oldest first: their output is pushed in this order. */
  private inFlight: Promise<Buffer>[] = [];

  constructor(options: ParallelGzipOptions = {}) {
    super();
    this.level = options.level ?? 6;
    this.parallelism = options.parallelism ?? Math.max(1, Math.min(4, availableParallelism()));
    this.blockBytes = options.blockBytes ?? BLOCK_BYTES;
  }

  override _transform(chunk: Buffer | string, encoding: BufferEncoding, done: TransformCallback): void {
    const input = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk;
    this.parts.push(input);
    this.size += input.length;
    if (this.size < this.blockBytes) done();
    else this.drainBlocks().then(() => done(), done);
  }

  override _flush(done: TransformCallback): void {
    this.drainBlocks(true).then(() => {
      const trailer = Buffer.alloc(8);
      trailer.writeUInt32LE(this.crc >>> 0, 0);
      trailer.writeUInt32LE(this.length % 2 ** 32, 4);
      this.push(trailer);
      done();
    }, done);
  }

  /**
   * Deflates what has gathered as one block once it is large enough (or at the
   * end, as the final block), waiting whenever too many deflates run. A block
   * is all the input gathered, not cut to an exact size, so input already
   * written in large chunks is deflated without a copy.
   */
  private async drainBlocks(final = false): Promise<void> {
    if (!this.headerSent) {
      this.push(HEADER);
      this.headerSent = true;
    }
    const block = this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    // (Node's crc32 answers 0 for some empty views, whatever the running value.)
    if (block.length > 0) this.crc = crc32(block, this.crc);
    this.length += block.length;
    const deflated = deflateBlock(block, {
      level: this.level,
      ...(this.history ? { dictionary: this.history } : {}),
      finishFlush: final ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
    });
    // Awaited in order below; until then a failure must not count as unhandled.
    deflated.catch(() => {});
    this.inFlight.push(deflated);
    this.history = lastBytes(this.history, block, DICTIONARY_BYTES);
    const keep = final ? 0 : this.parallelism - 1;
    while (this.inFlight.length > keep) this.push(await (this.inFlight.shift() as Promise<Buffer>));
  }
}

/** The last `size` bytes of `before` followed by `after`, copied. */
function lastBytes(before: Buffer | undefined, after: Buffer, size: number): Buffer {
  if (after.length >= size || !before) return Buffer.from(after.subarray(Math.max(0, after.length - size)));
  const joined = Buffer.concat([before, after]);
  return Buffer.from(joined.subarray(Math.max(0, joined.length - size)));
}

/** A gzip stream: parallel blocks, one gzip member. */
export function createParallelGzip(options?: ParallelGzipOptions): ParallelGzip {
  return new ParallelGzip(options);
}
