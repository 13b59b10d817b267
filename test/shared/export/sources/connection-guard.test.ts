import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlSession } from '../../../../shared/export/sources/mysql/session';
import { PostgresSession } from '../../../../shared/export/sources/postgres/session';
import type { DatabaseSession } from '../../../../shared/export/sources/session';
import { createLogger } from '../../../../shared/log';
import { createMysqlDatabase, mysqlAdmin, stack } from '../../../stack/fixtures';

/**
 * The read timeout counts only the server's silence while it owes an answer:
 * not a reader that is behind (the socket paused by it), not the time between
 * cursor batches, not an idle session. A timeout of 300 ms against pauses of
 * a second and more.
 */

const READ_TIMEOUT_MS = 300;
const ROWS = 60_000;
const logger = createLogger('connection-guard-test');

let mysqlDatabase: string;
const sessions: DatabaseSession[] = [];

beforeAll(async () => {
  mysqlDatabase = await createMysqlDatabase();
  const admin = await mysqlAdmin();
  try {
    await admin.query(`CREATE TABLE \`${mysqlDatabase}\`.many AS
      SELECT seq AS id, CONCAT(REPEAT('x', 150), seq) AS t FROM \`${mysqlDatabase}\`.seq_1_to_${ROWS}`);
  } finally {
    await admin.end();
  }
});

afterAll(async () => {
  await Promise.all(sessions.map((s) => s.close()));
});

async function open(engine: 'mariadb' | 'postgres'): Promise<{ session: DatabaseSession; sql: string }> {
  if (engine === 'mariadb') {
    const { host, port, adminUser, adminPassword } = stack().mariadb;
    const session = await MysqlSession.open(
      { host, port, user: adminUser, password: adminPassword, database: mysqlDatabase, tls: 'disable' },
      logger,
      'guard test',
      { readTimeoutMs: READ_TIMEOUT_MS },
    );
    sessions.push(session);
    return { session, sql: 'SELECT id, t FROM many ORDER BY id' };
  }
  const { host, port, adminUser, adminPassword } = stack().postgres;
  const session = await PostgresSession.open(
    { host, port, user: adminUser, password: adminPassword, tls: 'disable' },
    logger,
    'guard test',
    { readTimeoutMs: READ_TIMEOUT_MS },
  );
  sessions.push(session);
  return {
    session,
    sql: `SELECT g AS id, repeat('x', 150) || g AS t FROM generate_series(1, ${ROWS}) g ORDER BY g`,
  };
}

describe.each(['mariadb', 'postgres'] as const)('%s session with a short read timeout', (engine) => {
  it('lets a slow reader of the fast path pause for longer than the timeout', async () => {
    const { session, sql } = await open(engine);
    const counter = { rows: 0 };
    const lines = await session.jsonLines?.(sql, counter, []);
    expect(lines).toBeDefined();

    let chunks = 0;
    for await (const _ of lines as AsyncIterable<Uint8Array>) {
      // Twice, long after the socket was paused behind the waiting chunks.
      if (++chunks <= 2) await sleep(4 * READ_TIMEOUT_MS);
    }

    expect(counter.rows).toBe(ROWS);
  });

  it('lets a slow reader of the row stream pause for longer than the timeout', async () => {
    const { session, sql } = await open(engine);

    let rows = 0;
    for await (const _ of session.stream(sql)) {
      if (++rows === 10 || rows === 30_000) await sleep(4 * READ_TIMEOUT_MS);
    }

    expect(rows).toBe(ROWS);
  });

  it('keeps an idle session usable, and still times out a query that the server holds', async () => {
    const { session } = await open(engine);
    await sleep(4 * READ_TIMEOUT_MS);
    expect(Number(await session.scalar('SELECT 1'))).toBe(1);

    const started = Date.now();
    await expect(
      session.scalar(engine === 'mariadb' ? 'SELECT SLEEP(5)' : 'SELECT pg_sleep(5)'),
    ).rejects.toThrow(/No data from the server for 0.3 s/);
    expect(Date.now() - started).toBeLessThan(3000);
    // The session is dead from then on: a query fails at once rather than hanging.
    await expect(session.scalar('SELECT 1')).rejects.toThrow();
  });
});
