import { describe, expect, it } from 'vitest';
import { redactSql } from '../../../../shared/export/masking';

describe('redactSql', () => {
  it.each([
    ["CREATE USER 'app'@'%' IDENTIFIED BY 'S3cr3t!pw'", "CREATE USER 'app'@'%' IDENTIFIED BY '<redacted>'"],
    [
      "CREATE USER 'app'@'%' IDENTIFIED BY 'it''s \\'quoted\\' pw' REQUIRE SSL",
      "CREATE USER 'app'@'%' IDENTIFIED BY '<redacted>' REQUIRE SSL",
    ],
    [
      "ALTER USER 'app'@'%' IDENTIFIED BY PASSWORD '*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9'",
      "ALTER USER 'app'@'%' IDENTIFIED BY PASSWORD '<redacted>'",
    ],
    [
      "ALTER USER app IDENTIFIED WITH mysql_native_password BY 'pw1234'",
      "ALTER USER app IDENTIFIED WITH mysql_native_password BY '<redacted>'",
    ],
    [
      "ALTER USER app IDENTIFIED VIA ed25519 USING PASSWORD('pw1234')",
      "ALTER USER app IDENTIFIED VIA ed25519 USING PASSWORD('<redacted>')",
    ],
    [
      "GRANT ALL ON db.* TO 'app'@'%' IDENTIFIED BY \"dq\\\"pw\"",
      "GRANT ALL ON db.* TO 'app'@'%' IDENTIFIED BY '<redacted>'",
    ],
    [
      "SET PASSWORD FOR 'app'@'%' = PASSWORD('n3w''pw')",
      "SET PASSWORD FOR 'app'@'%' = PASSWORD('<redacted>')",
    ],
    ["SET PASSWORD = 'plain\\\\pw'", "SET PASSWORD = '<redacted>'"],
    [
      "set password for app@localhost = old_password('x')",
      "set password for app@localhost = old_password('<redacted>')",
    ],
    [
      "CHANGE MASTER TO MASTER_HOST='db1', MASTER_PASSWORD='replpw'",
      "CHANGE MASTER TO MASTER_HOST='db1', MASTER_PASSWORD='<redacted>'",
    ],
    [
      "CREATE ROLE app WITH LOGIN PASSWORD 'pg''pw' VALID UNTIL '2030-01-01'",
      "CREATE ROLE app WITH LOGIN PASSWORD '<redacted>' VALID UNTIL '2030-01-01'",
    ],
    [
      "ALTER USER app WITH ENCRYPTED PASSWORD E'a\\'b'",
      "ALTER USER app WITH ENCRYPTED PASSWORD '<redacted>'",
    ],
    ["ALTER ROLE app PASSWORD $$dollar'pw$$", "ALTER ROLE app PASSWORD '<redacted>'"],
    [
      "ALTER ROLE app PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy'",
      "ALTER ROLE app PASSWORD '<redacted>'",
    ],
    [
      "COPY sales FROM 's3://bucket/data' CREDENTIALS 'aws_access_key_id=AKIAEXAMPLE;aws_secret_access_key=wJalr/K7MDENG' CSV",
      "COPY sales FROM 's3://bucket/data' CREDENTIALS '<redacted>' CSV",
    ],
    [
      "UNLOAD ('select * from t where name = ''x''') TO 's3://b/p' ACCESS_KEY_ID 'AKIAEXAMPLE' SECRET_ACCESS_KEY 'wJalr' SESSION_TOKEN 'FwoGZX'",
      "UNLOAD ('select * from t where name = ''x''') TO 's3://b/p' ACCESS_KEY_ID '<redacted>' SECRET_ACCESS_KEY '<redacted>' SESSION_TOKEN '<redacted>'",
    ],
  ])('masks the credential in %s', (input, expected) => {
    expect(redactSql(input)).toBe(expected);
  });

  it('leaves statements without credentials untouched', () => {
    const sql = "SELECT user, host FROM mysql.user WHERE user = 'password_reset' -- identified";
    expect(redactSql(sql)).toBe(sql);
    expect(redactSql("UPDATE t SET note = 'x' WHERE id = 1")).toBe("UPDATE t SET note = 'x' WHERE id = 1");
  });

  it('masks every credential in a multi-statement text, and a literal cut off at the end', () => {
    expect(redactSql("CREATE USER a IDENTIFIED BY 'one'; CREATE USER b IDENTIFIED BY 'tw")).toBe(
      "CREATE USER a IDENTIFIED BY '<redacted>'; CREATE USER b IDENTIFIED BY '<redacted>'",
    );
  });
});
