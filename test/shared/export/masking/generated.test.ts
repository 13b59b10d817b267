import { describe, expect, it } from 'vitest';
import { maskSql, redactSql } from '../../../../shared/export/masking';

/**
 * Generated statements: random secrets (quotes, backslashes, blanks, comment
 * openers inside) quoted in a random literal form valid for a random server
 * mode, put in a random credential position with random comments between the
 * tokens, random keyword case and random statements around. Seeded, so every
 * run checks the same statements.
 */

/** mulberry32: small, fast, deterministic. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Dialect = 'mysql' | 'postgres';
interface Mode {
  dialect: Dialect;
  /** Backslash escapes in '...' (MySQL default; PostgreSQL standard_conforming_strings off; Redshift). */
  backslash: boolean;
  /** MySQL ANSI_QUOTES: "..." is an identifier, not a string. */
  ansiQuotes: boolean;
}

const CHARS = [...'abcXYZ019 \'"\\$*/-#;()@:=é\n\t%&!?`', '/*', '*/', '--', '$$', "\\'", "''"];

class Generator {
  private n = 0;
  constructor(private readonly next: () => number) {}

  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** A secret around a unique marker: the marker must not survive. */
  secret(): { value: string; marker: string } {
    const marker = `Qm${++this.n}x`;
    const noise = () => Array.from({ length: this.int(5) }, () => this.pick(CHARS)).join('');
    return { value: `${noise()}${marker}${noise()}`, marker };
  }

  comment(mode: Mode): string {
    const common = [
      ' ',
      '  ',
      '\n',
      ' /**/ ',
      '/**/',
      ' /* c */ ',
      "/* it's */",
      ' -- c\n',
      " -- it's\n",
      '\t',
    ];
    const mysql = [' # c\n', " # it's\n", '/*!*/', ' /*+ hint */ '];
    const postgres = [' /* a /* b */ c */ ', "/* 'x /* y */ */"];
    return this.pick([...common, ...(mode.dialect === 'mysql' ? mysql : postgres)]);
  }

  keywordCase(text: string): string {
    const style = this.int(3);
    return style === 0
      ? text
      : style === 1
        ? text.toLowerCase()
        : text.replace(/[A-Z]+/g, (w) => w.charAt(0) + w.slice(1).toLowerCase());
  }

  /** `value` as a literal the server in `mode` reads back as `value`; the hex forms return the hex to look for. */
  literal(value: string, mode: Mode): { sql: string; look: (marker: string) => string } {
    const plain = { look: (m: string) => m };
    const single = (escapes: boolean) =>
      escapes
        ? value.replace(/\\/g, '\\\\').replace(/'/g, () => (this.chance(0.5) ? "\\'" : "''"))
        : value.replace(/'/g, "''");
    if (mode.dialect === 'mysql') {
      const form = this.int(6);
      if (form === 0 && !mode.ansiQuotes) {
        const body = mode.backslash
          ? value.replace(/\\/g, '\\\\').replace(/"/g, () => (this.chance(0.5) ? '\\"' : '""'))
          : value.replace(/"/g, '""');
        return { sql: `"${body}"`, ...plain };
      }
      if (form === 1) {
        const hex = (s: string) => Buffer.from(s).toString('hex');
        return { sql: this.chance(0.5) ? `X'${hex(value)}'` : `0x${hex(value)}`, look: hex };
      }
      const prefix = this.pick(['', '', 'N', '_utf8mb4', '_utf8mb4 ', '_binary ']);
      return { sql: `${prefix}'${single(mode.backslash)}'`, ...plain };
    }
    const form = this.int(5);
    if (form === 0) return { sql: `E'${single(true)}'`, ...plain };
    if (form === 1) {
      const tag = this.pick(['', 'a', 'pw', 'x_1']);
      if (!value.includes(`$${tag}$`) && !value.endsWith('$'))
        return { sql: `$${tag}$${value}$${tag}$`, ...plain };
    }
    if (form === 2 && !mode.backslash) {
      if (this.chance(0.5))
        return { sql: `U&'${value.replace(/'/g, "''").replace(/\\/g, '\\\\')}'`, ...plain };
      const body = value.replace(/'/g, "''").replace(/!/g, '!!');
      return { sql: `U&'${body}' UESCAPE '!'`, ...plain };
    }
    return { sql: `'${single(mode.backslash)}'`, ...plain };
  }

  /** A secret literal, sometimes split in two literals the server joins (the marker whole in one of them). */
  value(mode: Mode, secrets: string[]): string {
    const { value, marker } = this.secret();
    if (this.chance(0.2)) {
      const at = value.indexOf(marker);
      const cut = this.chance(0.5) ? at : at + marker.length;
      const a = this.literal(value.slice(0, cut), mode);
      const b = this.literal(value.slice(cut), mode);
      if (!a.sql.startsWith('0x') && !b.sql.startsWith('0x') && !a.sql.includes('UESCAPE')) {
        secrets.push(cut === at ? b.look(marker) : a.look(marker));
        // PostgreSQL joins literals only across a line break; without one the statement fails, and is logged all the same.
        return `${a.sql}${this.pick(['\n', ' ', '\n  '])}${b.sql}`;
      }
    }
    const literal = this.literal(value, mode);
    secrets.push(literal.look(marker));
    return literal.sql;
  }

  /** A connection string or URI holding a secret, as a literal. */
  connection(mode: Mode, secrets: string[]): string {
    const { value, marker } = this.secret();
    secrets.push(marker);
    let text: string;
    if (this.chance(0.4)) {
      const scheme = mode.dialect === 'mysql' ? 'mysql' : this.pick(['postgres', 'postgresql']);
      text = this.chance(0.7)
        ? `${scheme}://app:${encodeURIComponent(value)}@db.example:5432/app`
        : `${scheme}://db.example/app?user=app&password=${encodeURIComponent(value)}&sslmode=require`;
    } else {
      const quoted = /[\s'\\]/.test(value) || value === '';
      const pw = quoted ? `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'` : value;
      const parts = [
        'host=db.example',
        'user=app',
        `password${this.pick(['=', ' = ', '='])}${pw}`,
        'dbname=app',
      ];
      text = this.chance(0.5) ? parts.join(' ') : [parts[2], parts[0], parts[1]].join(' ');
    }
    const literal =
      mode.dialect === 'postgres' && this.chance(0.3) && !text.includes('$$') ? `$$${text}$$` : null;
    if (literal) return literal;
    // The conninfo's own backslashes are data to the SQL literal.
    return `'${text.replace(/\\/g, mode.backslash ? '\\\\' : '\\').replace(/'/g, "''")}'`;
  }

  statement(mode: Mode): { sql: string; secrets: string[] } {
    const secrets: string[] = [];
    const c = () => this.comment(mode);
    const v = () => this.value(mode, secrets);
    const k = (s: string) => this.keywordCase(s);
    const mysql: (() => string)[] = [
      () => `${k("CREATE USER 'u'@'%'")}${c()}${k('IDENTIFIED')}${c()}${k('BY')}${c()}${v()}`,
      () =>
        `${k('ALTER USER u')}${c()}${k('IDENTIFIED WITH')}${c()}mysql_native_password${c()}${k('BY')}${c()}${v()}`,
      () => `${k('ALTER USER u IDENTIFIED WITH caching_sha2_password')}${c()}${k('AS')}${c()}${v()}`,
      () => `${k('ALTER USER u IDENTIFIED VIA ed25519')}${c()}${k('USING')}${c()}${v()}`,
      () =>
        `${k('ALTER USER u IDENTIFIED VIA ed25519 USING')}${c()}${k('PASSWORD')}${c()}(${c()}${v()}${c()})`,
      () => `${k('ALTER USER u IDENTIFIED BY')}${c()}${k('PASSWORD')}${c()}${v()}`,
      () =>
        `${k('ALTER USER u IDENTIFIED BY')} ${v()}${c()}${k('REPLACE')}${c()}${v()} ${k('RETAIN CURRENT PASSWORD')}`,
      () => `${k('SET PASSWORD')}${c()}${k("FOR 'u'@'%'")}${c()}=${c()}${v()}`,
      () => `${k('SET PASSWORD')}${c()}=${c()}${k('PASSWORD')}(${v()})`,
      () => `${k("CHANGE MASTER TO MASTER_HOST='h',")}${c()}${k('MASTER_PASSWORD')}${c()}=${c()}${v()}`,
      () => `${k('CHANGE REPLICATION SOURCE TO SOURCE_PASSWORD')}${c()}=${c()}${v()}`,
      () =>
        `${k("CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (USER 'u',")}${c()}${k('PASSWORD')}${c()}${v()})`,
      () =>
        `${k('CREATE TABLE t (a INT) ENGINE=FEDERATED CONNECTION')}${c()}=${c()}${this.connection(mode, secrets)}`,
    ];
    const postgres: (() => string)[] = [
      () => `${k('CREATE ROLE r LOGIN')}${c()}${k('PASSWORD')}${c()}${v()}`,
      () => `${k('ALTER ROLE r WITH')}${c()}${k('ENCRYPTED')}${c()}${k('PASSWORD')}${c()}${v()}`,
      () => `${k('ALTER USER r PASSWORD')}${c()}${v()} ${k("VALID UNTIL 'infinity'")}`,
      () => `${k("CREATE USER MAPPING FOR u SERVER s OPTIONS (user 'u',")}${c()}password${c()}${v()})`,
      () => `${k('ALTER USER MAPPING FOR u SERVER s OPTIONS (SET')}${c()}"password"${c()}${v()})`,
      () => `${k("COPY t FROM 's3://b/k'")}${c()}${k('CREDENTIALS')}${c()}${v()}`,
      () =>
        `${k("UNLOAD ('select 1') TO 's3://b/p' ACCESS_KEY_ID 'AKIA'")}${c()}${k('SECRET_ACCESS_KEY')}${c()}${v()}`,
      () => `${k('SELECT dblink_connect(')}${c()}${this.connection(mode, secrets)}${c()})`,
      () => `${k('SELECT dblink(')}${this.connection(mode, secrets)}, 'select 1')`,
      () => `${k('ALTER SYSTEM SET primary_conninfo')}${c()}=${c()}${this.connection(mode, secrets)}`,
      () =>
        `${k('CREATE SUBSCRIPTION s CONNECTION')}${c()}${this.connection(mode, secrets)} ${k('PUBLICATION p')}`,
    ];
    const core = this.pick(mode.dialect === 'mysql' ? mysql : postgres)();
    // Statements around it, some of whose literals end in a backslash (read right only in the chosen mode).
    const around = [
      'SELECT 1',
      "SELECT 'it''s'",
      mode.backslash ? "SELECT 'C:\\\\'" : "SELECT 'C:\\'",
      mode.dialect === 'mysql' && !mode.ansiQuotes ? 'SELECT "a\\\\"' : 'SELECT "a"',
      "SELECT 'a' -- it's\n",
    ];
    const before = this.chance(0.4) ? `${this.pick(around)};${c()}` : '';
    const after = this.chance(0.3) ? `; ${this.pick(around)}` : '';
    return { sql: `${before}${core}${after}`, secrets };
  }

  mode(): Mode {
    const dialect: Dialect = this.chance(0.5) ? 'mysql' : 'postgres';
    return { dialect, backslash: this.chance(0.5), ansiQuotes: dialect === 'mysql' && this.chance(0.3) };
  }
}

describe('maskSql over generated statements', () => {
  it('leaves no secret marker in 4000 seeded random statements, per dialect and dialect unknown', () => {
    const gen = new Generator(random(20240512));
    const leaks: string[] = [];
    for (let i = 0; i < 4000; i++) {
      const mode = gen.mode();
      const { sql, secrets } = gen.statement(mode);
      expect(secrets.length).toBeGreaterThan(0);
      for (const masked of [maskSql(sql, mode.dialect), redactSql(sql)]) {
        for (const secret of secrets)
          if (masked.includes(secret)) leaks.push(`${JSON.stringify(sql)} -> ${JSON.stringify(masked)}`);
      }
    }
    expect(leaks.slice(0, 10)).toEqual([]);
  });
});
