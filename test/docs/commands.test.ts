import { describe, expect, it } from 'vitest';
import { projectRoot } from '../stack/prerequisites';
import { checkDocCommands, projectSources, type Sources } from './commands';
import { docPages, readDocCommands, simpleCommands } from './markdown';

/** The project as it is, with `overrides` in place of some files (a page, package.json). */
function withFiles(overrides: Record<string, string>, pages = docPages()): Sources {
  const real = projectSources(projectRoot, pages);
  return { ...real, pages, read: (path) => overrides[path] ?? real.read(path) };
}

const scriptsWith = (change: (scripts: Record<string, string>) => void) => {
  const pkg = JSON.parse(projectSources(projectRoot, []).read('package.json'));
  change(pkg.scripts);
  return JSON.stringify(pkg);
};

describe('the commands of README.md and docs/*.md', () => {
  it('are each run by a test or .ci/run, or marked as needing a real AWS account and listed as such', () => {
    const { commands, problems } = checkDocCommands(projectSources(projectRoot, docPages()));

    expect(problems, `\n${problems.join('\n\n')}\n`).toEqual([]);
    // Every page with commands is read: the README's two commands at least, and the operator pages'.
    const files = new Set(commands.map((c) => c.file));
    for (const page of ['README.md', 'docs/deploy.md', 'docs/operations.md']) expect(files).toContain(page);
    expect(commands.find((c) => c.command === 'npm test')?.ranBy).toMatch(/^\.ci\/run:\d+$/);
  });
});

describe('the check of the docs commands', () => {
  it('fails on a command nothing runs, naming the page, the line and what to do', () => {
    const page = [
      '# Cleanup',
      '',
      'Then:',
      '',
      '```sh',
      'aws s3 rm s3://exports/logs --recursive',
      '```',
    ].join('\n');

    const { problems } = checkDocCommands(withFiles({ 'docs/cleanup.md': page }, ['docs/cleanup.md']));

    expect(problems).toEqual([
      expect.stringMatching(
        /^docs\/cleanup\.md:6: `aws s3 rm s3:\/\/exports\/logs --recursive` is not run by any test or by \.ci\/run\. Fix: .*BLOCKS_RUN_BY_TESTS.*<!-- needs: aws-account -->.*NEEDS_ACCOUNT/,
      ),
    ]);
  });

  it('fails when the docs name an npm script that package.json no longer has', () => {
    const renamed = scriptsWith((scripts) => {
      scripts['athena:ddl'] = scripts['athena-ddl'] as string;
      delete scripts['athena-ddl'];
    });

    const { problems } = checkDocCommands(withFiles({ 'package.json': renamed }));

    expect(problems).toContainEqual(
      expect.stringMatching(
        /^docs\/athena\.md:\d+: `npm run athena-ddl -- --destination s3:\/\/bucket\/prefix` names the npm script "athena-ddl", which package.json does not have/,
      ),
    );
  });

  it('fails on an npm script that exists but that neither a test nor .ci/run runs', () => {
    const page = 'Compare: `npm run bench:unrun`.\n';
    const scripts = scriptsWith((s) => {
      s['bench:unrun'] = 'tsx bench/unrun.ts';
    });

    const { problems } = checkDocCommands(
      withFiles({ 'docs/unrun.md': page, 'package.json': scripts }, ['docs/unrun.md']),
    );

    expect(problems).toEqual([
      expect.stringMatching(
        /^docs\/unrun\.md:1: `npm run bench:unrun` is run by nothing: neither \.ci\/run nor any test runs `tsx bench\/unrun\.ts`/,
      ),
    ]);
  });

  it('fails on an option, variable or file the runs of the script never use', () => {
    const page = 'Run `DRY=1 npm run rotate -- <id> --fast events/rotate/setSecret.json`.\n';

    const { problems } = checkDocCommands(withFiles({ 'docs/rotate.md': page }, ['docs/rotate.md']));

    expect(problems).toEqual([
      expect.stringMatching(
        /^docs\/rotate\.md:1: .* but never with DRY, --fast, events\/rotate\/setSecret\.json\./,
      ),
    ]);
  });

  it('accepts a marked command only when NEEDS_ACCOUNT lists it, and a marker only on a command that needs it', () => {
    const page = [
      '# Account',
      '',
      '<!-- needs: aws-account -->',
      '```sh',
      'aws s3 rm s3://exports/logs --recursive',
      '```',
      '',
      '<!-- needs: aws-account -->',
      '```sh',
      'npm run status',
      '```',
    ].join('\n');

    const { problems } = checkDocCommands(withFiles({ 'docs/account.md': page }, ['docs/account.md']));

    expect(problems).toEqual([
      expect.stringMatching(
        /^docs\/account\.md:9: the block "Account" 1 is marked as needing an AWS account, but none of its commands does: remove the marker$/,
      ),
      expect.stringMatching(
        /^docs\/account\.md:5: `aws s3 rm .*` is marked as needing an AWS account but NEEDS_ACCOUNT .* does not list it/,
      ),
    ]);
  });
});

describe('reading commands out of markdown', () => {
  it('finds shell blocks by section and inline commands, also over a line break, with their markers', () => {
    const page = [
      '# Title',
      '',
      'Run `npm run',
      'status` or `CONFIG_PATH=/x npm run export -- e.json`, not `serverless.yml` or `SELECT 1`.',
      '',
      '## Steps',
      '',
      '```json',
      '{ "not": "a command" }',
      '```',
      '',
      '<!-- needs: aws-account -->',
      '```sh',
      'aws sns subscribe',
      '```',
      '',
      '```bash',
      'npm test',
      '```',
    ].join('\n');

    const { blocks, inline } = readDocCommands('docs/x.md', page);

    expect(inline.map(({ line, text }) => [line, text])).toEqual([
      [3, 'npm run status'],
      [4, 'CONFIG_PATH=/x npm run export -- e.json'],
    ]);
    expect(
      blocks.map(({ line, section, index, needsAccount }) => [line, section, index, needsAccount]),
    ).toEqual([
      [13, 'Steps', 0, true],
      [17, 'Steps', 1, false],
    ]);
  });

  it('splits shell text into simple commands: continuations, quotes, comments, substitutions, functions', () => {
    const script = [
      'STACK=prod',
      'out() { aws cloudformation describe-stacks --stack-name $STACK \\',
      '  --query "Stacks[0].Outputs[?OutputKey==\'$1\']" --output text; }',
      'aws ssm put-parameter --value "$(out Destination)"   # a comment; not a command',
      "aws dynamodb update-item --expression-attribute-values '{",
      '  ":at": {"S": "\'"$(date -u +%s)"\'"}',
      "}' && cat out.json 2>&1 | head",
      'ARN=$(aws lambda get-function --query "x" --output text)',
      'LOG_LEVEL=INFO npm run demo',
    ].join('\n');

    const commands = simpleCommands(script).map(({ env, words }) => [
      env.join(','),
      words.slice(0, 3).join(' '),
    ]);

    expect(commands).toEqual([
      ['', 'aws cloudformation describe-stacks'],
      ['', 'aws ssm put-parameter'],
      ['', 'aws dynamodb update-item'],
      ['', 'cat out.json 2>&1'],
      ['', 'head'],
      ['LOG_LEVEL', 'npm run demo'],
      ['', 'date -u +%s'],
      ['', 'aws lambda get-function'],
    ]);
  });
});
