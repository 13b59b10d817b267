/**
 * Rotation benchmark: median wall time of a full rotation (driver + four steps)
 * per engine and strategy, and the AWS API calls the rotation function makes per
 * rotation, next to the reference functions' 14 (single user).
 *
 *   npm run bench:rotation [-- --rotations 20]
 *
 * Container "per rotation": a fresh container at createSecret that serves all four
 * steps (Lambda's usual case; rotations are days apart, so nothing is cached
 * before). "per step": a fresh container for every step, the worst case.
 */
import { parseArgs } from 'node:util';
import { RDSClient } from '@aws-sdk/client-rds';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { makeHandler } from '../functions/rotate';
import { createLogger } from '../shared/log';
import { driveRotation } from '../shared/rotation/driver';
import { passwordPolicySource } from '../shared/rotation/settings';
import { clearVersionCache } from '../shared/rotation/versions';
import { startStack, useStackEnvironment } from '../test/stack';
import { benchEngines, benchPassword, benchSecret } from './rotation-fixtures';

const REFERENCE_CALLS = 14;
const { values } = parseArgs({ options: { rotations: { type: 'string', default: '20' } } });
const rotations = Number(values.rotations);

/** Counts every command a client sends, by name. */
function counted<T extends { middlewareStack: { add: (...args: never[]) => void } }>(
  client: T,
  counts: Map<string, number>,
): T {
  const middleware =
    (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) =>
    async (args: unknown) => {
      const name = context.commandName ?? 'unknown';
      counts.set(name, (counts.get(name) ?? 0) + 1);
      return next(args);
    };
  (client.middlewareStack.add as (m: unknown, o: unknown) => void)(middleware, {
    step: 'initialize',
    name: 'countApiCalls',
  });
  return client;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

process.env.LOG_LEVEL = 'ERROR';
const stack = await startStack();
try {
  useStackEnvironment(stack);
  const driverClient = new SecretsManagerClient({});
  const rows: string[][] = [];
  for (const engine of benchEngines(stack)) {
    for (const strategy of ['single-user', 'alternating-users'] as const) {
      for (const mode of ['per rotation', 'per step'] as const) {
        const counts = new Map<string, number>();
        const rds = counted(new RDSClient({}), counts);
        const handler = makeHandler({
          secretsManager: counted(new SecretsManagerClient({}), counts),
          rds: async () => rds,
          passwordPolicy: passwordPolicySource({ env: {} }),
          logger: createLogger('rotation-bench'),
        });
        const password = benchPassword();
        const username = await engine.createUser(password);
        const { host, port, adminUser, adminPassword } = engine.server;
        const masterarn =
          strategy === 'alternating-users'
            ? await benchSecret(driverClient, {
                engine: engine.engine,
                host,
                port,
                username: adminUser,
                password: adminPassword,
              })
            : undefined;
        const arn = await benchSecret(driverClient, {
          engine: engine.engine,
          host,
          port,
          username,
          password,
          ...(masterarn ? { masterarn } : {}),
        });
        clearVersionCache();
        const times: number[] = [];
        for (let i = 0; i < rotations; i++) {
          const started = performance.now();
          await driveRotation({
            secretsManager: driverClient,
            secretId: arn,
            attempts: 1,
            invoke: async (event) => {
              if (mode === 'per step' || event.Step === 'createSecret') clearVersionCache();
              await handler(event);
            },
          });
          times.push(performance.now() - started);
        }
        const total = [...counts.values()].reduce((a, b) => a + b, 0);
        const breakdown = [...counts.entries()]
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([name, n]) => `${Number((n / rotations).toFixed(2))} ${name.replace(/Command$/, '')}`)
          .join(', ');
        rows.push([
          engine.engine,
          strategy,
          mode,
          median(times).toFixed(0),
          (total / rotations).toFixed(1),
          String(REFERENCE_CALLS),
          breakdown,
        ]);
      }
    }
  }
  const header = [
    'engine',
    'strategy',
    'container',
    'median ms',
    'API calls/rotation',
    'reference',
    'calls by API',
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i] as number)).join('  ');
  process.stdout.write(
    `Rotation benchmark: ${rotations} rotations each (median wall time of one full rotation)\n`,
  );
  process.stdout.write(`${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const r of rows) process.stdout.write(`${line(r)}\n`);
  process.stdout.write(
    `\nReference functions: ${REFERENCE_CALLS} calls per single-user rotation (5 DescribeSecret, 6 GetSecretValue, 1 GetRandomPassword, 1 PutSecretValue, 1 UpdateSecretVersionStage).\n` +
      'Counted: calls by the rotation function only; the driver (RotateSecret, DescribeSecret, removing AWSPENDING) stands in for Secrets Manager and is not counted.\n',
  );
} finally {
  await stack.stop();
}
