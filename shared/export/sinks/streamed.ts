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
  const encoded = pipeline(Readable.from(pieces, { highWaterMark: 1 }), stage).catch((error) => {
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
    throw error;
  }
}
