import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, type Dirent } from 'node:fs';
import { link, mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Sink, WriteOptions } from './sink';

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

  async list(directory: string): Promise<string[]> {
    let entries: Dirent[];
    try {
      entries = await readdir(join(this.root, directory), { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    // A temporary file is not an object: it is invisible until linked to its name.
    return entries
      .filter((e) => e.isFile() && !TEMPORARY.test(e.name))
      .map((e) => `${directory}${e.name}`)
      .sort();
  }

  async read(key: string): Promise<Readable> {
    const stream = createReadStream(join(this.root, key));
    // Fails here, not at the first read, when the object is missing.
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', reject);
    });
    return stream;
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
