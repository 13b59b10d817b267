/**
 * The Athena DDL's text read back: per CREATE EXTERNAL TABLE, its columns in
 * order with their Athena types (`string`, `bigint`, `decimal(20,0)`, ...).
 */

/** Table name → (column → Athena type), in statement and column order. */
export function parseDdl(statements: string[]): Map<string, Map<string, string>> {
  const tables = new Map<string, Map<string, string>>();
  for (const sql of statements) {
    const m = /^CREATE EXTERNAL TABLE IF NOT EXISTS `\w+`\.`(\w+)` \(\n([\s\S]*?)\n\)\n/.exec(sql);
    if (!m) continue;
    const columns = new Map<string, string>();
    for (const line of (m[2] as string).split(',\n')) {
      const c = /^ {2}`(\w+)` ([a-z]+(?:\(\d+,\d+\))?)$/.exec(line);
      if (!c) throw new Error(`unexpected column line ${line}`);
      columns.set(c[1] as string, c[2] as string);
    }
    tables.set(m[1] as string, columns);
  }
  return tables;
}

/** The statements of `npm run athena-ddl`'s output (one per blank-line-separated `...;`). */
export function ddlStatements(stdout: string): string[] {
  return stdout
    .trim()
    .split(/;\n\n/)
    .map((sql) => (sql.endsWith(';') ? sql : `${sql};`));
}
