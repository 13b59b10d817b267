import { type ColumnSpec, columnList } from '../../shared/export/sources/columns';
import {
  REDSHIFT_TABLES,
  stlAlertEventLog,
  stlQuery,
  stlScan,
  stlWlmQuery,
  sysQueryHistory,
} from '../../shared/export/sources/redshift/catalog';
import { createPgDatabase, pgAdmin } from '../stack/fixtures';
import { postgresClusterParameters } from './csvlog-fixtures';

/**
 * Redshift's STL/SYS tables as PostgreSQL tables with Redshift's column names
 * and types (CHAR columns padded, timestamps without time zone in UTC), in a
 * throwaway database: what the Redshift catalog reads, minus the real cluster.
 */

const textPieces = columnList({ sequence: 'integer', text: 'character(200)' });
const statementKeys = columnList({
  userid: 'integer',
  xid: 'bigint',
  pid: 'integer',
  label: 'character(320)',
  starttime: 'timestamp',
  endtime: 'timestamp',
});

/** The stored layout of each fixture table (the text tables hold pieces, not the exported rows). */
const STORED: Record<string, readonly ColumnSpec[]> = {
  stl_query: stlQuery.columns,
  stl_wlm_query: stlWlmQuery.columns,
  stl_alert_event_log: stlAlertEventLog.columns,
  stl_scan: stlScan.columns,
  sys_query_history: sysQueryHistory.columns,
  stl_querytext: [
    ...columnList({ userid: 'integer', xid: 'bigint', pid: 'integer', query: 'integer' }),
    ...textPieces,
  ],
  stl_ddltext: [...statementKeys, ...textPieces],
  stl_utilitytext: [...statementKeys, ...textPieces],
  stl_explain: columnList({
    userid: 'integer',
    query: 'integer',
    nodeid: 'integer',
    parentid: 'integer',
    plannode: 'character(400)',
    info: 'character(400)',
  }),
};

export type FixtureRow = Record<string, string | number | boolean | null>;

export interface RedshiftFixture {
  database: string;
  insert(table: string, rows: readonly FixtureRow[]): Promise<void>;
}

/** A throwaway database holding every Redshift catalog table, empty. */
export async function createRedshiftFixture(): Promise<RedshiftFixture> {
  const database = await createPgDatabase();
  const admin = await pgAdmin(database);
  try {
    for (const table of REDSHIFT_TABLES) {
      const columns = STORED[table.name];
      if (!columns) throw new Error(`no fixture layout for ${table.name}`);
      await admin.query(
        `CREATE TABLE ${table.name} (${columns.map((c) => `"${c.name}" ${c.type}`).join(', ')})`,
      );
    }
  } finally {
    await admin.end();
  }
  return {
    database,
    async insert(table, rows) {
      if (rows.length === 0) return;
      const client = await pgAdmin(database);
      try {
        for (const row of rows) {
          const names = Object.keys(row);
          await client.query(
            `INSERT INTO ${table} (${names.map((n) => `"${n}"`).join(', ')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')})`,
            Object.values(row),
          );
        }
      } finally {
        await client.end();
      }
    },
  };
}

/** Splits SQL text into Redshift's 200-character pieces, numbered by `sequence` from 0. */
export function pieces(text: string): Array<{ sequence: number; text: string }> {
  const result = [];
  for (let i = 0; i * 200 < text.length; i++)
    result.push({ sequence: i, text: text.slice(i * 200, i * 200 + 200) });
  return result;
}

/** Cluster parameters: engine redshift, logging in to the fixture database as the test superuser. */
export function redshiftClusterParameters(
  cluster: string,
  database: string,
): Record<string, string | { secure: string }> {
  return postgresClusterParameters(cluster, database, 'redshift');
}
