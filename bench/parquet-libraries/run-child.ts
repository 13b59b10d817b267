/**
 * One measured write, run in its own process (a bundle built by the benchmark
 * with the project's esbuild settings, holding one library only) so that its
 * peak RSS is its own. Arguments (JSON in argv[2]): mode (`parquet`, or one of
 * the baselines `rows` / `jsonl`), compression, rows, rowGroupRows, out.
 * Prints one JSON line.
 */
import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Candidate, Compression } from './common';
import { BENCH_COLUMNS, benchRows } from './rows';

export interface ChildArgs {
  mode: 'parquet' | 'rows' | 'jsonl';
  compression: Compression;
  deltaIntegers: boolean;
  rows: number;
  rowGroupRows: number;
  out: string;
}

export interface ChildResult {
  rows: number;
  /** Milliseconds from the process's start to the first row: node's start and the bundle's loading. */
  startupMs: number;
  seconds: number;
  peakRssMb: number;
}

export async function runChild(candidate?: Candidate): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as ChildArgs;
  // performance.now() counts from the process's start: everything before this line is startup.
  const started = performance.now();
  if (args.mode === 'rows') {
    for await (const _row of benchRows(args.rows));
  } else if (args.mode === 'jsonl') {
    await pipeline(
      (async function* () {
        for await (const row of benchRows(args.rows)) yield `${JSON.stringify(row)}\n`;
      })(),
      createGzip({ level: 6 }),
      createWriteStream(args.out),
    );
  } else {
    if (!candidate) throw new Error('This bundle holds no Parquet library');
    const file = await open(args.out, 'w');
    try {
      const sink = async (chunk: Uint8Array) => {
        await file.write(chunk);
      };
      await candidate.write(BENCH_COLUMNS, benchRows(args.rows), sink, {
        compression: args.compression,
        deltaIntegers: args.deltaIntegers,
        rowGroupRows: args.rowGroupRows,
      });
    } finally {
      await file.close();
    }
  }
  const result: ChildResult = {
    rows: args.rows,
    startupMs: started,
    seconds: (performance.now() - started) / 1000,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
