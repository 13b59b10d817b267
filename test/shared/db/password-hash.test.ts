import pg from 'pg';
import { describe, expect, it } from 'vitest';
import {
  mysqlNativePasswordHash,
  postgresMd5Verifier,
  scramSha256Verifier,
} from '../../../shared/db/password-hash';
import {
  createMysqlUser,
  createPgUser,
  mysqlAdmin,
  mysqlCanLogin,
  pgAdmin,
  pgCanLogin,
  randomPassword,
} from '../../stack/fixtures';

describe('scramSha256Verifier', () => {
  it('computes exactly what PostgreSQL stores for the same password and salt', async () => {
    const password = randomPassword();
    const user = await createPgUser({ password });
    const admin = await pgAdmin();
    const { rows } = await admin.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [user]);
    await admin.end();
    const stored = (rows[0] as { rolpassword: string }).rolpassword;
    const [, iterations, salt] = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(stored) ?? [];

    expect(
      scramSha256Verifier(password, {
        iterations: Number(iterations),
        salt: Buffer.from(salt ?? '', 'base64'),
      }),
    ).toBe(stored);
  });

  it('uses a random salt and at least 4096 iterations', () => {
    const a = scramSha256Verifier('same-password');
    const b = scramSha256Verifier('same-password');
    expect(a).toMatch(/^SCRAM-SHA-256\$4096:[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/);
    expect(a).not.toBe(b);
    expect(() => scramSha256Verifier('x', { iterations: 1000 })).toThrow(RangeError);
  });

  it('is accepted by PostgreSQL: the password logs in after the verifier is set', async () => {
    const user = await createPgUser({ password: randomPassword() });
    const password = randomPassword();
    const admin = await pgAdmin();
    await admin.query(
      `ALTER ROLE ${pg.escapeIdentifier(user)} PASSWORD ${pg.escapeLiteral(scramSha256Verifier(password, { iterations: 8192 }))}`,
    );
    await admin.end();

    expect(await pgCanLogin(user, password)).toBe(true);
    expect(await pgCanLogin(user, `${password}x`)).toBe(false);
  });

  it('computes the md5 form of PostgreSQL before 10', () => {
    // md5('secret' || 'alice'), computed independently with Python's hashlib.
    expect(postgresMd5Verifier('secret', 'alice')).toBe('md54a0a68b43b6cd5cf266fa02f196e2371');
  });
});

describe('mysqlNativePasswordHash', () => {
  it("matches MariaDB's own PASSWORD() and is accepted for login", async () => {
    const password = randomPassword();
    const user = await createMysqlUser({ password: randomPassword() });
    const admin = await mysqlAdmin();
    const [rows] = await admin.query('SELECT PASSWORD(?) AS hash', [password]);
    await admin.query("ALTER USER ?@'%' IDENTIFIED BY PASSWORD ?", [user, mysqlNativePasswordHash(password)]);
    await admin.end();

    expect(mysqlNativePasswordHash(password)).toBe((rows as Array<{ hash: string }>)[0]?.hash);
    expect(await mysqlCanLogin(user, password)).toBe(true);
    expect(await mysqlCanLogin(user, `${password}x`)).toBe(false);
  });
});
