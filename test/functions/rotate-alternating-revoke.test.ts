import { describe, expect, it } from 'vitest';
import {
  alternatingSecret,
  mariadbUnderTest as engine,
  rotate,
  secretValue,
} from '../shared/rotation/support';
import { mysqlAdmin } from '../stack/fixtures';

/**
 * MySQL-family alternating users replay SHOW GRANTS of the current account onto the other
 * one: a privilege revoked from the current user since the last rotation must not survive
 * on the other user, or the next rotation would hand it back to the application.
 */
describe('alternating users (MariaDB): a privilege revoked from the current user', () => {
  it('is revoked from the other user at the next rotation into it', async () => {
    const { arn, username } = await alternatingSecret(engine);
    const readable = await engine.grantReadableTable(username); // SELECT ON db.* TO username
    await rotate(arn); // creates username_clone with the same grants; AWSCURRENT = username_clone
    await rotate(arn); // back to username; AWSCURRENT = username, username_clone is AWSPREVIOUS
    // The operator revokes read access from the application (the current user).
    const admin = await mysqlAdmin();
    const db = /FROM (\S+)\.t/.exec(readable)?.[1] as string;
    await admin.query(`REVOKE SELECT ON ${db}.* FROM ?@'%'`, [username]);
    await admin.end();
    expect(await engine.canRead(username, (await secretValue(arn)).password as string, readable)).toBe(false);
    await rotate(arn); // into username_clone
    const current = await secretValue(arn);
    const canRead = await engine.canRead(current.username as string, current.password as string, readable);
    expect(current.username).toBe(`${username}_clone`);
    expect(canRead).toBe(false);
    // Both accounts now hold the same grants, names aside.
    const grants = async (user: string) => {
      const conn = await mysqlAdmin();
      try {
        const [rows] = await conn.query('SHOW GRANTS FOR ?@?', [user, '%']);
        return (rows as Array<Record<string, string>>)
          .map((r) =>
            (Object.values(r)[0] ?? '').replace(user, '<u>').replace(/ IDENTIFIED BY PASSWORD '[^']*'/, ''),
          )
          .sort();
      } finally {
        await conn.end();
      }
    };
    expect(await grants(`${username}_clone`)).toEqual(await grants(username));
  });
});
