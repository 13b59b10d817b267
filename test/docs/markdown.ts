import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../stack/prerequisites';

/**
 * Reads the commands out of the README and docs/: fenced shell blocks and
 * inline code that starts with npm, npx or aws. Shared by the test that checks
 * every command is run somewhere and the tests that run the docs' blocks as
 * written.
 */

/** The pages whose commands are checked: the README and every page of docs/. */
export function docPages(root = projectRoot): string[] {
  const docs = readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`);
  return ['README.md', ...docs];
}

/** The marker, on the line before a block or just before an inline span, of a command only a real AWS account can run. */
export const NEEDS_ACCOUNT_MARKER = '<!-- needs: aws-account -->';

/** Fence languages whose blocks hold shell commands; a block without a language counts as one. */
const SHELL_LANGUAGES = new Set(['', 'sh', 'bash', 'shell', 'console', 'zsh']);

export interface ShellBlock {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The nearest heading above the block, without its #s. */
  section: string;
  /** Position among the shell blocks of that section, from 0. */
  index: number;
  text: string;
  needsAccount: boolean;
}

export interface InlineCommand {
  file: string;
  line: number;
  text: string;
  needsAccount: boolean;
}

export interface DocCommands {
  blocks: ShellBlock[];
  inline: InlineCommand[];
}

/** Inline code that is a command: optional VAR=value words, then npm, npx or aws. */
const INLINE_COMMAND = /^(?:[A-Za-z_]\w*=\S*\s+)*(?:npm|npx|aws)\s/;

export function readDocCommands(file: string, markdown: string): DocCommands {
  const lines = markdown.split('\n');
  const blocks: ShellBlock[] = [];
  const inline: InlineCommand[] = [];
  let section = '';
  let sectionBlocks = 0;
  let paragraph: { start: number; lines: string[] } | undefined;

  const flushParagraph = () => {
    if (paragraph) inline.push(...inlineCommands(file, paragraph.start, paragraph.lines.join('\n')));
    paragraph = undefined;
  };

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const fence = /^\s*(`{3,}|~{3,})\s*([\w-]*)/.exec(line);
    if (fence) {
      flushParagraph();
      const [, marker = '```', language = ''] = fence;
      const body: string[] = [];
      let j = i + 1;
      while (j < lines.length && !(lines[j] ?? '').trim().startsWith(marker)) body.push(lines[j++] ?? '');
      if (SHELL_LANGUAGES.has(language.toLowerCase())) {
        blocks.push({
          file,
          line: i + 1,
          section,
          index: sectionBlocks++,
          text: body.join('\n'),
          needsAccount: previousNonBlank(lines, i) === NEEDS_ACCOUNT_MARKER,
        });
      }
      i = j;
      continue;
    }
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      flushParagraph();
      section = heading[1] ?? '';
      sectionBlocks = 0;
      continue;
    }
    if (line.trim() === '') {
      flushParagraph();
      continue;
    }
    paragraph ??= { start: i + 1, lines: [] };
    paragraph.lines.push(line);
  }
  flushParagraph();
  return { blocks, inline };
}

function previousNonBlank(lines: string[], index: number): string {
  for (let i = index - 1; i >= 0; i--) {
    const line = (lines[i] ?? '').trim();
    if (line !== '') return line;
  }
  return '';
}

/** Code spans of one paragraph (they may run over a line break) that are commands. */
function inlineCommands(file: string, startLine: number, text: string): InlineCommand[] {
  const found: InlineCommand[] = [];
  const span = /(`+)([\s\S]*?[^`])\1(?!`)/g;
  for (let match = span.exec(text); match; match = span.exec(text)) {
    const code = (match[2] ?? '').replace(/\s+/g, ' ').trim();
    if (!INLINE_COMMAND.test(`${code} `)) continue;
    const before = text.slice(0, match.index);
    found.push({
      file,
      line: startLine + (before.match(/\n/g)?.length ?? 0),
      text: code,
      needsAccount: before.trimEnd().endsWith(NEEDS_ACCOUNT_MARKER),
    });
  }
  return found;
}

/** One simple command of a shell text: its words (quotes kept) and where it starts. */
export interface SimpleCommand {
  /** VAR=value words before the program, by name. */
  env: string[];
  /** The program and its arguments, as written (quotes kept). */
  words: string[];
  /** 0-based offset in the text. */
  offset: number;
}

/**
 * The simple commands of a shell text: split at newlines, `;`, `&`, `&&`, `||`
 * and `|` outside quotes, after joining continuation lines and dropping
 * comments; the commands inside `$(...)` are listed too. Shell functions
 * defined in the text (`out() { ...; }`) count as their bodies, and calls to
 * them are left out; so are bare assignments and keywords such as `done`.
 */
export function simpleCommands(script: string): SimpleCommand[] {
  const commands = splitCommands(script, 0);
  const functions = new Set<string>();
  const result: SimpleCommand[] = [];
  for (const { text, offset } of commands) {
    let rest = text;
    const definition = /^([A-Za-z_][\w-]*)\s*\(\)\s*\{\s*/.exec(rest);
    if (definition) {
      functions.add(definition[1] ?? '');
      rest = rest.slice(definition[0].length);
    }
    rest = rest.replace(/^(?:\{|then|do|else|!)\s+/, '').replace(/\s*\}$/, '');
    const words = shellWords(rest);
    const env: string[] = [];
    while (words.length > 0 && /^[A-Za-z_]\w*=/.test(words[0] ?? ''))
      env.push((words.shift() ?? '').split('=')[0] ?? '');
    const program = words[0];
    if (!program || ['}', 'fi', 'done', 'esac', 'for', 'while', 'if', 'case'].includes(program)) continue;
    result.push({ env, words, offset });
  }
  return result.filter((c) => !functions.has(c.words[0] ?? ''));
}

function splitCommands(script: string, base: number): Array<{ text: string; offset: number }> {
  const commands: Array<{ text: string; offset: number }> = [];
  const nested: Array<{ text: string; offset: number }> = [];
  let current = '';
  let start = 0;
  let quote: '"' | "'" | undefined;
  const flush = (at: number) => {
    if (current.trim() !== '') commands.push({ text: current.trim(), offset: base + start });
    current = '';
    start = at;
  };
  for (let i = 0; i < script.length; i++) {
    const c = script[i] ?? '';
    const next = script[i + 1] ?? '';
    if (quote === "'") {
      current += c;
      if (c === "'") quote = undefined;
      continue;
    }
    if (c === '\\') {
      current += next === '\n' ? ' ' : c + next;
      i++;
      continue;
    }
    if (c === '$' && next === '(') {
      const end = matchingParen(script, i + 1);
      const inner = script.slice(i + 2, end);
      const arithmetic = inner.startsWith('(');
      nested.push(
        ...(arithmetic ? substitutionsIn(inner, base + i + 2) : splitCommands(inner, base + i + 2)),
      );
      current += script.slice(i, end + 1);
      i = end;
      continue;
    }
    if (quote === '"') {
      current += c;
      if (c === '"') quote = undefined;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      current += c;
      continue;
    }
    if (c === '#' && (current === '' || /\s/.test(current.at(-1) ?? ''))) {
      while (i + 1 < script.length && script[i + 1] !== '\n') i++;
      continue;
    }
    const redirection = c === '&' && (current.endsWith('>') || next === '>');
    if (!redirection && (c === '\n' || c === ';' || c === '&' || c === '|')) {
      if ((c === '&' || c === '|') && next === c) i++;
      flush(i + 1);
      continue;
    }
    if (current === '' && /\s/.test(c)) {
      start = i + 1;
      continue;
    }
    current += c;
  }
  flush(script.length);
  return [...commands, ...nested];
}

/** The command substitutions inside an arithmetic expansion, e.g. `$(( $(date +%s) * 1000 ))`. */
function substitutionsIn(text: string, base: number): Array<{ text: string; offset: number }> {
  const found: Array<{ text: string; offset: number }> = [];
  for (let i = text.indexOf('$('); i >= 0; i = text.indexOf('$(', i + 1)) {
    const end = matchingParen(text, i + 1);
    found.push(...splitCommands(text.slice(i + 2, end), base + i + 2));
    i = end;
  }
  return found;
}

/** The index of the `)` that closes the `(` at `open`, skipping quoted text. */
function matchingParen(text: string, open: number): number {
  let depth = 0;
  let quote: string | undefined;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"') i++;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return i;
  }
  return text.length;
}

/** Splits one simple command into words, keeping quotes and `$(...)` inside the word they belong to. */
export function shellWords(command: string): string[] {
  const words: string[] = [];
  let word = '';
  let quote: string | undefined;
  for (let i = 0; i < command.length; i++) {
    const c = command[i] ?? '';
    if (quote) {
      word += c;
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"') word += command[++i] ?? '';
      continue;
    }
    if (c === '$' && command[i + 1] === '(') {
      const end = matchingParen(command, i + 1);
      word += command.slice(i, end + 1);
      i = end;
    } else if (c === '"' || c === "'") {
      quote = c;
      word += c;
    } else if (c === '\\') {
      word += c + (command[++i] ?? '');
    } else if (/\s/.test(c)) {
      if (word !== '') words.push(word);
      word = '';
    } else {
      word += c;
    }
  }
  if (word !== '') words.push(word);
  return words;
}

/** Shell blocks that tests run as written, by id: the test passes the id to `docBlock`. */
export const BLOCKS_RUN_BY_TESTS = {
  'exporter-setup': {
    file: 'docs/deploy.md',
    section: 'Enable the exporter for a cluster',
    index: 0,
    test: 'test/docs/operator-commands.test.ts',
  },
  'cross-account-cluster': {
    file: 'docs/deploy.md',
    section: 'Clusters in other accounts',
    index: 2,
    test: 'test/docs/operator-commands.test.ts',
  },
  'watch-rotation': {
    file: 'docs/operations.md',
    section: 'Enable rotation for a secret: preflight, attach, watch',
    index: 1,
    test: 'test/docs/operator-commands.test.ts',
  },
  'watermark-delete': {
    file: 'docs/operations.md',
    section: 'Resetting a watermark',
    index: 0,
    test: 'test/docs/operator-commands.test.ts',
  },
  'watermark-move': {
    file: 'docs/operations.md',
    section: 'Resetting a watermark',
    index: 1,
    test: 'test/docs/operator-commands.test.ts',
  },
} as const;

export type BlockId = keyof typeof BLOCKS_RUN_BY_TESTS;

/** The text of a registered block as the docs have it now; throws, naming the block, when it is gone. */
export function docBlock(id: BlockId, root = projectRoot): string {
  const { file, section, index } = BLOCKS_RUN_BY_TESTS[id];
  const { blocks } = readDocCommands(file, readFileSync(join(root, file), 'utf8'));
  const block = blocks.find((b) => b.section === section && b.index === index);
  if (!block) {
    throw new Error(
      `${file} has no shell block ${index} under "${section}" (block "${id}" of BLOCKS_RUN_BY_TESTS in test/docs/markdown.ts): update the entry`,
    );
  }
  return block.text;
}
