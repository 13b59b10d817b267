/**
 * Hands chunks from a producer driven by events (a socket, a driver's row
 * events) to an async consumer, asking the producer to pause while a few
 * chunks wait and to resume once the consumer has caught up.
 */
export class ChunkQueue<T = Buffer> {
  private readonly ready: T[] = [];
  private ended = false;
  private failure: { error: unknown } | undefined;
  private paused = false;
  private wake: (() => void) | undefined;

  constructor(
    private readonly pause: () => void,
    private readonly resume: () => void,
    /** Chunks that may wait before the producer is paused. */
    private readonly limit = 4,
  ) {}

  /** Whether the producer has ended or failed. */
  get done(): boolean {
    return this.ended;
  }

  push(chunk: T): void {
    this.ready.push(chunk);
    if (this.ready.length >= this.limit && !this.paused) {
      this.paused = true;
      this.pause();
    }
    this.signal();
  }

  end(): void {
    this.ended = true;
    this.signal();
  }

  /** Ends the queue with an error, which the consumer gets before any chunk still waiting. */
  fail(error: unknown): void {
    this.failure ??= { error };
    this.end();
  }

  async *drain(): AsyncGenerator<T> {
    for (;;) {
      if (this.failure) throw this.failure.error;
      if (this.ready.length > 0) {
        const chunk = this.ready.shift() as T;
        if (this.paused && this.ready.length < this.limit / 2) {
          this.paused = false;
          this.resume();
        }
        yield chunk;
      } else if (this.ended) {
        return;
      } else {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
    }
  }

  private signal(): void {
    this.wake?.();
    this.wake = undefined;
  }
}
