/**
 * One consistent read per request: a lazily opened REPEATABLE READ, READ ONLY transaction, and
 * the registry version the request reads at, whether from SQL or from the in-memory view.
 */
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
  /** The registry version the open transaction reads (known once it is open). */
  private opened: number | undefined;
  /** The registry version the request was answered at from the in-memory view, when it was. */
  private pinned: number | undefined;
  /** Statements asked of this scope (opening the transaction aside). */
  private reads = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly statementTimeoutMs: number = QUERY_LIMITS.maxStatementMs,
  ) {}

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    if (this.closed) return Promise.reject(new RequestEndedError());
    this.reads++;
    const run = this.tail.then(() => this.open()).then((c) => c.query<R>(text, values)).catch((err: unknown) => {
      // 57014: the statement ran past the transaction's statement_timeout.
      if ((err as { code?: unknown }).code !== '57014') throw err;
      throw new ConstellationError('QUERY_TOO_COSTLY', `a read of this request ran past ${this.statementTimeoutMs} ms and was cancelled; ask for less`, { cause: err });
    });
    this.tail = run.catch(() => {});
    return run;
  }

  /**
   * Answer this request from the in-memory view at registry `version`: true when every SQL read
   * of the request is at that version too (none made yet, or the open transaction's version is
   * it); a transaction opened later at another version then fails its reads (see `open`), so an
   * answer never mixes two versions. False when the request already reads another version, or
   * one not known yet: the caller must then answer from SQL.
   */
  pinView(version: number): boolean {
    if (this.closed || version < 0) return false;
    if (this.pinned !== undefined) return this.pinned === version;
    if (this.client !== undefined && this.opened !== version) return false;
    this.pinned = version;
    return true;
  }

  /** The registry version this request's transaction reads (opening it when needed). */
  async version(): Promise<number> {
    if (this.closed) throw new RequestEndedError();
    await this.tail.then(() => this.open());
    if (this.opened === undefined) throw new Error('read scope opened without a registry version');
    return this.opened;
  }

  /**
   * End the transaction when nothing of the request has read it or the view yet (true), so the
   * next read starts a new one, at the registry's version by then; false when something has.
   */
  async restartUnread(): Promise<boolean> {
    if (this.reads > 0 || this.pinned !== undefined || this.closed) return false;
    await this.release();
    return true;
  }

  private open(): Promise<pg.PoolClient> {
    this.client ??= (async () => {
      const c = await connect(this.pool);
      let opened: number;
      try {
        // One round trip: a simple-protocol query may hold all three statements; the SELECT
        // takes the transaction's snapshot, so the version is the one every later read sees.
        const results: unknown = await c.query(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL statement_timeout = ${Math.max(1, Math.round(this.statementTimeoutMs))}; SELECT version FROM registry_state`);
        opened = versionIn(results);
        if (this.pinned !== undefined && opened !== this.pinned) await c.query('ROLLBACK');
      } catch (err) {
        c.release(err instanceof Error ? err : new Error(String(err)));
        throw err;
      }
      if (this.pinned !== undefined && opened !== this.pinned) {
        c.release();
        // Part of the answer came from the view at the pinned version and SQL now holds another:
        // every read of this request fails (this promise stays rejected) rather than mix the two.
        throw new ConstellationError('REGISTRY_CHANGED', `the registry changed from version ${this.pinned} to ${opened} while this request was answered; retry it`);
      }
      this.opened = opened;
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
    this.opened = undefined;
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

/** The registry version in the results of the opening statements (the last one's only row). */
function versionIn(results: unknown): number {
  const last: unknown = Array.isArray(results) ? results[results.length - 1] : results;
  const rows: unknown = typeof last === 'object' && last !== null && 'rows' in last ? last.rows : undefined;
  const row: unknown = Array.isArray(rows) ? rows[0] : undefined;
  const version: unknown = typeof row === 'object' && row !== null && 'version' in row ? row.version : undefined;
  // bigint arrives as text from the pg driver.
  const n = typeof version === 'string' ? Number(version) : version;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new Error('no registry version read when opening the request transaction');
  return n;
}
