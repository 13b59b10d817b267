import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectMysqlServer } from '../../../shared/db/mysql-dialect';
import { isActionEvent } from '../../../shared/rotation/event';
import { parsePreflightRequest, sameFunction } from '../../../shared/rotation/preflight';
import {
  covers,
  mariadbPasswordRules,
  mysqlPasswordRules,
  schemaPatternMatches,
} from '../../../shared/rotation/preflight-mysql';
import { checkPasswordPolicy } from '../../../shared/rotation/preflight-password';
import { judgeAlternation, type RoleFacts } from '../../../shared/rotation/preflight-postgres';
import type { PasswordPolicy } from '../../../shared/rotation/settings';

const DEFAULTS: PasswordPolicy = {
  length: 32,
  excludeNumbers: false,
  excludePunctuation: false,
  excludeUppercase: false,
  excludeLowercase: false,
  requireEachIncludedType: true,
};
const PG_EXCLUDES = ':/@"\'\\';
const mysql8 = detectMysqlServer('8.0.36', 'MySQL Community Server - GPL');
const mysql57 = detectMysqlServer('5.7.44', 'MySQL Community Server (GPL)');

describe('checkPasswordPolicy', () => {
  it('passes the defaults', () => {
    expect(checkPasswordPolicy(DEFAULTS, PG_EXCLUDES, 'postgres')).toMatchObject({ status: 'pass' });
  });

  it('warns when EXCLUDE_CHARACTERS lets through characters that break connection strings', () => {
    const check = checkPasswordPolicy({ ...DEFAULTS, excludeCharacters: '"\'\\' }, PG_EXCLUDES, 'postgres');

    expect(check).toMatchObject({
      status: 'warn',
      fix: 'Add :/@ to EXCLUDE_CHARACTERS unless every client escapes passwords',
    });
    expect(check.detail).toContain('connection URLs (user:password@host)');
  });

  it('fails when the exclusions empty a type that REQUIRE_EACH_INCLUDED_TYPE demands', () => {
    const check = checkPasswordPolicy(
      { ...DEFAULTS, excludeCharacters: '0123456789' },
      PG_EXCLUDES,
      'postgres',
    );

    expect(check).toMatchObject({
      status: 'fail',
      fix: 'Set EXCLUDE_NUMBERS=true, or exclude fewer characters',
    });
  });

  it('fails when nothing is left to generate from', () => {
    const letters = 'abcdefghijklmnopqrstuvwxyz';
    const check = checkPasswordPolicy(
      {
        ...DEFAULTS,
        excludeNumbers: true,
        excludePunctuation: true,
        excludeUppercase: true,
        excludeCharacters: letters,
      },
      PG_EXCLUDES,
      'postgres',
    );

    expect(check.status).toBe('fail');
    expect(check.detail).toMatch(/leave no character/);
  });
});

describe('server password rules', () => {
  it('MariaDB: fails while a validation plugin is active with strict_password_validation on', () => {
    expect(mariadbPasswordRules(['simple_password_check'], true, 'MariaDB 10.11.6')).toMatchObject({
      status: 'fail',
      fix: expect.stringContaining('strict_password_validation to OFF'),
    });
    expect(mariadbPasswordRules(['simple_password_check'], false, 'MariaDB 10.11.6').status).toBe('pass');
    expect(mariadbPasswordRules([], true, 'MariaDB 10.11.6').status).toBe('pass');
  });

  it("MySQL 8: fails a length beyond caching_sha2_password's 256 characters", () => {
    expect(mysqlPasswordRules({}, { ...DEFAULTS, length: 300 }, mysql8).status).toBe('fail');
    expect(mysqlPasswordRules({}, { ...DEFAULTS, length: 300 }, mysql57).status).toBe('pass');
  });

  it('MySQL: fails a policy that validate_password would refuse', () => {
    const medium = {
      'validate_password.length': '8',
      'validate_password.policy': 'MEDIUM',
      'validate_password.mixed_case_count': '1',
      'validate_password.number_count': '1',
      'validate_password.special_char_count': '1',
    };

    expect(mysqlPasswordRules(medium, DEFAULTS, mysql8).status).toBe('pass');
    expect(mysqlPasswordRules({ ...medium, 'validate_password.length': '40' }, DEFAULTS, mysql8).detail).toBe(
      'PASSWORD_LENGTH 32 is below validate_password.length 40',
    );
    expect(mysqlPasswordRules(medium, { ...DEFAULTS, excludePunctuation: true }, mysql8).detail).toBe(
      'validate_password.special_char_count is 1 but the policy excludes those characters',
    );
    expect(mysqlPasswordRules(medium, { ...DEFAULTS, requireEachIncludedType: false }, mysql8).status).toBe(
      'fail',
    );
    expect(
      mysqlPasswordRules(
        { ...medium, 'validate_password.policy': 'LOW' },
        { ...DEFAULTS, excludePunctuation: true },
        mysql8,
      ).status,
    ).toBe('pass');
  });
});

describe('MySQL grant coverage', () => {
  it('matches database patterns as LIKE patterns with escaped wildcards', () => {
    expect(schemaPatternMatches('app\\_%', 'app_orders')).toBe(true);
    expect(schemaPatternMatches('app\\_%', 'appxorders')).toBe(false);
    expect(schemaPatternMatches('%', 'anything')).toBe(true);
    expect(schemaPatternMatches('orders', 'orders')).toBe(true);
  });

  it('lets a higher level cover a lower one, never the reverse', () => {
    const tableLevel = { privilege: 'SELECT', schema: 'db', table: 't', grantable: true };
    const schemaLevel = { privilege: 'SELECT', schema: 'db', grantable: true };

    expect(covers({ privilege: 'SELECT', grantable: true }, tableLevel)).toBe(true);
    expect(covers(schemaLevel, tableLevel)).toBe(true);
    expect(covers(tableLevel, schemaLevel)).toBe(false);
    expect(covers({ ...schemaLevel, privilege: 'INSERT' }, tableLevel)).toBe(false);
  });
});

describe('PostgreSQL alternation rights', () => {
  const facts = (overrides: Partial<RoleFacts>): RoleFacts => ({
    version: 150004,
    masterSuper: false,
    masterCreateRole: true,
    originalExists: true,
    originalSuper: false,
    adminOnOriginal: false,
    cloneExists: false,
    cloneSuper: false,
    adminOnClone: false,
    ...overrides,
  });

  it('PostgreSQL 15: CREATEROLE is enough for a non-superuser role', () => {
    expect(judgeAlternation(facts({}), 'master', 'app', 'app_clone').status).toBe('pass');
    expect(judgeAlternation(facts({ originalSuper: true }), 'master', 'app', 'app_clone').status).toBe(
      'fail',
    );
  });

  it('PostgreSQL 16: CREATEROLE needs ADMIN OPTION on the role it grants and the clone it alters', () => {
    const check = judgeAlternation(
      facts({ version: 160002, cloneExists: true }),
      'master',
      'app',
      'app_clone',
    );

    expect(check.status).toBe('fail');
    expect(check.detail).toBe(
      'The master master lacks ADMIN OPTION on app (to grant it to app_clone); ADMIN OPTION on app_clone (to set its password), needed to maintain app_clone as a member of app',
    );
    expect(check.fix).toBe(
      'As a superuser: GRANT "app" TO "master" WITH ADMIN OPTION; GRANT "app_clone" TO "master" WITH ADMIN OPTION',
    );
    expect(
      judgeAlternation(facts({ version: 160002, adminOnOriginal: true }), 'master', 'app', 'app_clone')
        .status,
    ).toBe('pass');
  });

  it('a superuser master passes; a master without CREATEROLE fails', () => {
    expect(
      judgeAlternation(facts({ masterSuper: true, masterCreateRole: false }), 'm', 'app', 'app_clone').status,
    ).toBe('pass');
    expect(judgeAlternation(facts({ masterCreateRole: false }), 'm', 'app', 'app_clone').detail).toMatch(
      /lacks CREATEROLE/,
    );
  });
});

describe('sameFunction', () => {
  const arn = 'arn:aws:lambda:us-east-1:111122223333:function:rotate';

  it('compares ARNs without their qualifier, or the function name', () => {
    expect(sameFunction(arn, `${arn}:live`)).toBe(true);
    expect(sameFunction(`${arn}:3`, arn)).toBe(true);
    expect(sameFunction(arn, 'arn:aws:lambda:us-east-1:111122223333:function:other')).toBe(false);
    expect(sameFunction(arn, 'rotate')).toBe(true);
    expect(sameFunction(arn, 'other')).toBe(false);
  });
});

describe('the sample event', () => {
  it('events/rotate/preflight.json is a preflight request', () => {
    const event = JSON.parse(
      readFileSync(join(import.meta.dirname, '../../../events/rotate/preflight.json'), 'utf8'),
    );

    expect(isActionEvent(event)).toBe(true);
    expect(parsePreflightRequest(event)).toEqual(event);
  });
});
