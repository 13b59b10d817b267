import { describe, expect, it } from 'vitest';
import { redactSql } from '../../../../shared/export/masking';

describe('an unquoted password (refused by the server, logged all the same)', () => {
  it.each([
    'ALTER ROLE u PASSWORD hunter2Zq',
    'CREATE ROLE u LOGIN PASSWORD hunter2Zq',
    'CREATE USER u WITH PASSWORD hunter2Zq VALID UNTIL NULL',
    'CREATE USER u IDENTIFIED BY hunter2Zq',
    "ALTER USER 'u'@'%' IDENTIFIED BY 123456789",
  ])('masks it: %s', (sql) => {
    const masked = redactSql(sql);
    expect(masked).not.toContain('hunter2Zq');
    expect(masked).not.toContain('123456789');
  });

  it.each([
    'ALTER ROLE u PASSWORD NULL',
    'SELECT password FROM users WHERE id = 1',
    'UPDATE accounts SET password_changed = now() WHERE id = 7',
    'CREATE USER u IDENTIFIED VIA unix_socket',
  ])('leaves syntax alone: %s', (sql) => {
    expect(redactSql(sql)).toBe(sql);
  });
});
