import { SecretFormatError } from '../errors';
import type { RotationAdapter } from './adapter';
import { mysqlAdapter } from './mysql';
import { postgresAdapter } from './postgres';

/** The secret's `engine` values (the AWS convention) and the adapter that serves each. */
export const ADAPTERS_BY_ENGINE: Readonly<Record<string, RotationAdapter>> = Object.freeze({
  mysql: mysqlAdapter,
  mariadb: mysqlAdapter,
  'aurora-mysql': mysqlAdapter,
  aurora: mysqlAdapter,
  postgres: postgresAdapter,
  'aurora-postgresql': postgresAdapter,
});

/** The adapter for a secret's engine, or SecretFormatError naming the unsupported value. */
export function adapterFor(engine: string): RotationAdapter {
  const adapter = Object.hasOwn(ADAPTERS_BY_ENGINE, engine) ? ADAPTERS_BY_ENGINE[engine] : undefined;
  if (!adapter) {
    throw new SecretFormatError(
      `Unsupported engine "${engine}" (expected one of ${Object.keys(ADAPTERS_BY_ENGINE).join(', ')})`,
    );
  }
  return adapter;
}
