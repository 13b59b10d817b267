import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { BLOCKS_RUN_BY_TESTS, type BlockId, docBlock, readDocCommands, simpleCommands } from './markdown';

/**
 * The promise that every command in the README and docs/ is one a test or CI
 * runs, as a check: each command of a fenced shell block, and each inline
 * `npm ...`, `npx ...` or `aws ...`, must be
 *   (a) an npm script that exists in package.json and that .ci/run or a test
 *       runs, with every option, environment variable and repository file the
 *       docs show; or
 *   (b) in a shell block that a test runs as written (BLOCKS_RUN_BY_TESTS,
 *       through `docBlock(id)`); or
 *   (c) marked `<!-- needs: aws-account -->` in the docs and listed in
 *       NEEDS_ACCOUNT with the reason: it only makes sense against a deployed
 *       stack in a real account.
 * Shell plumbing (cat, date, echo, ...) and bare assignments are not commands.
 */

/** Commands the docs may show without a test: each needs a deployed stack in a real AWS account. */
export const NEEDS_ACCOUNT: ReadonlyArray<{ file: string; command: string; reason: string }> = [
  { file: 'README.md', command: 'npx serverless deploy', reason: 'deploys the stack to an account' },
  { file: 'docs/deploy.md', command: 'npx serverless deploy', reason: 'deploys the stack to an account' },
  { file: 'docs/deploy.md', command: 'npx serverless info', reason: 'reads the deployed stack' },
  {
    file: 'docs/deploy.md',
    command: 'aws cloudformation describe-stacks',
    reason: "reads the deployed stack's outputs (RotateFunctionArn, ExportFunctionRoleArn)",
  },
  {
    file: 'docs/deploy.md',
    command: 'aws cloudformation deploy',
    reason: "deploys the reader role into a member account, with that account's credentials",
  },
  {
    file: 'docs/deploy.md',
    command: 'aws secretsmanager rotate-secret',
    reason: 'Secrets Manager invokes the deployed rotation function (moto cannot run a Lambda here)',
  },
  {
    file: 'docs/deploy.md',
    command: 'aws lambda invoke',
    reason: 'invokes the deployed export function (moto cannot run a Lambda here)',
  },
  {
    file: 'docs/operations.md',
    command: 'aws lambda invoke',
    reason: 'invokes the deployed functions (moto cannot run a Lambda here)',
  },
  {
    file: 'docs/operations.md',
    command: 'aws logs filter-log-events',
    reason: "reads the deployed function's CloudWatch log group (moto ignores JSON filter patterns)",
  },
  {
    file: 'docs/operations.md',
    command: 'aws sns subscribe',
    reason: "subscribes to the deployed stack's alert topic",
  },
];

/** Commands that are shell plumbing around the ones the docs are about. */
const PLUMBING = new Set([
  'cat',
  'cd',
  'date',
  'echo',
  'export',
  'false',
  'mkdir',
  'printf',
  'sleep',
  'true',
]);

export interface Runner {
  /** Where the command is run: `.ci/run:<line>` or a test file. */
  where: string;
  /** Options, environment variable names and repository files it is run with (or that its test uses). */
  covers: (item: string) => boolean;
}

export interface CheckedCommand {
  file: string;
  line: number;
  command: string;
  /** What runs it, or why it may stay unrun; empty when nothing does (see `problem`). */
  ranBy: string;
  problem?: string;
  /** Marked as needing a real AWS account (listed in NEEDS_ACCOUNT or not). */
  accountOnly?: boolean;
}

export interface Sources {
  root: string;
  pages: string[];
  read(path: string): string;
}

export function projectSources(root: string, pages: string[]): Sources {
  return { root, pages, read: (path) => readFileSync(join(root, path), 'utf8') };
}

/** Checks every command of the pages; a command with a `problem` breaks the promise. */
export function checkDocCommands(sources: Sources): { commands: CheckedCommand[]; problems: string[] } {
  const scripts = (JSON.parse(sources.read('package.json')) as { scripts: Record<string, string> }).scripts;
  const runners = collectRunners(sources, scripts);
  const commands: CheckedCommand[] = [];
  const problems: string[] = [];
  const usedEntries = new Set<(typeof NEEDS_ACCOUNT)[number]>();
  const registered = new Map<string, BlockId>(
    Object.entries(BLOCKS_RUN_BY_TESTS).map(([id, b]) => [
      `${b.file}#${b.section}#${b.index}`,
      id as BlockId,
    ]),
  );

  const check = (
    file: string,
    line: number,
    words: string[],
    env: string[],
    context: { runBy?: BlockId; needsAccount: boolean },
  ): CheckedCommand | undefined => {
    const command = [...env.map((name) => `${name}=...`), ...words].join(' ');
    const at = { file, line, command };
    if (PLUMBING.has(words[0] ?? '')) return undefined;
    if (context.runBy)
      return { ...at, ranBy: `${BLOCKS_RUN_BY_TESTS[context.runBy].test} (block as written)` };
    if (words[0] === 'npm') return { ...at, ...checkNpm(words, env, scripts, runners) };
    if (context.needsAccount) {
      const entry = NEEDS_ACCOUNT.find((e) => e.file === file && words.join(' ').startsWith(e.command));
      if (entry) {
        usedEntries.add(entry);
        return { ...at, ranBy: `needs an AWS account: ${entry.reason}`, accountOnly: true };
      }
      return {
        ...at,
        ranBy: '',
        accountOnly: true,
        problem:
          'is marked as needing an AWS account but NEEDS_ACCOUNT (test/docs/commands.ts) does not list it. ' +
          'Fix: run it in a test against the test stack if it can run there at all; list it with the reason only if it truly needs a deployed stack',
      };
    }
    return {
      ...at,
      ranBy: '',
      problem:
        'is not run by any test or by .ci/run. Fix: correct the command if it is wrong; or run its block as written in a test ' +
        '(register the block in BLOCKS_RUN_BY_TESTS, test/docs/markdown.ts, and call docBlock(id) in that test); ' +
        `or, only if it needs a deployed stack in a real account, put ${'`<!-- needs: aws-account -->`'} on the line before its block ` +
        '(or just before the inline code) and list it in NEEDS_ACCOUNT (test/docs/commands.ts) with the reason',
    };
  };

  for (const page of sources.pages) {
    const { blocks, inline } = readDocCommands(page, sources.read(page));
    for (const block of blocks) {
      const runBy = registered.get(`${block.file}#${block.section}#${block.index}`);
      if (runBy && block.needsAccount) {
        problems.push(
          `${page}:${block.line}: the block "${block.section}" ${block.index} is marked as needing an AWS account, yet ${BLOCKS_RUN_BY_TESTS[runBy].test} runs it: remove the marker`,
        );
      }
      const found: CheckedCommand[] = [];
      for (const c of simpleCommands(block.text)) {
        const line = block.line + 1 + (block.text.slice(0, c.offset).match(/\n/g)?.length ?? 0);
        const checked = check(page, line, c.words, c.env, {
          needsAccount: block.needsAccount,
          ...(runBy ? { runBy } : {}),
        });
        if (checked) found.push(checked);
      }
      if (block.needsAccount && !found.some((c) => c.accountOnly)) {
        problems.push(
          `${page}:${block.line}: the block "${block.section}" ${block.index} is marked as needing an AWS account, but none of its commands does: remove the marker`,
        );
      }
      commands.push(...found);
    }
    for (const span of inline) {
      for (const c of simpleCommands(span.text)) {
        const checked = check(page, span.line, c.words, c.env, { needsAccount: span.needsAccount });
        if (checked) commands.push(checked);
      }
    }
  }

  for (const [id, entry] of Object.entries(BLOCKS_RUN_BY_TESTS)) {
    try {
      docBlock(id as BlockId, sources.root);
    } catch (error) {
      problems.push((error as Error).message);
      continue;
    }
    const test = join(sources.root, entry.test);
    const source = existsSync(test) ? squeeze(readFileSync(test, 'utf8')) : '';
    if (!source.includes(squeeze(`docBlock('${id}'`))) {
      problems.push(
        `BLOCKS_RUN_BY_TESTS["${id}"] says ${entry.test} runs ${entry.file} "${entry.section}" ${entry.index}, but that test does not call docBlock('${id}')`,
      );
    }
  }
  for (const entry of NEEDS_ACCOUNT) {
    if (!usedEntries.has(entry) && sources.pages.includes(entry.file)) {
      problems.push(
        `NEEDS_ACCOUNT lists \`${entry.command}\` in ${entry.file}, but no command marked <!-- needs: aws-account --> there matches it: remove the entry`,
      );
    }
  }
  for (const c of commands)
    if (c.problem) problems.push(`${c.file}:${c.line}: \`${c.command}\` ${c.problem}`);
  return { commands, problems };
}

/** Leaves out whitespace and trailing commas, so that a call wrapped by the formatter still matches. */
function squeeze(text: string): string {
  return text.replace(/\s+/g, '').replace(/,\)/g, ')');
}

interface NpmRunners {
  /** By script name, or by `npm <command>` for npm's own commands (ci, install). */
  get(name: string): Runner[];
}

const NPM_OWN_COMMANDS = new Set(['ci', 'install', 'i']);

function checkNpm(
  words: string[],
  env: string[],
  scripts: Record<string, string>,
  runners: NpmRunners,
): Pick<CheckedCommand, 'ranBy' | 'problem'> {
  const [, verb = '', ...rest] = words;
  const script =
    verb === 'run' || verb === 'run-script' ? (rest.shift() ?? '') : verb === 't' ? 'test' : verb;
  const own = NPM_OWN_COMMANDS.has(script);
  const name = own ? `npm ${script}` : `npm run ${script}`;
  if (!own && !(script in scripts)) {
    return {
      ranBy: '',
      problem: `names the npm script "${script}", which package.json does not have. Fix: correct the command in the docs, or add the script`,
    };
  }
  const found = runners.get(own ? name : script);
  if (found.length === 0) {
    return {
      ranBy: '',
      problem:
        `is run by nothing: neither .ci/run nor any test runs ${own ? name : `\`${scripts[script]}\``}. ` +
        'Fix: add a test that runs it against the test stack (runScript in test/support/cli.ts) or a line to .ci/run, or correct the docs',
    };
  }
  const separator = rest.indexOf('--');
  const args = own ? rest : separator >= 0 ? rest.slice(separator + 1) : [];
  const required = [...env, ...optionsAndFiles(args)];
  const missing = required.filter((item) => !found.some((r) => r.covers(item)));
  const where = [...new Set(found.map((r) => r.where))].join(', ');
  if (missing.length > 0) {
    return {
      ranBy: '',
      problem: `is run by ${where}, but never with ${missing.join(', ')}. Fix: exercise ${missing.length === 1 ? 'it' : 'them'} there, or correct the docs`,
    };
  }
  return { ranBy: where };
}

/** The `--options` of a documented argument list (also inside `[--option <value>]`), and repository files it names. */
function optionsAndFiles(args: string[]): string[] {
  const items: string[] = [];
  for (const arg of args) {
    const option = /^\[?(--[a-z][\w-]*)/.exec(arg);
    if (option?.[1]) items.push(option[1]);
    else if (/^[\w.-]+(\/[\w.-]+)+$/.test(arg)) items.push(arg);
  }
  return items;
}

/** Who runs which npm script: the npm commands of .ci/run, and the tests that run a script's file. */
function collectRunners(sources: Sources, scripts: Record<string, string>): NpmRunners {
  const byName = new Map<string, Runner[]>();
  const add = (name: string, runner: Runner) => byName.set(name, [...(byName.get(name) ?? []), runner]);

  const ci = sources.read('.ci/run');
  for (const c of simpleCommands(ci)) {
    if (c.words[0] !== 'npm') continue;
    const [, verb = '', first = ''] = c.words;
    const key =
      verb === 'run' ? first : verb === 't' ? 'test' : NPM_OWN_COMMANDS.has(verb) ? `npm ${verb}` : verb;
    const line = ci.slice(0, c.offset).split('\n').length;
    const items = new Set([...c.env, ...c.words.map((w) => w.split('=')[0] ?? w)]);
    add(key, { where: `.ci/run:${line}`, covers: (item) => items.has(item) });
  }

  const tests = listFiles(join(sources.root, 'test')).filter(
    (path) => path.endsWith('.ts') && !path.endsWith('test/docs/commands.test.ts'),
  );
  for (const [name, command] of Object.entries(scripts)) {
    const file = /^(?:tsx|node|bash)\s+(\S+)/.exec(command)?.[1];
    if (!file) continue;
    for (const path of tests) {
      const source = readFileSync(path, 'utf8');
      if (![`'${file}'`, `"${file}"`, `\`${file}\``].some((literal) => source.includes(literal))) continue;
      add(name, {
        where: relative(sources.root, path),
        covers: (item) =>
          item.startsWith('--')
            ? source.includes(`'${item}'`) || source.includes(`"${item}"`)
            : source.includes(item),
      });
    }
  }
  return { get: (name) => byName.get(name) ?? [] };
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? listFiles(join(dir, entry.name)) : [join(dir, entry.name)],
  );
}
