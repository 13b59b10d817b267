import { SecretFormatError } from '../errors';
import { lazy } from '../lazy';
import type { RotationAdapter } from './adapter';

// Each family's sessions, and with them its driver, are loaded when a secret first names that family.
const mysqlSessions = lazy(() => import('./mysql'));
const postgresSessions = lazy(() => import('./postgres'));

/** MySQL, MariaDB and Aurora MySQL. */
const mysqlAdapter: RotationAdapter = {
  family: 'mysql',
  defaultPort: 3306,
  defaultExcludeCharacters: '/@"\'\\',
  open: async (login, options) => (await mysqlSessions()).openMysqlSession(login, options),
};

/** PostgreSQL and Aurora PostgreSQL. */
const postgresAdapter: RotationAdapter = {
  family: 'postgres',
  defaultPort: 5432,
  defaultExcludeCharacters: ':/@"\'\\',
  open: async (login, options) => (await postgresSessions()).openPostgresSession(login, options),
};

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
