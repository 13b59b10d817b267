/**
 * The Parquet encoder thread, main side. hyparquet-writer's page encoding and
 * compression take about half of a Parquet export's CPU; on their own thread
 * they run while the next row group is read from the database and converted,
 * as the gzip workers do for JSON lines. One thread serves every file of the
 * process (a file is a series of requests, answered in order); it starts on
 * first use and is kept, unreferenced while idle, for the next windows.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ColumnSource, ParquetCodec } from './parquet-file';
import type { EncoderReply, EncoderRequest } from './parquet-thread-protocol';
import type { ParquetColumn } from './parquet-types';

/** A file being written on the encoder thread: each call resolves to the bytes it added. */
export interface ThreadFile {
  /** `transfer`: buffers of the columns moved to the thread (unusable here afterwards). */
  writeGroup(columns: ColumnSource[], rows: number, transfer?: ArrayBuffer[]): Promise<Uint8Array[]>;
  finish(): Promise<Uint8Array[]>;
  /** Abandons the file (nothing more is asked of it). */
  close(): void;
}

interface Pending {
  resolve: (chunks: Uint8Array[]) => void;
  reject: (error: Error) => void;
}

/**
 * A young generation of 16 MB rather than V8's default (up to 48): the
 * thread's garbage is a row group's values at a time, and a smaller nursery
 * keeps the process's peak flat (bench:export). The old generation is left
 * alone: a row group with one huge value must not stop the thread.
 */
const RESOURCE_LIMITS = { maxYoungGenerationSizeMb: 16 };

/** The directory of this module: the bundle's in a deployed function, the source folder otherwise. */
function moduleDirectory(): string {
  return typeof __dirname === 'string' ? __dirname : dirname(fileURLToPath(import.meta.url));
}

/**
 * The thread: the bundled program deployed beside the function's bundle, or,
 * run from the sources (tests, npm scripts), the TypeScript program through tsx.
 */
function startWorker(): Worker {
  const here = moduleDirectory();
  const bundled = join(here, 'parquet-worker.cjs');
  if (existsSync(bundled)) return new Worker(bundled, { resourceLimits: RESOURCE_LIMITS });
  const sourceFile = join(here, 'parquet-worker.ts');
  if (!existsSync(sourceFile))
    throw new Error(
      `The Parquet encoder's program is missing: ${bundled} should be deployed beside the export function's bundle`,
    );
  const source = pathToFileURL(sourceFile).href;
  // tsx (a development dependency) resolved from the working directory: the project's.
  return new Worker(
    `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(source)}); })`,
    { eval: true, resourceLimits: RESOURCE_LIMITS },
  );
}

class EncoderThread {
  private worker: Worker | undefined;
  /** Why the last thread stopped: the files it had open fail with it. */
  private stopped: Error | undefined;
  private readonly pending = new Map<number, Pending[]>();
  /** Files opened and neither finished nor closed: each holds a writer on the thread. */
  readonly open = new Set<number>();
  private waiting = 0;
  private nextFile = 1;

  openFile(columns: readonly ParquetColumn[], codec: ParquetCodec): ThreadFile {
    const file = this.nextFile++;
    // A file lives on the thread it was opened on: on a new thread it would not exist.
    const worker = this.running();
    const ask = (request: EncoderRequest, transfer?: ArrayBuffer[]) =>
      this.worker === worker ? this.ask(worker, request, transfer) : Promise.reject(this.stopped);
    const opened = ask({ kind: 'open', file, columns: [...columns], codec });
    this.open.add(file);
    // A failed open also fails the file's next request, which the encoder awaits.
    opened.catch(() => {});
    return {
      writeGroup: (columnData, rows, transfer) =>
        ask({ kind: 'group', file, columns: columnData, rows }, transfer),
      finish: () => {
        this.open.delete(file);
        return ask({ kind: 'finish', file });
      },
      close: () => {
        // Nothing to ask once finished or closed.
        if (this.open.delete(file)) ask({ kind: 'close', file }).catch(() => {});
      },
    };
  }

  private ask(worker: Worker, request: EncoderRequest, transfer: ArrayBuffer[] = []): Promise<Uint8Array[]> {
    return new Promise((resolve, reject) => {
      const queue = this.pending.get(request.file) ?? [];
      queue.push({ resolve, reject });
      this.pending.set(request.file, queue);
      // Referenced while an answer is owed, so that the process waits for it.
      if (this.waiting++ === 0) worker.ref();
      worker.postMessage(request, transfer);
    });
  }

  private running(): Worker {
    if (this.worker) return this.worker;
    const worker = startWorker();
    worker.on('message', (reply: EncoderReply) => {
      // A thread already given up answers no one: its requests failed with it.
      if (this.worker !== worker) return;
      const queue = this.pending.get(reply.file);
      const next = queue?.shift();
      if (queue?.length === 0) this.pending.delete(reply.file);
      if (--this.waiting === 0) worker.unref();
      if (!next) return;
      if (reply.error) {
        const error = new Error(`Parquet encoder: ${reply.error.message}`);
        error.name = reply.error.name;
        next.reject(error);
      } else next.resolve(reply.chunks ?? []);
    });
    const fail = (error: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.stopped = error;
      this.waiting = 0;
      const queues = [...this.pending.values()];
      this.pending.clear();
      for (const queue of queues) for (const { reject } of queue) reject(error);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`The Parquet encoder thread stopped (exit code ${code})`)));
    worker.unref();
    this.worker = worker;
    return worker;
  }

  /** Starts the thread ahead of its first file; a thread that cannot start fails that file instead. */
  prestart(): void {
    try {
      this.running();
    } catch {
      // The first file's open reports it.
    }
  }

  /** Stops the thread (requests under way fail); the next file starts a new one. */
  async stop(): Promise<void> {
    const worker = this.worker;
    if (worker) await worker.terminate();
  }
}

let thread: EncoderThread | undefined;

/** Opens a file on the process's encoder thread (started on first use). */
export function openThreadFile(columns: readonly ParquetColumn[], codec: ParquetCodec): ThreadFile {
  thread ??= new EncoderThread();
  return thread.openFile(columns, codec);
}

/** Boots the encoder thread ahead of the first Parquet window (it takes tens of milliseconds); idempotent. */
export function prestartEncoderThread(): void {
  thread ??= new EncoderThread();
  thread.prestart();
}

/** How many files are open on the encoder thread (each holds a writer there until finished or closed). */
export function encoderFilesOpen(): number {
  return thread?.open.size ?? 0;
}

/** Stops the encoder thread, if running (tests). */
export async function stopEncoderThread(): Promise<void> {
  await thread?.stop();
}
