/**
 * The Parquet encoder thread's program (started by parquet-thread.ts): keeps
 * the files under way by id and answers every request with the bytes it
 * added, or the error, in the order asked. Deployed as its own small bundle
 * beside the export function's (serverless.yml's esbuild plugin).
 */
import { parentPort } from 'node:worker_threads';
import { openParquetFile, type ParquetFileWriter } from './parquet-file';
import type { EncoderReply, EncoderRequest } from './parquet-thread-protocol';

const port = parentPort;
if (!port) throw new Error('The Parquet encoder runs on a worker thread');
const files = new Map<number, ParquetFileWriter>();

port.on('message', (request: EncoderRequest) => {
  let reply: EncoderReply;
  try {
    const chunks = handle(request);
    reply = { file: request.file, chunks };
  } catch (error) {
    files.delete(request.file);
    reply = { file: request.file, error: { name: (error as Error).name, message: (error as Error).message } };
  }
  const transfer = reply.chunks?.map((chunk) => chunk.buffer as ArrayBuffer) ?? [];
  port.postMessage(reply, transfer);
});

function handle(request: EncoderRequest): Uint8Array[] {
  switch (request.kind) {
    case 'open':
      files.set(request.file, openParquetFile(request.columns, request.codec));
      return [];
    case 'group':
      return fileOf(request.file).writeGroup(request.columns, request.rows);
    case 'finish': {
      const chunks = fileOf(request.file).finish();
      files.delete(request.file);
      return chunks;
    }
    case 'close':
      files.delete(request.file);
      return [];
  }
}

function fileOf(id: number): ParquetFileWriter {
  const file = files.get(id);
  if (!file) throw new Error(`No Parquet file ${id} under way on the encoder thread`);
  return file;
}
