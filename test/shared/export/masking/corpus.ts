/**
 * Statements with credentials in every form the masker knows, per dialect,
 * and ordinary statements that must come out unchanged. Every secret holds a
 * marker `Zx<nn>` (unique in the corpus) that must not survive masking; where
 * the secret is hex-encoded its hex is listed in `secrets`.
 *
 * `{u}` stands for a user name the end-to-end tests make unique; entries with
 * `server` are sent to that server by them (failing ones on purpose: a failed
 * statement is logged too, and changes nothing).
 */
export interface CorpusEntry {
  dialect: 'mysql' | 'postgres';
  sql: string;
  /** The exact masked text, where readability matters. */
  masked?: string;
  /** Secrets not spelled with a marker (hex). */
  secrets?: string[];
  server?: boolean;
}

export const MARKER = /Zx\d{2,3}/g;

const hex = (s: string) => Buffer.from(s).toString('hex');

/** Statements holding a credential. */
export const CREDENTIAL_CORPUS: CorpusEntry[] = [
  // MySQL / MariaDB: IDENTIFIED BY and its neighbours.
  {
    dialect: 'mysql',
    sql: "CREATE USER '{u}'@'%' IDENTIFIED BY 'Zx01'",
    masked: "CREATE USER '{u}'@'%' IDENTIFIED BY '<redacted>'",
    server: true,
  },
  { dialect: 'mysql', sql: "ALTER USER '{u}'@'%' IDENTIFIED BY/**/'Zx02'", server: true },
  { dialect: 'mysql', sql: "ALTER USER '{u}'@'%' IDENTIFIED BY /* c */ 'Zx03'", server: true },
  { dialect: 'mysql', sql: "ALTER USER '{u}'@'%' IDENTIFIED -- c\nBY 'Zx04'", server: true },
  { dialect: 'mysql', sql: "ALTER USER '{u}'@'%' IDENTIFIED # c\nBY 'Zx05'", server: true },
  {
    dialect: 'mysql',
    sql: "ALTER USER '{u}'@'%' IDENTIFIED BY _utf8mb4'Zx06'",
    masked: "ALTER USER '{u}'@'%' IDENTIFIED BY _utf8mb4'<redacted>'",
    server: true,
  },
  { dialect: 'mysql', sql: "ALTER USER '{u}'@'%' IDENTIFIED BY _binary 'Zx07'", server: true },
  { dialect: 'mysql', sql: "ALTER USER '{u}'@'%' IDENTIFIED BY N'Zx08'", server: true },
  {
    dialect: 'mysql',
    sql: `ALTER USER '{u}'@'%' IDENTIFIED BY X'${hex('Zx09')}'`,
    secrets: [hex('Zx09')],
    server: true,
  },
  {
    dialect: 'mysql',
    sql: "ALTER USER '{u}'@'%' IDENTIFIED BY 'a' 'Zx10'",
    masked: "ALTER USER '{u}'@'%' IDENTIFIED BY '<redacted>' '<redacted>'",
    server: true,
  },
  { dialect: 'mysql', sql: `ALTER USER '{u}'@'%' IDENTIFIED BY "Zx11"`, server: true },
  { dialect: 'mysql', sql: "ALTER USER '{u}'@'%' IDENTIFIED BY 'it\\'s Zx12'", server: true },
  { dialect: 'mysql', sql: "ALTER USER '{u}'@'%' IDENTIFIED BY 'Zx13\\\\' ACCOUNT LOCK", server: true },
  { dialect: 'mysql', sql: "alter user '{u}'@'%' identified by'Zx14'", server: true },
  { dialect: 'mysql', sql: "ALTER USER '{u}'@'%' IDENTIFIED/*a*/BY/*b*/'Zx15'", server: true },
  {
    dialect: 'mysql',
    sql: "ALTER USER '{u}'@'%' IDENTIFIED BY 'Zx16' REPLACE 'Zx17' RETAIN CURRENT PASSWORD",
    masked: "ALTER USER '{u}'@'%' IDENTIFIED BY '<redacted>' REPLACE '<redacted>' RETAIN CURRENT PASSWORD",
    server: true,
  },
  { dialect: 'mysql', sql: "SET PASSWORD FOR '{u}'@'%' = 'Zx18' REPLACE 'Zx19'", server: true },
  {
    dialect: 'mysql',
    sql: "SET PASSWORD FOR '{u}'@'%' = PASSWORD('Zx20')",
    masked: "SET PASSWORD FOR '{u}'@'%' = PASSWORD('<redacted>')",
    server: true,
  },
  { dialect: 'mysql', sql: "SET PASSWORD FOR '{u}'@'%' = OLD_PASSWORD(/* c */ 'Zx21')", server: true },
  { dialect: 'mysql', sql: "SET PASSWORD = PASSWORD(N'Zx22')" },
  {
    dialect: 'mysql',
    sql: "ALTER USER '{u}'@'%' IDENTIFIED WITH mysql_native_password BY 'Zx23'",
    server: true,
  },
  {
    dialect: 'mysql',
    sql: "CREATE USER u IDENTIFIED WITH caching_sha2_password AS '$A$005$Zx24'",
    masked: "CREATE USER u IDENTIFIED WITH caching_sha2_password AS '<redacted>'",
  },
  { dialect: 'mysql', sql: "CREATE USER u IDENTIFIED WITH 'mysql_native_password' AS '*Zx25'" },
  {
    dialect: 'mysql',
    sql: "ALTER USER '{u}'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('Zx26')",
    server: true,
  },
  {
    dialect: 'mysql',
    sql: "ALTER USER '{u}'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('Zx27') OR unix_socket",
    server: true,
  },
  {
    dialect: 'mysql',
    sql: "CREATE USER u IDENTIFIED VIA ed25519 USING 'Zx28' OR mysql_native_password USING '*Zx29'",
  },
  { dialect: 'mysql', sql: "ALTER USER '{u}'@'%' IDENTIFIED BY PASSWORD '*Zx30'", server: true },
  { dialect: 'mysql', sql: "GRANT SELECT ON *.* TO '{u}'@'%' IDENTIFIED BY 'Zx31' WITH GRANT OPTION" },
  { dialect: 'mysql', sql: "CREATE USER a IDENTIFIED BY 'Zx32', b IDENTIFIED BY 'Zx33'" },
  {
    dialect: 'mysql',
    sql: "ALTER USER u IDENTIFIED BY 'Zx34' AND IDENTIFIED WITH authentication_ldap_sasl BY 'Zx35'",
  },
  { dialect: 'mysql', sql: "ALTER USER u ADD 2 FACTOR IDENTIFIED WITH authentication_ldap_simple BY 'Zx36'" },
  { dialect: 'mysql', sql: "CLONE INSTANCE FROM 'u'@'h':3306 IDENTIFIED BY 'Zx37'" },
  // Replication, federation, encryption functions.
  {
    dialect: 'mysql',
    sql: "CHANGE MASTER TO MASTER_HOST='h', MASTER_USER='r', MASTER_PASSWORD='Zx38' MASTER_BOGUS=1",
    masked: "CHANGE MASTER TO MASTER_HOST='h', MASTER_USER='r', MASTER_PASSWORD='<redacted>' MASTER_BOGUS=1",
    server: true,
  },
  { dialect: 'mysql', sql: "CHANGE MASTER 'c1' TO MASTER_PASSWORD = /* c */ 'Zx39' BOGUS", server: true },
  { dialect: 'mysql', sql: "CHANGE REPLICATION SOURCE TO SOURCE_USER='r', SOURCE_PASSWORD='Zx40'" },
  { dialect: 'mysql', sql: "START REPLICA USER='r' PASSWORD='Zx41'" },
  { dialect: 'mysql', sql: "START GROUP_REPLICATION USER='r', PASSWORD='Zx42'" },
  {
    dialect: 'mysql',
    sql: "CREATE SERVER s_{u} FOREIGN DATA WRAPPER mysql OPTIONS (HOST 'h', USER 'u', PASSWORD 'Zx43') BOGUS",
    server: true,
  },
  {
    dialect: 'mysql',
    sql: "CREATE TABLE t_{u} (id INT) ENGINE=FEDERATED CONNECTION='mysql://fed:Zx44@h:3306/db/t' BOGUS",
    masked:
      "CREATE TABLE t_{u} (id INT) ENGINE=FEDERATED CONNECTION='mysql://fed:<redacted>@h:3306/db/t' BOGUS",
    server: true,
  },
  {
    dialect: 'mysql',
    sql: "CREATE TABLE t (id INT) ENGINE=CONNECT TABLE_TYPE=ODBC CONNECTION='DSN=x;UID=u;PWD=Zx45;'",
  },
  { dialect: 'mysql', sql: "SELECT AES_ENCRYPT('data', 'Zx46')", server: true },
  { dialect: 'mysql', sql: `SELECT PASSWORD(0x${hex('Zx47')})`, secrets: [hex('Zx47')], server: true },
  // Executable and plain comments, mode changes, literals that end in a backslash.
  { dialect: 'mysql', sql: "/*!80000 ALTER USER u IDENTIFIED BY 'Zx48' */" },
  { dialect: 'mysql', sql: "/*M!100100 ALTER USER '{u}'@'%' IDENTIFIED BY 'Zx49' */", server: true },
  { dialect: 'mysql', sql: "SELECT 1 -- ALTER USER u IDENTIFIED BY 'Zx50'", server: true },
  { dialect: 'mysql', sql: "SELECT 1 /* was: CREATE USER u IDENTIFIED BY 'Zx51' */", server: true },
  { dialect: 'mysql', sql: "SELECT 'C:\\'; CREATE USER u IDENTIFIED BY 'Zx52'" },
  {
    dialect: 'mysql',
    sql: "SET sql_mode = 'NO_BACKSLASH_ESCAPES'; SELECT 'C:\\'; CREATE USER u IDENTIFIED BY 'Zx53'",
  },
  {
    dialect: 'mysql',
    sql: "SET sql_mode = 'ANSI_QUOTES'; SELECT \"a\\\"; CREATE USER u IDENTIFIED BY 'Zx54'",
  },
  { dialect: 'mysql', sql: "PREPARE s FROM 'CREATE USER u IDENTIFIED BY \\'Zx55\\''" },
  { dialect: 'mysql', sql: "PREPARE s FROM 'CREATE USER u IDENTIFIED BY ''Zx56'''" },
  { dialect: 'mysql', sql: "ALTER USER '{u}'@'%' IDENTIFIED BY 'Zx57", server: true },
  { dialect: 'mysql', sql: "UPDATE users SET password = PASSWORD('Zx58') WHERE id = 1" },
  { dialect: 'mysql', sql: "SELECT id FROM users WHERE password = 'Zx59'" },
  { dialect: 'mysql', sql: `INSERT INTO settings VALUES ('{"password": "Zx60"}')` },

  // PostgreSQL.
  {
    dialect: 'postgres',
    sql: "CREATE ROLE {u} LOGIN PASSWORD 'Zx61' VALID UNTIL 'infinity'",
    masked: "CREATE ROLE {u} LOGIN PASSWORD '<redacted>' VALID UNTIL 'infinity'",
    server: true,
  },
  { dialect: 'postgres', sql: "ALTER ROLE {u} WITH ENCRYPTED PASSWORD 'Zx62'", server: true },
  { dialect: 'postgres', sql: "ALTER ROLE {u} UNENCRYPTED PASSWORD 'Zx63'", server: true },
  { dialect: 'postgres', sql: "ALTER ROLE {u} PASSWORD /* c */ 'Zx64'", server: true },
  { dialect: 'postgres', sql: "ALTER ROLE {u} PASSWORD /* a /* nested */ b */ 'Zx65'", server: true },
  { dialect: 'postgres', sql: "ALTER ROLE {u} PASSWORD -- c\n'Zx66'", server: true },
  { dialect: 'postgres', sql: "ALTER ROLE {u} PASSWORD E'Zx67\\'s'", server: true },
  {
    dialect: 'postgres',
    sql: 'ALTER ROLE {u} PASSWORD $$Zx68$$',
    masked: "ALTER ROLE {u} PASSWORD '<redacted>'",
    server: true,
  },
  { dialect: 'postgres', sql: 'ALTER ROLE {u} PASSWORD $pw$Zx69$ $pw$', server: true },
  { dialect: 'postgres', sql: "ALTER ROLE {u} PASSWORD U&'Zx70\\0041'", server: true },
  { dialect: 'postgres', sql: "ALTER ROLE {u} PASSWORD U&'Zx71!0041' UESCAPE '!'", server: true },
  { dialect: 'postgres', sql: "ALTER ROLE {u} PASSWORD 'a'\n'Zx72'", server: true },
  { dialect: 'postgres', sql: "ALTER ROLE {u} PASSWORD 'a' 'Zx73'", server: true },
  {
    dialect: 'postgres',
    sql: "ALTER ROLE {u} PASSWORD 'SCRAM-SHA-256$4096:Zx74$c3RvcmVk:c2VydmVy'",
    server: true,
  },
  { dialect: 'postgres', sql: "ALTER ROLE {u} PASSWORD 'Zx75", server: true },
  { dialect: 'postgres', sql: "CREATE USER {u} IDENTIFIED BY 'Zx76'", server: true },
  {
    dialect: 'postgres',
    sql: "SELECT dblink_connect('host=h user=u password=Zx77 dbname=d')",
    masked: "SELECT dblink_connect('host=h user=u password=<redacted> dbname=d')",
    server: true,
  },
  {
    dialect: 'postgres',
    sql: "SELECT dblink_connect('c1', 'host=h password=''a Zx78 b'' port=1')",
    server: true,
  },
  { dialect: 'postgres', sql: "SELECT dblink_connect('host=h password = \\'a Zx79\\'')" },
  {
    dialect: 'postgres',
    sql: "BEGIN; CREATE SUBSCRIPTION s_{u} CONNECTION 'host=h port=5432 password=Zx80 dbname=d' PUBLICATION p; ROLLBACK",
    server: true,
  },
  { dialect: 'postgres', sql: "ALTER SUBSCRIPTION s CONNECTION 'password=Zx81 host=h'" },
  {
    dialect: 'postgres',
    sql: "BEGIN; ALTER SYSTEM SET primary_conninfo = 'host=h user=r password=Zx82'; ROLLBACK",
    server: true,
  },
  {
    dialect: 'postgres',
    sql: "SELECT dblink('postgres://u:Zx83@h/db', 'select 1')",
    masked: "SELECT dblink('postgres://u:<redacted>@h/db', 'select 1')",
    server: true,
  },
  {
    dialect: 'postgres',
    sql: "SELECT dblink('postgresql://h/db?user=u&password=Zx84', 'select 1')",
    server: true,
  },
  { dialect: 'postgres', sql: "SELECT 'mysql://u:Zx85@h'", server: true },
  {
    dialect: 'postgres',
    sql: "CREATE SERVER s_{u} FOREIGN DATA WRAPPER no_such_fdw OPTIONS (host 'h', password 'Zx86')",
    server: true,
  },
  {
    dialect: 'postgres',
    sql: "CREATE USER MAPPING FOR {u} SERVER no_such_server OPTIONS (user 'u', password 'Zx87')",
    masked: "CREATE USER MAPPING FOR {u} SERVER no_such_server OPTIONS (user 'u', password '<redacted>')",
    server: true,
  },
  { dialect: 'postgres', sql: "ALTER USER MAPPING FOR u SERVER s OPTIONS (SET password 'Zx88')" },
  { dialect: 'postgres', sql: `ALTER USER MAPPING FOR u SERVER s OPTIONS (ADD "password" 'Zx89')` },
  {
    dialect: 'postgres',
    sql: `CREATE USER MAPPING FOR {u} SERVER no_such_server OPTIONS (user 'u', U&"pass\\0077ord" 'Zx90')`,
    server: true,
  },
  { dialect: 'postgres', sql: "SELECT 'C:\\'; ALTER ROLE r PASSWORD 'Zx91'" },
  {
    dialect: 'postgres',
    sql: "SELECT 'C:\\'; SET standard_conforming_strings = off; SELECT 'it\\'s'; ALTER ROLE r PASSWORD 'Zx92'",
  },
  { dialect: 'postgres', sql: "SELECT E'a\\\\'; ALTER ROLE r PASSWORD 'Zx93'" },
  { dialect: 'postgres', sql: "DO $$BEGIN EXECUTE 'ALTER ROLE r PASSWORD ''Zx94'''; END$$" },
  { dialect: 'postgres', sql: "SELECT crypt('Zx95', gen_salt('bf'))" },
  { dialect: 'postgres', sql: "SELECT pgp_sym_encrypt('data', 'Zx96')" },
  { dialect: 'postgres', sql: "statement: ALTER ROLE r PASSWORD 'Zx97'" },
  { dialect: 'postgres', sql: `syntax error at or near "'Zx98'"` },
  { dialect: 'postgres', sql: `unterminated quoted string at or near "'Zx99 "` },
  { dialect: 'postgres', sql: "SET app.password TO 'Zx100'" },
  { dialect: 'postgres', sql: "ALTER ROLE r PASSWORD 'Zx101' -- password=Zx102" },
  { dialect: 'postgres', sql: "SELECT 1 -- don't run: ALTER ROLE r PASSWORD 'Zx112'" },
  { dialect: 'mysql', sql: "SELECT 1 /* it's old: CREATE USER u IDENTIFIED BY 'Zx113' */" },

  // Redshift (PostgreSQL dialect, backslash escapes always on).
  {
    dialect: 'postgres',
    sql: "COPY t FROM 's3://b/k' CREDENTIALS 'aws_access_key_id=AKIA;aws_secret_access_key=Zx103' CSV",
    masked: "COPY t FROM 's3://b/k' CREDENTIALS '<redacted>' CSV",
  },
  {
    dialect: 'postgres',
    sql: "COPY t FROM 's3://b/k' WITH CREDENTIALS AS 'aws_iam_role=arn:aws:iam::1:role/r;master_symmetric_key=Zx104'",
  },
  {
    dialect: 'postgres',
    sql: "UNLOAD ('select * from t where a = ''x''') TO 's3://b/p' ACCESS_KEY_ID 'Zx105' SECRET_ACCESS_KEY 'Zx106' SESSION_TOKEN 'Zx107'",
    masked:
      "UNLOAD ('select * from t where a = ''x''') TO 's3://b/p' ACCESS_KEY_ID '<redacted>' SECRET_ACCESS_KEY '<redacted>' SESSION_TOKEN '<redacted>'",
  },
  { dialect: 'postgres', sql: "COPY t FROM 's3://b/k' MASTER_SYMMETRIC_KEY 'Zx108' ENCRYPTED" },
  { dialect: 'postgres', sql: "CREATE USER u PASSWORD 'md5Zx109'" },
  { dialect: 'postgres', sql: "ALTER USER u PASSWORD 'Zx110\\' VALID UNTIL '2030-01-01'" },
  {
    dialect: 'postgres',
    sql: "COPY t FROM 's3://b/k' ACCESS_KEY_ID AS 'AKIA' SECRET_ACCESS_KEY /* c */ 'Zx111'",
  },
];

/** Statements without credentials: masking leaves them as they are. */
export const ORDINARY_CORPUS: CorpusEntry[] = [
  {
    dialect: 'mysql',
    sql: 'SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.id = 1',
  },
  { dialect: 'mysql', sql: "SELECT user, host FROM mysql.user WHERE user = 'password_reset' -- identified" },
  { dialect: 'mysql', sql: "UPDATE t SET note = 'x' WHERE id = 1" },
  { dialect: 'mysql', sql: 'SELECT password_last_changed, password_lifetime FROM mysql.user' },
  { dialect: 'mysql', sql: "ALTER USER 'u'@'%' PASSWORD EXPIRE INTERVAL 90 DAY PASSWORD HISTORY 5" },
  { dialect: 'mysql', sql: "CREATE USER 'u'@'%' IDENTIFIED BY RANDOM PASSWORD" },
  { dialect: 'mysql', sql: "ALTER USER 'u'@'%' IDENTIFIED WITH caching_sha2_password" },
  { dialect: 'mysql', sql: "SELECT 'IDENTIFIED BY' AS label, 'it''s' # a comment" },
  { dialect: 'mysql', sql: 'SELECT password FROM users WHERE id = 1' },
  { dialect: 'mysql', sql: "SELECT * FROM t WHERE passenger = 'bob' AND token_count > 2" },
  { dialect: 'mysql', sql: "SET sql_mode = 'ANSI_QUOTES'" },
  { dialect: 'mysql', sql: "SELECT 'https://example.com/a?b=c' AS url, `password` FROM `t`" },
  { dialect: 'postgres', sql: 'ALTER ROLE r PASSWORD NULL' },
  { dialect: 'postgres', sql: "ALTER ROLE r SET password_encryption = 'scram-sha-256'" },
  { dialect: 'postgres', sql: "SELECT * FROM pg_stat_statements WHERE query LIKE '%password%'" },
  { dialect: 'postgres', sql: 'CREATE TABLE t (password_hash text, token_count int)' },
  { dialect: 'postgres', sql: "SELECT $1::text, E'\\n', $$ a 'b' $$ FROM t -- note" },
  {
    dialect: 'postgres',
    sql: "COPY t FROM 's3://bucket/key' IAM_ROLE 'arn:aws:iam::123456789012:role/r' CSV",
  },
  { dialect: 'postgres', sql: "SELECT 'postgres://h:5432/db' AS uri, 'host=h user=u' AS conninfo" },
  { dialect: 'postgres', sql: 'statement: SELECT count(*) FROM pg_authid WHERE rolpassword IS NULL' },
  { dialect: 'postgres', sql: 'syntax error at or near "IDENTIFIED"' },
];

/** The secrets an entry holds: its markers and any listed hex. */
export function secretsOf(entry: CorpusEntry): string[] {
  return [...(entry.sql.match(MARKER) ?? []), ...(entry.secrets ?? [])];
}
