import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EncodeError } from '../../../../../shared/errors';
import { inBatches, maskSqlText, peek, type Row } from '../../../../../shared/export/encode/jsonl';
import {
  type ColumnGroup,
  DEFAULT_GROUP_LIMITS,
  encodeParquetBatches,
  encodeParquetGroups,
  type GroupLimits,
  type Utf8Column,
} from '../../../../../shared/export/encode/parquet';
import { type ParquetColumn, parquetTypeOf } from '../../../../../shared/export/encode/parquet-types';
import {
  BinaryGroupReader,
  planBinaryColumns,
} from '../../../../../shared/export/sources/postgres/binary-copy';
import { PostgresSession } from '../../../../../shared/export/sources/postgres/session';
import { createLogger } from '../../../../../shared/log';
import { createPgDatabase, pgAdmin, stack } from '../../../../stack/fixtures';

/**
 * The Parquet path that reads PostgreSQL's binary COPY by column, against the
 * cursor path on real PostgreSQL: for the same query, `parquetGroups` must
 * make the very file that encoding `stream`'s rows makes (byte for byte),
 * refuse what the cursor path refuses, or decline the query.
 */

const HOSTILE_TEXT = [
  `quote " apostrophe ' backslash \\ slash / \\n literal \\N`,
  'newline\nreturn\r\ntab\tform\fbackspace\b',
  'unicode é ß 漢字 \u2028 \u2029 \u00a0 emoji 🎉 non-BMP 𝄞 flags 🇫🇷 combining é',
  '',
  'PGCOPY\n\xff\r\n\0'.replace('\0', ''),
  'x'.repeat(70_000),
];

let database: string;
let session: PostgresSession;
const logger = createLogger('postgres-binary-groups-test');
/** Bounds by rows only (binary-groups-attack.test.ts compares the files with the byte bound). */
const BY_ROWS: GroupLimits = { maxRows: 4096, maxBytes: Number.MAX_SAFE_INTEGER };

async function open(): Promise<PostgresSession> {
  const { adminUser, adminPassword, host, port } = stack().postgres;
  return PostgresSession.open(
    { host, port, user: adminUser, password: adminPassword, database, tls: 'prefer' },
    logger,
    'binary-groups test',
  );
}

beforeAll(async () => {
  database = await createPgDatabase();
  const admin = await pgAdmin(database);
  try {
    await admin.query(`CREATE TABLE samples (id int4, small int2, big int8, f8 float8, flag bool, t text,
      v varchar(100000), c char(5), nm name, ts timestamp(6), tstz timestamptz(6), d date, o oid)`);
    await admin.query(
      `INSERT INTO samples (id, small, big, f8, flag, t, v, c, nm, ts, tstz, d, o) VALUES
       (1, -32768, 9223372036854775807, 'NaN', true, $1, $2, 'ab', 'pg_name', '2024-05-01 12:00:00.123456',
        '2024-05-01 12:00:00.000001+00', '2024-05-01', 4294967295),
       (2, 32767, -9223372036854775808, 'Infinity', false, $3, $4, 'xyz', '', '1969-12-31 23:59:59.999999',
        '1900-01-01 00:00:00+00', '0001-01-01', 0),
       (3, 0, 9007199254740993, '-0', NULL, $5, $6, NULL, NULL, '2999-12-31 23:59:59.5',
        '9999-12-31 23:59:59.999999+00', '9999-12-31', NULL),
       (4, NULL, -9007199254740993, 1e-300, NULL, NULL, '', '', NULL, '0001-01-01 00:00:00',
        '1684-01-01 00:00:00+00', '1970-01-01', 1),
       (5, NULL, NULL, 5e-324, NULL, NULL, NULL, NULL, NULL, 'infinity', '-infinity', NULL, NULL),
       (6, NULL, 4503599627370496, -1.7976931348623157e308, NULL, NULL, NULL, NULL, NULL, '-infinity',
        '2255-06-05 23:47:34.740993+00', NULL, NULL),
       (7, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
      HOSTILE_TEXT,
    );
    // Values the cursor path's ISO-8601 text cannot hold, one per row and column.
    await admin.query(`CREATE TABLE outside (id int4, ts timestamp, tstz timestamptz, d date, big int8)`);
    await admin.query(`INSERT INTO outside VALUES
      (1, '2024-05-01 00:00:00', '2024-05-01 00:00:00+00', '2024-05-01', 1),
      (2, '0044-03-15 12:00:00 BC', NULL, NULL, NULL),
      (3, NULL, '10000-01-01 00:00:00+00', NULL, NULL),
      (4, NULL, '0001-01-01 00:00:00+00 BC', NULL, NULL),
      (5, NULL, NULL, 'infinity', NULL),
      (6, NULL, NULL, '0044-03-15 BC', NULL),
      (7, NULL, NULL, NULL, 2147483648)`);
    // Random text over an alphabet of 1- to 4-byte characters, random instants and integers.
    await admin.query(`SELECT setseed(0.42);
      CREATE TABLE many AS
      SELECT g AS id, timestamptz '2024-03-01 00:00:00+00' + g * interval '1.37 millisecond' AS at,
        timestamp '1700-01-01' + (random() * 900 * 365) * interval '1 day' + (random() * 86400000000)::bigint * interval '1 microsecond' AS wall,
        CASE WHEN g % 97 = 0 THEN NULL WHEN g % 89 = 0 THEN '' ELSE (
          SELECT string_agg(substr(E'aZ9 é漢🎉𝄞"\\\\,\\n\\r\\t;x', 1 + floor(random() * 16)::int, 1), '')
          FROM generate_series(1, 1 + (g * 37) % 90)) END AS t,
        CASE WHEN g % 3 = 0 THEN 'Query' WHEN g % 3 = 1 THEN 'Connect' ELSE 'Quit' END AS kind,
        (g % 5000)::int4 AS thread, (random() * 9e18)::int8 * (CASE WHEN g % 2 = 0 THEN 1 ELSE -1 END) AS wide,
        CASE WHEN g % 11 = 0 THEN NULL ELSE random() * 1e6 END AS f8
      FROM generate_series(1, 50000) g`);
    await admin.query(`CREATE DOMAIN short_text AS varchar(12) CHECK (VALUE <> 'forbidden');
      CREATE DOMAIN instant AS timestamptz;
      CREATE DOMAIN counter AS int8 CHECK (VALUE >= 0);
      CREATE TABLE typed (id int4, s short_text, at instant, n counter, c char(7), v varchar(3));
      INSERT INTO typed VALUES (1, 'é🎉', '2024-05-01 00:00:00.000001+00', 9223372036854775807, 'ab', 'xyz'),
        (2, '', '1685-01-01 00:00:00+00', 0, '', ''), (3, NULL, NULL, NULL, NULL, NULL)`);
    await admin.query(`CREATE TABLE other_types (id int4, num numeric, f4 float4, js jsonb, u uuid, iv interval,
      ip inet, b bytea, ints int4[], tm time)`);
  } finally {
    await admin.end();
  }
  session = await open();
});

afterAll(async () => {
  await session?.close();
});

/** The query's Parquet columns as the exporter types a custom export: its described types. */
async function columnsOf(sql: string, from = session): Promise<ParquetColumn[]> {
  return (await from.describe(sql)).map((c) => ({ name: c.name, type: parquetTypeOf(c.type) }));
}

async function bytesOf(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

/** The cursor path's rows, masked as table-export masks them (maskBatches). */
async function* maskedBatches(rows: AsyncIterable<Row[]>, redact: readonly string[]): AsyncGenerator<Row[]> {
  for await (const batch of rows) {
    for (const row of batch) maskSqlText(row, redact);
    yield batch;
  }
}

/**
 * The file of the cursor path's rows, and the file of the groups read by
 * column (undefined when the session declines), both with `limits` and with
 * the `redact` columns masked.
 */
async function bothFiles(
  sql: string,
  {
    limits = BY_ROWS,
    columns,
    redact = [],
    from = session,
  }: {
    limits?: GroupLimits;
    columns?: ParquetColumn[];
    redact?: readonly string[];
    from?: PostgresSession;
  } = {},
) {
  const typed = columns ?? (await columnsOf(sql, from));
  const groups = await from.parquetGroups(sql, typed, limits, redact);
  const options = { maxRowGroupRows: limits.maxRows, maxRowGroupBytes: limits.maxBytes };
  return {
    cursor: await bytesOf(
      encodeParquetBatches(typed, maskedBatches(inBatches(from.stream(sql)), redact), options),
    ),
    binary: groups && (await bytesOf(encodeParquetGroups(typed, groups))),
  };
}

/** The session's groups for `sql`, which it must not decline. */
async function groupsFor(
  sql: string,
  columns: ParquetColumn[],
  limits = BY_ROWS,
): Promise<AsyncIterable<ColumnGroup>> {
  const groups = await session.parquetGroups(sql, columns, limits);
  if (!groups) throw new Error(`parquetGroups declined: ${sql}`);
  return groups;
}

async function groupsOf(sql: string, limits: GroupLimits, from = session): Promise<ColumnGroup[]> {
  const groups = await from.parquetGroups(sql, await columnsOf(sql, from), limits);
  if (!groups) throw new Error(`parquetGroups declined: ${sql}`);
  const all: ColumnGroup[] = [];
  for await (const group of groups) all.push(group);
  return all;
}

/** What each path throws, or undefined. */
async function failure(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run();
    return undefined;
  } catch (error) {
    return error;
  }
}

describe('PostgresSession.parquetGroups', () => {
  it('makes the file the cursor path makes, byte for byte, for every type it reads: extremes, infinities, NULLs, hostile text', async () => {
    const { cursor, binary } = await bothFiles('SELECT * FROM samples ORDER BY id');

    expect(binary?.length).toBeGreaterThan(1000);
    expect(binary?.equals(cursor)).toBe(true);
  });

  it('makes the same file for 50,000 random rows in 13 row groups: multibyte text, instants of 900 years, int8 beyond 2^53', async () => {
    const sql = 'SELECT id, at, wall, t, kind, thread, wide, f8 FROM many ORDER BY id';

    const { cursor, binary } = await bothFiles(sql);
    const groups = await groupsOf(sql, BY_ROWS);

    expect(groups.map((g) => g.rows)).toEqual([...Array(12).fill(4096), 50_000 - 12 * 4096]);
    expect(binary?.equals(cursor)).toBe(true);
  });

  it('makes the same file when a catalog types a column otherwise than the server: int8 into INT32, int4 into INT64', async () => {
    const sql = 'SELECT id::int8 AS id, thread FROM many WHERE id < 3000 ORDER BY id';
    const columns: ParquetColumn[] = [
      { name: 'id', type: { kind: 'int32' } },
      { name: 'thread', type: { kind: 'int64' } },
    ];

    const { cursor, binary } = await bothFiles(sql, { columns });

    expect(binary?.equals(cursor)).toBe(true);
  });

  it.each([
    ['a timestamp before the year 1', 'ts', 2],
    ['a timestamptz in the year 10000', 'tstz', 3],
    ['a BC timestamptz', 'tstz', 4],
    ['an infinite date', 'd', 5],
    ['a BC date', 'd', 6],
  ])('refuses %s where the cursor path does, naming the column and the row', async (_, column, id) => {
    const sql = `SELECT id, ${column} FROM outside WHERE id IN (1, ${id}) ORDER BY id`;
    const columns = await columnsOf(sql);
    const groups = await groupsFor(sql, columns);

    const binary = await failure(() => bytesOf(encodeParquetGroups(columns, groups)));
    const cursor = await failure(() =>
      bytesOf(encodeParquetBatches(columns, inBatches(session.stream(sql)))),
    );

    for (const error of [binary, cursor]) {
      expect(error).toBeInstanceOf(EncodeError);
      expect(error).toMatchObject({ column, row: 2 });
    }
    expect(await session.scalar('SELECT 42')).toBe(42);
  });

  it('refuses an int8 beyond INT32 in a column a catalog types INT32, with the message of the cursor path', async () => {
    const sql = 'SELECT id, big FROM outside WHERE id IN (1, 7) ORDER BY id';
    const columns: ParquetColumn[] = [
      { name: 'id', type: { kind: 'int32' } },
      { name: 'big', type: { kind: 'int32' } },
    ];
    const groups = await groupsFor(sql, columns);

    const binary = await failure(() => bytesOf(encodeParquetGroups(columns, groups)));
    const cursor = await failure(() =>
      bytesOf(encodeParquetBatches(columns, inBatches(session.stream(sql)))),
    );

    expect(binary).toBeInstanceOf(EncodeError);
    expect((binary as Error).message).toBe((cursor as Error).message);
    expect((binary as Error).message).toContain('Column "big" (int32), row 2');
  });

  it.each([
    ['numeric', 'num'],
    ['float4 (its bytes are not the double its text parses to)', 'f4'],
    ['jsonb', 'js'],
    ['uuid', 'u'],
    ['interval', 'iv'],
    ['inet', 'ip'],
    ['bytea', 'b'],
    ['an array', 'ints'],
    ['time', 'tm'],
  ])('declines a query with a column of type %s', async (_, column) => {
    const sql = `SELECT id, ${column} FROM other_types`;

    expect(await session.parquetGroups(sql, await columnsOf(sql), BY_ROWS)).toBeUndefined();
  });

  it('declines columns that are not the described ones: other names, another count, a kind its type does not make', async () => {
    const sql = 'SELECT id, t FROM samples';
    const columns = await columnsOf(sql);

    expect(await session.parquetGroups(sql, [columns[0] as ParquetColumn], BY_ROWS)).toBeUndefined();
    expect(
      await session.parquetGroups(
        sql,
        [columns[0] as ParquetColumn, { ...(columns[1] as ParquetColumn), name: 'x' }],
        BY_ROWS,
      ),
    ).toBeUndefined();
    expect(
      await session.parquetGroups(
        sql,
        [columns[0] as ParquetColumn, { name: 't', type: { kind: 'timestamp' } }],
        BY_ROWS,
      ),
    ).toBeUndefined();
  });

  it('declines every query where the session has no COPY path (another DateStyle)', async () => {
    const other = await open();
    try {
      await other.scalar("SET DateStyle = 'SQL, DMY'");
      const sql = 'SELECT id, t FROM samples';

      expect(await other.parquetGroups(sql, await columnsOf(sql, other), BY_ROWS)).toBeUndefined();
    } finally {
      await other.close();
    }
  });

  it('closes groups at the row bound and at the byte bound (8 per value, text by its UTF-16 length, as encodeParquet counts it)', async () => {
    const byRows = await groupsOf('SELECT id, thread FROM many ORDER BY id', {
      maxRows: 1000,
      maxBytes: 1 << 30,
    });
    const byBytes = await groupsOf("SELECT id, repeat('é', 50) AS t FROM many WHERE id <= 1000 ORDER BY id", {
      maxRows: 1 << 20,
      maxBytes: 5_800,
    });

    expect(byRows).toHaveLength(50);
    expect(byRows.every((g) => g.rows === 1000)).toBe(true);
    // Each row is 8 + 50 (50 UTF-16 units, 100 UTF-8 bytes): a group closes at its 100th row (5,800).
    expect(byBytes.map((g) => g.rows)).toEqual(Array(10).fill(100));
    const text = byBytes[0]?.columns[1] as Utf8Column;
    expect(Buffer.from(text.bytes).toString('utf8')).toBe('é'.repeat(50 * 100));
    expect([...text.lengths]).toEqual(Array(100).fill(100));
  });

  it('yields nothing for an empty result', async () => {
    expect(await groupsOf('SELECT id, t FROM samples WHERE false', BY_ROWS)).toEqual([]);
  });

  it('leaves the session usable when the consumer stops after the first group', async () => {
    const stopping = await open();
    try {
      const sql = `SELECT g AS id, repeat('x', 200) AS t FROM generate_series(1, 200000) g`;
      const groups = await stopping.parquetGroups(sql, await columnsOf(sql, stopping), BY_ROWS);
      let first: ColumnGroup | undefined;
      for await (const group of groups ?? []) {
        first = group;
        break;
      }

      expect(first?.rows).toBe(4096);
      const answer = await Promise.race([stopping.scalar('SELECT 41 + 1'), sleep(10_000, 'no answer')]);
      expect(answer).toBe(42);
      expect((await groupsOf('SELECT id FROM samples ORDER BY id', BY_ROWS, stopping))[0]?.rows).toBe(7);
    } finally {
      await stopping.close();
    }
  });

  it('leaves the session usable when the encoder refuses the columns after the COPY started (two columns of one name)', async () => {
    const sql = 'SELECT id, id AS id FROM many';
    const columns = await columnsOf(sql);
    const first = await peek(await groupsFor(sql, columns));
    async function* passedOn() {
      for await (const group of first ?? []) yield group;
    }

    await expect(peek(encodeParquetGroups(columns, passedOn()))).rejects.toThrow(/distinct/);

    const answer = await Promise.race([session.scalar('SELECT 41 + 1'), sleep(10_000, 'no answer')]);
    expect(answer).toBe(42);
  });

  it('reports a query error as a database error and stays usable', async () => {
    await expect(
      groupsOf('SELECT id, 1 / (id - 3) AS boom FROM samples ORDER BY id', BY_ROWS),
    ).rejects.toThrow(/division by zero/);
    expect(await session.scalar('SELECT 42')).toBe(42);
  });

  it('fails when the server ends the connection during the COPY', async () => {
    const doomed = await open();
    const pid = await doomed.scalar('SELECT pg_backend_pid()');
    const sql = `SELECT g AS id, repeat('y', 300) AS t FROM generate_series(1, 2000000) g`;
    const groups = await doomed.parquetGroups(sql, await columnsOf(sql, doomed), BY_ROWS);
    let rows = 0;
    const admin = await pgAdmin(database);
    try {
      const reading = (async () => {
        for await (const group of groups ?? []) {
          rows += group.rows;
          if (rows === 4096) await admin.query('SELECT pg_terminate_backend($1)', [pid]);
        }
      })();

      await expect(reading).rejects.toThrow();
      expect(rows).toBeLessThan(2_000_000);
    } finally {
      await admin.end();
      await doomed.close();
    }
  });
});

describe("PostgresSession.parquetGroups with the exporter's row-group bounds and masking", () => {
  it('makes the cursor path’s file with the exporter’s default row-group bounds when text is not ASCII', async () => {
    // 'é' is one UTF-16 unit and two UTF-8 bytes, '🎉' two units and four bytes: the encoder counts units.
    const sql = `SELECT g AS id, repeat('é', 40) || repeat('🎉', 5) || g AS t FROM generate_series(1, 40000) g ORDER BY g`;

    const { cursor, binary } = await bothFiles(sql, { limits: DEFAULT_GROUP_LIMITS });

    expect(binary?.equals(cursor)).toBe(true);
  });

  it('masks SQL text itself, before the row-group bounds are counted: the cursor path’s masked file, as table-export masks it', async () => {
    const secret = 'hunter2';
    const sql = `SELECT g AS id, 'ALTER ROLE bob PASSWORD ''${secret}' || repeat('s', 200) || g || '''' AS query
      FROM generate_series(1, 20000) g ORDER BY g`;

    const { cursor, binary } = await bothFiles(sql, { limits: DEFAULT_GROUP_LIMITS, redact: ['query'] });

    expect(binary?.equals(cursor)).toBe(true);
  });

  it('declines float8, or reads it as its text reads, when extra_float_digits rounds the text (a database set for an old client)', async () => {
    const rounding = await open();
    try {
      await rounding.scalar('SET extra_float_digits = 0');
      const sql = 'SELECT 1 AS id, 0.1::float8 + 0.2::float8 AS f, 1.0000000000000002::float8 AS g';

      const { cursor, binary } = await bothFiles(sql, { limits: DEFAULT_GROUP_LIMITS, from: rounding });

      if (binary !== undefined) expect(binary.equals(cursor)).toBe(true);
    } finally {
      await rounding.close();
    }
  });

  it('makes the same file for domains (base type described), char(n) and varchar(n)', async () => {
    const { cursor, binary } = await bothFiles('SELECT * FROM typed ORDER BY id', {
      limits: DEFAULT_GROUP_LIMITS,
    });

    expect(binary).toBeDefined();
    expect(binary?.equals(cursor)).toBe(true);
  });

  it('makes the same file for timestamps at 2^53 microseconds from 1970 either side, and the first and last instants', async () => {
    const offsets = [
      -(2n ** 53n) - 1n,
      -(2n ** 53n),
      -(2n ** 53n) + 1n,
      2n ** 53n - 1n,
      2n ** 53n,
      2n ** 53n + 1n,
    ];
    const sql = `SELECT n AS id, timestamptz 'epoch' + x * interval '1 microsecond' AS tstz,
        timestamp 'epoch' + x * interval '1 microsecond' AS ts
      FROM unnest(ARRAY[${offsets.join(', ')}]::int8[]) WITH ORDINALITY AS u(x, n)
      UNION ALL SELECT 7, '0001-01-01 00:00:00+00', '9999-12-31 23:59:59.999999' ORDER BY 1`;

    const { cursor, binary } = await bothFiles(sql, { limits: DEFAULT_GROUP_LIMITS });

    expect(binary?.equals(cursor)).toBe(true);
  });

  it('makes the same file for values of megabytes split across socket reads', async () => {
    const sql = `SELECT g AS id, repeat(chr(233) || 'x🎉', 300000 * g) AS t FROM generate_series(1, 3) g ORDER BY g`;

    const { cursor, binary } = await bothFiles(sql, { limits: { maxRows: 1, maxBytes: 1 << 30 } });

    expect(binary?.equals(cursor)).toBe(true);
  });
});

/** The bytes `psql` writes for a binary COPY of `sql`: the reader's input, from the server, without our client. */
async function psqlBinaryCopy(sql: string): Promise<Buffer> {
  const { host, port, adminUser, adminPassword } = stack().postgres;
  const child = spawn(
    'psql',
    [
      `--host=${host}`,
      `--port=${port}`,
      `--username=${adminUser}`,
      `--dbname=${database}`,
      '-c',
      `\\copy (${sql}) to stdout (format binary)`,
    ],
    { env: { ...process.env, PGPASSWORD: adminPassword }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const parts: Buffer[] = [];
  child.stdout.on('data', (part: Buffer) => parts.push(part));
  const code = await new Promise((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`psql exited ${code}`);
  return Buffer.concat(parts);
}

describe('BinaryGroupReader', () => {
  const sql = 'SELECT id, at, t, thread, wide, f8 FROM many WHERE id <= 1500 ORDER BY id';
  const limits = { maxRows: 700, maxBytes: 1 << 30 };
  let bytes: Buffer;
  let readers: NonNullable<ReturnType<typeof planBinaryColumns>>;

  beforeAll(async () => {
    bytes = await psqlBinaryCopy(sql);
    const columns = await columnsOf(sql);
    const fields = columns.map((c, i) => ({
      name: c.name,
      dataTypeID: [23, 1184, 25, 23, 20, 701][i] as number,
    }));
    readers = planBinaryColumns(fields, columns) as typeof readers;
  });

  const readAll = (pieces: Buffer[]) => {
    const reader = new BinaryGroupReader(readers, limits);
    const groups: ColumnGroup[] = [];
    for (const piece of pieces) reader.write(piece, 0, piece.length, groups);
    groups.push(...reader.end());
    return groups;
  };

  it('reads the same groups wherever the pieces break, inside the header, a length or a multibyte character', () => {
    const whole = readAll([bytes]);
    expect(whole.map((g) => g.rows)).toEqual([700, 700, 100]);

    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let round = 0; round < 12; round++) {
      const pieces: Buffer[] = [];
      for (let at = 0; at < bytes.length; ) {
        const size = 1 + Math.floor(random() * (round < 4 ? 7 : 3000));
        pieces.push(bytes.subarray(at, at + size));
        at += size;
      }
      expect(readAll(pieces)).toStrictEqual(whole);
    }
  });

  it('throws on output that ends inside a row, goes on after its end, or is not binary COPY', () => {
    expect(() => readAll([bytes.subarray(0, bytes.length - 10)])).toThrow(/ended inside a row/);
    expect(() => readAll([bytes.subarray(0, bytes.length - 2)])).toThrow(/ended inside a row/);
    expect(() => readAll([bytes, Buffer.from([0, 6])])).toThrow(/after its end/);
    expect(() => readAll([Buffer.from('id,at\n1,2\n'.repeat(3))])).toThrow(/Not binary COPY output/);
  });

  it('throws on a row of another field count and on a value of the wrong size', () => {
    // The first row starts after the 19-byte header: its field count, then its first field (int4, 4 bytes).
    const fewer = Buffer.from(bytes);
    fewer.writeInt16BE(5, 19);
    const wider = Buffer.from(bytes);
    wider.writeInt32BE(8, 21);

    expect(() => readAll([fewer])).toThrow(/row of 5 fields, expected 6/);
    expect(() => readAll([wider])).toThrow(/value of 8 bytes where 4 were expected/);
  });

  it('refuses header flags it does not know (OIDs, critical bits) and ignores the others', () => {
    const withFlags = (flags: number) => {
      const copy = Buffer.from(bytes);
      copy.writeInt32BE(flags, 11);
      return copy;
    };

    expect(() => readAll([withFlags(1 << 16)])).toThrow(/flags/);
    expect(() => readAll([withFlags(1)])).toThrow(/flags/);
    expect(readAll([withFlags(1 << 20)])).toStrictEqual(readAll([bytes]));
  });
});
