/**
 * Masking micro-benchmark (npm run bench:masking). Runs the credential masker
 * alone, in one process, over the same statement mixes with the pattern-based
 * masker it replaced (kept below only as the baseline) and the lexer, and
 * prints rows per CPU second for each. No database, no stack.
 * - general_log: the statement of bench:export's rows (no credential word: the cheap first look);
 * - mixed: nine ordinary statements to one that holds a credential;
 * - credentials: only statements that hold a credential (every one is lexed).
 */
import { redactSql } from '../shared/export/masking';

const ROWS = Number(process.env.BENCH_ROWS ?? 200_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

// The pattern-based masker as it was before the lexer: the baseline, not product code.
const LITERAL = String.raw`(?:[Ee]?'(?:[^'\\]|\\[\s\S]|'')*'?|"(?:[^"\\]|\\[\s\S]|"")*"?|\$(?<tag>[A-Za-z_]\w*)?\$[\s\S]*?(?:\$\k<tag>\$|$))`;
const BEFORE_LITERAL = [
  String.raw`\bIDENTIFIED\s+(?:(?:WITH|VIA)\s+[\w'"\x60]+\s+)?(?:BY|AS|USING)\s+(?:PASSWORD\s+)?`,
  String.raw`\bSET\s+PASSWORD\b[^=;]*=\s*`,
  String.raw`\bPASSWORD\s*=?\s*`,
  String.raw`\b(?:MASTER|SOURCE)_PASSWORD\s*=\s*`,
  String.raw`\b(?:CREDENTIALS|ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|MASTER_SYMMETRIC_KEY)\s+(?:AS\s+)?`,
];
const PASSWORD_FUNCTION = new RegExp(String.raw`\b((?:OLD_)?PASSWORD\s*\(\s*)${LITERAL}(\s*\))`, 'gi');
const KEYWORD_LITERAL = new RegExp(`(${BEFORE_LITERAL.join('|')})${LITERAL}`, 'gi');
const MAY_HOLD_SECRET = /password|identified|credentials|access_key|session_token|symmetric_key/i;
function patternRedactSql(sql: string): string {
  if (!MAY_HOLD_SECRET.test(sql)) return sql;
  return sql
    .replace(
      PASSWORD_FUNCTION,
      (_m, before: string, _tag: unknown, after: string) => `${before}'<redacted>'${after}`,
    )
    .replace(KEYWORD_LITERAL, (_m, keyword: string) => `${keyword}'<redacted>'`);
}

const ORDINARY = [
  'SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.created_at > NOW() - INTERVAL 1 DAY AND c.id = ',
  "UPDATE sessions SET last_seen = NOW(), agent = 'Mozilla/5.0 (X11; Linux x86_64)' WHERE id = ",
  "INSERT INTO events (kind, payload) VALUES ('click', '{\"x\": 10, \"y\": 20}'), ('view', '{}') -- batch ",
  'SELECT COUNT(*) FROM line_items WHERE order_id IN (SELECT id FROM orders WHERE status = 2) AND qty > ',
  "SELECT name FROM products WHERE name LIKE 'blue%' ORDER BY price DESC LIMIT ",
  'COMMIT /* tx */ -- ',
  "SELECT u.id, u.email FROM users u WHERE u.email = 'someone@example.com' AND u.id > ",
  'DELETE FROM cart WHERE updated_at < NOW() - INTERVAL 30 DAY AND shard = ',
  "SET NAMES utf8mb4 COLLATE 'utf8mb4_unicode_ci' /* ",
];
const CREDENTIAL = [
  "CREATE USER 'app'@'%' IDENTIFIED BY 'S3cr3t!pw' REQUIRE SSL /* ",
  "ALTER USER 'app'@'%' IDENTIFIED WITH caching_sha2_password BY 'n3w''pw' REPLACE 'old' -- ",
  "SET PASSWORD FOR 'app'@'%' = PASSWORD('x') /* ",
  "CREATE ROLE app WITH LOGIN PASSWORD 'pg''pw' VALID UNTIL '2030-01-01' -- ",
  "SELECT dblink_connect('host=db1 port=5432 user=app password=s3cret dbname=app') -- ",
  "CHANGE MASTER TO MASTER_HOST='db1', MASTER_USER='repl', MASTER_PASSWORD='replpw', MASTER_PORT=3306 /* ",
  "COPY sales FROM 's3://bucket/data' CREDENTIALS 'aws_access_key_id=AKIA;aws_secret_access_key=wJalr' CSV -- ",
  "SELECT id FROM users WHERE password_hash = 'abc' AND id = ",
];

function mix(ordinaryPerCredential: number, credentialOnly = false): string[] {
  const rows: string[] = [];
  for (let i = 0; i < ROWS; i++) {
    const credential = credentialOnly || i % (ordinaryPerCredential + 1) === ordinaryPerCredential;
    const pool = credential ? CREDENTIAL : ORDINARY;
    rows.push(`${pool[i % pool.length]}${i}`);
  }
  return rows;
}

/** CPU time of this process in ms: on a shared machine wall time mostly measures the neighbours. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

function rowsPerSecond(mask: (sql: string) => string, rows: readonly string[]): number {
  let best = Number.POSITIVE_INFINITY;
  let sink = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const started = cpuMs();
    for (const row of rows) sink += mask(row).length;
    best = Math.min(best, cpuMs() - started);
  }
  if (sink < 0) throw new Error('unreachable');
  return Math.round(rows.length / (best / 1000));
}

const mixes: [string, string[]][] = [
  ['general_log', Array.from({ length: ROWS }, (_, i) => `${ORDINARY[0]}${i}`)],
  ['mixed', mix(9)],
  ['credentials', mix(0, true)],
];
console.log(`rows per CPU second, best of ${ROUNDS} rounds of ${ROWS} rows`);
for (const [name, rows] of mixes) {
  const before = rowsPerSecond(patternRedactSql, rows);
  const after = rowsPerSecond(redactSql, rows);
  console.log(
    `${name.padEnd(12)} patterns ${String(before).padStart(10)}  lexer ${String(after).padStart(10)}  (${((after / before) * 100).toFixed(0)}%)`,
  );
}
