import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BuildOptions, build } from 'esbuild';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The `custom.esbuild` block of serverless.yml as esbuild options, so that a test
 * or a benchmark builds a function exactly as the deployment does. The plugin's
 * own keys are mapped (`exclude` is esbuild's `external`) or left out.
 */
export function deploymentBuildOptions(): BuildOptions {
  const lines = readFileSync(join(ROOT, 'serverless.yml'), 'utf8').split('\n');
  const start = lines.findIndex((line, i) => line === '  esbuild:' && lines[i - 1]?.startsWith('custom:'));
  if (start < 0) throw new Error('serverless.yml has no custom.esbuild block');
  const options: Record<string, unknown> = {};
  for (const line of lines.slice(start + 1)) {
    if (/^\s*(#.*)?$/.test(line)) continue;
    if (!line.startsWith('    ')) break;
    const [, key, raw] = /^\s+([A-Za-z]+):\s*(.*)$/.exec(line) ?? [];
    if (!key || raw === undefined) throw new Error(`Cannot read serverless.yml line: ${line}`);
    options[key] = /^\[.*\]$/.test(raw)
      ? raw
          .slice(1, -1)
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : raw === 'true' || raw === 'false'
        ? raw === 'true'
        : raw;
  }
  const { exclude, outputFileExtension: _extension, plugins, ...esbuild } = options;
  return {
    ...(esbuild as BuildOptions),
    external: (exclude as string[] | undefined) ?? [],
    // The plugins' file, as serverless-esbuild loads it.
    plugins: typeof plugins === 'string' ? createRequire(import.meta.url)(join(ROOT, plugins)) : [],
    logLevel: 'error',
  };
}

/** Builds `entry` (a path from the repository root, or source text) into `outfile` as the deployment would. */
export async function bundleAsDeployed(
  entry: { path: string } | { source: string; name: string },
  outfile: string,
  extra: BuildOptions = {},
): Promise<string> {
  const options = deploymentBuildOptions();
  await build({
    ...options,
    ...('path' in entry
      ? { entryPoints: [join(ROOT, entry.path)] }
      : { stdin: { contents: entry.source, resolveDir: ROOT, loader: 'ts', sourcefile: entry.name } }),
    ...extra,
    external: [...(options.external ?? []), ...(extra.external ?? [])],
    outfile,
    absWorkingDir: ROOT,
  });
  return outfile;
}
