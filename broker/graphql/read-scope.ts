/** One consistent read per request: a lazily opened REPEATABLE READ, READ ONLY transaction. */
import type pg from 'pg';
import { ConstellationError } from '../../registry/model/errors.js';
import { connect, type Queryable } from '../../registry/store/db.js';
import { RequestEndedError } from './budget.js';
import { QUERY_LIMITS } from './limits.js';

/**
 * Every statement of one GraphQL request reads the same snapshot, so a publish committing
 * between two loader batches can never show a mix of a site's old and new state.
 */
export class ReadScope implements Queryable {
  private client: Promise<pg.PoolClient> | undefined;
  // Loaders of one level run concurrently; one client takes one statement at a time.
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly statementTimeoutMs: number = QUERY_LIMITS.maxStatementMs,
  ) {}

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    if (this.closed) return Promise.reject(new RequestEndedError());
    const run = this.tail.then(() => this.open()).then((c) => c.query<R>(text, values)).catch((err: unknown) => {
      // 57014: the statement ran past the transaction's statement_timeout.
      if ((err as { code?: unknown }).code !== '57014') throw err;
      throw new ConstellationError('QUERY_TOO_COSTLY', `a read of this request ran past ${this.statementTimeoutMs} ms and was cancelled; ask for less`, { cause: err });
    });
    this.tail = run.catch(() => {});
    return run;
  }

  private open(): Promise<pg.PoolClient> {
    this.client ??= (async () => {
      const c = await connect(this.pool);
      try {
        // One round trip: a simple-protocol query may hold both statements.
        await c.query(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL statement_timeout = ${Math.max(1, Math.round(this.statementTimeoutMs))}`);
      } catch (err) {
        c.release();
        throw err;
      }
      return c;
    })();
    return this.client;
  }

  /**
   * End the transaction and return the connection; safe to call twice or when nothing was
   * read. Afterwards every query fails, so a resolver still running for an aborted request
   * cannot reopen a transaction that nobody would close.
   */
  async close(): Promise<void> {
    this.closed = true;
    await this.release();
  }

  /** End the current transaction; a later query starts a new one (used after a write). */
  async release(): Promise<void> {
    await this.tail;
    const pending = this.client;
    this.client = undefined;
    if (!pending) return;
    const c = await pending.catch(() => undefined);
    if (!c) return;
    try {
      // Nothing was written; ROLLBACK ends a read-only transaction without a commit record.
      await c.query('ROLLBACK');
      c.release();
    } catch (err) {
      c.release(err as Error);
    }
  }
}
