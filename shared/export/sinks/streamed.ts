import { Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Sink } from './sink';

/** The stage between an object's pieces and the sink: a compressor, or a pass-through that counts. */
export type ObjectStage = Transform & { readonly bytesOut: number };

/**
 * Streams `pieces` through `stage` into the object `key`. When the pieces
 * cannot be read to their end, the write is aborted: the object never becomes
 * visible half-written. `bytes` is what the stage passed on (the object's size).
 */
export async function writeStreamed(
  sink: Sink,
  key: string,
  pieces: AsyncIterable<Uint8Array | string>,
  stage: ObjectStage,
  options: { replace: boolean; contentType?: string },
): Promise<{ outcome: 'written' | 'exists'; bytes: number }> {
  const abort = new AbortController();
  const source = Readable.from(pieces, { highWaterMark: 1 });
  const encoded = pipeline(source, stage).catch((error) => {
    abort.abort(error);
    throw error;
  });
  const written = sink.write(key, stage, { ...options, signal: abort.signal });
  try {
    const [, outcome] = await Promise.all([encoded, written]);
    return { outcome, bytes: stage.bytesOut };
  } catch (error) {
    abort.abort(error);
    stage.destroy();
    await Promise.allSettled([encoded, written]);
    // The pieces are given up before this returns: what they hold (a query, a file on the Parquet
    // encoder thread) is released, not left to finish after the next window has started.
    source.destroy();
    if (!source.closed) await new Promise((resolve) => source.once('close', resolve));
    throw error;
  }
}
