/**
 * Masks credentials inside SQL text before it leaves the database: the literal
 * that carries a password, a key or a token becomes `'<redacted>'`, the
 * password inside a connection string or URI becomes `<redacted>`, the rest of
 * the statement stays readable.
 *
 * The text is lexed, not pattern-matched, under every mode its server may have
 * been in (backslash escapes on and off, ANSI_QUOTES, both dialects when the
 * dialect is not known), and the union of what each reading finds is masked:
 * a wrong guess about the mode can only mask more.
 */
import type { LexMode, SqlDialect } from './lexer';
import { findSecrets, MAY_HOLD_SECRET, type Span } from './rules';

export type { SqlDialect } from './lexer';

export const REDACTED_LITERAL = "'<redacted>'";
const REDACTED_INNER = '<redacted>';

const DIALECTS: readonly SqlDialect[] = ['mysql', 'postgres'];
/** Where MySQL and PostgreSQL lexers part: quotes, comments, dollar quoting, backslashes, E'' and U&''. */
const DIALECT_SPECIFIC = /["#`$\\]|\/\*|--|[EeUu]&?'/;

const MODES: Record<SqlDialect, readonly LexMode[]> = {
  mysql: [
    { dialect: 'mysql', backslash: true, dqBackslash: true },
    // ANSI_QUOTES: "..." is an identifier, without escapes.
    { dialect: 'mysql', backslash: true, dqBackslash: false },
    // NO_BACKSLASH_ESCAPES
    { dialect: 'mysql', backslash: false, dqBackslash: false },
  ],
  postgres: [
    // standard_conforming_strings on (the default since 9.1), then off (and Redshift, which always escapes).
    { dialect: 'postgres', backslash: false, dqBackslash: false },
    { dialect: 'postgres', backslash: true, dqBackslash: false },
  ],
};

/** Masks every credential in SQL text of `dialect` (`any`: it may be either). */
export function maskSql(sql: string, dialect: SqlDialect | 'any' = 'any'): string {
  if (!MAY_HOLD_SECRET.test(sql)) return sql;
  const spans: Span[] = [];
  // Without a backslash every mode of a dialect reads the text alike: one reading is enough.
  const backslash = sql.includes('\\');
  // Without any character the dialects lex differently, either dialect reads it as the other would.
  const dialects =
    dialect !== 'any' ? [dialect] : DIALECT_SPECIFIC.test(sql) ? DIALECTS : DIALECTS.slice(0, 1);
  for (const d of dialects) {
    const modes = MODES[d];
    if (backslash) for (const mode of modes) findSecrets(sql, mode, spans);
    else findSecrets(sql, modes[0] as LexMode, spans);
  }
  return spans.length === 0 ? sql : applySpans(sql, spans);
}

/** Masks every credential in one exported SQL text, whichever engine logged it. */
export function redactSql(sql: string): string {
  return maskSql(sql, 'any');
}

/** Replaces the union of the spans; where spans overlap, the first decides the replacement. */
function applySpans(sql: string, spans: Span[]): string {
  spans.sort((a, b) => a.start - b.start || b.end - a.end);
  let out = '';
  let at = 0;
  let i = 0;
  while (i < spans.length) {
    const first = spans[i] as Span;
    let end = first.end;
    let literal = first.literal;
    for (i++; i < spans.length && (spans[i] as Span).start < end; i++) {
      const next = spans[i] as Span;
      // An inner span that a literal span of another reading also covers from its start is shown as the literal.
      if (next.start === first.start && next.literal) literal = true;
      end = Math.max(end, next.end);
    }
    if (end <= first.start) continue;
    out += sql.slice(at, first.start) + (literal ? REDACTED_LITERAL : REDACTED_INNER);
    at = end;
  }
  return out + sql.slice(at);
}
