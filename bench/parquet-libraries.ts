/**
 * Parquet library comparison (npm run bench:parquet-libraries): parquet-wasm
 * (with apache-arrow to build its batches), hyparquet-writer and
 * @dsnp/parquetjs, each behind the same small adapter
 * (bench/parquet-libraries/<library>.ts), in one run:
 * - requirements: each library writes the types the exporter needs, DuckDB
 *   reads them back (values, parquet_schema(), parquet_metadata());
 * - the project's encoder (shared/export/encode/parquet.ts) measured the same way;
 * - bundle: each adapter bundled alone with the project's esbuild settings
 *   (serverless.yml: minified CommonJS for node22), less a bundle of the same
 *   harness without any library; parquet-wasm's .wasm file ships beside it;
 * - throughput, startup, peak RSS and size: each bundle run with node in a
 *   child process of its own, N and 4N rows of bench:export's kind (general_log
 *   / slow_log columns), beside two baselines run the same way: reading the rows
 *   alone, and today's format (JSON lines through gzip -6). Each library with
 *   its default encodings, and with DELTA_BINARY_PACKED for integer and
 *   timestamp columns where it offers that ("integers: delta"), under the
 *   compressions listed in its adapter's profiles.
 * Rows per second are the median of ROUNDS runs of 4N rows, the runs of all
 * libraries alternating so that a busy spell of the machine falls on all.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { type BuildOptions, build } from 'esbuild';
import type { Candidate, Compression } from './parquet-libraries/common';
import { projectEncoder } from './parquet-libraries/encoder';
import { hyparquetWriter } from './parquet-libraries/hyparquet-writer';
import { parquetWasm } from './parquet-libraries/parquet-wasm';
import { parquetjsCandidate } from './parquet-libraries/parquetjs';
import { checkRequirement, REQUIREMENTS } from './parquet-libraries/requirements';
import type { ChildArgs, ChildResult } from './parquet-libraries/run-child';

const run = promisify(execFile);
const N = Number(process.env.BENCH_ROWS ?? 100_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Rows per row group in the throughput runs: 4N rows make several groups, so memory must stay flat. */
const ROW_GROUP_ROWS = Number(process.env.BENCH_ROW_GROUP_ROWS ?? 20_000);

interface Entry {
  candidate?: Candidate;
  /** The adapter's file and export, bundled with the child harness. */
  adapter?: { file: string; name: string };
  /** Files the bundle loads at run time and so ships with (parquet-wasm's WebAssembly). */
  assets?: string[];
  /** The project's encoder runs its thread's own bundle, built beside it as the deployment builds it. */
  encoderThread?: boolean;
}

const require = createRequire(import.meta.url);
const ENTRIES: readonly Entry[] = [
  {
    candidate: parquetWasm,
    adapter: { file: './parquet-wasm', name: 'parquetWasm' },
    assets: [join(dirname(require.resolve('parquet-wasm')), 'parquet_wasm_bg.wasm')],
  },
  { candidate: hyparquetWriter, adapter: { file: './hyparquet-writer', name: 'hyparquetWriter' } },
  { candidate: parquetjsCandidate, adapter: { file: './parquetjs', name: 'parquetjsCandidate' } },
  { candidate: projectEncoder, adapter: { file: './encoder', name: 'projectEncoder' }, encoderThread: true },
];

const work = mkdtempSync(join(tmpdir(), 'bench-parquet-'));
try {
  // 1. Requirements, checked by DuckDB.
  const requirementRows = [];
  for (const requirement of REQUIREMENTS) {
    const row: Record<string, string> = { requirement: requirement.name };
    for (const { candidate } of ENTRIES) {
      if (candidate) row[candidate.library] = await checkRequirement(candidate, requirement);
    }
    requirementRows.push(row);
  }

  // 2. One bundle per library, built as the project builds its functions.
  const bundle = async (name: string, entry: Entry) => {
    const dir = join(work, name);
    const imports = entry.adapter
      ? `import { ${entry.adapter.name} } from '${entry.adapter.file}';\nvoid runChild(${entry.adapter.name});`
      : 'void runChild();';
    const options: BuildOptions = {
      bundle: true,
      minify: true,
      keepNames: true,
      target: 'node22',
      platform: 'node',
      format: 'cjs',
      mainFields: ['module', 'main'],
      logLevel: 'error',
    };
    if (entry.encoderThread)
      await build({
        ...options,
        entryPoints: [join(import.meta.dirname, '..', 'shared', 'export', 'encode', 'parquet-worker.ts')],
        outfile: join(dir, 'parquet-worker.cjs'),
      });
    await build({
      ...options,
      stdin: {
        contents: `import { runChild } from './run-child';\n${imports}\n`,
        resolveDir: join(import.meta.dirname, 'parquet-libraries'),
        sourcefile: `${name}.ts`,
        loader: 'ts',
      },
      outfile: join(dir, 'index.cjs'),
    });
    for (const asset of entry.assets ?? []) copyFileSync(asset, join(dir, asset.split('/').at(-1) as string));
    const assetBytes =
      (entry.assets ?? []).reduce((total, asset) => total + statSync(asset).size, 0) +
      (entry.encoderThread ? statSync(join(dir, 'parquet-worker.cjs')).size : 0);
    return { file: join(dir, 'index.cjs'), jsBytes: statSync(join(dir, 'index.cjs')).size, assetBytes };
  };
  const harness = await bundle('harness', {});
  const bundles = new Map<string, Awaited<ReturnType<typeof bundle>>>();
  for (const entry of ENTRIES) {
    if (entry.candidate)
      bundles.set(entry.candidate.library, await bundle(entry.candidate.library.replace(/\W/g, '_'), entry));
  }

  // 3. Throughput, peak RSS and output size, one child process per run.
  const child = async (file: string, args: ChildArgs): Promise<ChildResult> => {
    const { stdout } = await run(process.execPath, [file, JSON.stringify(args)], { maxBuffer: 1 << 20 });
    return JSON.parse(stdout.trim().split('\n').at(-1) as string) as ChildResult;
  };
  interface Config {
    label: string;
    compression: Compression | '';
    deltaIntegers: boolean;
    encodings?: string | undefined;
    file: string;
    mode: ChildArgs['mode'];
    library?: string;
  }
  const configs: Config[] = [
    {
      label: 'rows only (baseline)',
      compression: '',
      deltaIntegers: false,
      file: harness.file,
      mode: 'rows',
    },
    {
      label: 'JSON lines + gzip -6 (baseline)',
      compression: '',
      deltaIntegers: false,
      file: harness.file,
      mode: 'jsonl',
    },
  ];
  for (const { candidate } of ENTRIES) {
    if (!candidate) continue;
    const file = bundles.get(candidate.library)?.file as string;
    const parquet = { label: candidate.library, file, mode: 'parquet' as const, library: candidate.library };
    for (const profile of candidate.profiles)
      configs.push({ ...parquet, ...profile, encodings: candidate.encodings });
  }
  const outFile = (config: Config, rows: number) =>
    join(
      work,
      `${config.label.replace(/\W/g, '_')}-${config.compression}-${config.deltaIntegers}-${rows}.out`,
    );
  const argsFor = (config: Config, rows: number): ChildArgs => ({
    mode: config.mode,
    compression: (config.compression || 'SNAPPY') as Compression,
    deltaIntegers: config.deltaIntegers,
    rows,
    rowGroupRows: ROW_GROUP_ROWS,
    out: outFile(config, rows),
  });
  const small = new Map<Config, ChildResult>();
  const large = new Map<Config, ChildResult[]>();
  for (const config of configs) small.set(config, await child(config.file, argsFor(config, N)));
  for (let round = 0; round < ROUNDS; round++) {
    for (const config of configs) {
      large.set(config, [...(large.get(config) ?? []), await child(config.file, argsFor(config, 4 * N))]);
    }
  }
  const jsonl = configs[1] as Config;
  const rate = (config: Config) => (4 * N) / median((large.get(config) ?? []).map((r) => r.seconds));
  const size = (config: Config) => (config.mode === 'rows' ? 0 : statSync(outFile(config, 4 * N)).size);
  const table = configs.map((config) => {
    const peakSmall = small.get(config)?.peakRssMb ?? 0;
    const peakLarge = Math.max(...(large.get(config) ?? []).map((r) => r.peakRssMb));
    const built = config.library ? bundles.get(config.library) : undefined;
    return {
      library: config.label,
      codec: config.compression,
      integers:
        config.mode === 'parquet' ? (config.encodings ?? (config.deltaIntegers ? 'delta' : 'default')) : '',
      'startup ms': median((large.get(config) ?? []).map((r) => r.startupMs)).toFixed(0),
      'rows/s (4N)': rate(config).toFixed(0),
      'vs JSON lines': config.mode === 'rows' ? '' : (rate(config) / rate(jsonl)).toFixed(2),
      'peak RSS N MB': peakSmall.toFixed(0),
      'peak RSS 4N MB': peakLarge.toFixed(0),
      '4N/N': (peakLarge / peakSmall).toFixed(2),
      'output KiB (4N)': config.mode === 'rows' ? '' : (size(config) / 1024).toFixed(0),
      'vs jsonl.gz': config.mode === 'rows' ? '' : (size(config) / size(jsonl)).toFixed(2),
      'bundle KiB (min JS)': built ? ((built.jsBytes - harness.jsBytes) / 1024).toFixed(0) : '',
      '+ .wasm / thread KiB': built?.assetBytes ? (built.assetBytes / 1024).toFixed(0) : '',
    };
  });

  console.log('\nRequirements, as DuckDB reads the files back (yes, or no: what it found):\n');
  console.table(requirementRows);
  console.log(
    `\nThroughput: N = ${N} rows (4N = ${4 * N}), row groups of ${ROW_GROUP_ROWS} rows, written to a file; ` +
      `median of ${ROUNDS} alternating runs of 4N, each in its own node process running the library's bundle.` +
      `\nBundle: minified CommonJS for node22 (the project's esbuild settings), less the same harness without a library ` +
      `(${(harness.jsBytes / 1024).toFixed(0)} KiB); Node ${process.version}.\n`,
  );
  console.table(table);
} finally {
  rmSync(work, { recursive: true, force: true });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}
