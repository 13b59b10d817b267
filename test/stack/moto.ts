import { openSync } from 'node:fs';
import { join } from 'node:path';
import { pythonCommand } from './prerequisites';
import { freePort, StartFailure, startDaemon, tailOf, waitFor } from './process';

export interface MotoHandle {
  endpoint: string;
  stop(): Promise<void>;
}

/** Starts moto in server mode on a free port; the SDK reaches it through AWS_ENDPOINT_URL. */
export async function startMoto(workDir: string): Promise<MotoHandle> {
  const port = await freePort();
  const python = pythonCommand();
  const log = openSync(join(workDir, 'moto.log'), 'a');
  const child = startDaemon(python, ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], log);
  const endpoint = `http://127.0.0.1:${port}`;
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  await waitFor('moto', async () => {
    if (exited) {
      const path = join(workDir, 'moto.log');
      throw new StartFailure(
        `moto (${python} -m moto.server) exited at start; ${path} ends with:\n${tailOf(path)}`,
      );
    }
    const response = await fetch(`${endpoint}/moto-api/`);
    return response.ok;
  });
  return {
    endpoint,
    async stop() {
      if (!exited) child.kill('SIGTERM');
    },
  };
}
