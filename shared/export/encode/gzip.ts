import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';

/**
 * Gzip on several threads, in the way of pigz: the input is cut into blocks,
 * each block is deflated on a worker thread with the 32 KiB before it as its
 * dictionary and ends in a sync flush, and the blocks are written in order
 * between one gzip header and one trailer (the CRC-32 of the whole input,
 * combined from the blocks' own, and its length). The result is one ordinary
 * gzip member, as large as a single-threaded deflate would make it within a
 * fraction of a percent; any gunzip reads it.
 *
 * One thread compresses JSON lines more slowly than the exporter makes them:
 * this is what lets the export keep up with the database. The workers run at
 * a lower scheduling priority (Linux), so that on a busy machine the thread
 * that reads the database socket and encodes rows, the export's critical path,
 * is not the one kept waiting for a CPU; their work queues up instead, bounded
 * by the blocks in flight. Block buffers, with the block's dictionary in
 * their head, travel to the workers and back (transferred, not copied) and
 * are reused; each deflate writes into one output buffer, which is
 * transferred to this thread rather than copied. A worker thus leaves no
 * garbage behind: it allocates almost nothing on its JavaScript heap, so its
 * collector would run only once dead buffers had reached V8's external
 * memory limit (64 MB a thread), and its memory would grow with the window.
 */

/** Input per deflate call: large enough that each call's set-up cost vanishes. */
const BLOCK_BYTES = 1024 * 1024;
/** Deflate's window: the history each block may refer back to. */
const DICTIONARY_BYTES = 32 * 1024;
/** RFC 1952 header: deflate, no flags, no modification time, no extra flags, OS Unix. */
const HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03]);
/** Nice value of the deflate workers (Linux, where it is per thread; raising it needs no privilege). */
const WORKER_NICE = 10;

export interface ParallelGzipOptions {
  level?: number;
  /** Blocks in flight at once; by default two per deflate worker. */
  parallelism?: number;
  blockBytes?: number;
}

/**
 * What a worker is asked: deflate the `length` bytes of `block` (transferred)
 * from DICTIONARY_BYTES on, with the `dictionaryBytes` before them as the
 * dictionary.
 */
interface DeflateJob {
  id: number;
  block: ArrayBuffer;
  length: number;
  dictionaryBytes: number;
  level: number;
  final: boolean;
}

/** What it answers: the block back, its deflate output and its CRC-32 (or an error). */
interface DeflateReply {
  id: number;
  block: ArrayBuffer;
  out?: Uint8Array;
  crc?: number;
  error?: string;
}

/** The worker's program: CommonJS, evaluated as it is (nothing to bundle). */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { constants, crc32, deflateRawSync } = require('node:zlib');
if (process.platform === 'linux') {
  try { require('node:os').setPriority(${WORKER_NICE}); } catch {}
}
parentPort.on('message', ({ id, block, length, dictionaryBytes, level, final }) => {
  const input = Buffer.from(block, ${DICTIONARY_BYTES}, length);
  try {
    const out = deflateRawSync(input, {
      level,
      // One output buffer, larger than deflate's bound for the block: its only allocation.
      chunkSize: Math.max(64 * 1024, length + (length >>> 8) + 1024),
      ...(dictionaryBytes > 0 ? { dictionary: Buffer.from(block, ${DICTIONARY_BYTES} - dictionaryBytes, dictionaryBytes) } : {}),
      finishFlush: final ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
    });
    // Transferred whole; a view of Buffer's shared pool (only ever a tiny output) is copied instead.
    const own = out.buffer.byteLength > Buffer.poolSize ? out : new Uint8Array(out);
    const crc = length > 0 ? crc32(input) : 0;
    parentPort.postMessage({ id, block, out: own, crc }, [block, own.buffer]);
  } catch (error) {
    parentPort.postMessage({ id, block, error: String(error && error.message) }, [block]);
  }
});
`;

interface Deflated {
  block: Buffer;
  out: Buffer;
  crc: number;
  length: number;
}

/** The deflate workers of this process: started on first use, kept (unreferenced while idle) for the next windows. */
class DeflateWorkers {
  private readonly workers: Array<{ worker: Worker; jobs: number }> = [];
  private readonly pending = new Map<
    number,
    { resolve: (reply: DeflateReply) => void; reject: (error: Error) => void; slot: { jobs: number } }
  >();
  private ids = 0;
  /**
   * Keeps the process alive while jobs are under way (the workers themselves
   * never do: a finished command-line run must be able to exit).
   */
  private keepAlive: NodeJS.Timeout | undefined;

  constructor(private readonly size: number) {}

  deflate(job: Omit<DeflateJob, 'id'>): Promise<DeflateReply> {
    const slot = this.leastBusy();
    const id = this.ids++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, slot });
      slot.jobs += 1;
      this.keepAlive ??= setInterval(() => {}, 2 ** 30);
      try {
        slot.worker.postMessage({ ...job, id } satisfies DeflateJob, [job.block]);
      } catch (error) {
        this.settled(id);
        reject(error as Error);
        return;
      }
      // Posting may hold the worker's port referenced again.
      slot.worker.unref();
    });
  }

  /** Starts every worker not running yet, so that the first blocks do not wait for them to boot. */
  prestart(): void {
    while (this.workers.length < this.size) this.start();
  }

  private settled(id: number): void {
    const waiting = this.pending.get(id);
    if (!waiting) return;
    this.pending.delete(id);
    waiting.slot.jobs -= 1;
    if (this.pending.size === 0) {
      clearInterval(this.keepAlive);
      this.keepAlive = undefined;
    }
  }

  /** Stops every worker (jobs still under way fail). */
  async stop(): Promise<void> {
    const workers = this.workers.splice(0).map((slot) => slot.worker);
    await Promise.all(workers.map((worker) => worker.terminate()));
  }

  private leastBusy(): { worker: Worker; jobs: number } {
    if (this.workers.length < this.size) return this.start();
    return this.workers.reduce((a, b) => (b.jobs < a.jobs ? b : a));
  }

  private start(): { worker: Worker; jobs: number } {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      // Node's builtins are all it needs: no loader flags of the parent (a TypeScript loader in local runs).
      execArgv: [],
      resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 64 },
    });
    const slot = { worker, jobs: 0 };
    worker.on('message', (reply: DeflateReply) => {
      worker.unref();
      const waiting = this.pending.get(reply.id);
      if (!waiting) return;
      this.settled(reply.id);
      waiting.resolve(reply);
    });
    const fail = (error: Error) => {
      const index = this.workers.indexOf(slot);
      if (index >= 0) this.workers.splice(index, 1);
      for (const [id, waiting] of this.pending) {
        if (waiting.slot !== slot) continue;
        this.settled(id);
        waiting.reject(error);
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`A deflate worker stopped (exit code ${code})`)));
    // After the listeners: attaching the 'message' one references the worker again, and a worker
    // that never gets a block (prestarted for a small window) would hold a finished process open.
    worker.unref();
    this.workers.push(slot);
    return slot;
  }
}

const POOL_SIZE = Math.max(1, Math.min(4, availableParallelism()));
let pool: DeflateWorkers | undefined;

/** Boots the deflate workers ahead of the first window (they take ~20 ms each to start); idempotent. */
export function prestartDeflateWorkers(): void {
  pool ??= new DeflateWorkers(POOL_SIZE);
  pool.prestart();
}

/** Stops the deflate workers, for a command-line run that is done; the next gzip starts them again. */
export async function stopDeflateWorkers(): Promise<void> {
  const running = pool;
  pool = undefined;
  await running?.stop();
}

/**
 * Deflates `length` bytes of `block` from DICTIONARY_BYTES on (its dictionary
 * just before them); the block goes to a worker (transferred) and comes back
 * with the output.
 */
async function deflateBlock(
  block: Buffer,
  length: number,
  dictionaryBytes: number,
  level: number,
  final: boolean,
): Promise<Deflated> {
  pool ??= new DeflateWorkers(POOL_SIZE);
  const reply = await pool.deflate({
    // Block buffers are allocated whole (allocUnsafeSlow): the ArrayBuffer is theirs alone to transfer.
    block: block.buffer as ArrayBuffer,
    length,
    dictionaryBytes,
    level,
    final,
  });
  if (reply.error !== undefined || !reply.out) throw new Error(`deflate failed: ${reply.error}`);
  return {
    block: Buffer.from(reply.block),
    out: Buffer.from(reply.out.buffer, reply.out.byteOffset, reply.out.byteLength),
    crc: reply.crc ?? 0,
    length,
  };
}

export class ParallelGzip extends Transform {
  private readonly level: number;
  private readonly parallelism: number;
  private readonly blockBytes: number;
  /** The block being filled (its input from DICTIONARY_BYTES on), and how much input it holds. */
  private block: Buffer | undefined;
  private used = 0;
  /** Block buffers back from the workers, for reuse: a window allocates a few, not one per block. */
  private spare: Buffer[] = [];
  /** The last DICTIONARY_BYTES of input so far: the next block's dictionary. */
  private readonly history = Buffer.allocUnsafe(DICTIONARY_BYTES);
  private historyBytes = 0;
  private crc = 0;
  private length = 0;
  private headerSent = false;
  /** Bytes of gzip output pushed so far (header, blocks and trailer). */
  bytesOut = 0;
  /** Deflates under way, oldest first: their output is pushed in this order. */
  private inFlight: Promise<Deflated>[] = [];

  constructor(options: ParallelGzipOptions = {}) {
    super();
    this.level = options.level ?? 6;
    this.parallelism = options.parallelism ?? 2 * POOL_SIZE;
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
      this.bytesOut += trailer.length;
      this.push(trailer);
      done();
    }, done);
  }

  /** Copies input into blocks, deflating each block as it fills. */
  private async fill(input: Buffer): Promise<void> {
    let offset = 0;
    while (offset < input.length) {
      this.block ??= this.spare.pop() ?? Buffer.allocUnsafeSlow(DICTIONARY_BYTES + this.blockBytes);
      const copied = input.copy(this.block, DICTIONARY_BYTES + this.used, offset);
      this.used += copied;
      offset += copied;
      if (this.used === this.blockBytes) await this.deflate(false);
    }
  }

  /**
   * Hands the block to a worker (at the end, as the final block) and pushes
   * finished blocks in order, waiting while too many are in flight.
   */
  private async deflate(final: boolean): Promise<void> {
    if (!this.headerSent) {
      this.bytesOut += HEADER.length;
      this.push(HEADER);
      this.headerSent = true;
    }
    const block =
      this.block ?? this.spare.pop() ?? Buffer.allocUnsafeSlow(DICTIONARY_BYTES + this.blockBytes);
    const length = this.used;
    this.block = undefined;
    this.used = 0;
    // The history before this block, just before its input, is its dictionary; then the block goes to a worker.
    const dictionaryBytes = this.historyBytes;
    this.history.copy(block, DICTIONARY_BYTES - dictionaryBytes, 0, dictionaryBytes);
    this.remember(block.subarray(DICTIONARY_BYTES), length);
    const deflated = deflateBlock(block, length, dictionaryBytes, this.level, final);
    // Awaited in order below; until then a failure must not count as unhandled.
    deflated.catch(() => {});
    this.inFlight.push(deflated);
    const keep = final ? 0 : this.parallelism - 1;
    while (this.inFlight.length > keep) {
      const done = await (this.inFlight.shift() as Promise<Deflated>);
      this.crc = crc32Combine(this.crc, done.crc, done.length);
      this.length += done.length;
      this.spare.push(done.block);
      this.bytesOut += done.out.length;
      this.push(done.out);
    }
  }

  /** Keeps the last DICTIONARY_BYTES of the input in `history`. */
  private remember(block: Buffer, length: number): void {
    if (length >= DICTIONARY_BYTES) {
      block.copy(this.history, 0, length - DICTIONARY_BYTES, length);
      this.historyBytes = DICTIONARY_BYTES;
      return;
    }
    const keep = Math.min(this.historyBytes, DICTIONARY_BYTES - length);
    this.history.copy(this.history, 0, this.historyBytes - keep, this.historyBytes);
    block.copy(this.history, keep, 0, length);
    this.historyBytes = keep + length;
  }
}

/** A gzip stream: parallel blocks, one gzip member. */
export function createParallelGzip(options?: ParallelGzipOptions): ParallelGzip {
  return new ParallelGzip(options);
}

/* CRC-32 combination (zlib's crc32_combine): the CRC of A followed by B from the CRCs of A and B and B's length. */

const CRC_POLYNOMIAL = 0xedb88320;

/** a * b modulo the CRC polynomial (bit-reflected, as CRC-32 keeps its register). */
function multiplyModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  let factor = b;
  for (;;) {
    if (a & m) {
      p ^= factor;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    factor = factor & 1 ? (factor >>> 1) ^ CRC_POLYNOMIAL : factor >>> 1;
  }
  return p >>> 0;
}

/** x^(2^k) modulo P for k = 0..31. */
const X2N = (() => {
  const table = [0x40000000];
  for (let k = 1; k < 32; k++) table.push(multiplyModP(table[k - 1] as number, table[k - 1] as number));
  return table;
})();

/** x^(n * 2^k) modulo P. */
function xPow2nModP(n: number, k: number): number {
  let p = 0x80000000;
  let rest = n;
  let bit = k;
  while (rest > 0) {
    if (rest % 2 === 1) p = multiplyModP(X2N[bit & 31] as number, p);
    rest = Math.floor(rest / 2);
    bit += 1;
  }
  return p;
}

/** The CRC-32 of A then B, from crc(A), crc(B) and B's length in bytes. */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  return (multiplyModP(xPow2nModP(lengthB, 3), crcA >>> 0) ^ (crcB >>> 0)) >>> 0;
}
