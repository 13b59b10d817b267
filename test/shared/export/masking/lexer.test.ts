import { describe, expect, it } from 'vitest';
import { Lexer, type LexMode } from '../../../../shared/export/masking/lexer';

const MYSQL: LexMode = { dialect: 'mysql', backslash: true, dqBackslash: true };
const MYSQL_NO_BACKSLASH: LexMode = { dialect: 'mysql', backslash: false, dqBackslash: false };
const POSTGRES: LexMode = { dialect: 'postgres', backslash: false, dqBackslash: false };
const POSTGRES_ESCAPES: LexMode = { dialect: 'postgres', backslash: true, dqBackslash: false };

/** Each token as `kind:text`. */
function lex(sql: string, mode: LexMode): string[] {
  const lexer = new Lexer(sql, mode, 0, sql.length);
  const out: string[] = [];
  for (let t = lexer.next(); t; t = lexer.next()) {
    out.push(`${t.kind}:${sql.slice(t.start, t.end)}${t.unterminated ? '…' : ''}`);
  }
  return out;
}

describe('Lexer', () => {
  it('nests block comments in PostgreSQL and not in MySQL', () => {
    const sql = '/* a /* b */ c */ x';
    expect(lex(sql, POSTGRES)).toEqual(['comment:/* a /* b */ c */', 'word:x']);
    expect(lex(sql, MYSQL)).toEqual(['comment:/* a /* b */', 'word:c', 'punct:*', 'punct:/', 'word:x']);
  });

  it("reads MySQL's `--` as a comment only before a blank, and `#` as a comment", () => {
    expect(lex('1--2 # c\n3', MYSQL)).toEqual([
      'number:1',
      'punct:-',
      'punct:-',
      'number:2',
      'comment:# c',
      'number:3',
    ]);
    expect(lex('1--2', POSTGRES)).toEqual(['number:1', 'comment:--2']);
  });

  it('reads the text of MySQL executable comments as SQL', () => {
    expect(lex("/*!80000 BY 'x' */ /*M! y */", MYSQL)).toEqual(['word:BY', "string:'x'", 'word:y']);
    expect(lex("/*!80000 BY 'x' */", POSTGRES)).toEqual(["comment:/*!80000 BY 'x' */"]);
  });

  it('ends quoted literals by the mode: doubled quotes always, backslashes only where they escape', () => {
    const sql = "'a\\' 'c'";
    expect(lex(sql, MYSQL)).toEqual(["string:'a\\' '", 'word:c', "string:'…"]);
    expect(lex(sql, MYSQL_NO_BACKSLASH)).toEqual(["string:'a\\'", "string:'c'"]);
    expect(lex(sql, POSTGRES)).toEqual(["string:'a\\'", "string:'c'"]);
    expect(lex(sql, POSTGRES_ESCAPES)).toEqual(["string:'a\\' '", 'word:c', "string:'…"]);
    expect(lex("E'a\\'b' 'it''s'", POSTGRES)).toEqual(["string:E'a\\'b'", "string:'it''s'"]);
  });

  it('reads "..." as a string in MySQL and an identifier in PostgreSQL, and backticks in MySQL', () => {
    expect(lex('"a\\"b" `c``d`', MYSQL)).toEqual(['string:"a\\"b"', 'qident:`c``d`']);
    expect(lex('"a""b"', POSTGRES)).toEqual(['qident:"a""b"']);
  });

  it('reads dollar quotes, but not parameters, in PostgreSQL', () => {
    expect(lex("$tag$ it's $$ $tag$ $1 a$b", POSTGRES)).toEqual([
      "string:$tag$ it's $$ $tag$",
      'punct:$',
      'number:1',
      'word:a$b',
    ]);
  });

  it('keeps the prefix of N, B, X, E and U& literals and of U& identifiers in the token', () => {
    expect(lex("N'a' B'01' X'ff' U&'d\\0061' U&\"x\"", POSTGRES)).toEqual([
      "string:N'a'",
      "string:B'01'",
      "string:X'ff'",
      "string:U&'d\\0061'",
      'qident:U&"x"',
    ]);
    expect(lex("_utf8mb4'a' x'ff'", MYSQL)).toEqual(['word:_utf8mb4', "string:'a'", "string:x'ff'"]);
  });
});
