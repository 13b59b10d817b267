import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startMoto } from './moto';
import { missingPrerequisites } from './prerequisites';

const saved = { ...process.env };
afterEach(() => {
  for (const name of ['PYTHON', 'PG_BIN', 'MYSQL_BIN', 'PATH', 'PGBOUNCER']) {
    if (saved[name] === undefined) delete process.env[name];
    else process.env[name] = saved[name];
  }
});

const empty = () => mkdtempSync(join(tmpdir(), 'prereq-'));
const all = { moto: true, postgres: true, mariadb: true, pgbouncer: true };

describe('the local stack names each missing prerequisite with its fix', () => {
  it('finds nothing missing on this machine', () => {
    expect(missingPrerequisites(all)).toEqual([]);
  });

  it('a Python that does not exist: names Python and npm run setup', () => {
    process.env.PYTHON = join(empty(), 'python3');
    const started = performance.now();
    const missing = missingPrerequisites(all);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(missing).toEqual([
      { what: expect.stringContaining('Python'), fix: expect.stringContaining('npm run setup') },
    ]);
  });

  it('a Python without moto: names moto and the command that installs it', () => {
    process.env.PYTHON = '/usr/bin/python3';
    const missing = missingPrerequisites(all);
    expect(missing).toHaveLength(1);
    expect(missing[0]?.what).toMatch(/^moto for \/usr\/bin\/python3/);
    expect(missing[0]?.fix).toMatch(/npm run setup.*pip install "moto\[server\]"/);
  });

  it('no PostgreSQL or MariaDB binaries where the variables point: names both packages', () => {
    process.env.PG_BIN = empty();
    process.env.MYSQL_BIN = empty();
    const missing = missingPrerequisites(all).map((m) => `${m.what} -> ${m.fix}`);
    expect(missing).toEqual([
      expect.stringMatching(/^PostgreSQL server binaries.*apt-get install postgresql postgresql-contrib/),
      expect.stringMatching(/^MariaDB .*apt-get install mariadb-server/),
    ]);
  });

  it('no PgBouncer for the suite: names its package', () => {
    process.env.PGBOUNCER = join(empty(), 'pgbouncer');
    const missing = missingPrerequisites({ moto: false, postgres: false, mariadb: false, pgbouncer: true });
    expect(missing).toEqual([
      {
        what: expect.stringContaining('PgBouncer'),
        fix: expect.stringContaining('apt-get install pgbouncer'),
      },
    ]);
  });

  it('only what is needed: servers given by TEST_* variables are not asked for', () => {
    process.env.PG_BIN = empty();
    expect(missingPrerequisites({ moto: false, postgres: false, mariadb: true })).toEqual([]);
  });

  it('no cfn-lint on PATH: names it for the package check', () => {
    process.env.PATH = empty();
    const missing = missingPrerequisites({ moto: false, postgres: false, mariadb: false, cfnLint: true });
    expect(missing.map((m) => m.what)).toEqual([expect.stringContaining('cfn-lint')]);
  });

  it("no AWS CLI on PATH: names it for the tests of the docs' commands", () => {
    process.env.PATH = empty();
    const missing = missingPrerequisites({ moto: false, postgres: false, mariadb: false, awsCli: true });
    expect(missing).toEqual([
      { what: expect.stringContaining('AWS CLI'), fix: expect.stringContaining('pip install awscli') },
    ]);
  });

  it('an emulator that exits at start is reported at once, with the end of its log', async () => {
    const dir = empty();
    const fake = join(dir, 'python');
    writeFileSync(fake, '#!/bin/sh\necho "ModuleNotFoundError: No module named moto" >&2\nexit 1\n');
    chmodSync(fake, 0o755);
    process.env.PYTHON = fake;
    const started = performance.now();
    const error = await startMoto(dir).catch((e: unknown) => e);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(String(error)).toMatch(/moto .* exited at start/);
    expect(String(error)).toContain('No module named moto');
  });

  it('npm run demo stops at once when moto is missing, naming the fix', () => {
    const started = performance.now();
    const result = spawnSync('npx', ['tsx', 'scripts/demo.ts'], {
      encoding: 'utf8',
      env: { ...process.env, PYTHON: '/usr/bin/python3', TEST_AWS_ENDPOINT_URL: '' },
      timeout: 30_000,
    });
    expect(performance.now() - started).toBeLessThan(20_000);
    expect(result.status).not.toBe(0);
    expect(result.stderr + result.stdout).toMatch(
      /Missing prerequisites:[\s\S]*moto for \/usr\/bin\/python3[\s\S]*npm run setup/,
    );
  });
});
