/**
 * esbuild plugins of the deployment (serverless.yml's custom.esbuild.plugins;
 * test/support/bundle.ts loads them too, so tests build as the deployment does).
 *
 * parquet-worker: the export function's Parquet encoder thread
 * (shared/export/encode/parquet-thread.ts) runs a program of its own, bundled
 * with the same options into parquet-worker.cjs beside the function's bundle,
 * where the thread looks for it. It holds hyparquet-writer, so the function's
 * bundle does not.
 */
const { dirname, join } = require('node:path');

const WORKER_SOURCE = join(__dirname, '..', 'shared', 'export', 'encode', 'parquet-worker.ts');

const entryPath = (entry) => String(typeof entry === 'string' ? entry : entry.in).replace(/\\/g, '/');

/** @type {import('esbuild').Plugin} */
const parquetWorker = {
  name: 'parquet-worker',
  setup(build) {
    const { entryPoints, outdir, outfile } = build.initialOptions;
    const entries = Array.isArray(entryPoints) ? entryPoints : Object.values(entryPoints ?? {});
    if (!entries.some((entry) => entryPath(entry).endsWith('functions/export.ts'))) return;
    // parquet-thread.ts finds the program from __dirname in the bundle; its import.meta branch is for the
    // TypeScript sources (tsx, vitest) and never runs here, so esbuild's warning that it would be empty is noise.
    build.initialOptions.logOverride = { ...build.initialOptions.logOverride, 'empty-import-meta': 'silent' };
    build.onEnd(async (result) => {
      if (result.errors.length > 0) return;
      const {
        plugins: _plugins,
        entryPoints: _entryPoints,
        outdir: _outdir,
        outfile: _outfile,
        outExtension: _outExtension,
        metafile: _metafile,
        stdin: _stdin,
        ...options
      } = build.initialOptions;
      const worker = await build.esbuild.build({
        ...options,
        entryPoints: [WORKER_SOURCE],
        outfile: join(outdir ?? dirname(outfile), 'parquet-worker.cjs'),
      });
      result.errors.push(...worker.errors);
      result.warnings.push(...worker.warnings);
    });
  },
};

module.exports = [parquetWorker];
