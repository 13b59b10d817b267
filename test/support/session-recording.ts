import type { SessionOpener } from '../../shared/export/exporter';
import type { DatabaseSession, Row, SqlDialect } from '../../shared/export/sources/session';

/**
 * One read, two exports. `record` wraps real session openers: every call
 * goes to the database and its answer is kept, by cluster (the opener's
 * purpose), method and SQL. `replay` opens sessions that give a second run
 * the same answers to the same calls, in the same order, without a database.
 * For sources that cannot be read twice alike (a live log that grows while it
 * is read, a statistics snapshot), this hands a second export exactly the
 * rows the first one read. A call the first run did not make fails loudly.
 * Replayed sessions have no JSON-lines fast path: their rows go through the
 * row encoder, which by the session contract writes the fast path's bytes.
 */
export class SessionRecording {
  readonly #answers = new Map<string, unknown[]>();
  readonly #dialects = new Map<string, SqlDialect>();

  record(open: SessionOpener): SessionOpener {
    return async (target, logger, purpose, options) => {
      const session = await open(target, logger, purpose, options);
      this.#dialects.set(purpose, session.dialect);
      const keep = <T>(method: string, sql: string, answer: T): T => {
        this.#queue(purpose, method, sql).push(answer);
        return answer;
      };
      const recorded: DatabaseSession = {
        dialect: session.dialect,
        now: async () => keep('now', '', await session.now()),
        scalar: async (sql) => keep('scalar', sql, await session.scalar(sql)),
        relationExists: async (schema, table) =>
          keep('relationExists', `${schema}.${table}`, await session.relationExists(schema, table)),
        describe: async (sql) => keep('describe', sql, await session.describe(sql)),
        stream: (sql) => keepRows(session.stream(sql), keep('stream', sql, [] as Row[])),
        close: () => session.close(),
      };
      return recorded;
    };
  }

  replay(): SessionOpener {
    return async (_target, _logger, purpose) => {
      const dialect = this.#dialects.get(purpose);
      if (!dialect) throw new Error(`No session was recorded for "${purpose}"`);
      const next = (method: string, sql: string): unknown => {
        const queue = this.#queue(purpose, method, sql);
        if (queue.length === 0) throw new Error(`Not recorded for "${purpose}": ${method} ${sql}`);
        return queue.shift();
      };
      const replayed: DatabaseSession = {
        dialect,
        now: async () => next('now', '') as string,
        scalar: async (sql) => next('scalar', sql),
        relationExists: async (schema, table) => next('relationExists', `${schema}.${table}`) as boolean,
        describe: async (sql) => next('describe', sql) as Awaited<ReturnType<DatabaseSession['describe']>>,
        stream: (sql) => copies(next('stream', sql) as Row[]),
        close: async () => {},
      };
      return replayed;
    };
  }

  #queue(purpose: string, method: string, sql: string): unknown[] {
    const key = `${purpose}\n${method}\n${sql}`;
    let queue = this.#answers.get(key);
    if (!queue) {
      queue = [];
      this.#answers.set(key, queue);
    }
    return queue;
  }
}

/** Passes the rows on, keeping a copy of each as it was read (encoders mask text columns in place). */
async function* keepRows(rows: AsyncIterable<Row>, kept: Row[]): AsyncIterable<Row> {
  for await (const row of rows) {
    kept.push({ ...row });
    yield row;
  }
}

async function* copies(rows: readonly Row[]): AsyncIterable<Row> {
  for (const row of rows) yield { ...row };
}
