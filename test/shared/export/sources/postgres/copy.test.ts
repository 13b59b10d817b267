import { to as copyTo } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeJsonLines } from '../../../../../shared/export/encode/jsonl';
import {
  type ColumnField,
  type ColumnPlan,
  CsvJsonTranscoder,
  copyStatement,
  planColumns,
} from '../../../../../shared/export/sources/postgres/copy';
import { PostgresSession, typeParser } from '../../../../../shared/export/sources/postgres/session';
import { createLogger } from '../../../../../shared/log';
import { createPgDatabase, pgAdmin, stack } from '../../../../stack/fixtures';

/**
 * The fast path (COPY CSV transcoded to JSON lines) against the cursor path on real PostgreSQL: for the same
 * query, the database-written JSON lines must be the very bytes the cursor path
 * encodes, and a query it cannot match byte for byte must fall back.
 */

const CONTROL_CHARACTERS = Array.from({ length: 31 }, (_, i) => String.fromCharCode(i + 1)).join('');
const TRICKY_TEXT = [
  `quote " apostrophe ' backslash \\ slash / \\n literal`,
  'newline\nreturn\r\ntab\tform\fbackspace\b',
  `controls ${CONTROL_CHARACTERS} del \u007f`,
  'unicode é ß 漢字 \u2028 \u2029 \u00a0 emoji 🎉 non-BMP 𝄞 flags 🇫🇷 combining é',
  '',
  '{"looks":"like json"}',
  'trailing space ',
];

const SUPPORTED_COLUMNS = `id int4, small int2, big int8, num numeric, flag bool,
  t text, v varchar(200), c char(5), ts timestamp(6), tstz timestamptz(6), d date, tm time, tmtz timetz,
  iv interval, b bytea, u uuid, o oid, mood mood, ip inet, ts_list timestamptz[], d_list date[], iv_list interval[]`;

let database: string;
let session: PostgresSession;

beforeAll(async () => {
  database = await createPgDatabase();
  const admin = await pgAdmin(database);
  try {
    await admin.query(`CREATE TYPE mood AS ENUM ('calm', 'très "tendu"')`);
    await admin.query(
      `CREATE TABLE samples (${SUPPORTED_COLUMNS}, f8 float8, f4 float4, js json, jsb jsonb, ints int4[], texts text[], p point)`,
    );
    await admin.query(
      `INSERT INTO samples (id, small, big, num, f8, f4, flag, t, v, c, ts, tstz, d, tm, tmtz, iv, b, u, o, mood, ip,
         ts_list, d_list, iv_list, js, jsb, ints, texts, p) VALUES
       (1, -32768, 9223372036854775807, 123456789012345678901234567890.123456789012345678901234567890, 'NaN', 'NaN', true,
        $1, 'v1', 'ab', '2024-05-01 12:00:00.123456', '2024-05-01 12:00:00.000001+00', '2024-05-01', '12:34:56.789', '12:34:56+02',
        '1 year 2 mons 3 days 04:05:06.789', '\\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 4294967295, 'calm', '10.0.0.1/8',
        '{"2024-05-01 12:00:00+00","1969-12-31 23:59:59.999999+00"}', '{2024-05-01,NULL}', '{"1 day","-00:00:01"}',
        '{"b": 1, "a": [1.0, 2e3]}', '{"b": 1, "a": [1.0, 2e3]}', '{1,NULL,3}', '{"a\\"b",NULL}', '(1.5,2)'),
       (2, 32767, -9223372036854775808, -0.000000000000000000000000000001, 'Infinity', '-Infinity', false,
        $2, $3, 'xyz', '1969-12-31 23:59:59.999999', '1900-01-01 00:00:00+00', '0001-01-01', '00:00:00', '23:59:59.999999-11:30',
        '-1 days +00:00:00.000001', '\\x', '00000000-0000-0000-0000-000000000000', 0, 'très "tendu"', '::1',
        '{}', '{}', '{}', 'null', '"text"', '{}', '{}', '(0,0)'),
       (3, 0, 9007199254740993, 'NaN', '-0', '-0', NULL,
        $4, $5, NULL, '2999-12-31 23:59:59.5', '9999-12-31 23:59:59.999999+00', '9999-12-31', NULL, NULL,
        '00:00:00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
       (4, NULL, NULL, NULL, 1e-300, 1e-30, NULL, $6, $7, NULL, '0044-03-15 12:00:00 BC', '10000-01-01 00:00:00+00', '0044-03-15 BC',
        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
       (5, NULL, NULL, 0, 1e21, 1e7, NULL, NULL, NULL, NULL, 'infinity', '-infinity', 'infinity',
        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
       (6, NULL, NULL, NULL, 0.1, 0.1, NULL, NULL, NULL, NULL, '2024-05-01 00:00:00', '2024-05-01 00:00:00.1+00', NULL,
        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
       (7, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
      TRICKY_TEXT,
    );
  } finally {
    await admin.end();
  }
  const { host, port, adminUser, adminPassword } = stack().postgres;
  session = await PostgresSession.open(
    { host, port, user: adminUser, password: adminPassword, database, tls: 'prefer' },
    createLogger('postgres-copy-test'),
    'postgres-copy test',
  );
});

afterAll(async () => {
  await session?.close();
});

/** What the cursor path writes for `sql`: its rows JSON-encoded line by line. */
async function cursorPathBytes(sql: string): Promise<{ bytes: Buffer; rows: number }> {
  const counter = { rows: 0 };
  let text = '';
  for await (const chunk of encodeJsonLines(session.stream(sql), [], counter)) text += chunk;
  return { bytes: Buffer.from(text, 'utf8'), rows: counter.rows };
}

/** What the COPY fast path writes for `sql`, or undefined when it declines the query. */
async function copyPathBytes(sql: string): Promise<{ bytes: Buffer; rows: number } | undefined> {
  const counter = { rows: 0 };
  const lines = await session.jsonLines(sql, counter, []);
  if (!lines) return undefined;
  const chunks: Uint8Array[] = [];
  for await (const chunk of lines) chunks.push(chunk);
  return { bytes: Buffer.concat(chunks), rows: counter.rows };
}

const SUPPORTED_NAMES = SUPPORTED_COLUMNS.split(',').map((c) => c.trim().split(/\s+/)[0] as string);

/** The raw bytes of a COPY ... TO STDOUT in the session's settings (UTC), through a plain connection. */
async function rawCopy(copySql: string): Promise<Buffer> {
  const admin = await pgAdmin(database);
  try {
    await admin.query("SET TimeZone = 'UTC'");
    const chunks: Buffer[] = [];
    for await (const chunk of admin.query(copyTo(copySql))) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  } finally {
    await admin.end();
  }
}

/** The columns of a query, as the session describes them. */
async function columnsOf(sql: string): Promise<ColumnField[]> {
  const admin = await pgAdmin(database);
  try {
    return (await admin.query(`SELECT * FROM (${sql}) AS d LIMIT 0`)).fields;
  } finally {
    await admin.end();
  }
}

function transcode(plan: ColumnPlan[], chunks: Buffer[]): { text: string; rows: number } {
  const transcoder = new CsvJsonTranscoder(plan);
  const out: Buffer[] = [];
  for (const chunk of chunks) out.push(...transcoder.write(chunk));
  out.push(...transcoder.end());
  return { text: Buffer.concat(out).toString('utf8'), rows: transcoder.rows };
}

describe('PostgresSession.jsonLines', () => {
  it('writes the same bytes as the cursor path for every supported type, NULLs included', async () => {
    // Prepare
    const sql = `SELECT ${SUPPORTED_NAMES.join(', ')} FROM samples ORDER BY id`;

    // Act
    const copy = await copyPathBytes(sql);
    const cursor = await cursorPathBytes(sql);

    // Assess
    expect(copy).toBeDefined();
    expect(copy?.bytes.toString('utf8')).toBe(cursor.bytes.toString('utf8'));
    expect(copy?.bytes.equals(cursor.bytes)).toBe(true);
    expect(copy?.rows).toBe(7);
    expect(cursor.rows).toBe(7);
  });

  it.each(SUPPORTED_NAMES)('writes column %s as the cursor path does', async (column) => {
    const sql = `SELECT id, ${column} AS "${column} value" FROM samples ORDER BY id`;

    const copy = await copyPathBytes(sql);
    const cursor = await cursorPathBytes(sql);

    expect(copy?.bytes.toString('utf8')).toBe(cursor.bytes.toString('utf8'));
  });

  it('writes computed columns and window-style queries as the cursor path does', async () => {
    const sql = `SELECT * FROM (SELECT id, t || '!' AS "weird ""name"" é", ts AT TIME ZONE 'UTC' AS at_utc, now() - now() AS zero,
      count(*) OVER () AS total, 1.50::numeric(6,2) AS money_like FROM samples) AS w WHERE id < 6 ORDER BY id DESC`;

    const copy = await copyPathBytes(sql);
    const cursor = await cursorPathBytes(sql);

    expect(copy?.bytes.equals(cursor.bytes)).toBe(true);
  });

  it.each(['f8', 'f4', 'js', 'jsb', 'ints', 'texts', 'p'])(
    'writes column %s, which takes its type parser, as the cursor path does',
    async (column) => {
      const sql = `SELECT id, ${column} FROM samples ORDER BY id`;

      const copy = await copyPathBytes(sql);
      const cursor = await cursorPathBytes(sql);

      expect(copy).toBeDefined();
      expect(copy?.bytes.toString('utf8')).toBe(cursor.bytes.toString('utf8'));
    },
  );

  it('masks the columns it is asked to, as the cursor path does', async () => {
    // Prepare: statements with credentials, with quotes, newlines and control characters around them
    const sql = `SELECT id, statement, note FROM (VALUES
      (1, $q$CREATE USER app IDENTIFIED BY 'pa"ss\\'word'$q$, $q$CREATE USER kept IDENTIFIED BY 'visible'$q$),
      (2, E'ALTER ROLE app WITH PASSWORD ''s3cret''\\n-- done\\x01', NULL),
      (3, NULL, 'x'),
      (4, 'SELECT 1', E'tab\\there')) AS s(id, statement, note) ORDER BY id`;
    const counter = { rows: 0 };

    // Act
    const lines = await session.jsonLines(sql, counter, ['statement']);
    const chunks: Uint8Array[] = [];
    for await (const chunk of lines ?? []) chunks.push(chunk);
    let expected = '';
    for await (const chunk of encodeJsonLines(session.stream(sql), ['statement'], { rows: 0 }))
      expected += chunk;

    // Assess
    const written = Buffer.concat(chunks).toString('utf8');
    expect(lines).toBeDefined();
    expect(written).toBe(expected);
    expect(written).not.toContain('s3cret');
    expect(written).not.toContain('word');
    expect(written).toContain('visible');
    expect(counter.rows).toBe(4);
  });

  it('transcodes the same whatever the chunk boundaries, one byte at a time included', async () => {
    // Prepare: the raw CSV of every column, read through a plain COPY
    const sql = 'SELECT * FROM samples ORDER BY id';
    const csv = await rawCopy(copyStatement(sql));
    const plan = planColumns(await columnsOf(sql), typeParser) as ColumnPlan[];

    // Act
    const whole = transcode(plan, [csv]);
    const bytewise = transcode(
      plan,
      Array.from({ length: csv.length }, (_, i) => csv.subarray(i, i + 1)),
    );

    // Assess
    expect(bytewise.rows).toBe(7);
    expect(bytewise.text).toBe(whole.text);
    expect(whole.text).toBe((await cursorPathBytes(sql)).bytes.toString('utf8'));
  });

  it('carries a value larger than many chunks across them', async () => {
    const sql = `SELECT 1 AS id, repeat('ab"\\', 300000) || E'\\n' AS t, 2 AS n`;
    const csv = await rawCopy(copyStatement(sql));
    const plan = planColumns(await columnsOf(sql), typeParser) as ColumnPlan[];

    const chunked = transcode(
      plan,
      Array.from({ length: Math.ceil(csv.length / 1000) }, (_, i) => csv.subarray(i * 1000, (i + 1) * 1000)),
    );

    expect(chunked.text).toBe((await cursorPathBytes(sql)).bytes.toString('utf8'));
  });

  it('fails on input that stops inside a row or is not its CSV', () => {
    const plan = planColumns(
      [
        { name: 'id', dataTypeID: 23 },
        { name: 't', dataTypeID: 25 },
      ],
      typeParser,
    ) as ColumnPlan[];

    expect(() => transcode(plan, [Buffer.from('"1","abc')])).toThrow('COPY output ended inside a row');
    expect(() => transcode(plan, [Buffer.from('"1";"abc"\n')])).toThrow('Unexpected COPY output');
    expect(transcode(plan, [Buffer.from('"1",\n,"x"\n')]).text).toBe(
      '{"id":1,"t":null}\n{"id":null,"t":"x"}\n',
    );
  });

  it.each([
    ['duplicate names', 'SELECT id, t AS id FROM samples'],
    ['array-index names', 'SELECT t AS "x", id AS "10" FROM samples'],
    ['__proto__', 'SELECT id AS "__proto__" FROM samples'],
  ])('falls back to the cursor path for %s', async (_, sql) => {
    expect(await session.jsonLines(sql, { rows: 0 }, [])).toBeUndefined();
  });

  it('refuses a query without columns', async () => {
    expect(await session.jsonLines('SELECT FROM samples', { rows: 0 }, [])).toBeUndefined();
  });

  it('yields nothing for an empty result', async () => {
    const copy = await copyPathBytes('SELECT id, t FROM samples WHERE false ORDER BY id');

    expect(copy).toEqual({ bytes: Buffer.alloc(0), rows: 0 });
  });

  it('leaves the session usable when the reader stops early', async () => {
    // Prepare: far more than one chunk of lines
    const lines = await session.jsonLines(
      `SELECT g AS id, repeat('x', 200) AS t FROM generate_series(1, 200000) g ORDER BY g`,
      { rows: 0 },
      [],
    );

    // Act
    for await (const _ of lines ?? []) break;

    // Assess
    expect(await session.scalar('SELECT 41 + 1')).toBe(42);
    expect((await copyPathBytes('SELECT id FROM samples ORDER BY id LIMIT 1'))?.rows).toBe(1);
  });

  it('reports a query error as a database error and stays usable', async () => {
    const lines = await session.jsonLines(
      'SELECT id, 1 / (id - 3) AS boom FROM samples ORDER BY id',
      { rows: 0 },
      [],
    );

    await expect(async () => {
      for await (const _ of lines ?? []) {
      }
    }).rejects.toThrow(/division by zero/);
    expect(await session.scalar('SELECT 42')).toBe(42);
  });

  it('writes every row when the server sends notices in the middle of the COPY', async () => {
    const admin = await pgAdmin(database);
    try {
      await admin.query(
        "CREATE OR REPLACE FUNCTION noisy(n int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN IF n % 1000 = 0 THEN RAISE NOTICE 'row %', n; END IF; RETURN n; END $$",
      );
    } finally {
      await admin.end();
    }
    const sql =
      'SELECT g AS id, noisy(g) AS n, md5(g::text) AS t FROM generate_series(1, 20000) g ORDER BY g';

    const copy = await copyPathBytes(sql);

    expect(copy).toEqual(await cursorPathBytes(sql));
    expect(copy?.rows).toBe(20_000);
    expect(await session.scalar('SELECT 42')).toBe(42);
  });

  it('keeps every row in order through a slow reader (the socket is paused, not buffered whole)', async () => {
    const lines = await session.jsonLines(
      `SELECT g AS id, repeat('y', 300) AS t FROM generate_series(1, 60000) g ORDER BY g`,
      { rows: 0 },
      [],
    );
    let text = '';
    let reads = 0;
    for await (const chunk of lines ?? []) {
      text += Buffer.from(chunk).toString('utf8');
      if (++reads % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }

    const ids = text
      .trimEnd()
      .split('\n')
      .map((line) => (JSON.parse(line) as { id: number }).id);
    expect(ids).toHaveLength(60_000);
    expect(ids.every((id, index) => id === index + 1)).toBe(true);
  });
});
