import { describe, expect, it } from 'vitest';
import {
  CopyDataBytesReader,
  CopyDataReader,
  type CopyRead,
} from '../../../../../shared/export/sources/postgres/copy-out';

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
/** Copy-out mode's bytes for three rows: a notice after the first, then CopyDone and what pg reads after it. */
const copyOut = ([first, second, third]: (string | Buffer)[]) =>
  Buffer.concat([
    copyOutResponse,
    message('d', first as string | Buffer),
    notice,
    message('d', second as string | Buffer),
    message('d', third as string | Buffer),
    done,
  ]);
const stream = copyOut(rows);

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

/** CopyDataBytesReader's payloads, messages and rest for `bytes` read in pieces of the given sizes. */
function readBytesInPieces(bytes: Buffer, sizes: number[]) {
  const reader = new CopyDataBytesReader();
  const payloads: Buffer[] = [];
  const messages: Buffer[] = [];
  let rest: Buffer | undefined;
  for (let offset = 0, i = 0; offset < bytes.length && !rest; i++) {
    const size = sizes[i % sizes.length] as number;
    const read = reader.read(bytes.subarray(offset, offset + size));
    offset += size;
    const { inputs, ranges, length } = read.rows;
    expect(ranges).toHaveLength(3 * length);
    for (let p = 0; p < ranges.length; p += 3)
      payloads.push(
        Buffer.from((inputs[ranges[p] as number] as Buffer).subarray(ranges[p + 1], ranges[p + 2])),
      );
    messages.push(...read.messages.map((m) => Buffer.from(m)));
    rest = read.rest ? Buffer.concat([read.rest, bytes.subarray(offset)]) : undefined;
  }
  return { payloads, messages, rest };
}

describe('CopyDataBytesReader', () => {
  const binaryRows = [
    Buffer.from([0, 1, 0, 0, 0, 1, 7]),
    Buffer.alloc(200_000, 0xe9),
    Buffer.from([0xff, 0xff]),
  ];
  const bytes = copyOut(binaryRows);

  it.each([
    ['one read', [bytes.length]],
    ['one byte at a time', [1]],
    ['pieces that cut headers and payloads', [3, 7, 4096, 2, 65_536, 4]],
  ])('finds every CopyData payload and passes the other messages on whole: %s', (_name, sizes) => {
    const read = readBytesInPieces(bytes, sizes);

    expect(read.payloads).toEqual(binaryRows);
    expect(read.messages).toEqual([copyOutResponse, notice]);
    expect(read.rest).toEqual(done);
  });

  it('hands an error and what follows it back to pg, payloads before it kept, even when a read cut the error', () => {
    const failure = Buffer.concat([message('E', 'SERROR\0Mdivision by zero\0\0'), message('Z', 'I')]);
    const input = Buffer.concat([copyOutResponse, message('d', binaryRows[0] as Buffer), failure]);

    for (const sizes of [[input.length], [1], [6, 5], [copyOutResponse.length + 14]]) {
      const read = readBytesInPieces(input, sizes);

      expect(read.payloads).toEqual([binaryRows[0]]);
      expect(read.rest).toEqual(failure);
    }
  });

  it('completes a message cut at the end of a read from the start of the next one', () => {
    const reader = new CopyDataBytesReader();
    const first = Buffer.concat([
      message('d', Buffer.alloc(65_000)),
      message('d', Buffer.alloc(100)).subarray(0, 50),
    ]);

    const read = reader.read(first);
    const next = reader.read(message('d', Buffer.alloc(100)).subarray(50));

    expect(read.rows.length).toBe(1);
    expect(next.rows.length).toBe(1);
    expect(next.rows.inputs[0]?.length).toBe(105);
    expect(next.rows.inputs[0]?.buffer).not.toBe(first.buffer);
  });
});
