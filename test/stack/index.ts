import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type MariadbInfo, startMariadb } from './mariadb';
import { startMoto } from './moto';
import { type PostgresInfo, startPostgres } from './postgres';
import { assertPrerequisites, stackNeeds } from './prerequisites';

/** Where the local stack runs; handed from the global setup to every test file. */
export interface StackInfo {
  awsEndpoint: string;
  postgres: PostgresInfo;
  mariadb: MariadbInfo;
}

export interface Stack extends StackInfo {
  stop(): Promise<void>;
}

/**
 * Starts moto, PostgreSQL and MariaDB in parallel, each on a free port. The
 * TEST_AWS_ENDPOINT_URL, TEST_POSTGRES_* and TEST_MYSQL_* variables point the
 * tests at servers that are already running instead.
 */
export async function startStack(): Promise<Stack> {
  const env = process.env;
  assertPrerequisites(stackNeeds(env));
  const workDir = mkdtempSync(join(tmpdir(), 'stack-'));
  const password = () => randomBytes(12).toString('base64url');
  const stops: Array<() => Promise<void>> = [];
  const started = await Promise.allSettled([
    env.TEST_AWS_ENDPOINT_URL
      ? Promise.resolve({ endpoint: env.TEST_AWS_ENDPOINT_URL, stop: async () => {} })
      : startMoto(workDir),
    env.TEST_POSTGRES_HOST
      ? Promise.resolve({
          host: env.TEST_POSTGRES_HOST,
          port: Number(env.TEST_POSTGRES_PORT ?? 5432),
          adminUser: env.TEST_POSTGRES_USER ?? 'postgres',
          adminPassword: env.TEST_POSTGRES_PASSWORD ?? '',
          logDir: env.TEST_POSTGRES_LOG_DIR ?? '',
          stop: async () => {},
        })
      : startPostgres(password()),
    env.TEST_MYSQL_HOST
      ? Promise.resolve({
          host: env.TEST_MYSQL_HOST,
          port: Number(env.TEST_MYSQL_PORT ?? 3306),
          adminUser: env.TEST_MYSQL_USER ?? 'root',
          adminPassword: env.TEST_MYSQL_PASSWORD ?? '',
          stop: async () => {},
        })
      : startMariadb(password()),
  ]);
  for (const result of started) if (result.status === 'fulfilled') stops.push(result.value.stop);
  const stop = async () => {
    await Promise.allSettled(stops.map((s) => s()));
    rmSync(workDir, { recursive: true, force: true });
  };
  const failure = started.find((r) => r.status === 'rejected');
  if (failure) {
    await stop();
    throw failure.reason;
  }
  const [moto, postgres, mariadb] = started.map((r) => (r as PromiseFulfilledResult<unknown>).value) as [
    { endpoint: string },
    PostgresInfo & { stop: unknown },
    MariadbInfo & { stop: unknown },
  ];
  const { stop: _p, ...pgInfo } = postgres;
  const { stop: _m, ...mariaInfo } = mariadb;
  return { awsEndpoint: moto.endpoint, postgres: pgInfo, mariadb: mariaInfo, stop };
}

/** Points the AWS SDK at the stack's emulator with dummy credentials. */
export function useStackEnvironment(info: StackInfo): void {
  process.env.AWS_ENDPOINT_URL = info.awsEndpoint;
  process.env.AWS_ACCESS_KEY_ID = 'testing';
  process.env.AWS_SECRET_ACCESS_KEY = 'testing';
  process.env.AWS_REGION = 'us-east-1';
  process.env.AWS_DEFAULT_REGION = 'us-east-1';
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_SESSION_TOKEN;
}
