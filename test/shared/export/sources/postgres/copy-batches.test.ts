import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { SessionOptions } from '../../../../../shared/export/sources/connection-guard';
import {
  type ColumnPlan,
  CsvRowParser,
  planColumns,
} from '../../../../../shared/export/sources/postgres/copy';
import { PostgresSession, typeParser } from '../../../../../shared/export/sources/postgres/session';
import type { Row } from '../../../../../shared/export/sources/session';
import { createLogger } from '../../../../../shared/log';
import { createPgDatabase, pgAdmin, stack } from '../../../../stack/fixtures';
import { startTcpProxy, type TcpProxy } from '../../../../support/tcp-proxy';

/**
 * The COPY row stream against the cursor path on real PostgreSQL: for the same
 * query, `copyBatches` must give the very rows `stream` gives (keys, order,
 * values), or decline the query.
 */

const CONTROL_CHARACTERS = Array.from({ length: 31 }, (_, i) => String.fromCharCode(i + 1)).join('');
const HOSTILE_TEXT = [
  `quote " apostrophe ' backslash \\ slash / \\n literal \\N`,
  'newline\nreturn\r\ntab\tform\fbackspace\b',
  `controls ${CONTROL_CHARACTERS} del \u007f`,
  'unicode é ß 漢字 \u2028 \u2029 \u00a0 emoji 🎉 non-BMP 𝄞 flags 🇫🇷 combining é',
  '',
  '"',
  '\\',
  'ends with a backslash \\',
  '","',
  '"\n"',
  'a,b,,c,',
  '\\"\\\\"',
  'NULL',
];

let database: string;
let session: PostgresSession;
const logger = createLogger('postgres-stream-fast-test');

async function open(via?: TcpProxy, options?: SessionOptions): Promise<PostgresSession> {
  const { adminUser, adminPassword, ...server } = stack().postgres;
  const { host, port } = via ?? server;
  return PostgresSession.open(
    { host, port, user: adminUser, password: adminPassword, database, tls: 'prefer' },
    logger,
    'stream-fast test',
    options,
  );
}

beforeAll(async () => {
  database = await createPgDatabase();
  const admin = await pgAdmin(database);
  try {
    await admin.query(`CREATE TYPE mood AS ENUM ('calm', 'très "tendu"')`);
    await admin.query(`CREATE TABLE samples (id int4, small int2, big int8, num numeric, f8 float8, f4 float4,
      flag bool, t text, v varchar(200), c char(5), ts timestamp(6), tstz timestamptz(6), d date, tm time,
      tmtz timetz, iv interval, b bytea, u uuid, o oid, mood mood, ip inet, js json, jsb jsonb, ints int4[],
      texts text[], ts_list timestamptz[], d_list date[], iv_list interval[], p point)`);
    await admin.query(
      `INSERT INTO samples (id, small, big, num, f8, f4, flag, t, v, c, ts, tstz, d, tm, tmtz, iv, b, u, o, mood, ip,
         js, jsb, ints, texts, ts_list, d_list, iv_list, p) VALUES
       (1, -32768, 9223372036854775807, 123456789012345678901234567890.123456789012345678901234567890, 'NaN', 'NaN',
        true, $1, $2, 'ab', '2024-05-01 12:00:00.123456', '2024-05-01 12:00:00.000001+00', '2024-05-01',
        '12:34:56.789', '12:34:56+02', '1 year 2 mons 3 days 04:05:06.789', '\\x00ff10',
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 4294967295, 'calm', '10.0.0.1/8',
        '{"b": 1, "a": [1.0, 2e3], "s": "q\\"b\\\\s 🎉"}', '{"b": 1, "a": [1.0, 2e3], "s": "q\\"b\\\\s 🎉"}',
        '{1,NULL,3}', '{"a\\"b","c,d",NULL,"🎉"}', '{"2024-05-01 12:00:00+00","1969-12-31 23:59:59.999999+00"}',
        '{2024-05-01,NULL}', '{"1 day","-00:00:01"}', '(1.5,2)'),
       (2, 32767, -9223372036854775808, -0.000000000000000000000000000001, 'Infinity', '-Infinity', false,
        $3, $4, 'xyz', '1969-12-31 23:59:59.999999', '1900-01-01 00:00:00+00', '0001-01-01', '00:00:00',
        '23:59:59.999999-11:30', '-1 days +00:00:00.000001', '\\x', '00000000-0000-0000-0000-000000000000', 0,
        'très "tendu"', '::1', 'null', '"text"', '{}', '{}', '{}', '{}', '{}', '(0,0)'),
       (3, 0, 9007199254740993, 'NaN', '-0', '-0', NULL, $5, $6, NULL, '2999-12-31 23:59:59.5',
        '9999-12-31 23:59:59.999999+00', '9999-12-31', NULL, NULL, '00:00:00', NULL, NULL, NULL, NULL, NULL,
        '[]', '{}', NULL, NULL, NULL, NULL, NULL, NULL),
       (4, NULL, NULL, NULL, 1e-300, 1e-30, NULL, $7, $8, NULL, '0044-03-15 12:00:00 BC',
        '10000-01-01 00:00:00+00', '0044-03-15 BC', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
        NULL, NULL, NULL, NULL, NULL, NULL),
       (5, NULL, NULL, 0, 1e21, 1e7, NULL, $9, $10, NULL, 'infinity', '-infinity', 'infinity', NULL, NULL, NULL,
        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
       (6, NULL, NULL, NULL, 0.1, 0.1, NULL, $11, $12, NULL, '-infinity', '0001-01-01 00:00:00+00 BC', '-infinity',
        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
       (7, NULL, NULL, NULL, NULL, NULL, NULL, $13, '', '', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
       (8, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
      HOSTILE_TEXT,
    );
    // Timestamps with 0 to 6 fraction digits (PostgreSQL drops trailing zeros).
    await admin.query(`CREATE TABLE stamps AS
      SELECT n, timestamp '2024-05-01 12:00:00' + (3 * 10 ^ n)::int * interval '1 microsecond' AS ts,
        timestamptz '2024-05-01 12:00:00+00' + (10 ^ n)::int * interval '1 microsecond' AS tstz
      FROM generate_series(0, 7) n`);
    // Random text over an alphabet of 1- to 4-byte characters and CSV's special characters.
    await admin.query(`SELECT setseed(0.42);
      CREATE TABLE many AS
      SELECT g AS id, timestamptz '2024-03-01 00:00:00+00' + g * interval '1.37 millisecond' AS at,
        CASE WHEN g % 97 = 0 THEN NULL WHEN g % 89 = 0 THEN '' ELSE (
          SELECT string_agg(substr(E'aZ9 é漢🎉𝄞"\\\\,\\n\\r\\t;x', 1 + floor(random() * 16)::int, 1), '')
          FROM generate_series(1, 1 + (g * 37) % 90)) END AS t,
        g % 5000 AS thread, jsonb_build_object('g', g, 's', repeat('ü', g % 7)) AS js
      FROM generate_series(1, 50000) g`);
  } finally {
    await admin.end();
  }
  session = await open();
});

afterAll(async () => {
  await session?.close();
});

async function cursorRows(sql: string, from = session): Promise<Row[]> {
  const rows: Row[] = [];
  for await (const row of from.stream(sql)) rows.push(row);
  return rows;
}

/** The rows of `copyBatches`, one by one; undefined when it declines the query. */
async function fast(sql: string, from = session): Promise<AsyncIterable<Row> | undefined> {
  const batches = await from.copyBatches(sql);
  if (!batches) return undefined;
  return (async function* () {
    for await (const batch of batches) {
      expect(batch.length).toBeGreaterThan(0);
      yield* batch;
    }
  })();
}

async function fastRows(sql: string, from = session): Promise<Row[] | undefined> {
  const stream = await fast(sql, from);
  if (!stream) return undefined;
  const rows: Row[] = [];
  for await (const row of stream) rows.push(row);
  return rows;
}

describe('PostgresSession.copyBatches', () => {
  it.each([
    ['every column of every type, hostile text and NULLs included', 'SELECT * FROM samples ORDER BY id'],
    ['timestamps with 0 to 6 fraction digits', 'SELECT * FROM stamps ORDER BY n'],
    [
      'computed columns with unusual names',
      `SELECT id, t || '!' AS "weird ""name"" é, 🎉", ts AT TIME ZONE 'UTC' AS at_utc, now() - now() AS zero,
        count(*) OVER () AS total, 1.50::numeric(6,2) AS money_like, '' AS empty, NULL::text AS nothing
       FROM samples ORDER BY id DESC`,
    ],
  ])('gives the rows the cursor path gives: %s', async (_, sql) => {
    // Act
    const fast = await fastRows(sql);
    const cursor = await cursorRows(sql);

    // Assess
    expect(cursor.length).toBeGreaterThan(5);
    expect(fast).toStrictEqual(cursor);
    expect(fast?.map((row) => Object.keys(row))).toEqual(cursor.map((row) => Object.keys(row)));
  });

  it('keeps hostile text, empty strings and NULLs apart', async () => {
    const fast = await fastRows('SELECT id, t, v FROM samples ORDER BY id');

    expect(fast?.map((row) => row.t)).toEqual([...HOSTILE_TEXT.filter((_, i) => i % 2 === 0), null]);
    expect(fast?.map((row) => row.v)).toEqual([...HOSTILE_TEXT.filter((_, i) => i % 2 === 1), '', null]);
  });

  it('gives the rows the cursor path gives for 50,000 rows of random multibyte text', async () => {
    const sql = 'SELECT id, at, t, thread, js FROM many ORDER BY id';

    const fast = await fastRows(sql);
    const cursor = await cursorRows(sql);

    expect(cursor).toHaveLength(50_000);
    expect(fast).toStrictEqual(cursor);
  });

  it('leaves the session usable when the consumer stops after a few rows', async () => {
    // Prepare: a session of its own, and far more rows than the socket and the queue hold
    const stopping = await open();
    const stream = await fast(
      `SELECT g AS id, repeat('x', 200) AS t FROM generate_series(1, 200000) g ORDER BY g`,
      stopping,
    );
    const read: Row[] = [];

    try {
      // Act
      for await (const row of stream ?? []) {
        read.push(row);
        if (read.length === 3) break;
      }

      // Assess: a COPY left running would hold the next query back
      expect(read).toEqual([1, 2, 3].map((id) => ({ id, t: 'x'.repeat(200) })));
      const answer = await Promise.race([stopping.scalar('SELECT 41 + 1'), sleep(10_000, 'no answer')]);
      expect(answer).toBe(42);
      expect(await fastRows('SELECT id FROM samples ORDER BY id LIMIT 2', stopping)).toEqual([
        { id: 1 },
        { id: 2 },
      ]);
    } finally {
      await stopping.close();
    }
  });

  it('reports a query error as a database error and stays usable', async () => {
    const stream = await fast('SELECT id, 1 / (id - 3) AS boom FROM samples ORDER BY id');

    await expect(async () => {
      for await (const _ of stream ?? []) {
      }
    }).rejects.toThrow(/division by zero/);
    expect(await session.scalar('SELECT 42')).toBe(42);
  });

  it('fails the stream when the server ends the connection', async () => {
    // Prepare: a session of its own, its backend ended by another connection while rows wait
    const doomed = await open();
    const pid = await doomed.scalar('SELECT pg_backend_pid()');
    const stream = await fast(
      `SELECT g AS id, repeat('y', 300) AS t FROM generate_series(1, 300000) g ORDER BY g`,
      doomed,
    );
    let rows = 0;

    // Act
    const reading = (async () => {
      for await (const _ of stream ?? []) {
        if (++rows === 10) {
          const admin = await pgAdmin(database);
          try {
            await admin.query('SELECT pg_terminate_backend($1)', [pid]);
          } finally {
            await admin.end();
          }
        }
      }
    })();

    // Assess
    try {
      await expect(reading).rejects.toThrow(/terminat/i);
      expect(rows).toBeLessThan(300_000);
    } finally {
      await doomed.close();
    }
  });

  it.each([
    ['drops', (proxy: TcpProxy) => proxy.close(), /Connection (terminated|lost)/],
    ['stalls', (proxy: TcpProxy) => proxy.freeze(), /No data from the server for 0.5 s/],
  ] as const)('fails the stream when the path to the server %s', async (_, interrupt, error) => {
    // Prepare: a session through a proxy of the test's own
    const proxy = await startTcpProxy(stack().postgres);
    const interrupted = await open(proxy, { readTimeoutMs: 500 });
    const stream = await fast(
      `SELECT g AS id, repeat('z', 300) AS t FROM generate_series(1, 300000) g ORDER BY g`,
      interrupted,
    );
    let rows = 0;

    // Act
    const reading = (async () => {
      for await (const _ of stream ?? []) {
        if (++rows === 10) await interrupt(proxy);
      }
    })();

    // Assess
    try {
      await expect(reading).rejects.toThrow(error);
      expect(rows).toBeLessThan(300_000);
    } finally {
      await interrupted.close();
      await proxy.close();
    }
  });

  it('yields nothing for an empty result', async () => {
    expect(await fastRows('SELECT id, t FROM samples WHERE false')).toEqual([]);
  });

  it.each([
    ['duplicate names', 'SELECT id, t AS id FROM samples'],
    ['array-index names', 'SELECT t AS "x", id AS "10" FROM samples'],
    ['__proto__', 'SELECT id AS "__proto__" FROM samples'],
    ['no column', 'SELECT FROM samples'],
  ])('declines a query with %s', async (_, sql) => {
    expect(await session.copyBatches(sql)).toBeUndefined();
  });

  it('declines every query where COPY would not print what the cursor path reads', async () => {
    // Prepare: a session whose dates COPY would print in another style
    const other = await open();
    try {
      await other.scalar("SET DateStyle = 'SQL, DMY'");

      // Act
      const stream = await other.copyBatches('SELECT id FROM samples');

      // Assess
      expect(stream).toBeUndefined();
      expect(await cursorRows('SELECT id FROM samples ORDER BY id LIMIT 1', other)).toEqual([{ id: 1 }]);
    } finally {
      await other.close();
    }
  });
});

describe('PostgresSession.batches', () => {
  const sql = 'SELECT * FROM samples ORDER BY id';

  async function batchedRows(from: PostgresSession): Promise<Row[]> {
    const rows: Row[] = [];
    for await (const batch of from.batches(sql)) rows.push(...batch);
    return rows;
  }

  it("reads through COPY where the server has the COPY path, the cursor path's rows", async () => {
    const copy = vi.spyOn(session, 'copyBatches');
    try {
      const rows = await batchedRows(session);

      expect(rows).toStrictEqual(await cursorRows(sql));
      expect(copy).toHaveBeenCalledOnce();
      expect(await copy.mock.results[0]?.value).toBeDefined();
    } finally {
      copy.mockRestore();
    }
  });

  it('reads through the cursor where COPY would not print what the cursor path reads', async () => {
    const other = await open();
    const copy = vi.spyOn(other, 'copyBatches');
    try {
      await other.scalar("SET DateStyle = 'SQL, DMY'");

      const rows = await batchedRows(other);

      expect(await copy.mock.results[0]?.value).toBeUndefined();
      expect(rows.map((row) => row.id)).toEqual((await cursorRows(sql)).map((row) => row.id));
      expect(rows.length).toBeGreaterThan(5);
    } finally {
      await other.close();
    }
  });
});

describe('CsvRowParser', () => {
  const plan = planColumns(
    [
      { name: 'id', dataTypeID: 23 },
      { name: 't', dataTypeID: 25 },
      { name: 'at', dataTypeID: 1184 },
      { name: 'js', dataTypeID: 3802 },
      { name: 'empty', dataTypeID: 25 },
    ],
    typeParser,
  ) as ColumnPlan[];
  // COPY's CSV for two rows: escaped quotes and backslashes, a comma and a newline inside a value, 2- to 4-byte characters, NULLs.
  const csv = Buffer.from(
    '"1","a\\"b\\\\c,d\ne 🎉 漢 é\\\\","2024-05-01 12:00:00.5+00","{\\"k\\": \\"v🎉\\"}",""\n' +
      '"2",,"0044-03-15 12:00:00+00 BC","[]",\n',
    'utf8',
  );
  const expected = [
    { id: 1, t: 'a"b\\c,d\ne 🎉 漢 é\\', at: '2024-05-01T12:00:00.5Z', js: { k: 'v🎉' }, empty: '' },
    { id: 2, t: null, at: '0044-03-15 12:00:00+00 BC', js: [], empty: null },
  ];

  function parse(chunks: Buffer[]): Row[] {
    const parser = new CsvRowParser(plan);
    const rows = chunks.flatMap((chunk) => parser.write(chunk));
    return [...rows, ...parser.end()];
  }

  it('reads the same rows wherever the chunks break, inside a multibyte character included', () => {
    for (let at = 0; at <= csv.length; at++) {
      expect(parse([csv.subarray(0, at), csv.subarray(at)]), `break at byte ${at}`).toStrictEqual(expected);
    }
    expect(parse(Array.from({ length: csv.length }, (_, i) => csv.subarray(i, i + 1)))).toStrictEqual(
      expected,
    );
  });

  it('reads bytes held as latin1 text, as CopyOutQuery hands them', () => {
    const parser = new CsvRowParser(plan);
    const rows = [...parser.writeText(csv.subarray(0, 60).toString('latin1'))];
    rows.push(...parser.writeText(csv.subarray(60).toString('latin1')), ...parser.end());

    expect(rows).toStrictEqual(expected);
    expect(parser.rows).toBe(2);
  });

  it('throws on input that stops inside a row or is not COPY CSV', () => {
    expect(() => parse([csv.subarray(0, csv.length - 1)])).toThrow('COPY output ended inside a row');
    expect(() => parse([Buffer.from('"1";"x","2024-05-01 12:00:00+00",,\n')])).toThrow(
      'Unexpected COPY output at column 1',
    );
    expect(() => parse([Buffer.from('"1","x","2024-05-01 12:00:00+00",,,\n')])).toThrow(
      'Unexpected COPY output at column 5',
    );
  });
});
