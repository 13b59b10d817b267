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
 * this is what lets the export keep up with the database. Input is copied into
 * a few reused block buffers, so that a window of any size allocates no more.
 */

/** Input per deflate call: large enough that each call's set-up cost vanishes. */
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
  /** The block being filled, and how much of it is. */
  private block: Buffer | undefined;
  private used = 0;
  /** Block buffers whose deflate has finished, for reuse: a window allocates a few, not one per block. */
  private spare: Buffer[] = [];
  /** The last DICTIONARY_BYTES of input so far: the next block's dictionary (zlib copies it at init). */
  private readonly history = Buffer.allocUnsafe(DICTIONARY_BYTES);
  private historyBytes = 0;
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
    this.fill(input).then(() => done(), done);
  }

  override _flush(done: TransformCallback): void {
    this.deflate(true).then(() => {
      const trailer = Buffer.alloc(8);
      trailer.writeUInt32LE(this.crc >>> 0, 0);
      trailer.writeUInt32LE(this.length % 2 ** 32, 4);
      this.push(trailer);
      done();
    }, done);
  }

  /** Copies input into blocks, deflating each block as it fills. */
  private async fill(input: Buffer): Promise<void> {
    let offset = 0;
    while (offset < input.length) {
      this.block ??= this.spare.pop() ?? Buffer.allocUnsafe(this.blockBytes);
      const copied = input.copy(this.block, this.used, offset);
      this.used += copied;
      offset += copied;
      if (this.used === this.block.length) await this.deflate(false);
    }
  }

  /**
   * Hands the block to deflate on the thread pool (at the end, as the final
   * block) and pushes finished blocks in order, waiting while too many run.
   */
  private async deflate(final: boolean): Promise<void> {
    if (!this.headerSent) {
      this.push(HEADER);
      this.headerSent = true;
    }
    const buffer = this.block;
    const block = buffer ? buffer.subarray(0, this.used) : Buffer.alloc(0);
    this.block = undefined;
    this.used = 0;
    // (Node's crc32 answers 0 for some empty views, whatever the running value.)
    if (block.length > 0) this.crc = crc32(block, this.crc);
    this.length += block.length;
    const deflated = deflateBlock(block, {
      level: this.level,
      ...(this.historyBytes > 0 ? { dictionary: this.history.subarray(0, this.historyBytes) } : {}),
      finishFlush: final ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
    }).finally(() => {
      if (buffer) this.spare.push(buffer);
    });
    // Awaited in order below; until then a failure must not count as unhandled.
    deflated.catch(() => {});
    this.inFlight.push(deflated);
    this.remember(block);
    const keep = final ? 0 : this.parallelism - 1;
    while (this.inFlight.length > keep) this.push(await (this.inFlight.shift() as Promise<Buffer>));
  }

  /** Keeps the last DICTIONARY_BYTES of the input in `history`. */
  private remember(block: Buffer): void {
    if (block.length >= DICTIONARY_BYTES) {
      block.copy(this.history, 0, block.length - DICTIONARY_BYTES);
      this.historyBytes = DICTIONARY_BYTES;
      return;
    }
    const keep = Math.min(this.historyBytes, DICTIONARY_BYTES - block.length);
    this.history.copy(this.history, 0, this.historyBytes - keep, this.historyBytes);
    block.copy(this.history, keep);
    this.historyBytes = keep + block.length;
  }
}

/** A gzip stream: parallel blocks, one gzip member. */
export function createParallelGzip(options?: ParallelGzipOptions): ParallelGzip {
  return new ParallelGzip(options);
}
