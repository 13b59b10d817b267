import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = join(__dirname, '..');
const CLI = join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

interface Violation {
  rule: { name: string };
  from: string;
  to: string;
}

/** The layout rules of `.dependency-cruiser.cjs` over the given folders; the violations found. */
async function cruise(folders: string[]): Promise<Violation[]> {
  const result = await run(
    process.execPath,
    [CLI, ...folders, '--config', '.dependency-cruiser.cjs', '--output-type', 'json'],
    { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 },
  ).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
  const report = JSON.parse(result.stdout) as { summary: { violations: Violation[] } };
  return report.summary.violations;
}

describe('the layout', () => {
  it('has no import cycle (type-only imports included) and no upward or out-of-order import', async () => {
    const violations = await cruise(['shared', 'functions', 'scripts', 'bench']);
    expect(violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`)).toEqual([]);
  }, 120_000);

  it('keeps at most ten modules at the top of shared/export: the rest sits in its stage folders', () => {
    const top = readdirSync(join(ROOT, 'shared/export'), { withFileTypes: true });
    expect(top.filter((e) => e.isFile()).length).toBeLessThanOrEqual(10);
    expect(
      top
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
        .sort(),
    ).toEqual(['encode', 'masking', 'plan', 'sinks', 'sources']);
  });

  it('finds a type-only cycle and an upward import when there is one', async () => {
    // The rules run on a scratch copy of two modules that break them, so the check itself is shown to bite.
    const dir = await mkdtemp(join(ROOT, 'shared/export/sources/.layout-probe-'));
    try {
      await writeFile(join(dir, 'a.ts'), "import type { B } from './b';\nexport interface A { b?: B }\n");
      await writeFile(
        join(dir, 'b.ts'),
        "import type { A } from './a';\nimport type { ExportSummary } from '../../exporter';\nexport interface B { a?: A; s?: ExportSummary }\n",
      );
      const names = (await cruise([dir.slice(ROOT.length + 1)])).map((v) => v.rule.name).sort();
      expect(names).toContain('no-cycle');
      expect(names).toContain('stage-imports-top-level');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
