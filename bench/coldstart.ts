/**
 * Cold-start benchmark (npm run bench:coldstart [-- --runs 11] [--load-only]).
 *
 * 1. Load: builds each function's bundle with the esbuild options of
 *    serverless.yml, and beside it an "essentials" bundle of only what every
 *    invocation of that function needs (its AWS clients, built, and its database
 *    drivers). Prints sizes and the median time to `require` each bundle in a fresh
 *    Node process, the runs of all bundles interleaved so that a busy spell of the
 *    machine falls on all of them. Goals: rotate <= 1.0x its essentials, export <= 1.1x.
 * 2. Source maps: load, and a failing invocation whose stack is read (as Lambda's
 *    runtime does), with and without --enable-source-maps, with the map as deployed
 *    (names and positions) and with the sources in it.
 * 3. First invocation vs warm (against the local stack: moto, PostgreSQL, MariaDB):
 *    one fresh container per case, which runs the same work several times; the
 *    first run of each rotation step against the median of the later ones.
 */
import { execFile, fork } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { createWatermarkTable } from '../shared/export/plan/watermark-store';
import { driveRotation } from '../shared/rotation/driver';
import { type StackInfo, startStack, useStackEnvironment } from '../test/stack';
import { bundleAsDeployed, ROOT } from '../test/support/bundle';
import { benchEngines, benchPassword, benchSecret } from './rotation-fixtures';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '11' }, 'load-only': { type: 'boolean', default: false } },
});
const RUNS = Math.max(9, Number(values.runs));
const WARM_RUNS = 3;
const FUNCTIONS = ['rotate', 'export', 'health'] as const;
type FunctionName = (typeof FUNCTIONS)[number];
const EXPORT_CONFIG_PATH = '/coldstart-bench';
const HOUR = { from: '2024-03-01T10:00:00Z', to: '2024-03-01T11:00:00Z' };
const GOALS: Partial<Record<FunctionName, number>> = { rotate: 1.0, export: 1.1 };

/**
 * What every invocation of a function needs, whatever its event: the AWS clients
 * (built, as the handlers build theirs at load) and the database drivers.
 */
const ESSENTIALS: Record<FunctionName, string> = {
  rotate: `
    import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
    export { default as mysql } from 'mysql2/promise';
    export { default as pg } from 'pg';
    export const secretsManager = new SecretsManagerClient({});`,
  export: `
    import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
    import { S3Client } from '@aws-sdk/client-s3';
    import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
    import { SSMClient } from '@aws-sdk/client-ssm';
    export { Upload } from '@aws-sdk/lib-storage';
    export { default as mysql } from 'mysql2/promise';
    export { default as pg } from 'pg';
    export { default as Cursor } from 'pg-cursor';
    export const clients = [new SSMClient({}), new DynamoDBClient({}), new S3Client({}), new SecretsManagerClient({})];`,
  health: `
    import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
    export const secretsManager = new SecretsManagerClient({});`,
};

/** The environment the functions get on Lambda (serverless.yml's defaults), without NODE_OPTIONS. */
const FUNCTION_ENV: Record<FunctionName, NodeJS.ProcessEnv> = {
  rotate: { CONFIG_PATH: '', PASSWORD_LENGTH: '32' },
  export: { CONFIG_PATH: '/log-export', WATERMARK_TABLE: 'coldstart-bench-watermarks' },
  health: {},
};
const BASE_ENV: NodeJS.ProcessEnv = {
  PATH: process.env.PATH,
  AWS_REGION: 'us-east-1',
  LOG_LEVEL: 'ERROR',
  POWERTOOLS_METRICS_NAMESPACE: 'coldstart-bench',
};

const run = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), 'bench-coldstart-'));

async function main(): Promise<void> {
  try {
    const bundles = new Map<string, string>();
    for (const fn of FUNCTIONS) {
      bundles.set(fn, await bundleAsDeployed({ path: `functions/${fn}.ts` }, join(work, `fn/${fn}.cjs`)));
      bundles.set(
        `${fn} essentials`,
        await bundleAsDeployed(
          { source: ESSENTIALS[fn], name: `${fn}-essentials.ts` },
          join(work, `essentials/${fn}.cjs`),
        ),
      );
    }
    // The same bundles with the sources inside their source map, as before they left it.
    for (const fn of ['rotate', 'export'] as const) {
      bundles.set(
        `${fn} with-sources`,
        await bundleAsDeployed({ path: `functions/${fn}.ts` }, join(work, `with-sources/${fn}.cjs`), {
          sourcesContent: true,
        }),
      );
    }

    // 1 and 2: every measurement is one fresh process; rounds interleave all of them.
    type Probe = { key: string; file: string; fn: FunctionName; args: string[]; fail: boolean };
    const probes: Probe[] = [];
    for (const fn of FUNCTIONS) {
      probes.push({ key: fn, file: bundles.get(fn) as string, fn, args: [], fail: false });
      probes.push({
        key: `${fn} essentials`,
        file: bundles.get(`${fn} essentials`) as string,
        fn,
        args: [],
        fail: false,
      });
    }
    for (const fn of ['rotate', 'export'] as const) {
      const maps = '--enable-source-maps';
      probes.push({ key: `${fn} error`, file: bundles.get(fn) as string, fn, args: [], fail: true });
      probes.push({ key: `${fn} maps`, file: bundles.get(fn) as string, fn, args: [maps], fail: true });
      probes.push({
        key: `${fn} with-sources`,
        file: bundles.get(`${fn} with-sources`) as string,
        fn,
        args: [maps],
        fail: true,
      });
    }
    type Samples = { load: number[]; cpu: number[]; error: number[] };
    const samples = new Map<string, Samples>(probes.map((p) => [p.key, { load: [], cpu: [], error: [] }]));
    for (let round = 0; round < RUNS; round++) {
      for (const probe of probes) {
        const { load, cpu, error } = await measureLoad(probe.file, probe.fn, probe.args, probe.fail);
        const sample = samples.get(probe.key) as Samples;
        sample.load.push(load);
        sample.cpu.push(cpu);
        if (error !== undefined) sample.error.push(error);
      }
    }
    const loadOf = (key: string) => median(samples.get(key)?.load ?? []);
    const cpuOf = (key: string) => median(samples.get(key)?.cpu ?? []);
    const errorOf = (key: string) => median(samples.get(key)?.error ?? []);

    out(
      `Cold start: node ${process.version}, median of ${RUNS} fresh processes each, time to require the bundle ` +
        '(wall, and CPU of the process: the ratio is on CPU time, which a busy machine disturbs less)\n',
    );
    table(
      ['function', 'bundle KB', 'load ms', 'CPU ms', 'essentials KB', 'ms', 'CPU ms', 'ratio', 'goal'],
      FUNCTIONS.map((fn) => {
        const essentials = `${fn} essentials`;
        const ratio = cpuOf(fn) / cpuOf(essentials);
        const goal = GOALS[fn];
        return [
          fn,
          kb(bundles.get(fn) as string),
          loadOf(fn).toFixed(1),
          cpuOf(fn).toFixed(1),
          kb(bundles.get(essentials) as string),
          loadOf(essentials).toFixed(1),
          cpuOf(essentials).toFixed(1),
          `${ratio.toFixed(2)}x`,
          goal === undefined ? '' : `<= ${goal.toFixed(1)}x ${ratio <= goal ? 'met' : 'NOT MET'}`,
        ];
      }),
    );

    out('\nSource maps: load, and an invocation that throws (its stack read, as the Lambda runtime does)\n');
    table(
      ['function', 'setting', 'map KB', 'load ms', 'throwing invocation ms'],
      (['rotate', 'export'] as const).flatMap((fn) => [
        [
          fn,
          'no --enable-source-maps (deployed)',
          kb(`${bundles.get(fn)}.map`),
          loadOf(`${fn} error`).toFixed(1),
          errorOf(`${fn} error`).toFixed(1),
        ],
        [
          fn,
          '--enable-source-maps, map as deployed',
          kb(`${bundles.get(fn)}.map`),
          loadOf(`${fn} maps`).toFixed(1),
          errorOf(`${fn} maps`).toFixed(1),
        ],
        [
          fn,
          '--enable-source-maps, map with sourcesContent',
          kb(`${bundles.get(`${fn} with-sources`)}.map`),
          loadOf(`${fn} with-sources`).toFixed(1),
          errorOf(`${fn} with-sources`).toFixed(1),
        ],
      ]),
    );

    if (!values['load-only']) await invocations(bundles);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Requires the bundle in a fresh process; with `fail`, then invokes its handler
 * with an event it rejects and reads the error's stack. Milliseconds of each.
 */
async function measureLoad(
  file: string,
  fn: FunctionName,
  nodeArgs: string[],
  fail: boolean,
): Promise<{ load: number; cpu: number; error?: number }> {
  const script = `
    const { performance } = require('node:perf_hooks');
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    const module = require(process.argv[1]);
    const load = performance.now() - started;
    const { user, system } = process.cpuUsage(cpuBefore);
    const cpu = (user + system) / 1000;
    (async () => {
      let error;
      if (${fail}) {
        const invoked = performance.now();
        await module.handler({}).then(() => { throw new Error('the handler accepted {}'); }, (e) => e.stack);
        error = performance.now() - invoked;
      }
      process.stdout.write('\\n' + JSON.stringify({ load, cpu, error }) + '\\n');
    })();`;
  const { stdout } = await run(process.execPath, ['--no-warnings', ...nodeArgs, '-e', script, file], {
    env: { ...BASE_ENV, ...FUNCTION_ENV[fn] },
    maxBuffer: 1 << 24,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1) as string);
}

/** 3: first invocation against warm ones, each case in a container of its own. */
async function invocations(bundles: Map<string, string>): Promise<void> {
  const stack = await startStack();
  try {
    useStackEnvironment(stack);
    const rows: string[][] = [];
    const sm = new SecretsManagerClient({});
    for (const engine of benchEngines(stack)) {
      const password = benchPassword();
      const username = await engine.createUser(password);
      const { host, port } = engine.server;
      const arn = await benchSecret(sm, { engine: engine.engine, host, port, username, password });
      const container = await Container.start(bundles.get('rotate') as string, 'rotate');
      const times = new Map<string, number[]>();
      try {
        for (let rotation = 0; rotation <= WARM_RUNS; rotation++) {
          await driveRotation({
            secretsManager: sm,
            secretId: arn,
            attempts: 1,
            invoke: async (event) => {
              const ms = await container.invoke(event);
              times.set(event.Step, [...(times.get(event.Step) ?? []), ms]);
            },
          });
        }
      } finally {
        container.stop();
      }
      for (const [step, [first, ...warm]] of times) {
        rows.push(['rotate', `${engine.engine}, single user`, step, fixed(first), fixed(median(warm))]);
      }
    }

    for (const [engine, event] of await exportCases(stack)) {
      const container = await Container.start(bundles.get('export') as string, 'export', {
        CONFIG_PATH: EXPORT_CONFIG_PATH,
      });
      try {
        const [first, ...warm] = await repeat(() => container.invoke(event));
        rows.push(['export', `${engine}, one window to S3`, 'backfill', fixed(first), fixed(median(warm))]);
      } finally {
        container.stop();
      }
    }

    const health = await Container.start(bundles.get('health') as string, 'health');
    try {
      const [first, ...warm] = await repeat(() => health.invoke({}));
      rows.push(['health', 'ListSecrets', 'scheduled', fixed(first), fixed(median(warm))]);
    } finally {
      health.stop();
    }

    out(
      `\nFirst invocation against warm ones (median of ${WARM_RUNS}), one fresh container per case, local stack\n`,
    );
    table(['function', 'case', 'step', 'first ms', 'warm ms'], rows);
  } finally {
    await stack.stop();
  }
}

/** A table of one hour of rows per engine, a secret for each, and the exporter's configuration. */
async function exportCases(stack: StackInfo): Promise<Array<[string, Record<string, unknown>]>> {
  const { mariadb, postgres } = stack;
  const login = (s: typeof mariadb) => ({
    host: s.host,
    port: s.port,
    user: s.adminUser,
    password: s.adminPassword,
  });
  const my = await mysql.createConnection({ ...login(mariadb), multipleStatements: true });
  await my.query(
    `CREATE DATABASE IF NOT EXISTS coldstart; USE coldstart; DROP TABLE IF EXISTS coldstart.events;
     CREATE TABLE coldstart.events (id INT PRIMARY KEY, event_time DATETIME(6) NOT NULL, note TEXT, INDEX (event_time));
     INSERT INTO coldstart.events SELECT seq, TIMESTAMP('2024-03-01 10:00:00') + INTERVAL seq SECOND, CONCAT('event ', seq) FROM seq_0_to_3599`,
  );
  await my.end();
  const pgc = new pg.Client({ ...login(postgres), database: 'postgres' });
  await pgc.connect();
  await pgc.query(
    `DROP TABLE IF EXISTS coldstart_events;
     CREATE TABLE coldstart_events (id int PRIMARY KEY, event_time timestamptz(6) NOT NULL, note text);
     INSERT INTO coldstart_events SELECT g, timestamptz '2024-03-01 10:00:00+00' + g * interval '1 second', 'event ' || g FROM generate_series(0, 3599) g;
     CREATE INDEX ON coldstart_events (event_time)`,
  );
  await pgc.end();

  const ssm = new SSMClient({});
  const put = (name: string, Value: string) =>
    ssm.send(
      new PutParameterCommand({
        Name: `${EXPORT_CONFIG_PATH}/${name}`,
        Value,
        Type: 'String',
        Overwrite: true,
      }),
    );
  const bucket = 'coldstart-bench';
  await new S3Client({ forcePathStyle: true }).send(new CreateBucketCommand({ Bucket: bucket }));
  await createWatermarkTable(new DynamoDBClient({}), FUNCTION_ENV.export.WATERMARK_TABLE as string);
  await put('global/destination', `s3://${bucket}/logs`);
  await put('global/window-minutes', '60');
  const sm = new SecretsManagerClient({});
  const cases: Array<[string, Record<string, unknown>]> = [];
  for (const [engine, server, dbname, table] of [
    ['mariadb', mariadb, 'coldstart', 'events'],
    ['postgres', postgres, 'postgres', 'coldstart_events'],
  ] as const) {
    const { ARN } = await sm.send(
      new CreateSecretCommand({
        Name: `coldstart-bench-${engine}-${Date.now()}`,
        SecretString: JSON.stringify({
          engine,
          host: server.host,
          port: server.port,
          username: server.adminUser,
          password: server.adminPassword,
          dbname,
        }),
      }),
    );
    await put(`clusters/${engine}/engine`, engine);
    await put(`clusters/${engine}/secret-id`, ARN as string);
    await put(`clusters/${engine}/tables`, 'none');
    await put(`clusters/${engine}/custom/events/query`, `SELECT id, event_time, note FROM ${table}`);
    await put(`clusters/${engine}/custom/events/watermark-column`, 'event_time');
    cases.push([engine, { cluster: engine, ...HOUR, replace: true }]);
  }
  return cases;
}

/** One fresh process that loads a bundle once and runs events through its handler, like a Lambda container. */
class Container {
  private constructor(private readonly child: ReturnType<typeof fork>) {}

  static async start(file: string, fn: FunctionName, env: NodeJS.ProcessEnv = {}): Promise<Container> {
    const child = fork(join(ROOT, 'bench/coldstart-container.cjs'), [file], {
      execArgv: ['--no-warnings'],
      env: { ...process.env, ...BASE_ENV, ...FUNCTION_ENV[fn], ...env },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    const container = new Container(child);
    await container.reply();
    return container;
  }

  async invoke(event: unknown): Promise<number> {
    this.child.send(event as object);
    const { ms, error } = await this.reply();
    if (error) throw new Error(error);
    return ms;
  }

  /** The container's next message; a container that exits instead fails the benchmark. */
  reply(): Promise<{ ms: number; error?: string }> {
    return new Promise((resolve, reject) => {
      const exited = (code: number | null) => reject(new Error(`The container exited (${code})`));
      this.child.once('exit', exited);
      this.child.once('message', (reply) => {
        this.child.off('exit', exited);
        resolve(reply as { ms: number; error?: string });
      });
    });
  }

  stop(): void {
    this.child.kill();
  }
}

async function repeat(invoke: () => Promise<number>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i <= WARM_RUNS; i++) times.push(await invoke());
  return times;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

function fixed(ms: number | undefined): string {
  return ms === undefined ? '' : ms.toFixed(0);
}

function kb(file: string): string {
  return (statSync(file).size / 1024).toFixed(0);
}

function out(text: string): void {
  process.stdout.write(text);
}

function table(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd();
  out(`${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const r of rows) out(`${line(r)}\n`);
}

await main();
