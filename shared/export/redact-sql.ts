/**
 * Masks credentials inside SQL text before it leaves the database: the literal
 * that carries a password, a key or a token becomes `'<redacted>'`, the rest of
 * the statement stays readable.
 */

export const REDACTED_LITERAL = "'<redacted>'";

/**
 * A quoted literal: single or double quotes with doubled quotes or backslash
 * escapes inside, PostgreSQL E'...' and dollar quoting. Backslash is treated as
 * an escape everywhere: where it is not one (standard_conforming_strings), the
 * mask runs on to the next quote, which over-masks rather than leaks.
 */
const LITERAL = String.raw`(?:[Ee]?'(?:[^'\\]|\\[\s\S]|'')*'?|"(?:[^"\\]|\\[\s\S]|"")*"?|\$(?<tag>[A-Za-z_]\w*)?\$[\s\S]*?(?:\$\k<tag>\$|$))`;

/** Keywords directly followed by a secret literal. */
const BEFORE_LITERAL = [
  // MySQL / MariaDB: IDENTIFIED BY 'x', IDENTIFIED BY PASSWORD '*hash', IDENTIFIED WITH p BY|AS 'x',
  // IDENTIFIED VIA p USING 'x' | USING PASSWORD('x') (the function form is caught below).
  String.raw`\bIDENTIFIED\s+(?:(?:WITH|VIA)\s+[\w'"\x60]+\s+)?(?:BY|AS|USING)\s+(?:PASSWORD\s+)?`,
  // SET PASSWORD [FOR user] = 'x'
  String.raw`\bSET\s+PASSWORD\b[^=;]*=\s*`,
  // PostgreSQL / Redshift CREATE|ALTER ROLE|USER ... [ENCRYPTED] PASSWORD 'x' (with or without WITH).
  String.raw`\bPASSWORD\s*=?\s*`,
  // MySQL replication and federated credentials.
  String.raw`\b(?:MASTER|SOURCE)_PASSWORD\s*=\s*`,
  // Redshift COPY / UNLOAD credentials.
  String.raw`\b(?:CREDENTIALS|ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|MASTER_SYMMETRIC_KEY)\s+(?:AS\s+)?`,
];

/** Functions whose arguments are secrets: PASSWORD('x'), OLD_PASSWORD('x'), ENCRYPT/AES_ENCRYPT keys are data. */
const PASSWORD_FUNCTION = new RegExp(String.raw`\b((?:OLD_)?PASSWORD\s*\(\s*)${LITERAL}(\s*\))`, 'gi');
const KEYWORD_LITERAL = new RegExp(`(${BEFORE_LITERAL.join('|')})${LITERAL}`, 'gi');

/** A cheap first look: most statements mention none of these words and skip the regexes. */
const MAY_HOLD_SECRET = /password|identified|credentials|access_key|session_token|symmetric_key/i;

/** Masks every credential literal in one SQL statement. */
export function redactSql(sql: string): string {
  if (!MAY_HOLD_SECRET.test(sql)) return sql;
  return sql
    .replace(PASSWORD_FUNCTION, (_m, before: string, _tag: unknown, after: string) => {
      return `${before}${REDACTED_LITERAL}${after}`;
    })
    .replace(KEYWORD_LITERAL, (_m, keyword: string) => `${keyword}${REDACTED_LITERAL}`);
}
