import { randomBytes } from 'node:crypto';
import { CreateSecretCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { StackInfo } from '../test/stack';

/** Users and secrets for the rotation benchmark (the vitest fixtures need vitest's inject). */
export interface BenchEngine {
  engine: 'postgres' | 'mariadb';
  createUser(password: string): Promise<string>;
  server: { host: string; port: number; adminUser: string; adminPassword: string };
}

const name = (prefix: string) => `${prefix}_${randomBytes(4).toString('hex')}`;
export const benchPassword = () => `Pw${randomBytes(15).toString('base64url')}`;

export function benchEngines(stack: StackInfo): BenchEngine[] {
  return [
    {
      engine: 'postgres',
      server: stack.postgres,
      async createUser(password) {
        const user = name('bench');
        const { host, port, adminUser, adminPassword } = stack.postgres;
        const admin = new pg.Client({
          host,
          port,
          user: adminUser,
          password: adminPassword,
          database: 'postgres',
        });
        await admin.connect();
        try {
          await admin.query(`CREATE ROLE ${user} LOGIN PASSWORD ${pg.escapeLiteral(password)}`);
        } finally {
          await admin.end();
        }
        return user;
      },
    },
    {
      engine: 'mariadb',
      server: stack.mariadb,
      async createUser(password) {
        const user = name('bench');
        const { host, port, adminUser, adminPassword } = stack.mariadb;
        const admin = await mysql.createConnection({ host, port, user: adminUser, password: adminPassword });
        try {
          await admin.query("CREATE USER ?@'%' IDENTIFIED BY ?", [user, password]);
        } finally {
          await admin.end();
        }
        return user;
      },
    },
  ];
}

export async function benchSecret(sm: SecretsManagerClient, value: Record<string, unknown>): Promise<string> {
  const response = await sm.send(
    new CreateSecretCommand({ Name: name('bench-secret'), SecretString: JSON.stringify(value) }),
  );
  return response.ARN as string;
}
