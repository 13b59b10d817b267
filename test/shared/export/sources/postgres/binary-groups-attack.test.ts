import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inBatches, maskSqlText, type Row } from '../../../../../shared/export/encode/jsonl';
import {
  encodeParquetBatches,
  encodeParquetGroups,
  type GroupLimits,
  groupLimits,
} from '../../../../../shared/export/encode/parquet';
import { type ParquetColumn, parquetTypeOf } from '../../../../../shared/export/encode/parquet-types';
import { PostgresSession } from '../../../../../shared/export/sources/postgres/session';
import { createLogger } from '../../../../../shared/log';
import { createPgDatabase, pgAdmin, stack } from '../../../../stack/fixtures';

/**
 * The binary COPY Parquet path (parquetGroups) against what its commit
 * promises: with the bounds and masking the exporter really uses, the file the
 * cursor path makes, byte for byte; nothing it must not write.
 */

let database: string;
let session: PostgresSession;
const logger = createLogger('postgres-binary-groups-attack-test');

async function open(): Promise<PostgresSession> {
  const { adminUser, adminPassword, host, port } = stack().postgres;
  return PostgresSession.open(
    { host, port, user: adminUser, password: adminPassword, database, tls: 'prefer' },
    logger,
    'binary-groups attack test',
  );
}

beforeAll(async () => {
  database = await createPgDatabase();
  const admin = await pgAdmin(database);
  try {
    await admin.query(`CREATE DOMAIN short_text AS varchar(12) CHECK (VALUE <> 'forbidden');
      CREATE DOMAIN instant AS timestamptz;
      CREATE DOMAIN counter AS int8 CHECK (VALUE >= 0);
      CREATE TABLE typed (id int4, s short_text, at instant, n counter, c char(7), v varchar(3));
      INSERT INTO typed VALUES (1, 'é🎉', '2024-05-01 00:00:00.000001+00', 9223372036854775807, 'ab', 'xyz'),
        (2, '', '1685-01-01 00:00:00+00', 0, '', ''), (3, NULL, NULL, NULL, NULL, NULL)`);
  } finally {
    await admin.end();
  }
  session = await open();
});

afterAll(async () => {
  await session?.close();
});

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
 * The file of the cursor path's rows and the file of the session's groups
 * (undefined when it declines), both with `limits` and masking `redact`.
 */
async function bothFiles(
  sql: string,
  limits: GroupLimits = groupLimits(),
  redact: readonly string[] = [],
  from = session,
) {
  const columns = await columnsOf(sql, from);
  const groups = await from.parquetGroups(sql, columns, limits, redact);
  const options = { maxRowGroupRows: limits.maxRows, maxRowGroupBytes: limits.maxBytes };
  return {
    cursor: await bytesOf(
      encodeParquetBatches(columns, maskedBatches(inBatches(from.stream(sql)), redact), options),
    ),
    binary: groups && (await bytesOf(encodeParquetGroups(columns, groups))),
  };
}

describe('PostgresSession.parquetGroups under attack', () => {
  it('makes the cursor path’s file with the exporter’s default row-group bounds when text is not ASCII', async () => {
    // 'é' is one UTF-16 unit and two UTF-8 bytes, '🎉' two units and four bytes: the encoder counts units.
    const sql = `SELECT g AS id, repeat('é', 40) || repeat('🎉', 5) || g AS t FROM generate_series(1, 40000) g ORDER BY g`;

    const { cursor, binary } = await bothFiles(sql);

    expect(binary?.equals(cursor)).toBe(true);
  });

  it('masks SQL text itself, before the row-group bounds are counted: the cursor path’s masked file, as table-export masks it', async () => {
    const secret = 'hunter2';
    const sql = `SELECT g AS id, 'ALTER ROLE bob PASSWORD ''${secret}' || repeat('s', 200) || g || '''' AS query
      FROM generate_series(1, 20000) g ORDER BY g`;

    const { cursor, binary } = await bothFiles(sql, groupLimits(), ['query']);

    expect(binary?.equals(cursor)).toBe(true);
  });

  it('declines float8, or reads it as its text reads, when extra_float_digits rounds the text (a database set for an old client)', async () => {
    const rounding = await open();
    try {
      await rounding.scalar('SET extra_float_digits = 0');
      const sql = 'SELECT 1 AS id, 0.1::float8 + 0.2::float8 AS f, 1.0000000000000002::float8 AS g';

      const { cursor, binary } = await bothFiles(sql, groupLimits(), [], rounding);

      if (binary !== undefined) expect(binary.equals(cursor)).toBe(true);
    } finally {
      await rounding.close();
    }
  });

  it('makes the same file for domains (base type described), char(n) and varchar(n)', async () => {
    const { cursor, binary } = await bothFiles('SELECT * FROM typed ORDER BY id');

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

    const { cursor, binary } = await bothFiles(sql);

    expect(binary?.equals(cursor)).toBe(true);
  });

  it('makes the same file for values of megabytes split across socket reads', async () => {
    const sql = `SELECT g AS id, repeat(chr(233) || 'x🎉', 300000 * g) AS t FROM generate_series(1, 3) g ORDER BY g`;

    const { cursor, binary } = await bothFiles(sql, { maxRows: 1, maxBytes: 1 << 30 });

    expect(binary?.equals(cursor)).toBe(true);
  });
});
