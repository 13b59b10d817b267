/**
 * Captures everything written to stdout and stderr while active (the logger
 * writes through process.stdout), so tests can prove that no secret leaked.
 */
export function captureOutput(): { text(): string; stop(): void } {
  const chunks: string[] = [];
  const originals = { out: process.stdout.write, err: process.stderr.write };
  const tap =
    (original: typeof process.stdout.write) =>
    (chunk: unknown, ...rest: unknown[]): boolean => {
      chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
      return (original as (...args: unknown[]) => boolean).call(process.stdout, chunk, ...rest);
    };
  process.stdout.write = tap(originals.out) as typeof process.stdout.write;
  process.stderr.write = tap(originals.err) as typeof process.stderr.write;
  return {
    text: () => chunks.join(''),
    stop() {
      process.stdout.write = originals.out;
      process.stderr.write = originals.err;
    },
  };
}

/** Runs `work`, returning its result and the JSON log lines written meanwhile. */
export async function withLogs<T>(
  work: () => Promise<T>,
): Promise<{ result: T; logs: Record<string, unknown>[] }> {
  const output = captureOutput();
  try {
    const result = await work();
    const logs = output
      .text()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    return { result, logs };
  } finally {
    output.stop();
  }
}
