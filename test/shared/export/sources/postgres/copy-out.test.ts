import { describe, expect, it } from 'vitest';
import { CopyDataReader, type CopyRead } from '../../../../../shared/export/sources/postgres/copy-out';

/** One protocol message: type, length (itself included), payload. */
function message(type: string, payload: string | Buffer): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

const copyOutResponse = message('H', Buffer.from([0, 0, 2, 0, 0, 0, 0]));
const notice = message('N', 'SNOTICE\0Mhello\0\0');
const rows = ['"1","a"\n', `"2","${'é'.repeat(40_000)}"\n`, '"3",\n'];
const done = Buffer.concat([message('c', ''), message('C', 'COPY 3\0'), message('Z', 'I')]);
const stream = Buffer.concat([
  copyOutResponse,
  message('d', rows[0] as string),
  notice,
  message('d', rows[1] as string),
  message('d', rows[2] as string),
  done,
]);

/** Feeds `bytes` to a reader in pieces of the given sizes and gathers what it gives back. */
function readInPieces(bytes: Buffer, sizes: number[]) {
  const reader = new CopyDataReader();
  let text = '';
  const messages: Buffer[] = [];
  let rest: Buffer | undefined;
  for (let offset = 0, i = 0; offset < bytes.length && !rest; i++) {
    const size = sizes[i % sizes.length] as number;
    const read: CopyRead = reader.read(bytes.subarray(offset, offset + size));
    offset += size;
    text += read.rows;
    messages.push(...read.messages);
    rest = read.rest ? Buffer.concat([read.rest, bytes.subarray(offset)]) : undefined;
  }
  return { rows: Buffer.from(text, 'latin1').toString('utf8'), messages, rest };
}

describe('CopyDataReader', () => {
  it.each([
    ['one read', [stream.length]],
    ['one byte at a time', [1]],
    ['odd pieces', [3, 7, 4096, 2, 65_536]],
  ])('cuts the rows out of CopyData messages and passes the others on whole: %s', (_name, sizes) => {
    const read = readInPieces(stream, sizes);

    expect(read.rows).toBe(rows.join(''));
    expect(read.messages).toEqual([copyOutResponse, notice]);
    // From CopyDone on, the bytes are pg's again.
    expect(read.rest).toEqual(done);
  });

  it('hands an error and what follows it back to pg, rows before it kept', () => {
    const failure = Buffer.concat([message('E', 'SERROR\0Mdivision by zero\0\0'), message('Z', 'I')]);
    const bytes = Buffer.concat([copyOutResponse, message('d', rows[0] as string), failure]);

    for (const sizes of [[bytes.length], [1], [6, 5]]) {
      const read = readInPieces(bytes, sizes);

      expect(read.rows).toBe(rows[0]);
      expect(read.rest).toEqual(failure);
    }
  });
});
