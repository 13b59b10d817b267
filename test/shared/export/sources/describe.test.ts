import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generalLog } from '../../../../shared/export/sources/catalog';
import { MysqlSession } from '../../../../shared/export/sources/mysql/session';
import { PostgresSession } from '../../../../shared/export/sources/postgres/session';
import { createLogger } from '../../../../shared/log';
import { createMysqlDatabase, createPgDatabase, mysqlAdmin, pgAdmin, stack } from '../../../stack/fixtures';

/**
 * A query's columns as the sessions describe them, against the servers' own
 * catalogs (information_schema.COLUMNS.COLUMN_TYPE, format_type over
 * pg_attribute): the types typed output formats are built from.
 */

const logger = createLogger('describe-test');

describe('MariaDB describes a query with the types its DDL names', () => {
  let database: string;
  let session: MysqlSession;

  beforeAll(async () => {
    database = await createMysqlDatabase();
    const admin = await mysqlAdmin();
    try {
      await admin.query(
        `USE \`${database}\`;
        CREATE TABLE typed (ti TINYINT, flag TINYINT(1), si SMALLINT UNSIGNED, mi MEDIUMINT, i INT, iu INT UNSIGNED,
          b BIGINT, bu BIGINT UNSIGNED, d DECIMAL(10,2), du DECIMAL(20,0) UNSIGNED, dz DECIMAL(5,0), f FLOAT, db DOUBLE,
          ts TIMESTAMP(6) NULL, ts0 TIMESTAMP NULL, dt DATETIME(3), day DATE, tm TIME(2), yr YEAR, bits BIT(5),
          vc VARCHAR(64), c CHAR(3), vb VARBINARY(20), bn BINARY(4), tt TINYTEXT, t TEXT, mt MEDIUMTEXT, lt LONGTEXT,
          bl BLOB, mb MEDIUMBLOB, e ENUM('a','b'), st SET('x','y')) CHARACTER SET utf8mb4;
        CREATE FUNCTION boom(x INT) RETURNS INT DETERMINISTIC BEGIN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'evaluated'; RETURN x; END;
        INSERT INTO typed (i) VALUES (1);`,
      );
    } finally {
      await admin.end();
    }
    const { host, port, adminUser, adminPassword } = stack().mariadb;
    session = await MysqlSession.open(
      { host, port, user: adminUser, password: adminPassword, database, tls: 'prefer' },
      logger,
      'describe test',
    );
  });

  afterAll(async () => {
    await session?.close();
  });

  it('names every column type as information_schema does (integer display widths aside)', async () => {
    const described = await session.describe('SELECT * FROM typed');
    const admin = await mysqlAdmin();
    try {
      const [rows] = await admin.query(
        'SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
        [database, 'typed'],
      );
      const normalise = (type: string) =>
        type
          // Display widths are not types (MySQL 8 drops them), but tinyint(1) says boolean.
          .replace(/^(tinyint|smallint|mediumint|int|bigint)\((\d+)\)/, (_, t, w) =>
            t === 'tinyint' && w === '1' ? 'tinyint(1)' : t,
          )
          .replace(/^year\(4\)$/, 'year')
          .replace(/^(enum|set)\(.*\)$/, '$1');
      const expected = (rows as { name: string; type: string }[]).map((r) => ({
        name: r.name,
        type: normalise(r.type),
      }));
      expect(described).toEqual(expected);
      expect(described.find((c) => c.name === 'bu')?.type).toBe('bigint unsigned');
      expect(described.find((c) => c.name === 'ts')?.type).toBe('timestamp(6)');
      expect(described.find((c) => c.name === 'd')?.type).toBe('decimal(10,2)');
    } finally {
      await admin.end();
    }
  });

  it('describes computed columns and reads no row (a function that fails when evaluated is not called)', async () => {
    const described = await session.describe(
      "SELECT i, boom(i) AS exploded, 'writer_session_time_zone' AS time_basis, i * 1.5 AS scaled FROM typed",
    );
    expect(described.map((c) => c.name)).toEqual(['i', 'exploded', 'time_basis', 'scaled']);
    expect(described[1]?.type).toBe('int');
    expect(described[2]?.type).toMatch(/^varchar\(24\)$/);
    expect(described[3]?.type).toMatch(/^decimal\(\d+,1\)$/);
  });

  it("describes the catalog's general_log query, time_basis included", async () => {
    const query = await generalLog.source({ session, options: {}, dueUntil: 0 });
    if (typeof query !== 'function') throw new Error('general_log skipped');
    const described = await session.describe(query({ lo: 0, hi: 1 }));
    expect(described.map((c) => `${c.name} ${c.type}`)).toEqual([
      'event_time timestamp(6)',
      'user_host mediumtext',
      'thread_id bigint unsigned',
      'server_id int unsigned',
      'command_type varchar(64)',
      'argument mediumtext',
      'time_basis varchar(24)',
    ]);
  });
  it("describes general_log's by-position query the same with no rows to read as with some", async () => {
    const source = generalLog.appendOnly;
    if (!source) throw new Error('general_log is read by position');
    const names = async (ranges: { table: string; from: number; to: number }[]) =>
      (await session.describe(source.query(session, ranges as never, {}))).map((c) => `${c.name} ${c.type}`);
    // The Parquet encoder describes a table's first query of a run and keeps that schema for every window.
    expect(await names([])).toEqual(await names([{ table: 'general_log', from: 0, to: 10 }]));
  });
});

describe('PostgreSQL describes a query with format_type names, running nothing', () => {
  let database: string;
  let session: PostgresSession;

  beforeAll(async () => {
    database = await createPgDatabase();
    const admin = await pgAdmin(database);
    try {
      await admin.query(`
        CREATE TABLE typed (s smallint, i integer, b bigint, n numeric(12,3), nn numeric, r real, d double precision,
          flag boolean, ts timestamp(3), tz timestamptz, tz0 timestamptz(0), day date, tm time, iv interval,
          t text, vc varchar(40), c char(2), by bytea, js json, jb jsonb, u uuid, arr integer[], ip inet);
        CREATE FUNCTION boom(x integer) RETURNS integer LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'evaluated'; END $$;
        INSERT INTO typed (i) VALUES (1);`);
    } finally {
      await admin.end();
    }
    const { host, port, adminUser, adminPassword } = stack().postgres;
    session = await PostgresSession.open(
      { host, port, user: adminUser, password: adminPassword, database, tls: 'prefer' },
      logger,
      'describe test',
    );
  });

  afterAll(async () => {
    await session?.close();
  });

  it('names every column type as format_type over pg_attribute does', async () => {
    const described = await session.describe('SELECT * FROM typed');
    const admin = await pgAdmin(database);
    try {
      const { rows } = await admin.query(
        `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute
         WHERE attrelid = 'typed'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
      );
      expect(described).toEqual(rows);
      expect(described.find((c) => c.name === 'tz')?.type).toBe('timestamp with time zone');
      expect(described.find((c) => c.name === 'n')?.type).toBe('numeric(12,3)');
    } finally {
      await admin.end();
    }
  });

  it('describes computed columns without running the query', async () => {
    const described = await session.describe(
      "SELECT boom(i) AS exploded, 'x'::text AS label, now() AS at, i::bigint * 2 AS twice FROM typed",
    );
    expect(described).toEqual([
      { name: 'exploded', type: 'integer' },
      { name: 'label', type: 'text' },
      { name: 'at', type: 'timestamp with time zone' },
      { name: 'twice', type: 'bigint' },
    ]);
  });
});
