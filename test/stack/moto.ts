import { openSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startDaemon, waitFor } from './process';

export interface MotoHandle {
  endpoint: string;
  stop(): Promise<void>;
}

/** Starts moto in server mode on a free port; the SDK reaches it through AWS_ENDPOINT_URL. */
export async function startMoto(workDir: string): Promise<MotoHandle> {
  const port = await freePort();
  const python = process.env.PYTHON ?? 'python3';
  const log = openSync(join(workDir, 'moto.log'), 'a');
  const child = startDaemon(python, ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], log);
  const endpoint = `http://127.0.0.1:${port}`;
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  await waitFor('moto', async () => {
    if (exited) throw new Error(`moto exited; see ${join(workDir, 'moto.log')}`);
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
