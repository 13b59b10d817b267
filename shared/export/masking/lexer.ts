/**
 * A small SQL lexer, just enough to tell where literals, identifiers and
 * comments begin and end in MySQL/MariaDB and PostgreSQL/Redshift text. It never
 * fails: text it cannot place becomes a one-character token, and a literal or
 * comment without its end runs to the end of the text (marked `unterminated`).
 */

export type SqlDialect = 'mysql' | 'postgres';

/** How backslashes behave; the masker lexes under every mode that may apply and masks the union. */
export interface LexMode {
  readonly dialect: SqlDialect;
  /** Backslash escapes in '...' (MySQL without NO_BACKSLASH_ESCAPES; PostgreSQL with standard_conforming_strings off, and Redshift). */
  backslash: boolean;
  /** MySQL only: backslash escapes in "..." (a string unless ANSI_QUOTES, then an identifier without escapes). */
  dqBackslash: boolean;
}

export type TokenKind = 'word' | 'qident' | 'string' | 'number' | 'punct' | 'comment';

export interface Token {
  kind: TokenKind;
  start: number;
  end: number;
  /** The text between the delimiters of a literal, a quoted identifier or a comment. */
  bodyStart: number;
  bodyEnd: number;
  unterminated: boolean;
  /** A string whose body takes backslash escapes. */
  escapes: boolean;
  /** Words upper-cased, quoted identifiers unquoted and upper-cased, punctuation as is. */
  name: string;
}

enum Ch {
  Tab = 9,
  Lf = 10,
  Cr = 13,
  Space = 32,
  Bang = 33,
  DoubleQuote = 34,
  Hash = 35,
  Dollar = 36,
  Amp = 38,
  Quote = 39,
  Star = 42,
  Plus = 43,
  Minus = 45,
  Slash = 47,
  Zero = 48,
  Nine = 57,
  Backslash = 92,
  Underscore = 95,
  Backtick = 96,
}

const isSpace = (c: number) => c === Ch.Space || (c >= Ch.Tab && c <= Ch.Cr);
const isDigit = (c: number) => c >= Ch.Zero && c <= Ch.Nine;
const isWordStart = (c: number) =>
  (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === Ch.Underscore || c >= 0x80;
const isWordPart = (c: number) => isWordStart(c) || isDigit(c) || c === Ch.Dollar;
const DOLLAR_TAG = /\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y;

export class Lexer {
  /** Inside a MySQL executable comment (`/*! ... *\/`, `/*M! ... *\/`), whose text is SQL. */
  private executable = false;

  constructor(
    private readonly text: string,
    readonly mode: LexMode,
    private pos: number,
    private readonly limit: number,
  ) {}

  next(): Token | undefined {
    const { text, limit } = this;
    const mysql = this.mode.dialect === 'mysql';
    for (;;) {
      while (this.pos < limit && isSpace(text.charCodeAt(this.pos))) this.pos++;
      const start = this.pos;
      if (start >= limit) return undefined;
      const c = text.charCodeAt(start);
      const c1 = start + 1 < limit ? text.charCodeAt(start + 1) : -1;
      // Comments. MySQL's `-- ` needs a blank or control character after the dashes.
      if (c === Ch.Minus && c1 === Ch.Minus) {
        const c2 = start + 2 < limit ? text.charCodeAt(start + 2) : 0;
        if (!mysql || c2 <= Ch.Space) return this.lineComment(start, start + 2);
      }
      if (c === Ch.Hash && mysql) return this.lineComment(start, start + 1);
      if (c === Ch.Slash && c1 === Ch.Star) {
        if (mysql) {
          const bang = this.executableOpener(start + 2);
          if (bang > 0) {
            this.pos = bang;
            this.executable = true;
            continue;
          }
        }
        return this.blockComment(start, mysql);
      }
      if (c === Ch.Star && c1 === Ch.Slash && mysql && this.executable) {
        this.pos = start + 2;
        this.executable = false;
        continue;
      }
      // Literals and quoted identifiers.
      if (c === Ch.Quote) return this.quoted(start, start, 'string', Ch.Quote, this.mode.backslash);
      if (c === Ch.DoubleQuote) {
        return mysql
          ? this.quoted(start, start, 'string', Ch.DoubleQuote, this.mode.dqBackslash)
          : this.quoted(start, start, 'qident', Ch.DoubleQuote, false);
      }
      if (c === Ch.Backtick && mysql) return this.quoted(start, start, 'qident', Ch.Backtick, false);
      if (c === Ch.Dollar && !mysql && !isDigit(c1)) {
        DOLLAR_TAG.lastIndex = start;
        const tag = DOLLAR_TAG.exec(text);
        if (tag && DOLLAR_TAG.lastIndex <= limit) return this.dollarQuoted(start, tag[0]);
      }
      if (isWordStart(c) || (c === Ch.Dollar && mysql)) {
        const prefixed = this.prefixedLiteral(start, c, c1, mysql);
        if (prefixed) return prefixed;
        let end = start + 1;
        while (end < limit && isWordPart(text.charCodeAt(end))) end++;
        return this.token('word', start, end);
      }
      if (isDigit(c)) {
        let end = start + 1;
        while (end < limit && (isWordPart(text.charCodeAt(end)) || text.charCodeAt(end) === 46)) end++;
        return this.token('number', start, end);
      }
      return this.token('punct', start, start + 1);
    }
  }

  private token(kind: TokenKind, start: number, end: number, unterminated = false): Token {
    this.pos = end;
    const raw = this.text.slice(start, end);
    return {
      kind,
      start,
      end,
      bodyStart: start,
      bodyEnd: end,
      unterminated,
      escapes: false,
      name: kind === 'word' ? raw.toUpperCase() : raw,
    };
  }

  /** E'..', N'..', B'..', X'..', U&'..' and U&"..": the prefix letter is part of the token. */
  private prefixedLiteral(start: number, c: number, c1: number, mysql: boolean): Token | undefined {
    const letter = c | 0x20;
    if (c1 === Ch.Quote) {
      if (letter === 0x65 /* e */ && !mysql) return this.quoted(start, start + 1, 'string', Ch.Quote, true);
      if (letter === 0x6e /* n */)
        return this.quoted(start, start + 1, 'string', Ch.Quote, this.mode.backslash);
      if (letter === 0x62 /* b */ || letter === 0x78 /* x */) {
        return this.quoted(start, start + 1, 'string', Ch.Quote, false);
      }
    }
    if (letter === 0x75 /* u */ && c1 === Ch.Amp && !mysql) {
      const q = start + 2 < this.limit ? this.text.charCodeAt(start + 2) : -1;
      // The UESCAPE character only changes how the body decodes, not where it ends.
      if (q === Ch.Quote) return this.quoted(start, start + 2, 'string', Ch.Quote, false);
      if (q === Ch.DoubleQuote) return this.quoted(start, start + 2, 'qident', Ch.DoubleQuote, false);
    }
    return undefined;
  }

  private quoted(start: number, open: number, kind: TokenKind, quote: number, backslash: boolean): Token {
    const { text, limit } = this;
    let i = open + 1;
    for (;;) {
      if (backslash) {
        while (i < limit) {
          const c = text.charCodeAt(i);
          if (c === quote || c === Ch.Backslash) break;
          i++;
        }
      } else {
        const at = text.indexOf(quote === Ch.Quote ? "'" : quote === Ch.DoubleQuote ? '"' : '`', i);
        i = at < 0 || at >= limit ? limit : at;
      }
      if (i >= limit) return this.literal(kind, start, open + 1, limit, limit, true, backslash);
      if (text.charCodeAt(i) === Ch.Backslash) {
        i += 2;
        continue;
      }
      if (i + 1 < limit && text.charCodeAt(i + 1) === quote) {
        i += 2;
        continue;
      }
      return this.literal(kind, start, open + 1, i, i + 1, false, backslash);
    }
  }

  private dollarQuoted(start: number, tag: string): Token {
    const bodyStart = start + tag.length;
    const close = this.text.indexOf(tag, bodyStart);
    if (close < 0 || close + tag.length > this.limit) {
      return this.literal('string', start, bodyStart, this.limit, this.limit, true);
    }
    return this.literal('string', start, bodyStart, close, close + tag.length, false);
  }

  private literal(
    kind: TokenKind,
    start: number,
    bodyStart: number,
    bodyEnd: number,
    end: number,
    unterminated: boolean,
    escapes = false,
  ): Token {
    this.pos = end;
    let name = '';
    if (kind === 'qident') name = decodeIdentifier(this.text.slice(bodyStart, bodyEnd));
    return {
      kind,
      start,
      end,
      bodyStart,
      bodyEnd: Math.max(bodyStart, bodyEnd),
      unterminated,
      escapes,
      name,
    };
  }

  private lineComment(start: number, bodyStart: number): Token {
    const { text, limit } = this;
    let end = bodyStart;
    // Ends at either line break: what one engine reads as comment the other may run, and comment bodies are scanned too.
    while (end < limit) {
      const c = text.charCodeAt(end);
      if (c === Ch.Lf || c === Ch.Cr) break;
      end++;
    }
    return this.literal('comment', start, bodyStart, end, end, false);
  }

  /** PostgreSQL nests block comments; MySQL ends one at the first `*\/`. */
  private blockComment(start: number, mysql: boolean): Token {
    const { text, limit } = this;
    let depth = 1;
    let i = start + 2;
    while (i < limit) {
      const c = text.charCodeAt(i);
      const c1 = i + 1 < limit ? text.charCodeAt(i + 1) : -1;
      if (c === Ch.Star && c1 === Ch.Slash) {
        depth--;
        if (depth === 0) return this.literal('comment', start, start + 2, i, i + 2, false);
        i += 2;
      } else if (c === Ch.Slash && c1 === Ch.Star && !mysql) {
        depth++;
        i += 2;
      } else i++;
    }
    return this.literal('comment', start, start + 2, limit, limit, true);
  }

  /** The position after `/*!`, `/*!50700`, `/*M!` or `/*M!100100`, or 0 when `from` opens no executable comment. */
  private executableOpener(from: number): number {
    const { text, limit } = this;
    let i = from;
    if (i < limit && text.charCodeAt(i) === 77 /* M */) i++;
    if (i >= limit || text.charCodeAt(i) !== Ch.Bang) return 0;
    i++;
    const digits = i;
    while (i < limit && i - digits < 6 && isDigit(text.charCodeAt(i))) i++;
    return i;
  }
}

/**
 * A quoted identifier's name: doubled quotes undone, PostgreSQL U& escapes
 * decoded (a backslash unless UESCAPE names another escape), upper-cased.
 */
export function decodeIdentifier(body: string, escapeChar = '\\'): string {
  let name = body.replace(/""|``/g, (q) => q.charAt(0));
  if (name.includes(escapeChar)) {
    const e = escapeChar.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const escapes = new RegExp(`${e}(?:\\+([0-9A-Fa-f]{6})|([0-9A-Fa-f]{4}))`, 'g');
    name = name.replace(escapes, (_m, six?: string, four?: string) => {
      const code = Number.parseInt(six ?? four ?? '0', 16);
      return code <= 0x10ffff ? String.fromCodePoint(code) : '';
    });
  }
  return name.toUpperCase();
}
