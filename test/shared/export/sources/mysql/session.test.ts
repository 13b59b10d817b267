import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeJsonLines } from '../../../../../shared/export/encode/jsonl';
import { MysqlSession } from '../../../../../shared/export/sources/mysql/session';
import { createLogger } from '../../../../../shared/log';
import { createMysqlDatabase, mysqlAdmin, stack } from '../../../../stack/fixtures';

/**
 * MariaDB's fast path (rows encoded in mysql2's row events, the socket paused
 * while chunks wait) against the row stream encoded line by line: the same
 * bytes, masking included, and a clean stop on errors.
 */

const CONTROL_CHARACTERS = Array.from({ length: 31 }, (_, i) => String.fromCharCode(i + 1)).join('');

let database: string;
let session: MysqlSession;

beforeAll(async () => {
  database = await createMysqlDatabase();
  const admin = await mysqlAdmin();
  try {
    await admin.query(
      `USE \`${database}\`;
      CREATE TABLE samples (id INT PRIMARY KEY, big BIGINT, dec_value DECIMAL(40,10), f FLOAT, d DOUBLE,
        dt DATETIME(6), ts TIMESTAMP(3) NULL, day DATE, t TEXT, bin VARBINARY(200), blob_value MEDIUMBLOB,
        flag TINYINT(1), js JSON, statement TEXT) CHARACTER SET utf8mb4;
      INSERT INTO samples VALUES
        (1, 9223372036854775807, 123456789012345678901234567890.1234567890, 0.1, 1e300,
         '2024-05-01 12:00:00.123456', '2024-05-01 12:00:00.5', '2024-05-01',
         'quote " apostrophe '' backslash \\\\ newline \\n tab \\t é 漢字 🎉', 'bytes as text', X'00ff10',
         1, '{"b": 1, "a": [1.0, 2e3]}', 'CREATE USER app IDENTIFIED BY ''s3cret'''),
        (2, -9007199254740993, -0.0000000001, -0.5, -0.0, '1970-01-01 00:00:00', NULL, '0001-01-01',
         ?, '', '', 0, 'null', 'SET PASSWORD FOR app = PASSWORD(''hunter2'')'),
        (3, NULL, NULL, NULL, NULL, '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999', NULL,
         '', NULL, NULL, NULL, NULL, NULL);`,
      [`controls ${CONTROL_CHARACTERS}`],
    );
    await admin.query(`USE \`${database}\`; CREATE TABLE many (id INT PRIMARY KEY, t VARCHAR(200));
      INSERT INTO many SELECT seq, CONCAT(REPEAT('x', 150), seq) FROM seq_1_to_60000;`);
  } finally {
    await admin.end();
  }
  session = await openSession();
});

afterAll(async () => {
  await session?.close();
});

function openSession(): Promise<MysqlSession> {
  const { host, port, adminUser, adminPassword } = stack().mariadb;
  return MysqlSession.open(
    { host, port, user: adminUser, password: adminPassword, database, tls: 'prefer' },
    createLogger('mysql-session-test'),
    'mysql-session test',
  );
}

async function rowPath(sql: string, redact: string[]): Promise<string> {
  let text = '';
  for await (const chunk of encodeJsonLines(session.stream(sql), redact, { rows: 0 })) text += chunk;
  return text;
}

async function fastPath(
  sql: string,
  redact: string[],
  counter = { rows: 0 },
  onChunk?: () => Promise<void>,
): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of await session.jsonLines(sql, counter, redact)) {
    chunks.push(chunk);
    await onChunk?.();
  }
  return Buffer.concat(chunks).toString('utf8');
}

describe('MysqlSession.jsonLines', () => {
  it('writes the same bytes as the row stream for every column type, NULLs included', async () => {
    const sql = 'SELECT * FROM samples ORDER BY id';
    const counter = { rows: 0 };

    const fast = await fastPath(sql, [], counter);
    const rows = await rowPath(sql, []);

    expect(fast).toBe(rows);
    expect(counter.rows).toBe(3);
    expect(fast).toContain('"dt":"2024-05-01T12:00:00.123456Z"');
    expect(fast).toContain('"bin":"bytes as text"');
    expect(fast).toContain('s3cret');
  });

  it('masks the columns it is asked to, as the row stream does', async () => {
    const sql = 'SELECT id, statement, t FROM samples ORDER BY id';

    const fast = await fastPath(sql, ['statement']);

    expect(fast).toBe(await rowPath(sql, ['statement']));
    expect(fast).not.toContain('s3cret');
    expect(fast).not.toContain('hunter2');
    expect(fast).toContain("IDENTIFIED BY '<redacted>'");
  });

  it('delivers every row to a slow reader, pausing the socket rather than buffering the result', async () => {
    const sql = 'SELECT id, t FROM many ORDER BY id';
    const counter = { rows: 0 };
    let chunks = 0;

    const fast = await fastPath(sql, [], counter, async () => {
      chunks += 1;
      await sleep(20);
    });

    expect(counter.rows).toBe(60_000);
    expect(chunks).toBeGreaterThan(5);
    expect(fast).toBe(await rowPath(sql, []));
  });

  it('yields nothing for an empty result', async () => {
    expect(await fastPath('SELECT id FROM samples WHERE id < 0', [])).toBe('');
  });

  it('reports a query error as a database error and stays usable', async () => {
    await expect(fastPath('SELECT id FROM no_such_table', [])).rejects.toThrow(/no_such_table/);
    expect(Number(await session.scalar('SELECT 41 + 1'))).toBe(42);
  });

  it('lets the reader stop early; closing the session drops the unread rows', async () => {
    const stopping = await openSession();
    const lines = await stopping.jsonLines('SELECT id, t FROM many ORDER BY id', { rows: 0 }, []);

    for await (const _ of lines) break;
    await stopping.close();

    expect(Number(await session.scalar('SELECT 42'))).toBe(42);
  });
});
