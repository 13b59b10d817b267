import { decodeIdentifier, Lexer, type LexMode, type Token } from './lexer';

/**
 * A stretch of the text to hide: `literal` spans are replaced by a whole
 * `'<redacted>'`, the others (a password inside a connection string) by `<redacted>`.
 */
export interface Span {
  start: number;
  end: number;
  literal: boolean;
}

/** Words that may follow a credential keyword as syntax, not as an unquoted value. */
const BARE_KEYWORDS = new Set([
  'RANDOM',
  'NULL',
  'PASSWORD',
  'FOR',
  'FROM',
  'WHERE',
  'AND',
  'OR',
  'IS',
  'AS',
  'TO',
  'WITH',
  'USING',
  'VALID',
  'EXPIRE',
  'DEFAULT',
  'REPLACE',
  'RETAIN',
  'DISCARD',
  'REQUIRE',
  'ACCOUNT',
  'NOT',
  'IN',
]);

/** Names whose value is a credential: PASSWORD and every *_PASSWORD / *PASSWD option, and Redshift's keys. */
const isCredentialName = (name: string) =>
  name.endsWith('PASSWORD') || name.endsWith('PASSWD') || CREDENTIAL_NAMES.has(name);
const CREDENTIAL_NAMES = new Set([
  'CREDENTIALS',
  'ACCESS_KEY_ID',
  'SECRET_ACCESS_KEY',
  'SESSION_TOKEN',
  'MASTER_SYMMETRIC_KEY',
]);

/** Functions whose arguments are passwords or keys (the data an encryption function takes is masked with its key). */
const SECRET_FUNCTIONS = new Set([
  'PASSWORD',
  'OLD_PASSWORD',
  'ENCRYPT',
  'CRYPT',
  'AES_ENCRYPT',
  'AES_DECRYPT',
  'DES_ENCRYPT',
  'DES_DECRYPT',
  'PGP_SYM_ENCRYPT',
  'PGP_SYM_DECRYPT',
  'PGP_SYM_ENCRYPT_BYTEA',
  'PGP_SYM_DECRYPT_BYTEA',
]);

/** Words between a credential name and its value: `PASSWORD = 'x'`, `CREDENTIALS AS 'x'`, `SET x.password TO 'x'`. */
const LINKING_WORDS = new Set(['AS', 'TO']);

/** `password=x`, `PWD=x`, `"password":"x"` inside a literal or comment (libpq conninfo, URI query, ODBC, JSON). */
const KEY_VALUE =
  /(?:passw(?:or)?d|pwd|secret_access_key|session_token)(?:\\?["'])?[ \t\r\n]*[=:][ \t\r\n]*/gi;
/**
 * `scheme://user:password@host`: the password runs to the last `@` before a
 * blank. The bounds keep a long body linear (no rescans from every letter).
 */
const URI_PASSWORD = /[A-Za-z][A-Za-z0-9+.-]{0,31}:\/\/[^\s/?#@:]{0,256}:(\S{0,1024})@/g;

/**
 * A cheap first look: a text that mentions none of these can hold no
 * credential the rules find, and skips the lexer. Every keyword, function and
 * key the rules act on contains one of them (`u&"` for identifiers spelled with
 * Unicode escapes, `at or near "` for PostgreSQL's error messages). Most of
 * its words are long, which lets the regular expression skip ahead: on text
 * without any it costs about 1.5 times the pattern masker's first look.
 */
export const MAY_HOLD_SECRET =
  /passw|pwd|identified|credentials|access_key|session_token|symmetric_key|crypt|:\/\/|u&"|at or near "/i;

/** How deep literals inside literals (`EXECUTE 'ALTER ROLE r PASSWORD ''x'''`) and comments are read as SQL. */
const MAX_DEPTH = 4;

/**
 * Adds to `spans` every credential in `text[from, to)` read under `mode`.
 * Comment bodies, and string bodies that mention a credential word, are read
 * as SQL too (a commented-out statement, a dynamic statement in EXECUTE or a
 * DO block can carry a password). At depth 0 an unterminated literal masks
 * everything after it; deeper it is prose (`-- don't`).
 */
export function findSecrets(
  text: string,
  mode: LexMode,
  spans: Span[],
  from = 0,
  to = text.length,
  depth = 0,
): void {
  const lexer = new Lexer(text, { ...mode }, from, to);
  const tokens: Token[] = [];
  let statement = 0;
  for (let t = lexer.next(); t; t = lexer.next()) {
    if (t.kind === 'comment') {
      if (mayHoldSecret(text, t) && depth < MAX_DEPTH) {
        maskKeyValues(text, t.bodyStart, t.bodyEnd, spans);
        findSecrets(text, lexer.mode, spans, t.bodyStart, t.bodyEnd, depth + 1);
        findInProse(text, t, lexer.mode, spans, depth + 1);
      }
      continue;
    }
    if (t.kind === 'string' || t.kind === 'qident') {
      if (t.unterminated && depth === 0) spans.push({ start: t.start, end: to, literal: true });
      if (mayHoldSecret(text, t)) {
        maskKeyValues(text, t.bodyStart, t.bodyEnd, spans);
        if (t.kind === 'string' && depth < MAX_DEPTH) findInStringBody(text, t, lexer.mode, spans, depth + 1);
      }
    }
    tokens.push(t);
    if (t.kind === 'punct' && t.name === ';') {
      followModeChange(text, tokens, statement, lexer.mode);
      statement = tokens.length;
    }
  }
  new CredentialRules(text, tokens, spans, to).apply();
}

/** Whether a literal's or comment's body mentions what the rules look for (most bodies are short and do not). */
function mayHoldSecret(text: string, t: Token): boolean {
  return t.bodyEnd - t.bodyStart >= 3 && MAY_HOLD_SECRET.test(text.slice(t.bodyStart, t.bodyEnd));
}

/**
 * Reads a comment once more with the apostrophes of prose (`it's`, `don't`)
 * blanked, so that one of them does not hide a credential later in the comment.
 */
function findInProse(text: string, t: Token, mode: LexMode, spans: Span[], depth: number): void {
  const body = text.slice(t.bodyStart, t.bodyEnd);
  const prose = body.replace(/(?<=\p{L})'(?=\p{L})/gu, ' ');
  if (prose === body) return;
  const inner: Span[] = [];
  findSecrets(prose, mode, inner, 0, prose.length, depth);
  for (const s of inner)
    spans.push({ start: t.bodyStart + s.start, end: t.bodyStart + s.end, literal: s.literal });
}

/**
 * Reads a string's body as SQL: quotes undone (doubled, or backslash-escaped
 * where the string takes escapes), what is found mapped back onto the raw body
 * and shown as a bare `<redacted>`, so the enclosing literal stays one literal.
 */
function findInStringBody(text: string, t: Token, mode: LexMode, spans: Span[], depth: number): void {
  const body = text.slice(t.bodyStart, t.bodyEnd);
  const quote = text.charAt(t.bodyStart - 1);
  if (quote !== "'" && quote !== '"') {
    // Dollar-quoted: the body is the text as is.
    findSecrets(text, mode, spans, t.bodyStart, t.bodyEnd, depth);
    return;
  }
  let decoded = '';
  const raw: number[] = [];
  for (let i = 0; i < body.length; i++) {
    raw.push(i);
    const c = body.charAt(i);
    if (c === quote && body.charAt(i + 1) === quote) i++;
    else if (c === '\\' && t.escapes && i + 1 < body.length) {
      i++;
      decoded += /[ntrbZ0]/.test(body.charAt(i)) ? ' ' : body.charAt(i);
      continue;
    }
    decoded += c;
  }
  raw.push(body.length);
  const inner: Span[] = [];
  findSecrets(decoded, mode, inner, 0, decoded.length, depth);
  for (const s of inner) {
    spans.push({
      start: t.bodyStart + (raw[s.start] ?? body.length),
      end: t.bodyStart + (raw[s.end] ?? body.length),
      literal: false,
    });
  }
}

/** Masks the password in connection strings, URIs and key=value lists inside `text[from, to)`. */
export function maskKeyValues(text: string, from: number, to: number, spans: Span[]): void {
  if (to - from < 4) return;
  const body = text.slice(from, to);
  URI_PASSWORD.lastIndex = 0;
  for (let m = body.includes('://') ? URI_PASSWORD.exec(body) : null; m; m = URI_PASSWORD.exec(body)) {
    const password = m[1] ?? '';
    const end = m.index + m[0].length - 1;
    if (password) spans.push({ start: from + end - password.length, end: from + end, literal: false });
  }
  KEY_VALUE.lastIndex = 0;
  for (let m = KEY_VALUE.exec(body); m; m = KEY_VALUE.exec(body)) {
    const value = m.index + m[0].length;
    if (value >= body.length) break;
    let end = value;
    const first = body.charCodeAt(value);
    // A quoted or escaped value (conninfo 'a b', JSON "x", SQL-escaped quotes) may hold blanks: hide the rest of the body.
    if (first === 39 || first === 34 || first === 92) end = body.length;
    else {
      while (end < body.length && !/\s/.test(body.charAt(end))) end++;
      if (body.slice(value, end).includes('\\')) end = body.length;
    }
    spans.push({ start: from + value, end: from + end, literal: false });
    KEY_VALUE.lastIndex = end;
  }
}

/**
 * Follows `SET standard_conforming_strings` (PostgreSQL) and `SET sql_mode`
 * (MySQL) in a multi-statement text, so that the statements after it are read
 * as the server reads them.
 */
function followModeChange(text: string, tokens: Token[], from: number, mode: LexMode): void {
  const first = tokens[from];
  if (first?.kind !== 'word' || first.name !== 'SET') return;
  const setting = mode.dialect === 'mysql' ? 'SQL_MODE' : 'STANDARD_CONFORMING_STRINGS';
  let i = from + 1;
  while (i < tokens.length && !(tokens[i]?.kind === 'word' && tokens[i]?.name === setting)) i++;
  i++;
  while (tokens[i]?.kind === 'punct' && tokens[i]?.name !== ';') i++;
  if (tokens[i]?.kind === 'word' && tokens[i]?.name === 'TO') i++;
  const value = tokens[i];
  if (!value) return;
  const v = (value.kind === 'string' ? text.slice(value.bodyStart, value.bodyEnd) : value.name).toUpperCase();
  if (mode.dialect === 'postgres') {
    if (/^(?:ON|TRUE|YES|1|DEFAULT)$/.test(v)) mode.backslash = false;
    else if (/^(?:OFF|FALSE|NO|0)$/.test(v)) mode.backslash = true;
    return;
  }
  if (value.kind !== 'string' && v !== 'DEFAULT') return;
  const noBackslash = /\bNO_BACKSLASH_ESCAPES\b/.test(v);
  mode.backslash = !noBackslash;
  mode.dqBackslash = !noBackslash && !/\bANSI(?:_QUOTES)?\b/.test(v);
}

/** Finds the literals that the tokens before them put in a credential position. */
class CredentialRules {
  constructor(
    private readonly text: string,
    private readonly tokens: Token[],
    private readonly spans: Span[],
    private readonly to: number,
  ) {}

  /** For each token, the index of the next `=` or `;` (so that `SET PASSWORD FOR` scans stay linear). */
  private stops: number[] | undefined;

  /** Walks the tokens once; a masked value's tokens are skipped (they are hidden whole). */
  apply(): void {
    const { tokens } = this;
    let identified = false;
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i] as Token;
      if (t.kind === 'punct') {
        if (t.name === ';') identified = false;
        continue;
      }
      if (t.kind !== 'word' && t.kind !== 'qident') continue;
      const name = t.kind === 'qident' ? this.identifierName(i) : t.name;
      if (this.opens(i + 1)) {
        if (SECRET_FUNCTIONS.has(name)) i = this.maskGroup(i + 1) - 1;
        continue;
      }
      if (t.kind === 'word') {
        if (name === 'IDENTIFIED') {
          identified = true;
          continue;
        }
        // IDENTIFIED [WITH|VIA plugin] BY|AS|USING [PASSWORD] 'x' [REPLACE 'old'] [OR plugin USING 'y']
        if (identified && (name === 'BY' || name === 'AS' || name === 'USING')) {
          let j = i + 1;
          if (this.isWord(j, 'PASSWORD') && !this.opens(j + 1)) j++;
          i = this.skipMasked(i, j, name === 'BY');
          continue;
        }
        // Error messages quote the token they stopped at: `syntax error at or near "'x'"`.
        if (name === 'NEAR' && this.isWord(i - 1, 'OR') && this.isWord(i - 2, 'AT')) {
          const quoted = tokens[i + 1];
          if (quoted?.kind === 'qident' && /^[EeNnBbXxUu&]*['$]/.test(this.text.slice(quoted.bodyStart))) {
            this.spans.push({ start: quoted.bodyStart, end: quoted.bodyEnd, literal: false });
          }
          continue;
        }
      }
      if (isCredentialName(name)) {
        let j = i + 1;
        if (this.isWord(j, 'FOR')) {
          // SET PASSWORD FOR user = 'x'
          j = this.nextStop(j);
          if (!this.isPunct(j, '=')) continue;
        }
        for (;;) {
          const n = tokens[j];
          if (n?.kind === 'punct' && (n.name === '=' || n.name === ':')) j++;
          else if (n?.kind === 'word' && LINKING_WORDS.has(n.name)) j++;
          else break;
        }
        i = this.skipMasked(i, j, name === 'PASSWORD' && this.inRoleStatement(i));
      }
    }
  }

  /**
   * Masks the value at `j`; the walk goes on after it, or after `i` when nothing was masked.
   * With `bare`, an unquoted word or number there is masked too: the server refuses it,
   * but the statement is logged all the same (`IDENTIFIED BY hunter2`).
   */
  private skipMasked(i: number, j: number, bare = false): number {
    const next = this.maskValue(j);
    if (next > j) return next - 1;
    const t = this.tokens[j];
    if (bare && t && (t.kind === 'number' || (t.kind === 'word' && !BARE_KEYWORDS.has(t.name)))) {
      this.spans.push({ start: t.start, end: t.end, literal: false });
      return j;
    }
    return i;
  }

  /** Whether a ROLE, USER or GROUP keyword stands shortly before `i` in its statement (`ALTER ROLE u PASSWORD x`). */
  private inRoleStatement(i: number): boolean {
    for (let k = i - 1; k >= 0 && k >= i - 6; k--) {
      const t = this.tokens[k] as Token;
      if (t.kind === 'punct' && t.name === ';') return false;
      if (t.kind === 'word' && (t.name === 'ROLE' || t.name === 'USER' || t.name === 'GROUP')) return true;
    }
    return false;
  }

  private nextStop(from: number): number {
    if (!this.stops) {
      const { tokens } = this;
      this.stops = new Array<number>(tokens.length + 1).fill(tokens.length);
      for (let j = tokens.length - 1; j >= 0; j--) {
        this.stops[j] = this.isPunct(j, '=') || this.isPunct(j, ';') ? j : (this.stops[j + 1] as number);
      }
    }
    return this.stops[from] ?? this.tokens.length;
  }

  /**
   * Masks the value at `at`: a literal (with the literals the server joins to
   * it), a parenthesised group or a call, then any `REPLACE 'old'` after it
   * (MySQL 8). Returns the index after what it masked, `at` when nothing.
   */
  private maskValue(at: number): number {
    const { tokens } = this;
    let next = at;
    for (let j = at; ; j = next + 1) {
      let t = tokens[j];
      if (!t) return next;
      if (this.isIntroducer(j)) t = tokens[++j] as Token;
      if (this.isLiteral(j)) {
        this.pushLiteral(t);
        // Literals the server joins ('a' 'b'), and those it refuses to join but logs all the same ('a' _binary 'b').
        for (;;) {
          if (tokens[j + 1]?.kind === 'string') this.pushLiteral(tokens[++j] as Token);
          else if (this.isIntroducer(j + 1)) j++;
          else break;
        }
        next = j + 1;
      } else if (this.opens(j)) next = this.maskGroup(j);
      else if ((t.kind === 'word' || t.kind === 'qident') && this.opens(j + 1)) next = this.maskGroup(j + 1);
      else return next;
      if (!this.isWord(next, 'REPLACE')) return next;
    }
  }

  /** Masks what is between the parenthesis at `open` and its match (to the end when unmatched); returns the index after it. */
  private maskGroup(open: number): number {
    const { tokens } = this;
    let depth = 0;
    for (let j = open; j < tokens.length; j++) {
      const t = tokens[j] as Token;
      if (t.kind !== 'punct') continue;
      if (t.name === '(') depth++;
      else if (t.name === ')' && --depth === 0) {
        const from = (tokens[open] as Token).end;
        if (t.start > from) this.spans.push({ start: from, end: t.start, literal: true });
        return j + 1;
      }
    }
    this.spans.push({ start: (tokens[open] as Token).end, end: this.to, literal: true });
    return tokens.length;
  }

  private pushLiteral(t: Token): void {
    this.spans.push({ start: t.start, end: t.unterminated ? this.to : t.end, literal: true });
  }

  /** A quoted identifier's name, decoded with the escape a following UESCAPE names. */
  private identifierName(i: number): string {
    const t = this.tokens[i] as Token;
    const escapeChar = this.tokens[i + 2];
    if (this.isWord(i + 1, 'UESCAPE') && escapeChar?.kind === 'string') {
      return decodeIdentifier(
        this.text.slice(t.bodyStart, t.bodyEnd),
        this.text.charAt(escapeChar.bodyStart),
      );
    }
    return t.name;
  }

  /** A charset introducer before a literal: _utf8mb4'x', _binary 0x.. */
  private isIntroducer(j: number): boolean {
    const t = this.tokens[j];
    return t?.kind === 'word' && t.name.startsWith('_') && this.isLiteral(j + 1);
  }

  private isLiteral(j: number): boolean {
    const kind = this.tokens[j]?.kind;
    return kind === 'string' || kind === 'qident' || kind === 'number';
  }

  private opens(j: number): boolean {
    return this.isPunct(j, '(');
  }

  private isPunct(j: number, name: string): boolean {
    const t = this.tokens[j];
    return t?.kind === 'punct' && t.name === name;
  }

  private isWord(j: number, name: string): boolean {
    const t = this.tokens[j];
    return t?.kind === 'word' && t.name === name;
  }
}
