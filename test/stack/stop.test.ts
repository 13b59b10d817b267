import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('stopping the local stack', () => {
  it('waits for the servers to exit, so that a script whose last step is stop() finishes it', () => {
    // The demo and the benchmarks end this way: nothing else left in the event loop.
    const script = [
      "const { startMariadb } = require('./test/stack/mariadb');",
      "const { startPostgres } = require('./test/stack/postgres');",
      '(async () => {',
      "  const servers = await Promise.all([startMariadb('stop-check-1'), startPostgres('stop-check-1')]);",
      '  for (const server of servers) await server.stop();',
      "  console.log('stopped');",
      '})();',
    ].join('\n');

    const output = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: new URL('../..', import.meta.url),
      timeout: 120_000,
      encoding: 'utf8',
    });

    expect(output.trim()).toBe('stopped');
  });
});
