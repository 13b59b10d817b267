/**
 * Counts the requests an AWS SDK v3 client sends, as `Service Operation`
 * (`DynamoDB UpdateItem`, `S3 PutObject`): a middleware below the retries, so
 * every HTTP request counts, a retried one included.
 */
export class RequestCounter {
  readonly requests: string[] = [];

  /** Adds the counting middleware to `client` and returns it. */
  count<C extends { middlewareStack: object }>(client: C, service: string): C {
    (client.middlewareStack as { add(middleware: unknown, options: unknown): void }).add(
      (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => (args: unknown) => {
        this.requests.push(`${service} ${String(context.commandName).replace(/Command$/, '')}`);
        return next(args);
      },
      { step: 'deserialize', name: 'countRequests' },
    );
    return client;
  }

  /** How many requests of each kind were sent since `from` (an earlier `requests.length`). */
  since(from = 0): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const request of this.requests.slice(from)) counts[request] = (counts[request] ?? 0) + 1;
    return counts;
  }

  /** Runs `work`; returns its result and the requests it sent, by kind. */
  async during<T>(work: () => Promise<T>): Promise<{ result: T; requests: Record<string, number> }> {
    const from = this.requests.length;
    const result = await work();
    return { result, requests: this.since(from) };
  }
}
