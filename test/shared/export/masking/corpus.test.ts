import { describe, expect, it } from 'vitest';
import { maskSql, redactSql } from '../../../../shared/export/masking';
import { CREDENTIAL_CORPUS, ORDINARY_CORPUS, secretsOf } from './corpus';

const named = (sql: string) => sql.replaceAll('{u}', 'u_corpus');

describe('maskSql over the corpus', () => {
  it('holds at least 80 credential statements, each secret marker unique', () => {
    expect(CREDENTIAL_CORPUS.length).toBeGreaterThanOrEqual(80);
    const secrets = CREDENTIAL_CORPUS.flatMap(secretsOf);
    expect(new Set(secrets).size).toBe(secrets.length);
    for (const entry of CREDENTIAL_CORPUS) expect(secretsOf(entry).length, entry.sql).toBeGreaterThan(0);
  });

  it.each(CREDENTIAL_CORPUS.map((e) => [e.dialect, e.sql, e] as const))(
    'masks every secret (%s) in %s',
    (dialect, sql, entry) => {
      const own = maskSql(named(sql), dialect);
      const any = redactSql(named(sql));
      for (const secret of secretsOf(entry)) {
        expect(own).not.toContain(secret);
        expect(any).not.toContain(secret);
      }
      if (entry.masked) expect(own).toBe(named(entry.masked));
    },
  );

  it.each(ORDINARY_CORPUS.map((e) => [e.dialect, e.sql] as const))(
    'leaves (%s) %s unchanged',
    (dialect, sql) => {
      expect(maskSql(sql, dialect)).toBe(sql);
      expect(redactSql(sql)).toBe(sql);
    },
  );
});
